"""Estimates as jobs and rows stored by older versions (issue #19, items 1 and 2).

- ``POST /estimate/*?wait=false`` answers 202 with the job's id and Location; the job goes through the run queue
  and its quotas, ends ``succeeded`` with the same figures as the synchronous answer, can be cancelled (its process
  stops), and one whose worker is gone at a restart ends ``failed`` with the reason.
- A database file holding rows as an older version wrote them (text that is not UTF-8, a lone surrogate, NaN and
  Infinity in JSON, scenarios the dataset no longer accepts) is checked at start-up: ``GET /scenarios``,
  ``GET /scenarios/<id>``, ``GET /runs`` and ``GET /runs/<id>`` answer 200 with the repair or quarantine named,
  and using a quarantined scenario is a clean 409 / 422.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from test_faults import wait_for

from api.app import create_app
from api.db import CHECKED, RunRecord, create_key, hash_key, now, session
from api.jobs import host_id, process_start, worker_tag

SMALL = {"name": "api_small", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["vegetables"],
         "objective": {"p": 6}, "solver": {"time_limit_s": 60}}
AZ = {"name": "az_only", "scope": {"countries": ["AZ"]}, "commodities": ["grain"]}  # a price QP of a minute


@pytest.fixture
def clear_limits(monkeypatch):
    for var in ("PLANNER_MAX_RUNS", "PLANNER_MAX_QUEUE", "PLANNER_MAX_RUNS_PER_KEY", "PLANNER_MAX_ESTIMATES",
                "PLANNER_WORKER_MEMORY_MB", "PLANNER_ESTIMATE_DEADLINE_S", "PLANNER_HOST_ID"):
        monkeypatch.delenv(var, raising=False)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (not a zombie)."""
    return process_start(pid) is not None


def ended(tc: TestClient, location: str, h: dict):
    state = tc.get(location, headers=h).json()
    return state if state["status"] not in ("queued", "running") else None


# item 1: estimates as jobs ------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("path", ["/estimate/loss-reduction", "/estimate/price-impact"])
def test_an_estimate_job_ends_with_the_figures_of_the_synchronous_answer(tmp_path, clear_limits, path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    _, key = create_key("planner", url=url)
    h = {"X-API-Key": key}
    body = {"scenario": SMALL, "centres": ["ru_sta_orc", "ru_kb_orc"]}
    with TestClient(create_app(url, start_jobs=True), raise_server_exceptions=False) as tc:
        now_ = tc.post(path, json=body, headers=h)
        assert now_.status_code == 200, now_.text
        queued = tc.post(path + "?wait=false", json=body, headers=h)
        assert queued.status_code == 202, queued.text
        job = queued.json()
        assert queued.headers["location"] == f"/estimates/{job['id']}"
        assert job["status"] in ("queued", "running") and job["result"] is None
        assert job["kind"] == path.rsplit("/", 1)[1]
        state = wait_for(lambda: ended(tc, queued.headers["location"], h), 180, "the estimate job to end")
        assert state["status"] == "succeeded", state
        assert state["result"] == now_.json()  # the same figures, the same JSON
        # a job is not a run: the run list and the run endpoints do not show it
        assert tc.get("/runs", headers=h).json()["total"] == 0
        assert tc.get(f"/runs/{job['id']}", headers=h).status_code == 404


@pytest.mark.slow
def test_an_estimate_job_is_cancelled_and_its_process_stops(tmp_path, clear_limits):
    url = f"sqlite:///{tmp_path / 'cancel.db'}"
    _, key = create_key("planner", url=url)
    _, viewer = create_key("viewer", url=url)
    h, v = {"X-API-Key": key}, {"X-API-Key": viewer}
    with TestClient(create_app(url, start_jobs=True), raise_server_exceptions=False) as tc:
        r = tc.post("/estimate/price-impact?wait=false", json={"scenario": AZ}, headers=h)
        assert r.status_code == 202, r.text
        jid = r.json()["id"]

        def worker() -> int | None:
            with session(url) as s:
                run = s.get(RunRecord, jid)
                return run.pid if run.status == "running" and run.worker else None

        pid = wait_for(worker, 120, "the job's worker")
        assert tc.delete(f"/estimates/{jid}", headers=v).status_code == 403  # a viewer key may not cancel
        gone = tc.delete(f"/estimates/{jid}", headers=h)
        assert gone.status_code == 200 and gone.json()["status"] == "cancelled"
        wait_for(lambda: not pid_alive(pid), 15, "the job's worker to exit")
        assert tc.delete(f"/estimates/{jid}", headers=h).status_code == 409
        state = tc.get(f"/estimates/{jid}", headers=v).json()
        assert (state["status"], state["result"]) == ("cancelled", None)


def test_estimate_jobs_share_the_run_quotas(tmp_path, clear_limits, monkeypatch):
    monkeypatch.setenv("PLANNER_MAX_RUNS_PER_KEY", "2")
    monkeypatch.setenv("PLANNER_RETRY_AFTER_S", "11")
    url = f"sqlite:///{tmp_path / 'quota.db'}"
    _, key = create_key("planner", url=url)
    _, other = create_key("planner", url=url, org="elsewhere")
    h = {"X-API-Key": key}
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        assert tc.post("/estimate/loss-reduction?wait=false", json={"scenario": SMALL}, headers=h).status_code == 202
        assert tc.post("/runs", json={"scenario": SMALL}, headers=h).status_code == 202
        for path, body in (("/estimate/price-impact?wait=false", {"scenario": SMALL}),
                           ("/runs", {"scenario": SMALL})):
            over = tc.post(path, json=body, headers=h)
            assert over.status_code == 429 and over.headers["retry-after"] == "11", path
            assert "PLANNER_MAX_RUNS_PER_KEY" in over.json()["detail"]
        # bad input is refused before anything is queued, and another organisation does not see the job
        bad = tc.post("/estimate/loss-reduction?wait=false", json={"scenario": {**SMALL, "commodities": ["x"]}},
                      headers={"X-API-Key": other})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:3] == ["body", "scenario", "commodities"]
        with session(url) as s:
            jid = s.query(RunRecord.id).filter(RunRecord.kind == "loss").scalar()
        assert tc.get(f"/estimates/{jid}", headers={"X-API-Key": other}).status_code == 404
        assert tc.get(f"/estimates/{jid}", headers=h).json()["status"] == "queued"


def test_an_estimate_job_whose_worker_is_gone_fails_at_the_restart(tmp_path, clear_limits):
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    _, key = create_key("planner", url=url)
    h = {"X-API-Key": key}
    sleeper = subprocess.Popen(["sleep", "60"])
    tag = worker_tag(sleeper.pid)  # a worker on this host that then ends without a word
    sleeper.kill()
    sleeper.wait()
    with session(url) as s:
        from api.db import key_of

        kid, _, org = key_of(key, url)
        job = RunRecord(scenario=SMALL, kind="price", request={"centres": None, "baseline": "traditional"},
                        key_id=kid, org=org, status="running", progress="estimating", started=now(),
                        lease_owner="gone", lease_until=time.time() + 3600, worker=tag, pid=sleeper.pid)
        s.add(job)
        s.commit()
        jid = job.id
    assert tag.split()[0] == host_id()
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        state = tc.get(f"/estimates/{jid}", headers=h).json()
    assert state["status"] == "failed" and state["error"].startswith("interrupted: its worker is gone")
    assert state["result"] is None


# item 2: rows an older version stored -----------------------------------------------------------------------------

OLD_SCHEMA = (
    "CREATE TABLE api_keys (id VARCHAR(32) PRIMARY KEY, key_hash VARCHAR(64), role VARCHAR(16), label VARCHAR(200), "
    "created DATETIME, revoked DATETIME)",
    "CREATE TABLE scenarios (id VARCHAR(36) PRIMARY KEY, name VARCHAR(200), body JSON, created DATETIME)",
    "CREATE TABLE runs (id VARCHAR(36) PRIMARY KEY, scenario_id VARCHAR(36), scenario JSON, status VARCHAR(16), "
    "progress VARCHAR(200), gap FLOAT, pid INTEGER, key_id VARCHAR(32), created DATETIME, started DATETIME, "
    "finished DATETIME, result JSON, error TEXT)",
)
"""The tables as the first API version made them (no organisations, leases or checks)."""


def _old_database(tmp_path, key: str) -> str:
    """A SQLite file written as an older version would have: raw text and JSON, nothing validated."""
    path = tmp_path / "old.db"
    eng = create_engine(f"sqlite:///{path}")
    good = json.dumps(SMALL)
    surrogate = json.dumps({**SMALL, "title_ru": "\ud800"})  # json.dumps escapes it: "\\ud800"
    infinite = good.replace('"time_limit_s": 60', '"time_limit_s": Infinity').replace('"p": 6', '"p": NaN')
    unknown = json.dumps({**SMALL, "scope": {"regions": ["XX-NOPE"]}})
    result = {"summary": {"status": "optimal", "objective": float("nan"), "centres": [{"id": "ru_sta_orc"}]},
              "tables": {"sites": [{"id": "ru_sta_orc", "utilisation": float("inf")}]}, "geojson": {}}
    with eng.begin() as c:
        for stmt in OLD_SCHEMA:
            c.execute(text(stmt))
        c.execute(text("INSERT INTO api_keys VALUES ('k1', :h, 'planner', 'old', '2026-11-01 10:00:00', NULL)"),
                  {"h": hash_key(key)})
        rows = [("s_good", "good", good), ("s_surrogate", "surrogate", surrogate), ("s_infinite", "inf", infinite),
                ("s_unknown", "unknown", unknown), ("s_broken", "broken", '{"name": "broken", "scope": ')]
        for i, (sid, name, body) in enumerate(rows):
            c.execute(text("INSERT INTO scenarios VALUES (:id, :n, :b, :t)"),
                      {"id": sid, "n": name, "b": body, "t": f"2026-11-01 10:00:0{i}"})
        # a name and a body holding bytes that are not UTF-8 (what SQLite stores as given)
        c.execute(text("INSERT INTO scenarios VALUES ('s_bytes', CAST(X'6F6C64FF6E616D65' AS TEXT), "
                       "CAST(:b AS TEXT), '2026-11-01 10:00:09')"),
                  {"b": json.dumps({**SMALL, "title_ru": "овощи \udcff"}, ensure_ascii=False)
                   .encode("utf-8", "surrogateescape")})
        runs = [("r_done", "s_good", good, "succeeded", json.dumps(result), None),
                ("r_queued_bad", "s_unknown", unknown, "queued", None, None),
                ("r_queued_ok", "s_good", good, "queued", None, None),
                # results no read can take: not JSON at all, and JSON without the summary, tables and map
                ("r_garbled", "s_good", good, "succeeded", '{"summary": {"status": "optimal", ', None),
                ("r_shapeless", "s_good", good, "succeeded", "[1, 2]", None)]
        for i, (rid, sid, sc, status, res, err) in enumerate(runs):
            c.execute(text("INSERT INTO runs VALUES (:id, :sid, :sc, :st, 'done', NULL, NULL, 'k1', :t, NULL, "
                           "NULL, :res, :err)"),
                      {"id": rid, "sid": sid, "sc": sc, "st": status, "res": res, "err": err,
                       "t": f"2026-11-01 11:00:0{i}"})
        c.execute(text("INSERT INTO runs VALUES ('r_failed', 's_good', :sc, 'failed', CAST(X'6661696CFF' AS TEXT), "
                       "NULL, NULL, 'k1', '2026-11-01 11:00:09', NULL, NULL, NULL, CAST(X'626164FE' AS TEXT))"),
                  {"sc": good})
    eng.dispose()
    return f"sqlite:///{path}"


def test_rows_of_an_older_version_are_repaired_or_quarantined_and_read_cleanly(tmp_path, clear_limits):
    _, key = create_key("planner", url=f"sqlite:///{tmp_path / 'donor.db'}")
    url = _old_database(tmp_path, key)
    h = {"X-API-Key": key}
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        listing = tc.get("/scenarios", headers=h)
        assert listing.status_code == 200, listing.text
        status = {s["id"]: s["status"] for s in listing.json() if not s["read_only"]}
        assert status == {"s_good": "ok", "s_surrogate": "repaired", "s_bytes": "repaired",
                          "s_infinite": "quarantined", "s_unknown": "quarantined", "s_broken": "quarantined"}
        one = {sid: tc.get(f"/scenarios/{sid}", headers=h) for sid in status}
        assert {sid: r.status_code for sid, r in one.items()} == dict.fromkeys(status, 200)
        assert one["s_good"].json()["problem"] is None
        assert one["s_surrogate"].json()["body"]["title_ru"] == "\ufffd"
        assert "lone surrogates" in one["s_surrogate"].json()["problem"]
        assert one["s_bytes"].json()["name"] == "old\ufffdname"
        assert one["s_bytes"].json()["body"]["title_ru"] == "овощи \ufffd"
        inf = one["s_infinite"].json()
        assert inf["body"]["solver"]["time_limit_s"] is None and inf["body"]["objective"]["p"] is None
        assert "body.solver.time_limit_s = Infinity" in inf["problem"]
        assert "body.objective.p = NaN" in inf["problem"]
        assert "XX-NOPE" in one["s_unknown"].json()["problem"]
        assert "not JSON" in one["s_broken"].json()["problem"]
        # a quarantined scenario is not run, estimated or extended; a repaired one is
        for sid in ("s_infinite", "s_unknown", "s_broken"):
            r = tc.post("/runs", json={"scenario_id": sid}, headers=h)
            assert r.status_code == 409 and "quarantined" in r.json()["detail"], r.text
        assert tc.post("/estimate/loss-reduction", json={"scenario_id": "s_unknown"}, headers=h).status_code == 409
        ext = tc.post("/scenarios", json={"name": "child", "extends": "s_infinite"}, headers=h)
        assert ext.status_code == 422 and ext.json()["detail"][0]["loc"] == ["body", "extends"]
        assert tc.post("/runs", json={"scenario_id": "s_bytes"}, headers=h).status_code == 202

        runs = tc.get("/runs", headers=h)
        assert runs.status_code == 200, runs.text
        by_id = {r["id"]: r for r in runs.json()["items"]}
        assert {"r_done", "r_queued_bad", "r_queued_ok", "r_failed"} <= set(by_id)
        states = {rid: tc.get(f"/runs/{rid}", headers=h) for rid in by_id}
        assert all(r.status_code == 200 for r in states.values())
        assert states["r_queued_ok"].json()["status"] == "queued"
        bad = states["r_queued_bad"].json()
        assert bad["status"] == "failed" and "no longer valid" in bad["error"] and "XX-NOPE" in bad["error"]
        failed = states["r_failed"].json()
        assert (failed["progress"], failed["error"]) == ("fail\ufffd", "bad\ufffd")
        assert "invalid UTF-8" in failed["problem"]
        done = tc.get("/runs/r_done/result", headers=h)
        assert done.status_code == 200, done.text
        assert done.json()["summary"]["objective"] is None
        assert done.json()["tables"]["sites"][0]["utilisation"] is None
        assert "non-finite" in states["r_done"].json()["problem"]
        # a result no read can take is dropped and its run failed with the reason: every read of it is a clean
        # answer (a 409 "no result"), never a 500
        for rid, why in (("r_garbled", "not JSON"), ("r_shapeless", "not a JSON object")):
            state = states[rid].json()
            assert state["status"] == "failed" and why in state["error"], state
            assert "submit the scenario again" in state["error"]
            reads = {"result": tc.get(f"/runs/{rid}/result", headers=h),
                     "geojson": tc.get(f"/runs/{rid}/geojson", headers=h),
                     "files": tc.get(f"/runs/{rid}/files", headers=h),
                     "estimate": tc.post("/estimate/loss-reduction", json={"run_id": rid}, headers=h),
                     "compare": tc.post("/compare", json={"run_a": "r_done", "run_b": rid}, headers=h)}
            assert {k: r.status_code for k, r in reads.items()} == dict.fromkeys(reads, 409), \
                {k: r.text for k, r in reads.items()}
        assert tc.post("/compare", json={"run_a": "r_done", "run_b": "r_done"}, headers=h).status_code == 200
    # every row is marked checked: the next start-up does not check them again
    with create_engine(url).connect() as c:
        assert c.execute(text("SELECT count(*) FROM scenarios WHERE checked IS NOT :v"), {"v": CHECKED}).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM runs WHERE checked IS NOT :v"), {"v": CHECKED}).scalar() == 0
        assert c.execute(text("SELECT json_extract(result, '$.summary.objective') IS NULL FROM runs "
                              "WHERE id = 'r_done'")).scalar() == 1  # standard JSON now
    from api.repair import check_stored

    assert check_stored(url)["scenarios"] == 0
    with create_engine(url).connect() as c:
        assert c.execute(text("SELECT count(*) FROM runs WHERE id IN ('r_garbled', 'r_shapeless') "
                              "AND result IS NULL")).scalar() == 2  # SQL NULL, not the JSON text 'null'


URLS = ["sqlite"] + (["postgresql"] if os.environ.get("PLANNER_TEST_POSTGRES_URL") else [])


@pytest.mark.parametrize("db", URLS)
def test_an_unchecked_row_that_no_longer_validates_is_quarantined_on_either_database(tmp_path, clear_limits, db,
                                                                                     monkeypatch):
    """PostgreSQL refuses bad UTF-8 and NaN in json itself; a scenario that no longer validates can be stored
    there as well, and the start-up check (reading rows as text there) quarantines it. One over the service's
    solver time limit (a setting, PLANNER_MAX_TIME_LIMIT_S) is not quarantined: using it is a 422 naming the
    setting while the setting is lower, and accepted once it is raised."""
    from api.db import Base, engine
    from api.repair import check_stored

    url = f"sqlite:///{tmp_path / 'either.db'}" if db == "sqlite" else os.environ["PLANNER_TEST_POSTGRES_URL"]
    if db == "postgresql":
        Base.metadata.drop_all(engine(url))
        Base.metadata.create_all(engine(url))
    _, key = create_key("planner", url=url)
    with engine(url).begin() as c:  # as an older version wrote them: no check mark
        c.execute(text("INSERT INTO scenarios (id, name, body, created, org) VALUES "
                       "('old_bad', 'old_bad', :b, '2026-11-01 10:00:00', 'default')"),
                  {"b": json.dumps({**SMALL, "scope": {"countries": ["ZZ"]}})})
        c.execute(text("INSERT INTO scenarios (id, name, body, created, org) VALUES "
                       "('old_ok', 'old_ok', :b, '2026-11-01 10:00:01', 'default')"), {"b": json.dumps(SMALL)})
        c.execute(text("INSERT INTO scenarios (id, name, body, created, org) VALUES "
                       "('old_long', 'old_long', :b, '2026-11-01 10:00:02', 'default')"),
                  {"b": json.dumps({**SMALL, "solver": {"time_limit_s": 600}})})
    monkeypatch.setenv("PLANNER_MAX_TIME_LIMIT_S", "300")
    assert check_stored(url) == {"scenarios": 3, "runs": 0, "repaired": 0, "quarantined": 1, "failed": 0}
    h = {"X-API-Key": key}
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        got = {s["id"]: s for s in tc.get("/scenarios", headers=h).json()}
        assert got["old_bad"]["status"] == "quarantined" and "ZZ" in got["old_bad"]["problem"]
        assert got["old_ok"]["status"] == "ok"
        assert got["old_long"]["status"] == "ok" and got["old_long"]["problem"] is None
        assert tc.post("/runs", json={"scenario_id": "old_bad"}, headers=h).status_code == 409
        for path in ("/runs", "/estimate/loss-reduction"):
            r = tc.post(path, json={"scenario_id": "old_long"}, headers=h)
            assert r.status_code == 422, r.text
            (err,) = r.json()["detail"]
            assert err["loc"] == ["body", "scenario_id"] and "PLANNER_MAX_TIME_LIMIT_S" in err["msg"]
            assert "600" in err["msg"] and "300" in err["msg"] and "PLANNER_MAX_TIME_LIMIT_S" in err["msg_ru"]
    monkeypatch.delenv("PLANNER_MAX_TIME_LIMIT_S")
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        assert tc.post("/runs", json={"scenario_id": "old_long"}, headers=h).status_code == 202


def _unchecked_runs(url: str, rows: list[tuple[str, str, str, str | None, str | None, bytes]]) -> None:
    """Runs as an older version left them (no check mark): (id, status, scenario JSON, lease owner, worker,
    progress as raw bytes)."""
    from api.db import engine

    with engine(url).begin() as c:
        for rid, status, scenario, owner, worker, progress in rows:
            c.execute(text("INSERT INTO runs (id, scenario, status, progress, lease_owner, worker, created, org) "
                           "VALUES (:id, :sc, :st, CAST(:p AS TEXT), :o, :w, '2026-11-01 10:00:00', 'default')"),
                      {"id": rid, "sc": scenario, "st": status, "p": progress, "o": owner, "w": worker})


def test_the_start_up_check_never_reverts_what_a_live_worker_wrote_since_its_read(tmp_path, clear_limits,
                                                                                  monkeypatch):
    """Another server's worker writes a run between the check's read and its write (a rolling upgrade, several
    servers on one database): the check writes nothing over it, reads the row again and checks what is there;
    a row that keeps changing is left unchecked for the next start-up, as the worker wrote it."""
    import api.repair
    from api.db import engine
    from api.repair import ATTEMPTS, check_stored

    url = f"sqlite:///{tmp_path / 'live.db'}"
    unknown = json.dumps({**SMALL, "scope": {"regions": ["XX-NOPE"]}})
    # r_live: running, its progress not UTF-8; r_claimed: queued with a scenario that no longer validates;
    # r_busy: running, its worker writing on every read
    _unchecked_runs(url, [("r_live", "running", json.dumps(SMALL), "tok", "w1", b"solving \xff"),
                          ("r_claimed", "queued", unknown, None, None, b"queued"),
                          ("r_busy", "running", json.dumps(SMALL), "tok3", "w3", b"solving \xfe")])
    result = {"summary": {"status": "optimal"}, "tables": {}, "geojson": {}}
    live = {  # what the other server writes right after the check has read the row
        "r_live": ("UPDATE runs SET status = 'succeeded', progress = 'done', result = :res, lease_owner = NULL "
                   "WHERE id = 'r_live'", {"res": json.dumps(result)}),
        "r_claimed": ("UPDATE runs SET status = 'running', progress = 'starting', lease_owner = 'tok2', "
                      "worker = 'w2' WHERE id = 'r_claimed'", {}),
    }
    reads: dict[str, int] = {}
    raw = api.repair._raw

    def read_then_live_write(conn, table, rid, columns, blobs):
        row = raw(conn, table, rid, columns, blobs)
        reads[rid] = reads.get(rid, 0) + 1
        if rid in live and reads[rid] == 1:
            conn.execute(text(live[rid][0]), live[rid][1])
            conn.commit()
        if rid == "r_busy":  # a new progress line, again not UTF-8, at every read
            conn.execute(text("UPDATE runs SET progress = CAST(:p AS TEXT) WHERE id = 'r_busy'"),
                         {"p": f"solving {reads[rid]} ".encode() + b"\xfe"})
            conn.commit()
        return row

    monkeypatch.setattr(api.repair, "_raw", read_then_live_write)
    assert check_stored(url) == {"scenarios": 0, "runs": 2, "repaired": 0, "quarantined": 0, "failed": 0}
    assert reads == {"r_live": 2, "r_claimed": 2, "r_busy": ATTEMPTS}
    with engine(url).connect() as c:
        rows = {r.id: r for r in c.execute(text(
            "SELECT id, status, CAST(progress AS BLOB) AS progress, lease_owner, worker, error, finished, result, "
            "checked FROM runs"))}
    done = rows["r_live"]  # the worker's end stands: not failed, not its old progress, its result kept
    assert (done.status, done.progress, done.lease_owner, done.checked) == ("succeeded", b"done", None, CHECKED)
    assert json.loads(done.result) == result
    claimed = rows["r_claimed"]  # claimed meanwhile by another server: not failed under its worker
    assert (claimed.status, claimed.progress, claimed.lease_owner, claimed.worker) == ("running", b"starting",
                                                                                        "tok2", "w2")
    assert claimed.error is None and claimed.finished is None and claimed.checked == CHECKED
    busy = rows["r_busy"]  # kept changing: as its worker last wrote it, unchecked
    assert busy.checked is None and busy.status == "running"
    assert busy.progress == f"solving {ATTEMPTS} ".encode() + b"\xfe"
