"""Persistence with SQLAlchemy: API keys (hashed), stored scenarios, runs and their results.

A SQLite file by default (``PLANNER_DB``, default ``planner.db`` in the working folder); PostgreSQL (or any
SQLAlchemy URL) when ``DATABASE_URL`` says so. Every write commits at once, so a stored scenario or result
survives a restart.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Float, String, Text, create_engine, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from planner.summary import clean_json  # noqa: F401  (re-exported for the API)


def now() -> datetime:
    """Current UTC time."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the planner's tables."""


class ApiKey(Base):
    """An API key: only its SHA-256 hash is stored."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
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
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


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


def _add_missing_columns(eng: Engine) -> None:
    """Additive upgrade of a database made by an older version: nullable columns a table lacks are added."""
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


def engine(url: str | None = None) -> Engine:
    """The (cached) engine for a URL, with the tables created (a new SQLite file is created 0600)."""
    url = url or database_url()
    if url not in _ENGINES:
        kw = {"connect_args": {"check_same_thread": False, "timeout": 30}} if url.startswith("sqlite") else {}
        _private_sqlite_file(url)
        eng = create_engine(url, pool_pre_ping=True, **kw)
        Base.metadata.create_all(eng)
        _add_missing_columns(eng)
        _ENGINES[url] = eng
    return _ENGINES[url]


def session(url: str | None = None) -> Session:
    """A new session (use as a context manager)."""
    return sessionmaker(engine(url), expire_on_commit=False)()


def hash_key(key: str) -> str:
    """SHA-256 hex digest of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(role: str, label: str = "", url: str | None = None) -> tuple[str, str]:
    """Create a key of ``role`` (viewer or planner); returns (key id, the key itself — shown once)."""
    if role not in ("viewer", "planner"):
        raise ValueError(f"role: expected viewer or planner, got {role!r}")
    key = "orc_" + secrets.token_urlsafe(24)
    kid = uuid.uuid4().hex[:12]
    with session(url) as s:
        s.add(ApiKey(id=kid, key_hash=hash_key(key), role=role, label=label))
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


def key_of(key: str | None, url: str | None = None) -> tuple[str, str] | None:
    """(key id, role) of an active key, or None."""
    if not key:
        return None
    with session(url) as s:
        k = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
        return (k.id, k.role) if k is not None and k.revoked is None else None


def role_of(key: str | None, url: str | None = None) -> str | None:
    """The role of an active key, or None."""
    found = key_of(key, url)
    return found[1] if found is not None else None
