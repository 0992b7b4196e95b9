"""Request-body guard (pure ASGI middleware): the body limit counted as bytes arrive, and strict JSON.

A body is read chunk by chunk and refused with 413 as soon as it passes the limit (``Content-Length`` announced
over the limit is refused before reading; a chunked upload without one is counted as it streams). A JSON body must
be standard JSON: ``NaN``, ``Infinity``, number literals that overflow a double (``1e309``), text that is not valid
Unicode (lone surrogates, in keys or values) and duplicate keys in an object are refused with 422, each error
naming its location (``["body", "solver", "time_limit_s"]``), so no such value reaches a handler or the database.
"""

from __future__ import annotations

import json
import math
from typing import Any

from planner.scenario import bad_values, short

Scope = dict[str, Any]


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
        return [{"type": "json_invalid", "loc": ["body"], "msg": "JSON nested too deeply"}]
    except ValueError:  # not JSON (or an integer literal over Python's digit limit): FastAPI's own 422
        return None
    errors: list[dict] = []
    stack: list[tuple[Any, tuple]] = [(data, ())]
    while stack:
        v, loc = stack.pop()
        if isinstance(v, _NonFinite):
            errors.append({"type": "finite_number", "loc": ["body", *loc],
                           "msg": f"expected a finite number, got {short(v.text, 40)} (not standard JSON)"})
        elif isinstance(v, dict):
            for k in getattr(v, "dups", []):
                errors.append({"type": "duplicate_key", "loc": ["body", *loc, k],
                               "msg": f"key {short(k, 80)} given more than once"})
            stack.extend((x, (*loc, k)) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, (*loc, i)) for i, x in enumerate(v))
    clean = _plain(data)
    errors += [{"type": "unicode", "loc": ["body", *loc], "msg": msg} for loc, msg in bad_values(clean)]
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


class BodyGuard:
    """ASGI middleware: ``max_body()`` bytes at most per request body (413), strict JSON (422)."""

    def __init__(self, app, max_body):
        self.app = app
        self.max_body = max_body  # a callable: the limit is read when the server starts, not at import

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body()
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _send_json(send, 400, {"detail": "Content-Length is not a whole number of bytes"})
                return
            if int(length) > limit:
                await _send_json(send, 413, {"detail": f"request body over {limit} bytes"})
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
                await _send_json(send, 413, {"detail": f"request body over {limit} bytes"})
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        ctype = headers.get(b"content-type", b"application/json").lower()
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
