"""Request-body guard (pure ASGI middleware): the body limit counted as bytes arrive, and strict JSON.

A body is read chunk by chunk and refused with 413 as soon as it passes the limit (``Content-Length`` announced
over the limit is refused before reading; a chunked upload without one is counted as it streams). A JSON body must
be standard JSON: ``NaN``, ``Infinity``, number literals that overflow a double (``1e309``), text that is not valid
Unicode (lone surrogates, in keys or values) and duplicate keys in an object are refused with 422, each error
naming its location (``["body", "solver", "time_limit_s"]``), so no such value reaches a handler or the database.

A YAML body (``Content-Type: application/yaml``, also ``application/x-yaml``, ``text/yaml``, ``text/x-yaml``) costs
far more to parse than JSON (PyYAML builds a Python object per value), so it is read only for a caller with an
active API key (else 401, the same body as a route's, before any parsing), at most :data:`MAX_YAML_BODY` bytes
(1 MiB, the scenario files' own limit on the command line; 413 naming the limit), and at most
:data:`MAX_YAML_PARSES` at once per server process (a further one is answered 429 with ``Retry-After``
:data:`YAML_RETRY_AFTER_S` at once rather than queued, so waiting clients hold no thread). It is then read under
the limits of a scenario file on the command line (``planner.scenario.parse_yaml``): UTF-8, at most
``MAX_YAML_NODES`` values — counted from the parse events before the tree is built — and as many once aliases are
expanded — counted before expanding, so a "billion laughs" body is refused at once —, each key once (422 at the
field, naming the problem and the line). It is then turned into JSON and checked like a JSON body, so the handlers
see one format.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from typing import Any

import anyio

from api.messages import NO_KEY, NO_KEY_RU, item, ru_item
from planner.scenario import MAX_FILE_BYTES, ScenarioError, bad_values, parse_yaml, short

Scope = dict[str, Any]

MAX_YAML_BODY = MAX_FILE_BYTES
"""Largest YAML request body, bytes: the limit of a scenario file on the command line
(:data:`planner.scenario.MAX_FILE_BYTES`, 1 MiB), one constant for both, so a file ``planner run`` reads is
accepted over HTTP too. ``PLANNER_MAX_BODY`` (default also 1 MiB) can lower it but never raise it."""
MAX_YAML_PARSES = 2
"""YAML bodies parsed at once by one server process (each in a worker thread); a further one gets 429."""
YAML_RETRY_AFTER_S = 3
"""The ``Retry-After`` (seconds) of that 429: the longest a body within the limits takes to read. A body of
more than 100,000 values is refused from its parse events in 0.2–0.8 s; the costliest bodies read whole sit just
under 100,000 values (a mapping of 49,990 keys: 2.5–2.6 s; a list of 99,990 items: 1.4–2.3 s); measured 2026-12
on the project's 2-core machine while other work ran (`benchmarks/yaml_body.py`; docs/benchmarks.md, "YAML
bodies"; `approximate`)."""


class _NonFinite:
    """Stands for a number literal that is not finite (NaN, ±Infinity, an overflowing literal)."""

    def __init__(self, text: str):
        self.text = text


class _Object(dict):
    """A JSON object that remembers the keys it was given more than once."""

    dups: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    out = _Object()
    out.dups = []
    for k, v in pairs:
        if k in out:
            out.dups.append(k)
        out[k] = v
    return out


def _float(text: str) -> float | _NonFinite:
    v = float(text)
    return v if math.isfinite(v) else _NonFinite(text)


def json_errors(raw: bytes) -> list[dict] | None:
    """422 error items for a body that parses as JSON but holds what no request may (see the module docstring);
    None when the body is not JSON at all (the framework reports that) and [] when it is clean."""
    try:
        data = json.loads(raw, object_pairs_hook=_pairs, parse_constant=_NonFinite, parse_float=_float)
    except RecursionError:
        return [item(["body", "JSON object"], "JSON nested too deeply", "JSON вложен слишком глубоко",
                     "json_invalid")]
    except ValueError:  # not JSON (or an integer literal over Python's digit limit): FastAPI's own 422
        return None
    errors: list[dict] = []
    stack: list[tuple[Any, tuple]] = [(data, ())]
    while stack:
        v, loc = stack.pop()
        if isinstance(v, _NonFinite):
            got = short(v.text, 40)
            errors.append(item(["body", *loc], f"expected a finite number, got {got} (not standard JSON)",
                               f"ожидается конечное число, получено {got} (это не стандартный JSON)",
                               "finite_number"))
        elif isinstance(v, dict):
            for k in getattr(v, "dups", []):
                errors.append(item(["body", *loc, k], f"key {short(k, 80)} given more than once",
                                   f"ключ {short(k, 80)} указан более одного раза", "duplicate_key"))
            stack.extend((x, (*loc, k)) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, (*loc, i)) for i, x in enumerate(v))
    clean = _plain(data)
    errors += [item(["body", *loc], msg, ru_item(msg), "unicode") for loc, msg in bad_values(clean)]
    for e in errors:
        e["loc"] = [_safe(p) for p in e["loc"]]
    return sorted(errors, key=lambda e: [str(p) for p in e["loc"]])


def _safe(part: Any) -> Any:
    """A location part that can be sent as JSON: a key that is not valid Unicode becomes its escaped repr."""
    if isinstance(part, str):
        try:
            part.encode("utf-8")
        except UnicodeEncodeError:
            return short(part, 80)
    return part


def _plain(v: Any) -> Any:
    """The parsed body with non-finite markers replaced by None (they are reported already)."""
    if isinstance(v, _NonFinite):
        return None
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


async def _send_json(send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": payload})


YAML_TYPES = (b"application/yaml", b"application/x-yaml", b"text/yaml", b"text/x-yaml")
"""Media types read as YAML."""


def is_yaml(content_type: bytes) -> bool:
    """Whether a Content-Type header names YAML (parameters such as ``charset`` aside)."""
    return content_type.split(b";")[0].strip().lower() in YAML_TYPES


def _json_value(v: Any) -> Any:
    """``json.dumps`` fallback for YAML values JSON has no type for: dates and times become ISO 8601 text (as a
    scenario file's would be read as text); anything else (``!!binary``, ``!!set``) is refused."""
    import datetime as dt

    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    raise TypeError(f"a YAML value of type {type(v).__name__} has no JSON equivalent")


def yaml_loc(exc: ScenarioError) -> list:
    """Where a YAML body's problem is, as a 422 ``loc``: the duplicated key's path (``["body", "objective",
    "p"]``), the field whose aliases expand past the limit (``["body", "lol9"]``), else the line of a syntax error
    (``["body", "line 3"]``; no field can be named where the text is not YAML), else the body as a whole with
    what it must be (``["body", "YAML mapping"]``: text that is not UTF-8)."""
    clean = [_safe(p) if isinstance(p, str | int) and not isinstance(p, bool) else short(p, 80) for p in exc.loc]
    if clean:
        return ["body", *clean]
    if exc.line is not None:
        return ["body", f"line {exc.line}"]
    return ["body", "YAML mapping"]


def yaml_to_json(raw: bytes) -> tuple[bytes | None, list[dict]]:
    """A YAML body as JSON bytes, or 422 error items (at ``["body"]``, the message naming the problem and line).
    Non-finite numbers (``.inf``, ``.nan``) are written as JSON's non-standard literals so :func:`json_errors`
    reports them at their field, exactly as in a JSON body."""
    try:
        data, _ = parse_yaml(raw, "YAML body")
    except ScenarioError as exc:
        text = str(exc)
        kind = ("yaml_aliases" if "aliases are expanded" in text else "duplicate_key" if "duplicate key" in text
                else "yaml_values" if "values in the document" in text else "yaml_invalid")
        return None, [item(yaml_loc(exc), text[:300], _yaml_ru(text)[:300], kind)]
    try:
        return json.dumps(data, default=_json_value).encode("utf-8"), []
    except (TypeError, ValueError) as exc:  # a mapping key JSON cannot hold (a list as a key), a binary value
        loc, kind = _non_json(data)
        return None, [item(["body", *loc], f"YAML body: {str(exc)[:200]}",
                           f"тело YAML: {kind}, которому нет соответствия в JSON", "yaml_invalid")]


def _non_json(data: Any) -> tuple[list, str]:
    """Where the first value JSON cannot carry sits in a parsed YAML document (its path, else the document as a
    whole: ``["YAML mapping"]``) and what it is, in Russian."""
    import datetime as dt

    stack: list[tuple[Any, list]] = [(data, [])]
    while stack:
        v, loc = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(k, str | int | float | bool) and k is not None:
                    return loc or ["YAML mapping"], "ключ-составное значение"
                stack.append((x, [*loc, _safe(k) if isinstance(k, str) else str(k)]))
        elif isinstance(v, list):
            stack.extend((x, [*loc, i]) for i, x in enumerate(v))
        elif not isinstance(v, str | int | float | bool | dt.date | dt.datetime) and v is not None:
            return loc or ["YAML mapping"], f"значение типа «{type(v).__name__}»"
    return ["YAML mapping"], "значение"


YAML_RU = [
    (re.compile(r"^YAML body(?P<line>, line \d+)?: not valid YAML: duplicate key (?P<key>.+) \(first at line "
                r"(?P<first>\d+)\)$", re.S), "тело YAML{line}: ключ {key} повторён (впервые — в строке {first})"),
    (re.compile(r"^YAML body(?P<line>, line \d+)?: not valid YAML: (?P<why>.*)$", re.S),
     "тело YAML{line}: это не YAML ({why})"),
    (re.compile(r"^YAML body: more than (?P<n>\d+) values once YAML aliases are expanded.*$", re.S),
     "тело YAML: после раскрытия ссылок YAML («aliases») больше {n} значений, сценарию нужно намного меньше "
     "(вложенные ссылки, «billion laughs»?)"),
    (re.compile(r"^YAML body(?P<line>, line \d+)?: more than (?P<n>\d+) values in the document.*$", re.S),
     "тело YAML{line}: в документе больше {n} значений, сценарию нужно намного меньше"),
    (re.compile(r"^YAML body: not UTF-8 text \(byte (?P<byte>\w+) at offset (?P<at>\d+)\).*$", re.S),
     "тело YAML: текст не в UTF-8 (байт {byte} на смещении {at}); сохраните его в UTF-8"),
    (re.compile(r"^YAML body: YAML nested too deeply$"), "тело YAML: слишком глубокая вложенность"),
]
"""Russian of the YAML reader's messages (``planner.scenario.parse_yaml``) about a body."""


YAML_PROBLEM_RU = [(re.compile(p, re.S), t) for p, t in [
    (r"^(did not find|could not find|expected) (expected )?(?P<what>.*?)(, but (found|got) (?P<got>.*))?$",
     "ожидалось {what}{got}"),
    (r"^mapping values are not allowed (here|in this context)$",
     "здесь не может начинаться значение словаря (лишнее двоеточие или сдвиг строки?)"),
    (r"^found character (?P<c>.*) that cannot start any token$", "символ {c} не может начинать элемент"),
    (r"^found undefined alias ?(?P<a>.*)$", "ссылка YAML не определена {a}"),
    (r"^found a tab character that violates indentation$", "табуляция в отступе (отступы YAML — пробелы)"),
    (r"^found unhashable key$", "ключ словаря — составное значение"),
    (r"^found unexpected end of stream$", "текст оборвался"),
    (r"^found duplicate anchor (?P<a>.*?);.*$", "якорь {a} повторён"),
]]
"""Russian of the YAML reader's problems (PyYAML's and libyaml's own words), by pattern; a problem none covers is
called a syntax error without its English words."""


def _problem_ru(why: str) -> str:
    for pattern, template in YAML_PROBLEM_RU:
        m = pattern.match(why.strip())
        if m:
            groups = {k: v or "" for k, v in m.groupdict().items()}
            if "got" in groups:
                groups["got"] = f", а найдено {groups['got']}" if groups["got"] else ""
            return template.format(**groups).strip().replace("<stream end>", "конец текста").replace(
                "<block end>", "конец блока").replace("<block mapping start>", "начало словаря").replace(
                "<document start>", "начало документа").replace("<scalar>", "значение").replace(
                "<flow sequence start>", "начало списка").replace("<block sequence start>", "начало списка").replace(
                "' or '", "' или '").replace("'-' indicator", "'-' (элемент списка)")
    return "синтаксическая ошибка"


def _yaml_ru(text: str) -> str:
    m = re.match(r"^YAML body(?P<line>, line \d+)?: not valid YAML: (?P<why>.*)$", text, re.S)
    if m and "duplicate key" not in m["why"]:
        return f"тело YAML{(m['line'] or '')}: это не YAML: {_problem_ru(m['why'])}".replace(", line ", ", строка ")
    for pattern, template in YAML_RU:
        m = pattern.match(text)
        if m:
            return template.format(**{k: v or "" for k, v in m.groupdict().items()}).replace(", line ", ", строка ")
    return ru_item(text)


class BodyGuard:
    """ASGI middleware: ``max_body()`` bytes at most per request body (413), strict JSON (422); a YAML body only
    with an active key (``key_ok``, 401), ≤ :data:`MAX_YAML_BODY` bytes (413), ≤ :data:`MAX_YAML_PARSES` parsed at
    once (429)."""

    def __init__(self, app, max_body: Callable[[], int], key_ok: Callable[[str | None], bool]):
        self.app = app
        self.max_body = max_body  # a callable: the limit is read when the server starts, not at import
        self.key_ok = key_ok  # whether an X-API-Key value is an active key (the routes' own lookup, api.db.key_of)
        self.parsing = threading.BoundedSemaphore(MAX_YAML_PARSES)

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"application/json").lower()
        yaml_body = is_yaml(ctype)
        limit = min(self.max_body(), MAX_YAML_BODY) if yaml_body else self.max_body()
        length = headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _send_json(send, 400, {"detail": "Content-Length is not a whole number of bytes",
                                             "detail_ru": "Content-Length — не целое число байтов"})
                return
            if int(length) > limit:
                await self._too_large(send, limit, yaml_body, int(length))
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, limit, yaml_body, size)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if yaml_body and body.strip():
            key = next((v for k, v in scope.get("headers") or [] if k == b"x-api-key"), None)
            text = key.decode("latin-1") if key is not None else None
            if not await anyio.to_thread.run_sync(self.key_ok, text):
                await _send_json(send, 401, {"detail": NO_KEY, "detail_ru": NO_KEY_RU})
                return
            if not self.parsing.acquire(blocking=False):
                await _send_json(send, 429, {
                    "detail": f"more than {MAX_YAML_PARSES} YAML bodies are being read at once; retry after "
                              f"{YAML_RETRY_AFTER_S} s (or send JSON)",
                    "detail_ru": f"одновременно читается больше {MAX_YAML_PARSES} тел YAML; повторите через "
                                 f"{YAML_RETRY_AFTER_S} с (или отправьте JSON)"},
                    {"Retry-After": str(YAML_RETRY_AFTER_S)})
                return
            try:
                converted, errors = await anyio.to_thread.run_sync(yaml_to_json, body)
            finally:
                self.parsing.release()
            if errors:
                await _send_json(send, 422, {"detail": errors})
                return
            body, ctype = converted, b"application/json"
            scope = {**scope, "headers": [(k, v) for k, v in scope.get("headers") or []
                                          if k not in (b"content-type", b"content-length")]
                     + [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]}
        if body.strip() and b"json" in ctype:
            errors = json_errors(body)
            if errors:
                await _send_json(send, 422, {"detail": errors})
                return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(send, limit: int, yaml_body: bool, size: int) -> None:
        """413: a body over ``limit`` bytes (``size``: announced, or counted so far); a YAML body's names
        :data:`MAX_YAML_BODY` when that is the limit it met."""
        if yaml_body and limit == MAX_YAML_BODY:
            body = {"detail": f"YAML body of {size} bytes or more is over the limit of {MAX_YAML_BODY} bytes "
                              f"(1 MiB, MAX_YAML_BODY: the limit of a scenario file) for a YAML body",
                    "detail_ru": f"тело YAML ({size} байт или больше) превышает предел тела YAML: {MAX_YAML_BODY} "
                                 f"байт (1 МиБ, MAX_YAML_BODY: предел файла сценария)"}
        else:
            body = {"detail": f"request body over {limit} bytes",
                    "detail_ru": f"тело запроса больше {limit} байт"}
        await _send_json(send, 413, body)
