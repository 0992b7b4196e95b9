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
  (it would only fail later in its worker);
- a body that is not JSON at all is kept as text under ``{"unreadable": …}`` and quarantined.

A quarantined scenario is still listed and read (200, ``status: quarantined`` with the reason); running,
estimating or extending it answers 409 / 422 naming the reason. Each row is then marked ``checked``
(:data:`api.db.CHECKED`), so the check runs once per row, not at every start.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.engine import Connection

from api.db import CHECKED, RunRecord, ScenarioRecord, engine, now, session
from api.limits import Limits

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
    cast = "CAST({c} AS BLOB)" if blobs else "CAST({c} AS TEXT)"
    cols = ", ".join(cast.format(c=c) for c in columns)
    return conn.execute(text(f"SELECT id, {cols} FROM {table} WHERE id = :id"),  # noqa: S608 (fixed names)
                        {"id": rid}).first()


def _validity(body: dict, limits: Limits) -> str | None:
    """Why a stored scenario body can no longer be used (schema, service limit, dataset), or None."""
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
    if sc.solver.time_limit_s > limits.max_time_limit_s:
        return (f"solver.time_limit_s: at most {limits.max_time_limit_s} s on this service "
                "(PLANNER_MAX_TIME_LIMIT_S)")
    errors = dataset_errors(sc, load_dataset())
    if errors:
        return "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in errors[:5])
    return None


def _scenario(row, limits: Limits) -> dict:
    """The repaired values and status of one stored scenario row."""
    r = _Reader()
    name = r.text(row[1], "name") or ""
    body, unreadable = r.json(row[2], "body")
    problems = []
    if r.bad:
        problems.append("non-finite numbers (kept as null): " + ", ".join(r.bad[:10]))
    if unreadable or not isinstance(body, dict):
        problems.append("the body is not a JSON object")
        body = body if isinstance(body, dict) else {"unreadable": body}
    elif not r.bad:
        why = _validity(body, limits)
        if why:
            problems.append(f"no longer valid: {why}")
    if problems:
        status = "quarantined"
        problem = "stored by an older version; " + "; ".join(problems + r.notes)
    elif r.notes:
        status, problem = "repaired", "stored by an older version; " + "; ".join(r.notes)
    else:
        status, problem = "ok", None
    return {"name": name[:200], "body": body, "status": status, "problem": (problem or "")[:2000] or None,
            "checked": CHECKED}


RUN_TEXT = ("progress", "error", "worker", "scenario_id")
RUN_JSON = ("scenario", "result", "request")


def _run(row, limits: Limits) -> dict:
    """The repaired values of one stored run row (and its failure, when queued with a scenario that no longer
    validates)."""
    r = _Reader()
    values: dict[str, Any] = {}
    for i, col in enumerate(RUN_TEXT):
        values[col] = r.text(row[1 + i], col)
    for i, col in enumerate(RUN_JSON):
        raw = row[1 + len(RUN_TEXT) + i]
        if raw is not None:  # SQL NULL stays NULL (the JSON type would write None as the text 'null')
            values[col], _ = r.json(raw, col)
    status = r.text(row[1 + len(RUN_TEXT) + len(RUN_JSON)], "status")
    notes = list(r.notes)
    if r.bad:
        notes.append("non-finite numbers replaced by null: " + ", ".join(r.bad[:10]))
    values["progress"] = (values["progress"] or "")[:200]
    if status == "queued":
        body = values.get("scenario")
        why = _validity(body, limits) if isinstance(body, dict) else "the scenario is not a JSON object"
        if why:
            values.update(status="failed", progress="not started", finished=now(),
                          error=f"not started: stored by an older version, its scenario is no longer valid: {why}"
                                [:2000])
    values["problem"] = ("stored by an older version; " + "; ".join(notes))[:2000] if notes else None
    values["checked"] = CHECKED
    return values


def check_stored(url: str, limits: Limits) -> dict[str, int]:
    """Check every scenario and run not yet marked ``checked``, one row at a time; repair or quarantine them as
    the module says. Returns counts: ``scenarios`` and ``runs`` checked, ``repaired`` (scenarios and runs),
    ``quarantined`` (scenarios) and ``failed`` (queued runs failed)."""
    eng = engine(url)
    blobs = eng.dialect.name == "sqlite"
    counts = {"scenarios": 0, "runs": 0, "repaired": 0, "quarantined": 0, "failed": 0}
    with eng.connect() as conn:
        scenario_ids = _unchecked(conn, "scenarios")
        run_ids = _unchecked(conn, "runs")
    for rid in scenario_ids:
        with eng.connect() as conn:
            row = _raw(conn, "scenarios", rid, ("name", "body"), blobs)
        if row is None:
            continue
        values = _scenario(row, limits)
        if values["status"] == "ok":  # nothing to change but the mark
            values = {"checked": CHECKED}
        with session(url) as s:
            s.execute(update(ScenarioRecord).where(ScenarioRecord.id == rid).values(**values))
            s.commit()
        counts["scenarios"] += 1
        if values.get("status") in ("repaired", "quarantined"):
            counts[values["status"]] += 1
            log.warning("stored scenario %s %s: %s", rid, values["status"], values["problem"])
    for rid in run_ids:
        with eng.connect() as conn:
            row = _raw(conn, "runs", rid, (*RUN_TEXT, *RUN_JSON, "status"), blobs)
        if row is None:
            continue
        values = _run(row, limits)
        fail = values.get("status") == "failed"
        if values["problem"] is None and not fail:  # nothing to change but the mark
            values = {"checked": CHECKED}
        with session(url) as s:
            # a run failed here only while still queued (another server may have claimed it meanwhile)
            n = s.execute(update(RunRecord).where(RunRecord.id == rid, RunRecord.status == "queued")
                          .values(**values)).rowcount if fail else 0
            if n == 0:
                if fail:
                    fail = False
                    for k in ("status", "progress", "finished", "error"):
                        values.pop(k, None)
                s.execute(update(RunRecord).where(RunRecord.id == rid).values(**values))
            s.commit()
        counts["runs"] += 1
        counts["repaired"] += values.get("problem") is not None
        counts["failed"] += fail
        if values.get("problem") or fail:
            log.warning("stored run %s: %s %s", rid, values.get("problem") or "", values.get("error") or "")
    return counts
