"""Ownership (issue #19, item 7) and leases (item 3) in the default test run: keys belong to an organisation;
scenarios and runs are scoped to it (404 for another organisation's, so ids do not leak); admin keys see all;
library scenarios are read by everyone; older databases are upgraded in place. Leases: conditional writes, a
recovery that fails only runs whose worker is gone, workers that die with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.app import create_app
from api.db import RunRecord, create_key, key_of, session
from api.jobs import JobManager, process_start, worker_state, worker_tag, write
from api.limits import Limits

SMALL = {"name": "api_small", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["vegetables"],
         "objective": {"p": 6}, "solver": {"time_limit_s": 60}}


@pytest.fixture(autouse=True)
def _no_library_files(tmp_path, monkeypatch):
    """No library folder: the scenario lists below hold the database's rows only (the library files, listed to
    every organisation, are tested in tests/test_api_contract.py)."""
    monkeypatch.setenv("PLANNER_SCENARIOS", str(tmp_path / "no_library"))


@pytest.fixture
def orgs(tmp_path):
    """A client (runs stay queued) and keys: planner and viewer of organisation A, planner of B, an admin."""
    url = f"sqlite:///{tmp_path / 'own.db'}"
    keys = {name: {"X-API-Key": create_key(role, url=url, org=org)[1]} for name, role, org in (
        ("a", "planner", "Минсельхоз СК"), ("a_viewer", "viewer", "Минсельхоз СК"), ("b", "planner", "Холдинг Юг"),
        ("admin", "admin", "operator"))}
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        yield tc, keys


def test_another_organisations_scenarios_are_invisible(orgs):
    tc, k = orgs
    sid = tc.post("/scenarios", json=SMALL, headers=k["a"]).json()["id"]
    assert [s["id"] for s in tc.get("/scenarios", headers=k["a_viewer"]).json()] == [sid]
    assert tc.get("/scenarios", headers=k["b"]).json() == []
    missing, absent = tc.get(f"/scenarios/{sid}", headers=k["b"]), tc.get("/scenarios/" + "0" * 32, headers=k["b"])
    assert missing.status_code == absent.status_code == 404  # exactly as for an id that does not exist
    assert missing.json()["detail"] == absent.json()["detail"].replace("0" * 32, sid)
    assert tc.post("/runs", json={"scenario_id": sid}, headers=k["b"]).status_code == 404
    child = tc.post("/scenarios", json={"name": "child", "extends": sid}, headers=k["b"])
    assert child.status_code == 422 and child.json()["detail"][0]["loc"] == ["body", "extends"]
    est = tc.post("/estimate/loss-reduction", json={"scenario_id": sid}, headers=k["b"])
    assert est.status_code == 404
    assert tc.get(f"/scenarios/{sid}", headers=k["admin"]).status_code == 200  # an admin sees all
    assert {s["id"] for s in tc.get("/scenarios", headers=k["admin"]).json()} == {sid}


def test_another_organisations_runs_can_be_neither_read_nor_cancelled(orgs):
    tc, k = orgs
    rid = tc.post("/runs", json={"scenario": SMALL}, headers=k["a"]).json()["id"]
    for path in (f"/runs/{rid}", f"/runs/{rid}/result", f"/runs/{rid}/geojson"):
        assert tc.get(path, headers=k["b"]).status_code == 404, path
    assert tc.delete(f"/runs/{rid}", headers=k["b"]).status_code == 404
    assert tc.post("/compare", json={"run_a": rid, "run_b": rid}, headers=k["b"]).status_code == 404
    assert tc.post("/estimate/price-impact", json={"run_id": rid}, headers=k["b"]).status_code == 404
    assert tc.get(f"/runs/{rid}", headers=k["a_viewer"]).json()["status"] == "queued"  # untouched, seen by A
    assert tc.delete(f"/runs/{rid}", headers=k["a_viewer"]).status_code == 403
    assert tc.delete(f"/runs/{rid}", headers=k["admin"]).json()["status"] == "cancelled"
    assert tc.get(f"/runs/{rid}", headers=k["a"]).json()["status"] == "cancelled"


def test_library_scenarios_are_read_by_everyone_and_stored_by_admins_only(orgs):
    tc, k = orgs
    refused = tc.post("/scenarios", params={"library": True}, json=SMALL, headers=k["a"])
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    lib = tc.post("/scenarios", params={"library": True}, json={**SMALL, "name": "library_ncfd"},
                  headers=k["admin"])
    assert lib.status_code == 201 and lib.json()["library"] is True
    own = tc.post("/scenarios", json=SMALL, headers=k["b"]).json()
    assert own["library"] is False
    listed = {s["id"]: s["library"] for s in tc.get("/scenarios", headers=k["a_viewer"]).json()}
    assert listed == {lib.json()["id"]: True}
    assert tc.get(f"/scenarios/{lib.json()['id']}", headers=k["b"]).json()["body"]["name"] == "library_ncfd"
    assert tc.post("/runs", json={"scenario_id": lib.json()["id"]}, headers=k["b"]).status_code == 202
    child = tc.post("/scenarios", json={"name": "mine", "extends": lib.json()["id"]}, headers=k["a"])
    assert child.status_code == 201 and child.json()["library"] is False


def test_an_older_database_joins_the_default_organisation(tmp_path):
    """A database made before organisations existed: its keys, scenarios and runs are upgraded in place, stay
    visible to the keys that saw them, and stay hidden from a new organisation."""
    path = tmp_path / "old.db"
    old = create_engine(f"sqlite:///{path}")
    _, key = create_key("planner", url=f"sqlite:///{tmp_path / 'donor.db'}")
    from api.db import hash_key

    with old.begin() as c:
        c.execute(text("CREATE TABLE api_keys (id VARCHAR(32) PRIMARY KEY, key_hash VARCHAR(64), role VARCHAR(16), "
                       "label VARCHAR(200), created DATETIME, revoked DATETIME)"))
        c.execute(text("CREATE TABLE scenarios (id VARCHAR(36) PRIMARY KEY, name VARCHAR(200), body JSON, "
                       "created DATETIME)"))
        c.execute(text("CREATE TABLE runs (id VARCHAR(36) PRIMARY KEY, scenario_id VARCHAR(36), scenario JSON, "
                       "status VARCHAR(16), progress VARCHAR(200), gap FLOAT, pid INTEGER, key_id VARCHAR(32), "
                       "created DATETIME, started DATETIME, finished DATETIME, result JSON, error TEXT)"))
        c.execute(text("INSERT INTO api_keys VALUES ('k1', :h, 'planner', 'old', '2026-11-01 10:00:00', NULL)"),
                  {"h": hash_key(key)})
        c.execute(text("INSERT INTO scenarios VALUES ('s1', 'old_one', '{\"name\": \"old_one\"}', "
                       "'2026-11-01 10:00:00')"))
        c.execute(text("INSERT INTO runs VALUES ('r1', 's1', :sc, 'queued', 'queued', NULL, NULL, 'k1', "
                       "'2026-11-01 10:00:00', NULL, NULL, NULL, NULL)"),
                  {"sc": '{"name": "old_one", "scope": {"federal_districts": ["NCFD"]}}'})  # still valid
    old.dispose()
    url = f"sqlite:///{path}"
    assert key_of(key, url) == ("k1", "planner", "default")
    _, other = create_key("viewer", url=url, org="new_org")
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        h, o = {"X-API-Key": key}, {"X-API-Key": other}
        assert [s["id"] for s in tc.get("/scenarios", headers=h).json()] == ["s1"]
        assert tc.get("/runs/r1", headers=h).json()["status"] == "queued"
        assert tc.get("/scenarios", headers=o).json() == []
        assert tc.get("/runs/r1", headers=o).status_code == 404


# leases ------------------------------------------------------------------------------------------------------------

def _queued_run(url: str) -> str:
    with session(url) as s:
        run = RunRecord(scenario={"name": "x"}, org="default")
        s.add(run)
        s.commit()
        return run.id


def test_a_failed_run_cannot_be_overwritten_by_its_old_worker(tmp_path):
    url = f"sqlite:///{tmp_path / 'lease.db'}"
    rid = _queued_run(url)
    jm = JobManager(url, Limits(lease_s=5))
    [run] = jm._claim(1)
    owner = run.lease_owner
    assert write(url, rid, owner, progress="solving")
    with session(url) as s:  # the worker stopped renewing: its lease is past
        s.get(RunRecord, rid).lease_until = time.time() - 1
        s.commit()
    assert JobManager(url, Limits(lease_s=5)).recover() == 1
    assert not write(url, rid, owner, status="succeeded", result={"summary": {}})  # the orphan's late result
    with session(url) as s:
        run = s.get(RunRecord, rid)
        assert (run.status, run.result) == ("failed", None) and "lease" in run.error
    assert jm._claim(1) == []  # a failed run is never claimed again


def test_recovery_leaves_a_live_run_of_another_server_alone(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    rid = _queued_run(url)
    first = JobManager(url, Limits(lease_s=30))
    [run] = first._claim(1)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert write(url, rid, run.lease_owner, pid=worker.pid, worker=worker_tag(worker.pid))
        assert worker_state(worker_tag(worker.pid))[0] == "alive"
        assert JobManager(url, Limits(lease_s=30)).recover() == 0  # a second server on the same database
        with session(url) as s:
            assert s.get(RunRecord, rid).status == "running"
    finally:
        worker.kill()
        worker.wait(10)
    with session(url) as s:  # the stored tag names a process that has ended: failed at once, lease or not
        tag = s.get(RunRecord, rid).worker
    assert worker_state(tag) == ("gone", None)
    assert JobManager(url, Limits(lease_s=30)).recover() == 1
    with session(url) as s:
        assert "its process has ended" in s.get(RunRecord, rid).error


def test_a_worker_dies_with_its_parent(tmp_path):
    """A parent starts a child that calls die_with_parent; SIGKILL of the parent ends the child too."""
    out = tmp_path / "child.pid"
    (tmp_path / "child.py").write_text(
        "import os, sys, time\nfrom api.jobs import die_with_parent\ndie_with_parent()\n"
        "open(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(120)\n", encoding="utf-8")
    code = ("import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, {str(tmp_path / 'child.py')!r}, {str(out)!r}])\n"
            "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(out.read_text())
        assert process_start(child) is not None
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
    deadline = time.monotonic() + 20
    while process_start(child) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_start(child) is None


def test_start_up_reaps_a_live_orphan_worker_and_fails_its_run(tmp_path):
    """A worker whose server died (kill -9) but which still lives on this host is killed by the next server's
    start-up recovery, and its run fails saying so — even with its lease still valid."""
    url = f"sqlite:///{tmp_path / 'orphan.db'}"
    rid = _queued_run(url)
    [run] = JobManager(url, Limits(lease_s=300))._claim(1)
    dead_server = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_server.wait(30)  # a server pid that runs no more
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        host, pid, start, _, _ = worker_tag(orphan.pid).split()
        tag = f"{host} {pid} {start} {dead_server.pid} 12345"
        assert write(url, rid, run.lease_owner, pid=orphan.pid, worker=tag, lease_until=time.time() + 300)
        assert worker_state(tag) == ("orphan", orphan.pid)
        jm = JobManager(url, Limits(lease_s=300))
        assert jm.recover() == 1
        assert orphan.wait(10) == -signal.SIGKILL  # the orphan was stopped, not left solving
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait(10)
    with session(url) as s:
        r = s.get(RunRecord, rid)
        assert r.status == "failed" and "orphaned worker was stopped" in r.error
    assert JobManager(url, Limits(lease_s=300)).recover() == 0  # nothing left to recover


def test_a_worker_started_just_before_its_server_dies_does_not_outlive_it(tmp_path):
    """The dispatcher's worker entry point sets the parent-death signal before any heavy import (the audit saw a
    worker live on with PPID 1 while it loaded pandas and the dataset): a 'server' that starts a worker and is
    killed at once leaves no worker behind, and the worker never reaches the run's libraries."""
    from api.worker_boot import boot

    assert boot.__module__ == "api.worker_boot"
    light = subprocess.run([sys.executable, "-c", "import sys, api.worker_boot\n"
                            "heavy = {'api.jobs', 'pandas', 'pyomo', 'highspy', 'sqlalchemy'} & set(sys.modules)\n"
                            "print(sorted(heavy))"], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert light.stdout.strip() == "[]", light.stderr
    out = tmp_path / "worker.pid"
    code = ("import multiprocessing as mp, os, signal, sys\n"
            "from api.worker_boot import boot\n"
            "if __name__ == '__main__':\n"
            "    p = mp.get_context('spawn').Process(target=boot, daemon=True,\n"
            f"        args=('r', 'sqlite:///{tmp_path / 'none.db'}', 'o', os.getpid()))\n"
            "    p.start()\n"
            f"    open({str(out)!r}, 'w').write(str(p.pid))\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    server = subprocess.run([sys.executable, "-c", code], timeout=60,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert server.returncode == -signal.SIGKILL
    worker = int(out.read_text())
    deadline = time.monotonic() + 20
    while process_start(worker) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_start(worker) is None  # gone (or a zombie awaiting its reaper), not solving on
