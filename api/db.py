"""Persistence with SQLAlchemy: API keys (hashed), stored scenarios, runs and their results.

A SQLite file by default (``PLANNER_DB``, default ``planner.db`` in the working folder); PostgreSQL (or any
SQLAlchemy URL) when ``DATABASE_URL`` says so. Every write commits at once, so a stored scenario or result
survives a restart.

Ownership: every key belongs to an organisation (``org``, default ``default``); scenarios and runs record the
organisation of the key that made them. A key sees its organisation's scenarios and runs, plus the library
scenarios (``org`` NULL: stored by an admin with ``library``), and an ``admin`` key sees everything. A database
made before organisations existed is upgraded at start-up: its keys, runs and scenarios join ``default`` (so
nothing that was visible before is hidden, and nothing is lost).

Checked rows: every scenario and run this version stores carries ``checked`` = :data:`CHECKED`; a row without it
was stored by an older version (before the validation of issue #19) and is checked once at start-up by
:mod:`api.repair` — repaired (``status`` ``repaired`` on a scenario, a ``problem`` note) or quarantined
(``status`` ``quarantined`` and the reason in ``problem``), so that no read of it fails.

Jobs: a row of ``runs`` is a siting run (``kind`` NULL) or an estimate computed as a job (``kind`` ``loss`` or
``price``, its centres and baseline in ``request``); both share the queue, quotas, leases and recovery.

Admission: ``admission`` holds one row that every transaction admitting a run or job updates first, so the quota
counts and the insert are serialised across every server process on the database (SQLite's write lock, a row
lock on PostgreSQL).

Leases: a running run carries ``lease_owner`` (a token given to its worker when the run is claimed) and
``lease_until`` (seconds since the epoch, UTC) that its worker keeps renewing; ``worker`` names the process
(host, pid and the process's start time, so a reused pid is never mistaken for it). See :mod:`api.jobs`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, create_engine, inspect, or_, select, text, true
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from planner.summary import clean_json  # noqa: F401  (re-exported for the API)


def now() -> datetime:
    """Current UTC time."""
    return datetime.now(UTC)


CHECKED = "19.2"
"""Marks a row stored (or checked at start-up) by a version that validates before storing (issue #19); rows
without it are checked once by :mod:`api.repair`."""


class Base(DeclarativeBase):
    """Declarative base of the planner's tables."""


class ApiKey(Base):
    """An API key: only its SHA-256 hash is stored."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    org: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    revoked: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ScenarioRecord(Base):
    """A validated scenario as submitted (the body, with ``extends`` resolved against stored ids)."""

    __tablename__ = "scenarios"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: uuid.uuid4().hex)
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[dict] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    org: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)  # NULL: a library scenario
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)  # NULL/ok, repaired, quarantined
    problem: Mapped[str | None] = mapped_column(Text, nullable=True)  # what a start-up check repaired or found
    checked: Mapped[str | None] = mapped_column(String(16), nullable=True, default=CHECKED)


class RunRecord(Base):
    """A run: its scenario, state (queued, running, succeeded, failed, cancelled), progress and result."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: uuid.uuid4().hex)
    scenario_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    scenario: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[str] = mapped_column(String(200), default="queued")
    gap: Mapped[float | None] = mapped_column(Float, nullable=True)
    pid: Mapped[int | None] = mapped_column(nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    org: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)  # epoch seconds (UTC)
    worker: Mapped[str | None] = mapped_column(String(300), nullable=True)  # "host pid start-ticks"
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # NULL: a siting run; loss, price: estimate
    request: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # an estimate's centres and baseline
    problem: Mapped[str | None] = mapped_column(Text, nullable=True)  # what a start-up check repaired or found
    checked: Mapped[str | None] = mapped_column(String(16), nullable=True, default=CHECKED)


class Admission(Base):
    """One row (id 1) that each transaction admitting a run updates first: quotas hold across server processes."""

    __tablename__ = "admission"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)  # runs and jobs admitted so far (a counter; the lock matters)


def database_url() -> str:
    """``DATABASE_URL`` if set, else a SQLite file at ``PLANNER_DB`` (default ``planner.db``)."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{os.environ.get('PLANNER_DB', 'planner.db')}"


_ENGINES: dict[str, Engine] = {}


def _private_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable and writable by its owner only (0600) before SQLite opens it
    (SQLite gives its journal files the database file's mode); an existing file keeps its mode."""
    path = url.removeprefix("sqlite:///")
    if not url.startswith("sqlite:///") or path in ("", ":memory:") or os.path.exists(path):
        return
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


DEFAULT_ORG = "default"
"""The organisation of keys created without ``--org``, and of everything stored before organisations existed."""

BACKFILL = {("api_keys", "org"): DEFAULT_ORG, ("scenarios", "org"): DEFAULT_ORG, ("runs", "org"): DEFAULT_ORG}
"""Value given to the rows of an older database when a column is added to it (only then: later NULLs mean
something, e.g. a library scenario)."""


def _add_missing_columns(eng: Engine) -> None:
    """Additive upgrade of a database made by an older version: nullable columns a table lacks are added, and
    filled where :data:`BACKFILL` says (in the same transaction, so a crash leaves either both or neither)."""
    insp = inspect(eng)
    for table in Base.metadata.sorted_tables:
        if not insp.has_table(table.name):
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        for col in table.columns:
            if col.name not in have and col.nullable:
                kind = col.type.compile(dialect=eng.dialect)
                with eng.begin() as conn:
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN {col.name} {kind}'))
                    fill = BACKFILL.get((table.name, col.name))
                    if fill is not None:
                        conn.execute(text(f"UPDATE {table.name} SET {col.name} = :v"), {"v": fill})


def _admission_row(eng: Engine) -> None:
    """Create the admission row if missing (another server creating it at the same moment is fine)."""
    with eng.begin() as conn:
        if conn.execute(text("SELECT count(*) FROM admission WHERE id = 1")).scalar():
            return
    try:
        with eng.begin() as conn:
            conn.execute(text("INSERT INTO admission (id, n) VALUES (1, 0)"))
    except IntegrityError:
        pass


def lock_admission(s: Session) -> None:
    """Take the admission lock as the first statement of ``s``'s transaction: until it commits or rolls back, no
    other transaction (in any process on the database) admits a run, so quota counts read after this stay true
    until the insert commits."""
    s.execute(text("UPDATE admission SET n = n + 1 WHERE id = 1"))


def engine(url: str | None = None) -> Engine:
    """The (cached) engine for a URL, with the tables created (a new SQLite file is created 0600)."""
    url = url or database_url()
    if url not in _ENGINES:
        kw = {"connect_args": {"check_same_thread": False, "timeout": 30}} if url.startswith("sqlite") else {}
        _private_sqlite_file(url)
        eng = create_engine(url, pool_pre_ping=True, **kw)
        Base.metadata.create_all(eng)
        _add_missing_columns(eng)
        _admission_row(eng)
        _ENGINES[url] = eng
    return _ENGINES[url]


def session(url: str | None = None) -> Session:
    """A new session (use as a context manager)."""
    return sessionmaker(engine(url), expire_on_commit=False)()


def hash_key(key: str) -> str:
    """SHA-256 hex digest of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


ROLES = ("viewer", "planner", "admin")
"""Key roles: viewer reads its organisation's objects; planner also writes and runs; admin sees and cancels
everything and may store library scenarios."""


def check_org(org: str) -> str:
    """An organisation name, stripped; ValueError for an empty one or one over 100 characters."""
    name = (org or "").strip()
    if not name or len(name) > 100:
        raise ValueError(f"org: expected a name of 1 to 100 characters, got {org[:40]!r}")
    return name


def create_key(role: str, label: str = "", url: str | None = None, org: str = DEFAULT_ORG) -> tuple[str, str]:
    """Create a key of ``role`` (viewer, planner or admin) for organisation ``org``; returns (key id, the key
    itself — shown once)."""
    if role not in ROLES:
        raise ValueError(f"role: expected viewer, planner or admin, got {role!r}")
    org = check_org(org)
    key = "orc_" + secrets.token_urlsafe(24)
    kid = uuid.uuid4().hex[:12]
    with session(url) as s:
        s.add(ApiKey(id=kid, key_hash=hash_key(key), role=role, org=org, label=label))
        s.commit()
    return kid, key


def list_keys(url: str | None = None) -> list[ApiKey]:
    """All keys (hashes only), newest first."""
    with session(url) as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.created.desc())))


def revoke_key(kid: str, url: str | None = None) -> bool:
    """Revoke a key by id; False if no such active key."""
    with session(url) as s:
        k = s.get(ApiKey, kid)
        if k is None or k.revoked is not None:
            return False
        k.revoked = now()
        s.commit()
        return True


def key_of(key: str | None, url: str | None = None) -> tuple[str, str, str] | None:
    """(key id, role, organisation) of an active key, or None."""
    if not key:
        return None
    with session(url) as s:
        k = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
        return (k.id, k.role, k.org or DEFAULT_ORG) if k is not None and k.revoked is None else None


def role_of(key: str | None, url: str | None = None) -> str | None:
    """The role of an active key, or None."""
    found = key_of(key, url)
    return found[1] if found is not None else None


def scenarios_visible(role: str, org: str):
    """SQL condition: the stored scenarios a key of ``role`` in ``org`` may read (its organisation's and the
    library's; an admin: all)."""
    if role == "admin":
        return true()
    return or_(ScenarioRecord.org == org, ScenarioRecord.org.is_(None))


def runs_visible(role: str, org: str, kind: str | None = "run"):
    """SQL condition: the runs a key of ``role`` in ``org`` may read and cancel (its organisation's; an admin:
    all), of ``kind``: ``run`` siting runs only (default), ``estimate`` estimate jobs only, None both."""
    cond = true() if role == "admin" else RunRecord.org == org
    if kind == "run":
        cond = cond & RunRecord.kind.is_(None)
    elif kind == "estimate":
        cond = cond & RunRecord.kind.is_not(None)
    return cond
