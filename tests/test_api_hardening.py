"""The service's contract under hostile or careless input (issue #19, items 2, 4, 5, 6, 8, 9): bounded inputs, no
500s, nothing bad stored, quotas with 429, a memory limit per worker, strict scenario files on the command line.

Each test asserts the status, the error's location down to the item, and a clean read of what was (not) stored.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from typer.testing import CliRunner

from api.app import create_app
from api.db import create_key, engine
from api.limits import SettingsError, load_limits
from planner.cli import app as cli
from planner.scenario import MAX_YAML_NODES, ScenarioError, load_scenario

SMALL = {"name": "api_small", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["vegetables"],
         "objective": {"p": 6}, "solver": {"time_limit_s": 60}}
JSON = {"content-type": "application/json"}


@pytest.fixture
def api(tmp_path, monkeypatch):
    """A test client on a fresh SQLite file (runs stay queued), a planner and a viewer key header."""
    for var in ("PLANNER_MAX_RUNS", "PLANNER_MAX_QUEUE", "PLANNER_MAX_RUNS_PER_KEY", "PLANNER_MAX_BODY",
                "PLANNER_MAX_ESTIMATES", "PLANNER_WORKER_MEMORY_MB", "PLANNER_MAX_TIME_LIMIT_S"):
        monkeypatch.delenv(var, raising=False)
    url = f"sqlite:///{tmp_path / 'hard.db'}"
    _, planner_key = create_key("planner", url=url)
    _, viewer_key = create_key("viewer", url=url)
    tc = TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False)
    with tc:
        yield tc, {"X-API-Key": planner_key}, {"X-API-Key": viewer_key}


def stored(tc: TestClient, h: dict) -> list[dict]:
    """Every stored scenario with its body, each read back with a 200 (the library files, listed too, aside)."""
    listing = tc.get("/scenarios", headers=h)
    assert listing.status_code == 200
    out = []
    for s in listing.json():
        if s["read_only"]:
            continue
        one = tc.get(f"/scenarios/{s['id']}", headers=h)
        assert one.status_code == 200, one.text
        out.append(one.json())
    return out


def raw(tc: TestClient, path: str, text: str, h: dict):
    """POST a body given as JSON text (non-standard JSON and lone surrogates included)."""
    return tc.post(path, content=text.encode("utf-8", "surrogatepass"), headers={**h, **JSON})


# item 2: bounds in the schema ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("patch", "loc"), [
    ({"solver": {"time_limit_s": None}}, ["body", "solver", "time_limit_s"]),
    ({"solver": {"time_limit_s": 0}}, ["body", "solver", "time_limit_s"]),
    ({"solver": {"threads": 2000}}, ["body", "solver", "threads"]),
    ({"network": {"k_nearest": 100000}}, ["body", "network", "k_nearest"]),
    ({"network": {"service_km": 100000}}, ["body", "network"]),
    ({"candidates": {"max_per_region": 100000}}, ["body", "candidates", "max_per_region"]),
    ({"candidates": {"nearby_km": 1e6}}, ["body", "candidates", "nearby_km"]),
    ({"objective": {"p": 10 ** 29}}, ["body", "objective", "p"]),
    ({"objective": {"min_per_region": {"RU-STA": 10 ** 6}}}, ["body", "objective", "min_per_region", "RU-STA"]),
    ({"borders": {"ru_ge_upper_lars": {"extra_delay_h": 1e9}}}, ["body", "borders", "ru_ge_upper_lars",
                                                                 "extra_delay_h"]),
])
def test_unbounded_inputs_are_refused_at_their_field_and_not_stored(api, patch, loc):
    tc, p, v = api
    r = tc.post("/scenarios", json={**SMALL, **patch}, headers=p)
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["detail"]]
    assert stored(tc, v) == []


def test_the_service_caps_the_solver_time_limit(api, monkeypatch):
    tc, p, v = api
    r = tc.post("/runs", json={"scenario": {**SMALL, "solver": {"time_limit_s": 7200}}}, headers=p)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "scenario", "solver", "time_limit_s"]
    assert "PLANNER_MAX_TIME_LIMIT_S" in r.json()["detail"][0]["msg"]


def test_a_stored_scenario_over_a_lowered_time_limit_is_refused_when_used_not_quarantined(api, monkeypatch):
    """PLANNER_MAX_TIME_LIMIT_S is a setting: a scenario stored under a higher one stays readable and ``ok``, and
    running or estimating it is a 422 at ``["body", "scenario_id"]`` naming the setting until it is raised."""
    tc, p, v = api
    sid = tc.post("/scenarios", json=SMALL, headers=p).json()["id"]  # time_limit_s: 60
    limits = tc.app.state.limits
    monkeypatch.setattr(tc.app.state, "limits", type(limits)(max_time_limit_s=30))
    for path in ("/runs", "/estimate/price-impact"):
        r = tc.post(path, json={"scenario_id": sid}, headers=p)
        assert r.status_code == 422, r.text
        (err,) = r.json()["detail"]
        assert err["loc"] == ["body", "scenario_id"]
        assert "PLANNER_MAX_TIME_LIMIT_S" in err["msg"] and "60 s" in err["msg"] and "30 s" in err["msg"]
        assert "PLANNER_MAX_TIME_LIMIT_S" in err["msg_ru"] and "сервиса" in err["msg_ru"]
    one = tc.get(f"/scenarios/{sid}", headers=v).json()
    assert one["status"] == "ok" and one["problem"] is None
    tc.app.state.limits = limits  # raised again
    assert tc.post("/runs", json={"scenario_id": sid}, headers=p).status_code == 202


def test_runs_over_the_key_quota_or_the_queue_get_429_with_retry_after(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_MAX_RUNS_PER_KEY", "2")
    monkeypatch.setenv("PLANNER_MAX_QUEUE", "3")
    monkeypatch.setenv("PLANNER_RETRY_AFTER_S", "17")
    url = f"sqlite:///{tmp_path / 'quota.db'}"
    _, k1 = create_key("planner", url=url)
    _, k2 = create_key("planner", url=url)
    a, b = {"X-API-Key": k1}, {"X-API-Key": k2}
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        sid = tc.post("/scenarios", json=SMALL, headers=a).json()["id"]
        first = [tc.post("/runs", json={"scenario_id": sid}, headers=a) for _ in range(2)]
        assert [r.status_code for r in first] == [202, 202]
        over = tc.post("/runs", json={"scenario_id": sid}, headers=a)
        assert over.status_code == 429 and over.headers["retry-after"] == "17"
        assert "PLANNER_MAX_RUNS_PER_KEY" in over.json()["detail"]
        assert tc.post("/runs", json={"scenario_id": sid}, headers=b).status_code == 202  # another key's share
        full = tc.post("/runs", json={"scenario_id": sid}, headers=b)
        assert full.status_code == 429 and "PLANNER_MAX_QUEUE" in full.json()["detail"]
        # a cancelled run frees its place
        assert tc.delete(f"/runs/{first[0].json()['id']}", headers=a).json()["status"] == "cancelled"
        assert tc.post("/runs", json={"scenario_id": sid}, headers=a).status_code == 202


def test_estimates_beyond_the_concurrency_limit_get_429(api):
    tc, p, _ = api
    sem = tc.app.state.estimates
    held = 0
    while sem.acquire(blocking=False):  # as if every estimate slot were busy
        held += 1
    try:
        r = tc.post("/estimate/loss-reduction", json={"scenario": SMALL}, headers=p)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    finally:
        for _ in range(held):
            sem.release()
    assert held == load_limits().max_estimates


# item 4: the body limit counts streamed bytes; lists never load bodies ----------------------------------------------

def test_a_chunked_upload_over_the_limit_is_refused_and_not_stored(api):
    tc, p, v = api

    def chunks():
        yield b'{"name": "big", "description": "'
        for _ in range(2048):
            yield b"a" * 1024
        yield b'"}'

    r = tc.post("/scenarios", content=chunks(), headers={**p, **JSON})
    assert r.request.headers.get("content-length") is None  # streamed: no length announced
    assert r.status_code == 413
    assert stored(tc, v) == []


@contextmanager
def sql_seen(tc: TestClient) -> Iterator[list[str]]:
    """The SQL statements the app's database engine runs inside the block."""
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    eng = engine(tc.app.state.url)
    event.listen(eng, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(eng, "before_cursor_execute", seen)


def test_the_scenario_list_does_not_read_bodies(api):
    tc, p, v = api
    for i in range(3):
        assert tc.post("/scenarios", json={**SMALL, "name": f"small_{i}"}, headers=p).status_code == 201
    with sql_seen(tc) as statements:
        listed = [x for x in tc.get("/scenarios", headers=v).json() if not x["library"]]
    assert len(listed) == 3 and {x["status"] for x in listed} == {"ok"}
    listing = [s for s in statements if "FROM scenarios" in s]
    assert len(listing) == 1, listing  # one query for the list: no load per row (status, problem)
    assert "scenarios.body" not in listing[0] and "scenarios.status" in listing[0]


# item 5: finite numbers, valid Unicode, validation before anything is committed -------------------------------------

@pytest.mark.parametrize(("path", "text", "loc"), [
    ("/scenarios", '{"name": "x", "solver": {"time_limit_s": NaN}}', ["body", "solver", "time_limit_s"]),
    ("/scenarios", '{"name": "x", "solver": {"time_limit_s": Infinity}}', ["body", "solver", "time_limit_s"]),
    ("/scenarios", '{"name": "x", "solver": {"time_limit_s": 1e309}}', ["body", "solver", "time_limit_s"]),
    ("/scenarios", '{"name": "x", "parameters": {"road_speed_kmh": -Infinity}}',
     ["body", "parameters", "road_speed_kmh"]),
    ("/scenarios", '{"name": "x", "objective": {"budget_mrub": 1e400}}', ["body", "objective", "budget_mrub"]),
    ("/runs", '{"scenario_id": NaN}', ["body", "scenario_id"]),
    ("/compare", '{"run_a": NaN, "run_b": "x"}', ["body", "run_a"]),
    ("/estimate/price-impact", '{"run_id": Infinity}', ["body", "run_id"]),
    ("/scenarios", '{"name": "x", "title_ru": "\\ud800"}', ["body", "title_ru"]),
    ("/scenarios", '{"name": "x", "description": "ok \\udfff"}', ["body", "description"]),
])
def test_non_finite_numbers_and_broken_unicode_get_422_and_nothing_is_stored(api, path, text, loc):
    tc, p, v = api
    r = raw(tc, path, text, p)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    assert stored(tc, v) == []


def test_a_lone_surrogate_in_a_key_is_refused_without_a_500(api):
    tc, p, v = api
    r = raw(tc, "/scenarios", '{"name": "x", "parameters": {"\\ud800": 1}}', p)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "parameters"]
    assert stored(tc, v) == []


def test_stored_bodies_are_standard_json(api):
    tc, p, v = api
    sid = tc.post("/scenarios", json={**SMALL, "parameters": {"road_speed_kmh": 60.5}}, headers=p).json()["id"]
    from sqlalchemy import text

    with engine(tc.app.state.url).connect() as conn:
        body = conn.execute(text("SELECT body FROM scenarios WHERE id = :i"), {"i": sid}).scalar_one()
        assert conn.execute(text("SELECT json_extract(body, '$.solver.time_limit_s') FROM scenarios")).scalar() == 60
    json.loads(body, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c} stored"))


@pytest.mark.parametrize("country", ["UZ", "KG", "TJ"])
def test_partner_scopes_run_their_estimates(api, country):
    """Uzbekistan, Kyrgyzstan and Tajikistan are partners of the mission: their scopes run (Tajikistan since the
    Dushanbe roads joined the corridor network), never a 500 or a refusal."""
    tc, p, _ = api
    sc = {"name": f"partner_{country.lower()}", "scope": {"countries": [country]}, "commodities": ["vegetables"]}
    r = tc.post("/estimate/loss-reduction", json={"scenario": sc}, headers=p)
    assert r.status_code == 200, r.text
    assert r.json()["summary"][0]["commodity"] == "vegetables"


# item 6: scenarios validated against the dataset on save, errors at the offending item -----------------------------

@pytest.mark.parametrize(("patch", "loc"), [
    ({"scope": {"regions": ["RU-STA", "XX-NOPE"]}}, ["body", "scope", "regions", 1]),
    ({"scope": {"countries": ["ZZ"]}}, ["body", "scope", "countries", 0]),
    ({"scope": {}}, ["body", "scope"]),
    ({"scope": {"regions": ["RU-STA", "RU-KB", "RU-STA"]}}, ["body", "scope", "regions", 2]),
    ({"commodities": ["vegetables", "grain", "vegetables"]}, ["body", "commodities", 2]),
    ({"borders": {"nowhere_crossing": {"open": False}}}, ["body", "borders", "nowhere_crossing"]),
    ({"exits": [{"market": "ru_rest"}, {"market": "atlantis"}]}, ["body", "exits", 1, "market"]),
    ({"objective": {"p": 500}}, ["body", "objective", "p"]),
    ({"objective": {"max_per_region": {"XX": 1}}}, ["body", "objective", "max_per_region", "XX"]),
])
def test_scenarios_naming_what_the_dataset_lacks_are_refused_on_save(api, patch, loc):
    tc, p, v = api
    r = tc.post("/scenarios", json={**SMALL, **patch}, headers=p)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    inline = tc.post("/runs", json={"scenario": {**SMALL, **patch}}, headers=p)
    assert inline.status_code == 422 and inline.json()["detail"][0]["loc"] == ["body", "scenario", *loc[1:]]
    assert stored(tc, v) == []


def test_duplicate_json_keys_are_refused(api):
    tc, p, v = api
    r = raw(tc, "/scenarios", '{"name": "x", "scope": {"regions": ["RU-STA"], "regions": ["RU-KB"]}}', p)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "scope", "regions"]
    assert stored(tc, v) == []


def test_an_unknown_centre_is_reported_at_its_item(api):
    tc, p, _ = api
    r = tc.post("/estimate/loss-reduction", json={"scenario": SMALL, "centres": ["ru_sta_orc", "nowhere"]},
                headers=p)
    assert r.status_code == 422
    assert r.json()["detail"] == [{"loc": ["body", "centres", 1], "msg": "unknown candidate id 'nowhere'",
                                   "msg_ru": "неизвестный id площадки-кандидата 'nowhere'", "type": "value_error"}]


def test_an_estimate_for_a_stored_scenario_reports_its_scope_error_at_the_scenario(api):
    tc, p, _ = api
    # Kaliningrad: joined to Russia's network only by transit through Lithuania, so no site of its own
    sc = {"name": "kgd", "scope": {"regions": ["RU-KGD"]}, "commodities": ["vegetables"]}
    sid = tc.post("/scenarios", json=sc, headers=p).json()["id"]
    r = tc.post("/estimate/price-impact", json={"scenario_id": sid}, headers=p)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "scenario_id", "candidates"]


# item 9: settings, file mode, OpenAPI, empty bodies, time zones -----------------------------------------------------

def test_a_bad_setting_stops_the_start_up_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_MAX_RUNS", "abc")
    tc = TestClient(create_app(f"sqlite:///{tmp_path / 's.db'}", start_jobs=False))
    with pytest.raises(SettingsError, match="PLANNER_MAX_RUNS"), tc:
        pass
    with pytest.raises(SettingsError, match="PLANNER_WORKER_MEMORY_MB"):
        load_limits({"PLANNER_WORKER_MEMORY_MB": "-5"})
    assert load_limits({"PLANNER_MAX_QUEUE": " 7 "}).max_active_runs == 7


@pytest.mark.parametrize("var", ["PLANNER_MAX_RUNS", "PLANNER_RUN_ALLOWANCE_S"])
def test_planner_serve_with_a_bad_setting_exits_1_with_one_line(monkeypatch, var):
    """``planner serve`` checks its settings before uvicorn starts: one line naming the setting, exit code 1, no
    traceback (it once printed uvicorn's lifespan traceback and exited 3)."""
    import subprocess
    import sys

    env = {**os.environ, var: "abc", "PLANNER_DB": os.devnull + ".never"}
    r = subprocess.run([sys.executable, "-m", "planner.cli", "serve", "--port", "1"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and var in lines[0] and "Traceback" not in r.stderr


def test_the_database_file_is_private(tmp_path):
    path = tmp_path / "private.db"
    engine(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_openapi_documents_every_error_with_its_body(api):
    tc, _, _ = api
    schema = tc.get("/openapi.json").json()
    for path, code in (("/runs", "429"), ("/scenarios", "413"), ("/scenarios", "401"), ("/estimate/price-impact",
                                                                                        "429")):
        answers = schema["paths"][path]["post"]["responses"]
        assert {"400", "401", "403", "404", "409", "413", "422", "429"} <= set(answers), path
        assert "$ref" in answers[code]["content"]["application/json"]["schema"]
    assert "Retry-After" in schema["paths"]["/runs"]["post"]["responses"]["429"]["headers"]
    for name, required in (("RunIn", {"scenario_id", "scenario"}), ("EstimateIn",
                                                                   {"scenario_id", "scenario", "run_id"})):
        one_of = schema["components"]["schemas"][name]["oneOf"]
        assert {r["required"][0] for r in one_of} == required  # so `{}` is invalid by the schema too


def test_empty_bodies_get_422_as_the_schema_says(api):
    """``{}`` (and an empty body) lacks the scenario: the 422 names the field to give, never just ``body``; two
    sources at once are refused at the second; a body that is not an object names the object expected."""
    tc, p, _ = api
    for path, fields in (("/runs", "scenario_id or scenario"),
                         ("/estimate/loss-reduction", "scenario_id, scenario or run_id"),
                         ("/estimate/price-impact", "scenario_id, scenario or run_id")):
        for r in (tc.post(path, json={}, headers=p), tc.post(path, headers=p)):
            assert r.status_code == 422, (path, r.text)
            err = r.json()["detail"][0]
            assert err["loc"] == ["body", "scenario_id"] and f"give {fields}" in err["msg"], (path, err)
            assert err["msg_ru"].startswith(f"укажите {fields.replace(' or ', ' или ')}"), err
        both = tc.post(path, json={"scenario_id": "x", "scenario": {"name": "y"}}, headers=p).json()["detail"][0]
        assert both["loc"] == ["body", "scenario"] and "only one of scenario_id and scenario" in both["msg"], both
        model = "RunIn" if path == "/runs" else "EstimateIn"
        for bad, got in (([1, 2], "an array"), ("text", "a string"), (3, "a number")):
            err = tc.post(path, json=bad, headers=p).json()["detail"][0]
            assert err["loc"] == ["body", model] and got in err["msg"] and model in err["msg_ru"], err


def test_a_stored_infinite_gap_is_answered_as_null(api):
    tc, p, v = api
    rid = tc.post("/runs", json={"scenario": SMALL}, headers=p).json()["id"]
    from api.db import RunRecord, session

    with session(tc.app.state.url) as s:
        s.get(RunRecord, rid).gap = float("inf")
        s.commit()
    r = tc.get(f"/runs/{rid}", headers=v)
    assert r.status_code == 200 and r.json()["gap"] is None


def test_timestamps_carry_the_time_zone_on_get_as_on_post(api):
    tc, p, v = api
    made = tc.post("/scenarios", json=SMALL, headers=p).json()
    got = tc.get(f"/scenarios/{made['id']}", headers=v).json()
    listed = tc.get("/scenarios", headers=v).json()[0]
    assert got["created"] == made["created"] == listed["created"]
    assert datetime.fromisoformat(got["created"]).utcoffset() is not None
    rid = tc.post("/runs", json={"scenario_id": made["id"]}, headers=p).json()["id"]
    assert datetime.fromisoformat(tc.get(f"/runs/{rid}", headers=v).json()["created"]).utcoffset() is not None


# item 2: a worker over its memory limit fails cleanly ---------------------------------------------------------------

@pytest.mark.slow
def test_a_worker_over_its_memory_limit_fails_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_WORKER_MEMORY_MB", "200")  # too little to even load the model's libraries
    url = f"sqlite:///{tmp_path / 'mem.db'}"
    _, key = create_key("planner", url=url)
    h = {"X-API-Key": key}
    with TestClient(create_app(url, start_jobs=True), raise_server_exceptions=False) as tc:
        rid = tc.post("/runs", json={"scenario": SMALL}, headers=h).json()["id"]
        for _ in range(600):
            state = tc.get(f"/runs/{rid}", headers=h).json()
            if state["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert state["status"] == "failed", state
        assert "PLANNER_WORKER_MEMORY_MB" in state["error"] and "200 MiB" in state["error"]
        assert tc.get("/health").json()["status"] == "ok"  # the server lives on


# item 1: one wall-clock deadline per request and per run ---------------------------------------------------------

def test_an_estimate_past_its_deadline_is_stopped_and_refused_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_ESTIMATE_DEADLINE_S", "1")
    url = f"sqlite:///{tmp_path / 'deadline.db'}"
    _, key = create_key("planner", url=url)
    big = {"name": "south", "scope": {"federal_districts": ["NCFD", "SFD"]}}  # every commodity: many seconds
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        r = tc.post("/estimate/price-impact?wait=true", json={"scenario": big}, headers={"X-API-Key": key})
    assert r.status_code == 422, r.text
    err = r.json()["detail"][0]
    assert err["loc"] == ["body", "scenario"] and "PLANNER_ESTIMATE_DEADLINE_S" in err["msg"]


def estimate_processes() -> list:
    """The live estimate processes of this test process: the children of its fork server (the fork server
    itself stays, preloaded, for the next request)."""
    import psutil

    servers = [c for c in psutil.Process().children() if "forkserver" in " ".join(c.cmdline())]
    return [p for s in servers for p in s.children() if p.status() != psutil.STATUS_ZOMBIE]


def test_an_estimate_longer_than_a_few_seconds_becomes_a_job(tmp_path, monkeypatch):
    """Issue #19: an estimate over HTTP that is not done within PLANNER_ESTIMATE_SYNC_S is not held in the
    request: its process is stopped and it is queued as a job like a run (202, Location), which the client
    polls; nothing keeps computing for the request."""
    monkeypatch.setenv("PLANNER_ESTIMATE_SYNC_S", "1")
    url = f"sqlite:///{tmp_path / 'handover.db'}"
    _, key = create_key("planner", url=url)
    h = {"X-API-Key": key}
    big = {"name": "south", "scope": {"federal_districts": ["NCFD", "SFD"]}}  # every commodity: many seconds
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        started = time.monotonic()
        r = tc.post("/estimate/price-impact", json={"scenario": big}, headers=h)
        elapsed = time.monotonic() - started
        assert r.status_code == 202, r.text
        assert elapsed < 1 + 10  # the window, and the stop of its process; not the estimate's full time
        job = r.json()
        assert r.headers["Location"] == f"/estimates/{job['id']}"
        assert tc.get(r.headers["Location"], headers=h).json()["status"] == "queued"
        assert estimate_processes() == []  # the request's estimate process was stopped


def test_the_azerbaijan_only_price_estimate_ends_with_the_reason(tmp_path, monkeypatch):
    """Azerbaijan alone (81 grain markets on a few network nodes) once stalled the equilibrium QP for good: within
    a short deadline it is either answered or refused with the reason at the scenario, and the service lives on."""
    monkeypatch.setenv("PLANNER_ESTIMATE_DEADLINE_S", "3")
    url = f"sqlite:///{tmp_path / 'az.db'}"
    _, key = create_key("planner", url=url)
    az = {"name": "az_only", "scope": {"countries": ["AZ"]}, "commodities": ["grain"]}
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        r = tc.post("/estimate/price-impact?wait=true", json={"scenario": az}, headers={"X-API-Key": key})
        assert r.status_code in (200, 422), r.text
        if r.status_code == 422:
            assert r.json()["detail"][0]["loc"] == ["body", "scenario"]
            assert "PLANNER_ESTIMATE_DEADLINE_S" in r.json()["detail"][0]["msg"]
        else:
            assert r.json()["summary"][0]["commodity"] == "grain"
        assert tc.get("/health").json()["status"] == "ok"


@pytest.mark.slow
def test_a_run_past_its_deadline_is_stopped_and_fails_naming_the_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_RUN_ALLOWANCE_S", "1")
    url = f"sqlite:///{tmp_path / 'run_deadline.db'}"
    _, key = create_key("planner", url=url)
    h = {"X-API-Key": key}
    big = {"name": "south", "scope": {"federal_districts": ["NCFD", "SFD"]}, "solver": {"time_limit_s": 1}}
    with TestClient(create_app(url, start_jobs=True), raise_server_exceptions=False) as tc:
        rid = tc.post("/runs", json={"scenario": big}, headers=h).json()["id"]
        pid = None
        for _ in range(600):
            state = tc.get(f"/runs/{rid}", headers=h).json()
            from api.db import RunRecord, session

            with session(url) as s:
                pid = s.get(RunRecord, rid).pid or pid
            if state["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
    assert state["status"] == "failed", state
    assert state["error"].startswith("deadline of 2 s passed at stage")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the worker, and its solve, are gone


# item 8: scenario files on the command line -------------------------------------------------------------------------

def test_a_billion_laughs_file_is_refused_fast(tmp_path):
    lines = ['name: lol', 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for n in "bcdefghi":
        lines.append(f"{n}: &{n} [{', '.join(['*' + prev] * 9)}]")
        prev = n
    lines.append("description: *i")
    path = tmp_path / "lol.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ScenarioError, match=f"more than {MAX_YAML_NODES} values"):
        load_scenario(path)
    res = CliRunner().invoke(cli, ["validate", str(path)])
    assert res.exit_code == 1 and "aliases" in res.output


def test_a_file_that_is_not_utf8_is_a_clear_error_naming_it(tmp_path):
    path = tmp_path / "cp1251.yaml"
    path.write_bytes("name: x\ntitle_ru: Сценарий\n".encode("cp1251"))
    with pytest.raises(ScenarioError, match="not UTF-8") as err:
        load_scenario(path)
    assert str(path) in str(err.value)
    res = CliRunner().invoke(cli, ["validate", str(path)])
    assert res.exit_code == 1 and "not UTF-8" in res.output and "Traceback" not in res.output


def test_files_over_the_size_limit_are_refused(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("name: x\ndescription: " + "a" * (1 << 20) + "\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="over the limit"):
        load_scenario(path)


@pytest.mark.parametrize(("text", "needle"), [
    ("name: x\nsolver:\n  time_limit_s: .inf\n", "solver.time_limit_s"),
    ("name: x\nparameters:\n  road_speed_kmh: .nan\n", "parameters.road_speed_kmh"),
    ("name: x\nobjective:\n  budget_mrub: -.inf\n", "objective.budget_mrub"),
    ("name: x\nname: y\n", "duplicate key 'name'"),
    ("name: x\nscope:\n  regions: [RU-STA]\n  regions: [RU-KB]\n", "line 4"),
])
def test_yaml_non_finite_numbers_and_duplicate_keys_are_refused(tmp_path, text, needle):
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert needle in str(err.value)


def test_error_messages_do_not_echo_a_whole_input(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text("name: x\nscope:\n  federal_districts: [" + "Q" * 50_000 + "]\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert "federal_districts" in str(err.value) and len(str(err.value)) < 1_000
    assert os.path.getsize(path) > 50_000


def test_a_scenario_without_outside_markets_is_estimated(api):
    """``exits: []`` (no outside market at all) is valid by the schema: the estimate answers, not a 500 (found by
    schemathesis)."""
    tc, p, _ = api
    r = tc.post("/estimate/loss-reduction", json={"scenario": {**SMALL, "exits": []}}, headers=p)
    assert r.status_code == 200, r.text
    assert r.json()["summary"][0]["commodity"] == "vegetables"


def test_a_405_lists_every_method_of_the_path(api):
    """``Allow`` names every method the path has (schemathesis's allow_header_conformance), not only the first
    route's."""
    tc, _, _ = api
    r = tc.options("/runs/some-id")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET"
    assert tc.options("/scenarios").headers["allow"] == "GET, POST"


def test_a_run_state_is_read_without_its_result(api):
    """``GET /runs/{id}`` (polled by every client) reads the state only, never the large result or scenario."""
    tc, p, v = api
    rid = tc.post("/runs", json={"scenario": SMALL}, headers=p).json()["id"]
    with sql_seen(tc) as statements:
        assert tc.get(f"/runs/{rid}", headers=v).json()["status"] == "queued"
    reads = [s for s in statements if "FROM runs" in s]
    assert reads and all("runs.result" not in s and "runs.scenario," not in s for s in reads)
