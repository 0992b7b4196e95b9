"""The scenario library: the scenario files shipped in ``scenarios/*.yaml``, offered over HTTP as read-only stored
scenarios (``GET /library``, and under ``/scenarios`` with ``"library": true``, their file name as the id), so a
client may read them, run them by id and ``extends`` them (``extends: ncfd_expansion``).

A file is offered when it loads (``planner.scenario.load_scenario``: size, alias and duplicate-key limits, the
schema) and reads no server file (``data``, ``candidates.file``: those are for the command line); its ``extends``
chain is resolved. Nothing here is stored in the database, so the library follows the files.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

LIBRARY_NAME = re.compile(r"^[a-z0-9_\-]{1,36}$")
"""A library scenario's id: its file name without ``.yaml`` (at most 36 characters, the width of a stored id)."""


def library_dir() -> Path:
    """Folder of library scenarios: ``PLANNER_SCENARIOS``, else ``scenarios/`` beside the package (a checkout)."""
    env = os.environ.get("PLANNER_SCENARIOS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "scenarios"


@lru_cache(maxsize=4)
def _library(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> dict[str, dict]:
    """The library of ``folder`` as its files were when ``stamp`` (see :func:`_stamp`) was taken; cached on it."""
    from planner.scenario import ScenarioError, load_scenario

    out = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        if not LIBRARY_NAME.match(path.stem):
            continue
        try:
            sc = load_scenario(path)
        except (ScenarioError, OSError):
            continue  # a broken (or just deleted) file: `planner validate`'s business; the list shows the valid ones
        body = sc.model_dump(mode="json", exclude={"extends"}, exclude_unset=True)
        if body.get("data") or (body.get("candidates") or {}).get("file"):
            continue  # scenarios reading server files are for the command line
        out[path.stem] = {"name": path.stem, "title_ru": sc.title_ru, "title_en": sc.title_en, "body": body,
                          "modified": datetime.fromtimestamp(path.stat().st_mtime, UTC)}
    return out


def library() -> dict[str, dict]:
    """Library scenarios by file name: name, title (ru, en), the validated body with ``extends`` resolved, and the
    file's modification time (UTC)."""
    folder = library_dir()
    if not folder.is_dir():
        return {}
    return _library(str(folder), _stamp(folder))


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What the cached library is keyed on: each ``*.yaml`` file's name, modification time (ns) and size (bytes),
    sorted — a file added (whatever its time), deleted, renamed or rewritten changes it."""
    out = []
    for path in folder.glob("*.yaml"):
        try:
            st = path.stat()
        except OSError:  # deleted between the listing and the stat
            continue
        out.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(sorted(out))


def library_scenario(name: str) -> dict | None:
    """The library scenario ``name`` (see :func:`library`), or None."""
    if not isinstance(name, str) or not LIBRARY_NAME.match(name):
        return None
    return library().get(name)


def library_record(name: str):
    """The library scenario ``name`` as a read-only, unsaved :class:`api.db.ScenarioRecord` (id and name: the file
    name; ``org`` None, as for every library scenario), or None."""
    from api.db import ScenarioRecord

    found = library_scenario(name)
    if found is None:
        return None
    return ScenarioRecord(id=name, name=name, body=found["body"], created=found["modified"], org=None)


def visible_scenario(url: str, role: str, org: str, sid: str):
    """The stored scenario ``sid`` the key (``role``, ``org``) may read — its organisation's, a library one stored
    by an admin, any for an admin — else the library file of that name, else None (whether it exists elsewhere is
    not told)."""
    from sqlalchemy import select

    from api.db import ScenarioRecord, scenarios_visible, session

    with session(url) as s:
        rec = s.scalar(select(ScenarioRecord).where(ScenarioRecord.id == sid, scenarios_visible(role, org)))
    return rec if rec is not None else library_record(sid)


def is_library_file(rec) -> bool:
    """Whether a scenario record is a library file (made by :func:`library_record`, never saved) rather than a row
    of the database."""
    from sqlalchemy import inspect

    return bool(inspect(rec).transient)
