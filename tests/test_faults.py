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
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import free_port  # tests/servers.py
from sqlalchemy import text

from api.db import Base, RunRecord, create_key, engine, session

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("PLANNER_TEST_POSTGRES_URL")
HOOKS = ROOT / "tests" / "fault_hooks"  # its sitecustomize holds a run of BIG for 90 s before it solves
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
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = {**os.environ, "DATABASE_URL": url, "PLANNER_LEASE_S": str(LEASE_S),
                "PYTHONPATH": f"{HOOKS}{os.pathsep}{ROOT}", **env}
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


# several servers on one database: quotas, cross-host leases, estimate jobs (issue #19, items 1, 3 and 4) -----------

def _post_all(jobs: list[tuple[Server, dict]], body: dict) -> list[int]:
    """POST ``body`` to ``/runs`` once per (server, headers), all at the same moment; the status codes."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(lambda job: job[0].post("/runs", body, job[1]).status_code, jobs))


SLOW_COUNTS = """
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "after_cursor_execute")
def _slow_count(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().lower().startswith("select count") and "from runs" in statement.lower():
        time.sleep(0.3)  # widens the window between a quota count and the insert that follows it
"""
"""A ``sitecustomize`` for the test's servers only: every count of runs takes 0.3 s longer, so two servers that
counted without a shared lock would both admit a run into the last place."""


def test_quotas_hold_across_two_servers(db_url, servers, tmp_path):
    (tmp_path / "slow").mkdir()
    hold = (HOOKS / "sitecustomize.py").read_text(encoding="utf-8")  # one sitecustomize is imported: both hooks
    (tmp_path / "slow" / "sitecustomize.py").write_text(hold + SLOW_COUNTS, encoding="utf-8")
    # a lease longer than the seconds the slowed admissions hold SQLite's write lock (renewals wait for it)
    limits = {"PLANNER_MAX_QUEUE": "4", "PLANNER_MAX_RUNS_PER_KEY": "3", "PLANNER_LEASE_S": "60",
              "PYTHONPATH": f"{tmp_path / 'slow'}{os.pathsep}{ROOT}"}
    id1, k1 = create_key("planner", url=db_url)
    id2, k2 = create_key("planner", url=db_url)
    h1, h2 = {"X-API-Key": k1}, {"X-API-Key": k2}
    a = Server(db_url, **limits)
    servers.append(a)
    b = Server(db_url, **limits)
    servers.append(b)
    sid = a.post("/scenarios", BIG, h1).json()["id"]  # long runs: the places they hold stay taken
    body = {"scenario_id": sid}
    codes = _post_all([(a, h1), (b, h1)] * 4, body)
    assert sorted(codes) == [202] * 3 + [429] * 5, codes  # one key: 3 places, whichever server it asks
    codes = _post_all([(a, h2), (b, h2)] * 3, body)
    assert sorted(codes) == [202] + [429] * 5, codes  # the queue: 4 places on the database, not 4 per server
    with session(db_url) as s:
        runs = s.query(RunRecord).all()
    assert sorted(run.key_id for run in runs) == sorted([id1] * 3 + [id2])  # a 429 stores nothing
    ended = [(run.id, run.status, run.error) for run in runs if run.status not in ("queued", "running")]
    assert not ended, ended  # long runs: none of the admitted ones can have ended yet
    active = runs
    for run in active:  # free the machine (a run may have ended meanwhile: 409)
        assert b.delete(f"/runs/{run.id}", h1 if run.key_id == id1 else h2).status_code in (200, 409)


def test_a_dead_hosts_lease_expires_and_a_live_one_is_never_touched(db_url, servers):
    """Three hosts (``PLANNER_HOST_ID``) on one database: host A is killed without clean-up while its worker
    runs; host C runs a run of its own. Host B, started after the crash, cannot see A's processes: it fails A's
    run only once its lease has expired, to one honest state, and never touches C's live run."""
    _, key = create_key("planner", url=db_url)
    h = {"X-API-Key": key}
    a = Server(db_url, PLANNER_HOST_ID="host-a")
    servers.append(a)
    dead = a.post("/runs", {"scenario": BIG}, h).json()["id"]
    dead_worker = wait_for(lambda: worker_of(db_url, dead), 120, "host A's worker")
    c = Server(db_url, PLANNER_HOST_ID="host-c")
    servers.append(c)
    live = c.post("/runs", {"scenario": BIG}, h).json()["id"]  # host A is busy: host C claims it
    wait_for(lambda: worker_of(db_url, live), 120, "host C's worker")
    assert record(db_url, dead).worker.split()[0] == "host-a"
    assert record(db_url, live).worker.split()[0] == "host-c"

    a.crash()
    wait_for(lambda: pid_gone(dead_worker), 30, "host A's worker to die with its server")
    b = Server(db_url, PLANNER_HOST_ID="host-b")
    servers.append(b)
    run = wait_for(lambda: (r := record(db_url, dead)).status != "running" and r, 3 * LEASE_S + 30,
                   "host A's run to be failed")
    assert run.status == "failed" and run.result is None
    assert f"stopped renewing its lease of {LEASE_S} s" in run.error
    assert run.finished.timestamp() >= run.lease_until  # not before its lease had expired
    state = b.get(f"/runs/{dead}", h).json()
    assert state["status"] == "failed" and state["progress"] == "interrupted"

    # host C's run lives on: its lease keeps being renewed while B and C sweep, nothing fails it
    seen = record(db_url, live).lease_until
    wait_for(lambda: (r := record(db_url, live)).status != "running" or (r.lease_until or 0) > seen + LEASE_S,
             6 * LEASE_S, "two renewals of host C's lease (or its run ending on its own)")
    assert record(db_url, live).status in ("running", "succeeded")
    if record(db_url, live).status == "running":
        live_worker = record(db_url, live).pid
        r = b.delete(f"/runs/{live}", h)  # stopped from another host, unless it ended on its own meanwhile
        assert (r.status_code == 200 and r.json()["status"] == "cancelled") or (
            r.status_code == 409 and record(db_url, live).status == "succeeded"), r.text
        wait_for(lambda: pid_gone(live_worker), 3 * LEASE_S, "host C's worker to exit")
    assert record(db_url, dead).status == "failed"  # one state, never overwritten


def test_kill_9_during_an_estimate_job_then_restart(db_url, servers):
    _, key = create_key("planner", url=db_url)
    h = {"X-API-Key": key}
    a = Server(db_url)
    servers.append(a)
    az = {"name": "az_only", "scope": {"countries": ["AZ"]}, "commodities": ["grain"]}  # a minute of QP
    r = a.post("/estimate/price-impact?wait=false", {"scenario": az}, h)
    assert r.status_code == 202 and r.headers["location"] == f"/estimates/{r.json()['id']}"
    jid = r.json()["id"]
    worker = wait_for(lambda: worker_of(db_url, jid), 120, "the estimate job's worker")
    a.crash()
    wait_for(lambda: not session_processes(a.proc.pid), 30, "every process of the killed server to end")
    assert pid_gone(worker)
    b = Server(db_url)
    servers.append(b)
    state = wait_for(lambda: (j := b.get(f"/estimates/{jid}", h).json())["status"] != "running" and j,
                     3 * LEASE_S + 30, "the interrupted estimate job to be failed")
    assert state["status"] == "failed" and "interrupted" in state["error"] and state["result"] is None
    # the service goes on: a quick estimate job on the restarted server ends with its figures
    small = {"scenario": SMALL, "centres": ["ru_sta_orc"]}
    again = b.post("/estimate/loss-reduction?wait=false", small, h).json()["id"]
    done = wait_for(lambda: (j := b.get(f"/estimates/{again}", h).json())["status"] not in ("queued", "running")
                    and j, 180, "the next estimate job to end")
    assert done["status"] == "succeeded"
    assert done["result"] == b.post("/estimate/loss-reduction", small, h).json()
