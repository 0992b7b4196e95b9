"""Start-up check of rows stored by an older version (issue #19, "no stored bad data").

Before the validation of issue #19 a server could store what no read can answer: text that is not valid UTF-8 (or
a JSON string holding a lone surrogate such as ``"\\ud800"``), JSON with ``NaN``, ``Infinity`` or an overflowing
literal (``1e309``), and scenarios that the schema or the dataset no longer accepts. Every read of such a row then
failed with a 500. At start-up, before the server answers, each row not yet marked ``checked`` is read as raw bytes
(never through the ORM, whose decoding is what fails) and:

- **text** (names, bodies, progress, errors): invalid UTF-8 and lone surrogates are replaced by U+FFFD —
  *repaired*, with a note in ``problem``;
- **numbers**: a stored run's result and scenario get ``null`` for a non-finite number (what this version stores
  for one, :func:`planner.summary.clean_json`) — *repaired*; a stored scenario with one is *quarantined* (its body
  is kept with ``null`` there, so it reads as standard JSON, but it cannot be run);
- **validity**: a stored scenario that no longer passes the schema or the dataset check is *quarantined*, the
  reason in ``problem``; a *queued* run whose scenario no longer validates is ``failed`` at once with the reason
  (it would only fail later in its worker). The service's settings (``PLANNER_MAX_TIME_LIMIT_S``) are never a
  reason to quarantine: a setting can change at the next start, so they are checked each time a stored scenario
  is run or estimated (:mod:`api.app`);
- a scenario body that is not JSON at all is kept as text under ``{"unreadable": …}`` and quarantined;
- a run's **result** that is not JSON (or, for a siting run, not an object with ``summary``, ``tables`` and
  ``geojson``; for an estimate job, not an object) is dropped (SQL NULL) and an ended run becomes ``failed`` with
  the reason in ``error``, so its reads answer 409 "no result" rather than failing.

A quarantined scenario is still listed and read (200, ``status: quarantined`` with the reason); running,
estimating or extending it answers 409 / 422 naming the reason. Each row is then marked ``checked``
(:data:`api.db.CHECKED`), so the check runs once per row, not at every start.

Other servers may be live on the same database (a rolling upgrade, several servers): a row is written only in the
columns the check changes, and only if it is unchanged since it was read (:func:`_guard`: its status, lease owner
and worker, and each written column, as read). A row that changed meanwhile is read and checked again (up to
:data:`ATTEMPTS` times); one still changing is left unchecked, for the next start-up.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from sqlalchemy import LargeBinary, Table, Text, cast, null, text, update
from sqlalchemy.engine import Connection

from api.db import CHECKED, RunRecord, ScenarioRecord, engine, now

log = logging.getLogger("planner.api")


class _NonFinite:
    """Stands for a non-finite number (``NaN``, ``Infinity``, ``1e309``) while a stored JSON value is read."""

    def __init__(self, literal: str):
        self.literal = literal


class _Reader:
    """Decodes one stored value, collecting what had to be repaired (``notes``) and non-finite numbers (``bad``)."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.bad: list[str] = []

    def mark(self) -> int:
        """How many repairs were noted so far: a value read between two marks that differ was changed."""
        return len(self.notes) + len(self.bad)

    def text(self, raw: Any, column: str) -> str | None:
        """A text column from its raw value (bytes on SQLite): invalid UTF-8 and lone surrogates → U+FFFD."""
        if raw is None:
            return None
        if isinstance(raw, bytes | bytearray | memoryview):
            data = bytes(raw)
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                value = data.decode("utf-8", "replace")
                self.notes.append(f"invalid UTF-8 in {column} replaced by U+FFFD")
        else:
            value = str(raw)
        return self._surrogates(value, column)

    def _surrogates(self, value: str, where: str) -> str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            self.notes.append(f"lone surrogates in {where} replaced by U+FFFD")
        return value

    def json(self, raw: Any, column: str) -> tuple[Any, bool]:
        """A JSON column from its raw value: (the value with text repaired and non-finite numbers as None, False),
        or (``{"unreadable": text}``, True) when it is not JSON at all."""
        source = self.text(raw, column)
        if source is None:
            return None, False

        def number(literal: str) -> float | _NonFinite:
            value = float(literal)
            return value if math.isfinite(value) else _NonFinite(literal[:20])

        try:
            value = json.loads(source, parse_constant=_NonFinite, parse_float=number)
        except ValueError as exc:
            self.notes.append(f"{column} is not JSON ({exc})")
            return {"unreadable": source}, True
        return self._walk(value, column), False

    def _walk(self, value: Any, where: str) -> Any:
        if isinstance(value, _NonFinite):
            self.bad.append(f"{where} = {value.literal}")
            return None
        if isinstance(value, str):
            return self._surrogates(value, where)
        if isinstance(value, list):
            return [self._walk(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {self._surrogates(k, where): self._walk(v, f"{where}.{k}") for k, v in value.items()}
        return value


def _unchecked(conn: Connection, table: str) -> list[str]:
    """Ids of the rows of ``table`` not yet checked by this version."""
    return [r[0] for r in conn.execute(text(f"SELECT id FROM {table} "  # noqa: S608 (a fixed name)
                                            "WHERE checked IS NULL OR checked <> :v"), {"v": CHECKED})]


def _raw(conn: Connection, table: str, rid: str, columns: tuple[str, ...], blobs: bool):
    """One row of ``table``, each column as raw bytes (SQLite) or text (elsewhere), the id first."""
    cast_ = "CAST({c} AS BLOB)" if blobs else "CAST({c} AS TEXT)"
    cols = ", ".join(cast_.format(c=c) for c in columns)
    return conn.execute(text(f"SELECT id, {cols} FROM {table} WHERE id = :id"),  # noqa: S608 (fixed names)
                        {"id": rid}).first()


def _guard(table: Table, raw: dict[str, Any], columns: set[str] | tuple[str, ...], blobs: bool) -> list:
    """SQL conditions: each of ``columns`` still holds the value :func:`_raw` read (``raw``), compared as it was
    read (bytes on SQLite, text elsewhere; NULL as NULL) — so a write under them reverts nothing another server
    wrote since."""
    out = []
    for c in sorted(columns):
        col, value = table.c[c], raw[c]
        if value is None:
            out.append(col.is_(None))
        elif blobs:
            out.append(cast(col, LargeBinary) == bytes(value))
        else:
            out.append(cast(col, Text) == str(value))
    return out


def _plain(raw: Any) -> str | None:
    """A short code column (``status``, ``kind``) from its raw value, without repair notes."""
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw).decode("utf-8", "replace")
    return None if raw is None else str(raw)


def _validity(body: dict) -> str | None:
    """Why a stored scenario body can no longer be used (schema, dataset), or None. The service's settings
    (``PLANNER_MAX_TIME_LIMIT_S``) are not checked here: they may change at the next start, so they are checked
    when a stored scenario is used."""
    from pydantic import ValidationError

    from planner.data.loader import load_dataset
    from planner.scenario import Scenario, dataset_errors, error_loc

    try:
        sc = Scenario.model_validate(body)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, error_loc(e)))}: {e['msg'].removeprefix('Value error, ')}"
                         for e in exc.errors()[:5])
    except Exception as exc:  # a body a validator itself cannot read is as unusable
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    errors = dataset_errors(sc, load_dataset())
    if errors:
        return "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in errors[:5])
    return None


SCENARIO_READ = ("name", "body")
"""The columns of a stored scenario the check reads (and guards its write on: the whole row it looked at)."""


def _scenario(row) -> dict:
    """What to write to one stored scenario row: the columns the check changes (repaired name or body; status and
    problem when repaired or quarantined) and the ``checked`` mark."""
    r = _Reader()
    values: dict[str, Any] = {}
    name = r.text(row[1], "name")
    if r.mark() or name is None or len(name) > 200:
        values["name"] = (name or "")[:200]
    mark = r.mark()
    body, unreadable = r.json(row[2], "body")
    body_changed = r.mark() != mark
    problems = []
    if r.bad:
        problems.append("non-finite numbers (kept as null): " + ", ".join(r.bad[:10]))
    if unreadable or not isinstance(body, dict):
        problems.append("the body is not a JSON object")
        if not isinstance(body, dict):
            body, body_changed = {"unreadable": body}, True
    elif not r.bad:
        why = _validity(body)
        if why:
            problems.append(f"no longer valid: {why}")
    if body_changed:
        values["body"] = body
    if problems:
        values["status"] = "quarantined"
        values["problem"] = ("stored by an older version; " + "; ".join(problems + r.notes))[:2000]
    elif r.notes:
        values["status"] = "repaired"
        values["problem"] = ("stored by an older version; " + "; ".join(r.notes))[:2000]
    values["checked"] = CHECKED
    return values


RUN_TEXT = ("progress", "error", "worker", "scenario_id")
RUN_JSON = ("scenario", "result", "request")
RUN_READ = (*RUN_TEXT, *RUN_JSON, "status", "lease_owner", "kind")
"""The columns of a run the check reads; its write is guarded on ``status``, ``lease_owner`` and ``worker`` as
read, and on each column it writes (a live worker may write progress, gap, result meanwhile)."""
RUN_GUARD = ("status", "lease_owner", "worker")
ENDED = ("succeeded", "failed", "cancelled")
RESULT_PARTS = ("summary", "tables", "geojson")
"""What a siting run's result holds (each a JSON object); the reads of a result take them."""


def _result_problem(result: Any, unreadable: bool, kind: str | None) -> str | None:
    """Why a stored run's result cannot be read, or None: not JSON, or not the object its reads take."""
    if unreadable:
        return "its result is not JSON"
    if result is None:
        return None
    if not isinstance(result, dict):
        return "its result is not a JSON object"
    if kind is None and not all(isinstance(result.get(k), dict) for k in RESULT_PARTS):
        return "its result lacks " + ", ".join(k for k in RESULT_PARTS if not isinstance(result.get(k), dict))
    return None


def _run(row) -> dict:
    """What to write to one stored run row: the columns the check changes (repaired text and JSON; a result that
    cannot be read dropped and an ended run with it ``failed``; a queued run whose scenario no longer validates
    ``failed``), ``problem`` when anything was repaired, and the ``checked`` mark. Live fields of a queued or
    running run (status, progress, lease, gap) are written only when they must be (text that cannot be read, a
    queued run that cannot start)."""
    raw = dict(zip(RUN_READ, row[1:], strict=True))
    r = _Reader()
    got: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for col in RUN_TEXT:
        mark = r.mark()
        got[col] = r.text(raw[col], col)
        if r.mark() != mark:
            values[col] = got[col]
    if got["progress"] is None or len(got["progress"]) > 200:  # RunState.progress is a string of ≤ 200
        values["progress"] = got["progress"] = (got["progress"] or "")[:200]
    unreadable = set()
    for col in RUN_JSON:
        if raw[col] is None:  # SQL NULL stays NULL (the JSON type would write None as the text 'null')
            got[col] = None
            continue
        mark = r.mark()
        got[col], bad = r.json(raw[col], col)
        if bad:
            unreadable.add(col)
        if r.mark() != mark:
            values[col] = got[col]
    status, kind = _plain(raw["status"]), _plain(raw["kind"])
    notes = list(r.notes)
    if r.bad:
        notes.append("non-finite numbers replaced by null: " + ", ".join(r.bad[:10]))
    why_result = _result_problem(got["result"], "result" in unreadable, kind)
    if why_result:
        values["result"] = null()  # SQL NULL: every read answers "no result" (409)
        if "result" not in unreadable:
            notes.append(f"{why_result}: dropped")
        if status in ENDED:
            why = f"stored by an older version: {why_result}, so it was dropped; submit the scenario again"
            values["status"] = "failed"
            values["error"] = (f"{got['error']}; {why}" if got["error"] else why)[:2000]
    if status == "queued":
        body = got["scenario"]
        if "scenario" in unreadable or not isinstance(body, dict):
            why = "the scenario is not a JSON object"
        elif "request" in unreadable or (kind is not None and not isinstance(got["request"], dict)):
            why = "its estimate request is not a JSON object"
        else:
            why = _validity(body)
        if why:
            values.update(status="failed", progress="not started", finished=now(),
                          error=f"not started: stored by an older version, its scenario is no longer valid: {why}"
                                [:2000])
    if notes:
        values["problem"] = ("stored by an older version; " + "; ".join(notes))[:2000]
    values["checked"] = CHECKED
    return values


ATTEMPTS = 3
"""Times a row that changed between its read and its write is read and checked again before it is left for the
next start-up."""


def _check_row(url: str, table: Table, rid: str, read: tuple[str, ...], guard: tuple[str, ...], repair,
               blobs: bool) -> dict | None:
    """Read one row raw, work out its repair (``repair(row)`` → the values to write) and write them only if the
    row is unchanged since the read (``guard`` columns and every written one); read again when it changed. The
    values written, or None when the row is gone or kept changing (it stays unchecked)."""
    eng = engine(url)
    for _ in range(ATTEMPTS):
        with eng.connect() as conn:
            row = _raw(conn, table.name, rid, read, blobs)
        if row is None:
            return None
        values = repair(row)
        raw = dict(zip(read, row[1:], strict=True))
        watched = set(guard) | (set(values) & set(read))
        with eng.begin() as conn:
            n = conn.execute(update(table).where(table.c.id == rid, *_guard(table, raw, watched, blobs))
                             .values(**values)).rowcount
        if n == 1:
            return values
    log.warning("stored %s row %s kept changing while it was checked; it is checked at the next start-up",
                table.name, rid)
    return None


def check_stored(url: str) -> dict[str, int]:
    """Check every scenario and run not yet marked ``checked``, one row at a time; repair or quarantine them as
    the module says, writing a row only where it is unchanged since it was read. Returns counts: ``scenarios``
    and ``runs`` checked, ``repaired`` (scenarios and runs), ``quarantined`` (scenarios) and ``failed`` (runs
    failed: queued ones that cannot start, ended ones whose result cannot be read)."""
    eng = engine(url)
    blobs = eng.dialect.name == "sqlite"
    counts = {"scenarios": 0, "runs": 0, "repaired": 0, "quarantined": 0, "failed": 0}
    with eng.connect() as conn:
        scenario_ids = _unchecked(conn, "scenarios")
        run_ids = _unchecked(conn, "runs")
    scenarios, runs = ScenarioRecord.__table__, RunRecord.__table__
    for rid in scenario_ids:
        values = _check_row(url, scenarios, rid, SCENARIO_READ, SCENARIO_READ, _scenario, blobs)
        if values is None:
            continue
        counts["scenarios"] += 1
        if values.get("status") in ("repaired", "quarantined"):
            counts[values["status"]] += 1
            log.warning("stored scenario %s %s: %s", rid, values["status"], values["problem"])
    for rid in run_ids:
        values = _check_row(url, runs, rid, RUN_READ, RUN_GUARD, _run, blobs)
        if values is None:
            continue
        fail = values.get("status") == "failed"
        counts["runs"] += 1
        counts["repaired"] += values.get("problem") is not None
        counts["failed"] += fail
        if values.get("problem") or fail:
            log.warning("stored run %s: %s %s", rid, values.get("problem") or "", values.get("error") or "")
    return counts
