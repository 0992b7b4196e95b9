"""The optimization API: every endpoint and error path (SQLite, and PostgreSQL when CI provides one), keys,
a real uvicorn server restarted mid-work, and a schemathesis run against the OpenAPI schema."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from servers import free_port, wait_healthy  # tests/servers.py
from typer.testing import CliRunner

from api.app import create_app
from api.db import create_key
from planner.cli import app as cli

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"name": "api_small", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["vegetables"],
         "objective": {"p": 6}, "solver": {"time_limit_s": 60}}
PG_URL = os.environ.get("PLANNER_TEST_POSTGRES_URL")
URLS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=URLS)
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'api.db'}"
    from api.db import Base, engine

    eng = engine(PG_URL)  # the cached engine the app uses: start each test from empty tables
    Base.metadata.drop_all(eng)
    Base.metadata.create_all(eng)
    return PG_URL


def clients(url: str, start_jobs: bool = False):
    _, planner_key = create_key("planner", url=url)
    _, viewer_key = create_key("viewer", url=url)
    tc = TestClient(create_app(url, start_jobs=start_jobs), raise_server_exceptions=False)
    return tc, {"X-API-Key": planner_key}, {"X-API-Key": viewer_key}


def test_access_control_and_datasets(db_url):
    tc, p, v = clients(db_url)
    with tc:
        assert tc.get("/health").json()["status"] == "ok"
        assert tc.get("/datasets/regions").status_code == 401
        assert tc.get("/datasets/regions", headers={"X-API-Key": "nope"}).status_code == 401
        regions = tc.get("/datasets/regions", headers=v).json()
        assert len(regions["features"]) == 240
        corr = tc.get("/datasets/corridors", headers=v).json()
        assert {f["properties"]["mode"] for f in corr["features"]} == {"road", "rail"}
        assert tc.post("/scenarios", json=SMALL, headers=v).status_code == 403
        assert tc.post("/runs", json={"scenario": SMALL}, headers=v).status_code == 403


def test_scenarios_store_validate_extend(db_url):
    tc, p, v = clients(db_url)
    with tc:
        r = tc.post("/scenarios", json=SMALL, headers=p)
        assert r.status_code == 201
        sid = r.json()["id"]
        child = tc.post("/scenarios", json={"name": "child", "extends": sid, "objective": {"p": 7}}, headers=p)
        assert child.status_code == 201, child.json()
        body = tc.get(f"/scenarios/{child.json()['id']}", headers=v).json()["body"]
        assert body["commodities"] == ["vegetables"] and body["objective"]["p"] == 7
        assert {s["id"] for s in tc.get("/scenarios", headers=v).json()} >= {sid, child.json()["id"]}
        bad = tc.post("/scenarios", json={"name": "x", "objective": {"pp": 1}}, headers=p)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "objective", "pp"]
        bad = tc.post("/scenarios", json={"name": "x", "scope": {"regions": ["RU-ZZ"]}}, headers=p)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "scope", "regions", 0]
        missing = tc.post("/scenarios", json={"name": "x", "extends": "no-such-id"}, headers=p)
        assert missing.status_code == 422 and "no-such-id" in missing.text
        path = tc.post("/scenarios", json={"name": "x", "data": {"regions": "/etc/passwd"}}, headers=p)
        assert path.status_code == 422 and "not accepted" in path.text
        assert tc.get("/scenarios/nope", headers=v).status_code == 404
        big = tc.post("/scenarios", content=b"{" + b" " * (2 << 20) + b"}", headers={**p, "content-type":
                                                                                    "application/json"})
        assert big.status_code == 413


def test_runs_queue_cancel_and_errors(db_url):
    tc, p, v = clients(db_url, start_jobs=False)
    with tc:
        assert tc.post("/runs", json={}, headers=p).status_code == 422
        assert tc.post("/runs", json={"scenario_id": "nope"}, headers=p).status_code == 404
        rid = tc.post("/runs", json={"scenario": SMALL}, headers=p).json()["id"]
        state = tc.get(f"/runs/{rid}", headers=v).json()
        assert state["status"] == "queued"
        assert tc.get(f"/runs/{rid}/result", headers=v).status_code == 409
        assert tc.get(f"/runs/{rid}/geojson", headers=v).status_code == 409
        assert tc.delete(f"/runs/{rid}", headers=v).status_code == 403
        assert tc.delete(f"/runs/{rid}", headers=p).json()["status"] == "cancelled"
        assert tc.delete(f"/runs/{rid}", headers=p).status_code == 409
        assert tc.get("/runs/nope", headers=v).status_code == 404
        assert tc.post("/compare", json={"run_a": rid, "run_b": rid}, headers=v).status_code == 409
        assert tc.post("/estimate/loss-reduction", json={}, headers=p).status_code == 422
        r = tc.post("/estimate/price-impact", json={"scenario": SMALL, "centres": ["nowhere"]}, headers=p)
        assert r.status_code == 422 and "nowhere" in r.text and r.json()["detail"][0]["loc"] == ["body", "centres", 0]


def test_a_run_executes_and_serves_its_result(db_url):
    tc, p, v = clients(db_url, start_jobs=True)
    with tc:
        rid = tc.post("/runs", json={"scenario": SMALL}, headers=p).json()["id"]
        for _ in range(120):
            state = tc.get(f"/runs/{rid}", headers=v).json()
            if state["status"] not in ("queued", "running"):
                break
            time.sleep(0.5)
        assert state["status"] == "succeeded", state
        res = tc.get(f"/runs/{rid}/result", headers=v).json()
        assert res["summary"]["status"] == "optimal" and len(res["summary"]["centres"]) == 6
        assert {"sites", "flows", "losses", "prices"} <= set(res["tables"])
        layers = {f["properties"]["layer"] for f in tc.get(f"/runs/{rid}/geojson", headers=v).json()["features"]}
        assert {"centre", "flow", "corridor"} <= layers
        loss = tc.post("/estimate/loss-reduction", json={"run_id": rid}, headers=p).json()
        assert loss["summary"][0]["commodity"] == "vegetables"
        # the estimate carries the run's trade figures, keyed as in summary.json
        for key in ("imports_t", "exports_t", "unmet_t"):
            assert set(loss[key]) == set(res["summary"][key]), key
        assert loss["exports_by_exit_t"] and "unmet_causes" in loss
        assert sum(loss["exports_t"].values()) == pytest.approx(sum(res["summary"]["exports_t"].values()), rel=0.02)
        cmp = tc.post("/compare", json={"run_a": rid, "run_b": rid}, headers=v).json()
        assert cmp["only_a"] == [] and cmp["a"]["objective"] == cmp["b"]["objective"]


def test_cancelling_a_running_run_stops_its_worker(tmp_path):
    url = f"sqlite:///{tmp_path / 'cancel.db'}"
    tc, p, v = clients(url, start_jobs=True)
    big = {**SMALL, "name": "api_big", "scope": {"federal_districts": ["NCFD", "SFD"]},
           "commodities": ["potatoes", "vegetables", "fruit_berries"], "objective": {"p": 14}}
    with tc:
        rid = tc.post("/runs", json={"scenario": big}, headers=p).json()["id"]
        for _ in range(200):
            if tc.get(f"/runs/{rid}", headers=v).json()["status"] == "running":
                break
            time.sleep(0.05)
        from api.db import RunRecord, session

        for _ in range(100):
            with session(url) as s:
                pid = s.get(RunRecord, rid).pid
            if pid:
                break
            time.sleep(0.05)
        assert tc.delete(f"/runs/{rid}", headers=p).json()["status"] == "cancelled"
        time.sleep(0.5)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the worker, and with it the solve, is gone
        assert tc.get(f"/runs/{rid}", headers=v).json()["status"] == "cancelled"


def test_keys_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_DB", str(tmp_path / "keys.db"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    res = runner.invoke(cli, ["keys", "create", "--role", "viewer", "--label", "analyst"])
    assert res.exit_code == 0
    key = res.output.split()[-1]
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    from api.db import role_of

    assert role_of(key, url) == "viewer"
    listing = runner.invoke(cli, ["keys", "list"]).output
    assert "viewer" in listing and key not in listing
    kid = listing.split()[0]
    assert runner.invoke(cli, ["keys", "revoke", kid]).exit_code == 0
    assert role_of(key, url) is None
    assert runner.invoke(cli, ["keys", "revoke", kid]).exit_code == 1
    bad = runner.invoke(cli, ["keys", "create", "--role", "superuser"])
    assert bad.exit_code == 1 and "--role" in bad.output
    bad = runner.invoke(cli, ["keys", "create", "--role", "planner", "--org", "  "])
    assert bad.exit_code == 1 and "--org" in bad.output
    made = runner.invoke(cli, ["keys", "create", "--role", "planner", "--org", "Минсельхоз КБР"])
    assert made.exit_code == 0 and "Минсельхоз КБР" in made.output
    from api.db import key_of

    assert key_of(made.output.split()[-1], url)[1:] == ("planner", "Минсельхоз КБР")
    assert "Минсельхоз КБР" in runner.invoke(cli, ["keys", "list"]).output


def _serve(db: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PLANNER_DB": str(db)}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "planner.cli", "serve", "--port", str(port)], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, 20)
    except RuntimeError:
        proc.kill()
        raise
    return proc


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_real_server_restart_keeps_runs_and_results(tmp_path):
    db = tmp_path / "server.db"
    _, key = create_key("planner", url=f"sqlite:///{db}")
    h = {"X-API-Key": key}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(db, port)
    try:
        rid = httpx.post(f"{base}/runs", json={"scenario": SMALL}, headers=h).json()["id"]
        for _ in range(240):
            if httpx.get(f"{base}/runs/{rid}", headers=h).json()["status"] not in ("queued", "running"):
                break
            time.sleep(0.5)
        big = {**SMALL, "name": "api_big", "scope": {"federal_districts": ["NCFD", "SFD"]},
               "commodities": ["potatoes", "vegetables", "fruit_berries"], "objective": {"p": 14}}
        busy = httpx.post(f"{base}/runs", json={"scenario": big}, headers=h).json()["id"]
        for _ in range(100):
            if httpx.get(f"{base}/runs/{busy}", headers=h).json()["status"] == "running":
                break
            time.sleep(0.1)
    finally:
        _stop(proc)  # a hard stop, as a crash would be
    proc = _serve(db, port)
    try:
        assert httpx.get(f"{base}/runs/{rid}", headers=h).json()["status"] == "succeeded"
        assert httpx.get(f"{base}/runs/{rid}/result", headers=h).json()["summary"]["status"] == "optimal"
        after = httpx.get(f"{base}/runs/{busy}", headers=h).json()
        assert after["status"] in ("failed", "succeeded")  # never left 'running' with no worker
        if after["status"] == "failed":
            assert "restart" in after["error"]
    finally:
        _stop(proc)


def test_schemathesis_finds_no_server_errors(tmp_path):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    _, key = create_key("planner", url=url)
    app = create_app(url, start_jobs=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    calls = {"n": 0, "5xx": []}
    with TestClient(app):
        for op in schema.get_all_operations():
            operation = op.ok()
            heavy = operation.path.startswith("/estimate") or operation.path.startswith("/datasets")
            examples = 5 if heavy else 25

            @settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def run(case):
                response = case.call(headers={"X-API-Key": key})
                calls["n"] += 1
                if response.status_code >= 500:
                    calls["5xx"].append((case.method, case.path, response.status_code, response.text[:200]))

            run()
    assert calls["n"] >= 200, calls["n"]
    assert not calls["5xx"], calls["5xx"][:5]
