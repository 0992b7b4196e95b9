"""The fault suite (issue #19, "How to test it"): real `planner serve` processes killed and restarted.

- ``kill -9`` of the server in the middle of a run, then a restart: no process of the dead server is left (its
  session is read from /proc), the run ends in one honest state (failed, saying why), nothing stored is lost,
  and SQLite's ``PRAGMA integrity_check`` answers ``ok``;
- two servers on one database: neither fails the other's live run, and a ``DELETE`` sent to the other server
  stops the worker;
- a worker over a low memory limit ends ``failed`` with the reason while the server goes on;
- cancel of a queued and of a running run.

Each test runs on SQLite and, when ``PLANNER_TEST_POSTGRES_URL`` names a server (``.ci/run`` starts one), on
PostgreSQL. Every wait is on a state, bounded in time; no fixed sleeps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from api.db import Base, RunRecord, create_key, engine, session

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("PLANNER_TEST_POSTGRES_URL")
LEASE_S = 4
SMALL = {"name": "fault_small", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["vegetables"],
         "objective": {"p": 6}, "solver": {"time_limit_s": 60}}
BIG = {"name": "fault_big", "scope": {"federal_districts": ["NCFD", "SFD"]},
       "commodities": ["potatoes", "vegetables", "fruit_berries"], "objective": {"p": 14},
       "solver": {"time_limit_s": 120}}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh database: a SQLite file, or the CI's PostgreSQL with empty tables (skipped without one)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'faults.db'}"
    if not PG_URL:
        pytest.skip("no PostgreSQL: PLANNER_TEST_POSTGRES_URL is not set (.ci/run sets it when it can start one)")
    eng = engine(PG_URL)
    Base.metadata.drop_all(eng)
    Base.metadata.create_all(eng)
    return PG_URL


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy (returned), at most ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def session_processes(sid: int) -> set[int]:
    """Pids of the running (not zombie) processes in session ``sid``, from /proc."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X") and int(fields[3]) == sid:
            out.add(int(entry))
    return out


class Server:
    """A `planner serve` process in its own session (so its workers can be found), on a free port."""

    def __init__(self, url: str, **env: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        full = {**os.environ, "DATABASE_URL": url, "PLANNER_LEASE_S": str(LEASE_S), "PYTHONPATH": str(ROOT), **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "planner.cli", "serve", "--port", str(self.port)],
                                     env=full, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        try:
            wait_for(self._up, 90, "the server to answer /health")
        except AssertionError:
            self.stop()
            raise

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the server exited with {self.proc.returncode}")
        try:
            return httpx.get(f"{self.base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def crash(self) -> None:
        """``kill -9`` of the server process alone (not its session): its workers must go by themselves."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(20)

    def stop(self) -> None:
        """Kill the server's whole session (clean-up)."""
        for pid in session_processes(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(20)

    def get(self, path: str, h: dict) -> httpx.Response:
        return httpx.get(self.base + path, headers=h, timeout=30)

    def post(self, path: str, body: dict, h: dict) -> httpx.Response:
        return httpx.post(self.base + path, json=body, headers=h, timeout=60)

    def delete(self, path: str, h: dict) -> httpx.Response:
        return httpx.delete(self.base + path, headers=h, timeout=60)

    def status(self, rid: str, h: dict) -> str:
        return self.get(f"/runs/{rid}", h).json()["status"]


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers a test starts are stopped (their sessions killed) whatever happens."""
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


def record(url: str, rid: str) -> RunRecord:
    with session(url) as s:
        return s.get(RunRecord, rid)


def worker_of(url: str, rid: str) -> int | None:
    """The pid of a run's worker once the server has stored it."""
    run = record(url, rid)
    return run.pid if run.status == "running" and run.worker else None


def pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_kill_9_mid_run_then_restart(db_url, servers):
    _, key = create_key("planner", url=db_url)
    h = {"X-API-Key": key}
    a = Server(db_url)
    servers.append(a)
    sid = a.post("/scenarios", SMALL, h).json()["id"]
    done = a.post("/runs", {"scenario_id": sid}, h).json()["id"]
    wait_for(lambda: a.status(done, h) not in ("queued", "running"), 240, "the small run to end")
    result = a.get(f"/runs/{done}/result", h).json()
    assert result["summary"]["status"] == "optimal"
    busy = a.post("/runs", {"scenario": BIG}, h).json()["id"]
    worker = wait_for(lambda: worker_of(db_url, busy), 120, "the big run's worker")
    assert worker in session_processes(a.proc.pid)

    a.crash()
    wait_for(lambda: not session_processes(a.proc.pid), 30, "every process of the killed server to end")
    assert pid_gone(worker)

    b = Server(db_url)
    servers.append(b)
    state = wait_for(lambda: (r := b.get(f"/runs/{busy}", h).json())["status"] != "running" and r, 3 * LEASE_S + 30,
                     "the interrupted run to be failed")
    assert state["status"] == "failed" and "interrupted" in state["error"] and "restart" in state["error"]
    assert b.get(f"/runs/{busy}/result", h).status_code == 409  # no result appears from nowhere
    assert b.get(f"/runs/{done}/result", h).json() == result  # nothing stored is lost
    assert b.get(f"/scenarios/{sid}", h).json()["body"]["name"] == "fault_small"
    if db_url.startswith("sqlite"):
        with engine(db_url).connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def test_two_servers_on_one_database(db_url, servers):
    _, key = create_key("planner", url=db_url)
    h = {"X-API-Key": key}
    a = Server(db_url)
    servers.append(a)
    busy = a.post("/runs", {"scenario": BIG}, h).json()["id"]
    worker = wait_for(lambda: worker_of(db_url, busy), 120, "the run's worker on the first server")
    first_lease = record(db_url, busy).lease_until

    b = Server(db_url)  # it sweeps at start-up and every LEASE_S / 5 seconds
    servers.append(b)
    # the worker renews its lease while the second server sweeps: the live run is never failed
    wait_for(lambda: (record(db_url, busy).lease_until or 0) > first_lease + LEASE_S, 6 * LEASE_S,
             "two renewals of the run's lease")
    assert b.status(busy, h) in ("running", "succeeded")
    assert not pid_gone(worker) or record(db_url, busy).status == "succeeded"

    if record(db_url, busy).status == "running":  # a cancel through the other server stops the worker
        assert b.delete(f"/runs/{busy}", h).json()["status"] == "cancelled"
        wait_for(lambda: pid_gone(worker), 3 * LEASE_S, "the worker to exit after the cancel")
        assert a.status(busy, h) == "cancelled"
    # a run queued with both servers up is run once, by one of them
    rid = b.post("/runs", {"scenario": SMALL}, h).json()["id"]
    wait_for(lambda: a.status(rid, h) not in ("queued", "running"), 240, "the small run to end")
    state = a.get(f"/runs/{rid}", h).json()
    assert state["status"] == "succeeded", state
    assert a.get(f"/runs/{rid}/result", h).status_code == 200


def test_a_worker_over_a_low_memory_limit(db_url, servers):
    _, key = create_key("planner", url=db_url)
    h = {"X-API-Key": key}
    a = Server(db_url, PLANNER_WORKER_MEMORY_MB="200")
    servers.append(a)
    rid = a.post("/runs", {"scenario": SMALL}, h).json()["id"]
    state = wait_for(lambda: (r := a.get(f"/runs/{rid}", h).json())["status"] not in ("queued", "running") and r,
                     180, "the run to end")
    assert state["status"] == "failed" and "PLANNER_WORKER_MEMORY_MB" in state["error"]
    assert "200 MiB" in state["error"]
    assert a.get("/health", {}).json()["status"] == "ok"  # the server lives on
    wait_for(lambda: session_processes(a.proc.pid) <= {a.proc.pid} | _helpers(a.proc.pid), 30,
             "the worker to be gone")


def _helpers(server: int) -> set[int]:
    """multiprocessing's helper processes (resource tracker, fork server) in the server's session."""
    out = set()
    for pid in session_processes(server):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"resource_tracker" in cmd or b"forkserver" in cmd:
            out.add(pid)
    return out


def test_cancel_a_queued_and_a_running_run(db_url, servers):
    _, key = create_key("planner", url=db_url)
    h = {"X-API-Key": key}
    a = Server(db_url, PLANNER_MAX_RUNS="1")
    servers.append(a)
    busy = a.post("/runs", {"scenario": BIG}, h).json()["id"]
    queued = a.post("/runs", {"scenario": SMALL}, h).json()["id"]
    worker = wait_for(lambda: worker_of(db_url, busy), 120, "the big run's worker")
    assert a.status(queued, h) == "queued"

    cancelled = a.delete(f"/runs/{queued}", h)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    running = a.delete(f"/runs/{busy}", h)
    assert running.status_code == 200 and running.json()["status"] == "cancelled"
    wait_for(lambda: pid_gone(worker), 30, "the cancelled run's worker to exit")
    # the queue is free again: a new run starts and ends, the cancelled ones never do
    after = a.post("/runs", {"scenario": SMALL}, h).json()["id"]
    wait_for(lambda: a.status(after, h) not in ("queued", "running"), 240, "the next run to end")
    for rid in (busy, queued):
        run = record(db_url, rid)
        assert (run.status, run.result) == ("cancelled", None)
        assert a.delete(f"/runs/{rid}", h).status_code == 409
    assert record(db_url, queued).pid is None  # never started
