"""The optimization API (FastAPI): datasets, stored scenarios, runs as background jobs, quick estimates.

Access: an API key in the ``X-API-Key`` header; ``viewer`` keys read, ``planner`` keys also write and run.
Without a key: 401; with a key of the wrong role: 403. Bad input: 422 naming the field; bodies over
``PLANNER_MAX_BODY`` bytes (default 1 MB): 413; unknown ids: 404; no stack traces in any answer.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from api.db import RunRecord, ScenarioRecord, clean_json, database_url, now, role_of, session
from api.jobs import JobManager
from planner.scenario import Scenario, ScenarioError, parse_scenario

MAX_BODY = int(os.environ.get("PLANNER_MAX_BODY", str(1 << 20)))
EXAMPLE = {"name": "ncfd_api", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["vegetables"],
           "objective": {"p": 7}}


class ScenarioIn(Scenario):
    """A scenario, as in a scenario file; ``extends`` names a stored scenario id, never a file path; ``data``
    and ``candidates.file`` (server paths) are not accepted over the API."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})


class StoredScenario(BaseModel):
    """A stored scenario."""

    id: str
    name: str
    created: str
    body: dict[str, Any] | None = None


class RunIn(BaseModel):
    """Start a run from a stored scenario id or from a scenario given inline (exactly one of the two)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"scenario": EXAMPLE}]})

    scenario_id: str | None = Field(None, description="id of a stored scenario")
    scenario: ScenarioIn | None = None

    @model_validator(mode="after")
    def _one(self) -> RunIn:
        if (self.scenario_id is None) == (self.scenario is None):
            raise ValueError("give exactly one of scenario_id and scenario")
        return self


class RunCreated(BaseModel):
    """The id of an accepted run."""

    id: str


class RunState(BaseModel):
    """A run's state: queued, running, succeeded, failed or cancelled; progress and the solver's gap so far."""

    id: str
    scenario_id: str | None
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: str
    gap: float | None
    created: str
    started: str | None
    finished: str | None
    error: str | None


class EstimateIn(BaseModel):
    """A quick estimate for a set of centres (candidate ids) or a finished run's centres, without a siting run."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"scenario": EXAMPLE, "centres": ["ru_sta_orc", "ru_kb_orc"], "baseline": "traditional"}]})

    scenario_id: str | None = None
    scenario: ScenarioIn | None = None
    run_id: str | None = Field(None, description="use the centres this finished run opened (and its scenario)")
    centres: list[str] | None = Field(None, description="candidate ids; default the existing centres")
    baseline: Literal["traditional", "existing"] = "traditional"


class CompareIn(BaseModel):
    """Two finished runs to compare."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"run_a": "RUN_ID_A",
                                                                               "run_b": "RUN_ID_B"}]})

    run_a: str
    run_b: str


def require(role: str):
    """Dependency: the caller's key must be active and allow ``role`` (planner also allows viewer)."""

    def check(x_api_key: Annotated[str | None, Header()] = None) -> str:
        have = role_of(x_api_key, app.state.url)
        if have is None:
            raise HTTPException(401, "missing or unknown API key: send it in the X-API-Key header")
        if role == "planner" and have != "planner":
            raise HTTPException(403, "this key may read but not write or run (role viewer); use a planner key")
        return have

    return check


def _iso(t) -> str | None:
    return t.isoformat() if t is not None else None


def _state(run: RunRecord) -> RunState:
    return RunState(id=run.id, scenario_id=run.scenario_id, status=run.status, progress=run.progress, gap=run.gap,
                    created=_iso(run.created), started=_iso(run.started), finished=_iso(run.finished),
                    error=run.error)


def _body(sc: ScenarioIn) -> dict:
    """Validate an API scenario: resolve ``extends`` against stored ids and refuse server file paths."""
    body = sc.model_dump(exclude_unset=True, mode="json")
    if body.get("data") or (body.get("candidates") or {}).get("file"):
        raise HTTPException(422, [{"loc": ["body", "data"], "msg": "server file paths (data, candidates.file) "
                                   "are not accepted over the API", "type": "value_error"}])
    parent = body.pop("extends", None)
    if parent is not None:
        with session(app.state.url) as s:
            base = s.get(ScenarioRecord, parent)
        if base is None:
            raise HTTPException(422, [{"loc": ["body", "extends"], "msg": f"no stored scenario with id {parent!r}",
                                       "type": "value_error"}])
        from planner.scenario import _merge

        body = _merge(dict(base.body), body)
    try:
        validated = parse_scenario(body, source="body")
    except ScenarioError as exc:
        raise HTTPException(422, [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from None
    return validated.model_dump(mode="json", exclude={"extends"})


def _scenario_for(sid: str | None, sc: ScenarioIn | None) -> tuple[str | None, dict]:
    if sid is not None:
        with session(app.state.url) as s:
            rec = s.get(ScenarioRecord, sid)
        if rec is None:
            raise HTTPException(404, f"no stored scenario with id {sid!r}")
        return sid, rec.body
    return None, _body(sc)


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Start the job manager (recovering runs a previous server left running) and stop it at shutdown."""
    app.state.url = app.state.url if getattr(app.state, "url", None) else database_url()
    app.state.jobs = JobManager(app.state.url)
    if app.state.start_jobs:
        app.state.jobs.start()
    else:
        app.state.jobs.recover()
    yield
    app.state.jobs.shutdown()


app = FastAPI(title="ОРЦ planner API", version="0.1.0", lifespan=lifespan,
              description="Siting wholesale distribution centres (ОРЦ) for farm produce, with loss and price "
                          "estimates. Send an API key in X-API-Key (viewer: read; planner: write and run).")
app.state.url = None
app.state.start_jobs = True


@app.middleware("http")
async def limit_body(request: Request, call_next):
    """Refuse bodies over the limit (413) before reading them."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return JSONResponse({"detail": f"request body over {MAX_BODY} bytes"}, status_code=413)
    return await call_next(request)


@app.exception_handler(Exception)
async def internal_error(request: Request, exc: Exception):
    """No stack traces in answers: the details go to the server log."""
    import logging

    logging.getLogger("planner.api").exception("unhandled error on %s", request.url.path)
    return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)


@app.get("/health", tags=["service"])
def health() -> dict:
    """Liveness: the service and its database answer."""
    with session(app.state.url) as s:
        s.execute(select(1))
    return {"status": "ok", "time": now().isoformat()}


@app.get("/datasets/regions", tags=["datasets"])
def regions(_: Annotated[str, Depends(require("viewer"))]) -> dict:
    """Regions as GeoJSON points (EPSG:4326) with names (ru, en), country, federal district and population."""
    from planner.data.loader import load_dataset

    feats = []
    for r in load_dataset().regions.to_dict("records"):
        props = {k: (None if v != v else v) for k, v in r.items() if k not in ("lat", "lon")}
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                      "properties": props})
    return {"type": "FeatureCollection", "features": feats}


@app.get("/datasets/corridors", tags=["datasets"])
def corridors(_: Annotated[str, Depends(require("viewer"))]) -> dict:
    """The embedded road and rail corridors as GeoJSON lines (EPSG:4326)."""
    from geo.export import corridors_geojson
    from planner.data.loader import load_dataset
    from planner.network import corridor_graph
    from planner.parameters import ParameterSet

    ds = load_dataset()
    return corridors_geojson(corridor_graph(ds, ParameterSet(ds.loss_rates)))


@app.post("/scenarios", status_code=201, tags=["scenarios"], response_model=StoredScenario)
def create_scenario(sc: ScenarioIn, _: Annotated[str, Depends(require("planner"))]) -> StoredScenario:
    """Validate and store a scenario (``extends`` may name a stored scenario id)."""
    body = _body(sc)
    with session(app.state.url) as s:
        rec = ScenarioRecord(name=body["name"], body=body)
        s.add(rec)
        s.commit()
        return StoredScenario(id=rec.id, name=rec.name, created=_iso(rec.created), body=rec.body)


@app.get("/scenarios", tags=["scenarios"], response_model=list[StoredScenario])
def list_scenarios(_: Annotated[str, Depends(require("viewer"))]) -> list[StoredScenario]:
    """Stored scenarios, newest first (without bodies)."""
    with session(app.state.url) as s:
        recs = s.scalars(select(ScenarioRecord).order_by(ScenarioRecord.created.desc()))
        return [StoredScenario(id=r.id, name=r.name, created=_iso(r.created)) for r in recs]


@app.get("/scenarios/{scenario_id}", tags=["scenarios"], response_model=StoredScenario)
def get_scenario(scenario_id: str, _: Annotated[str, Depends(require("viewer"))]) -> StoredScenario:
    """One stored scenario with its body."""
    with session(app.state.url) as s:
        rec = s.get(ScenarioRecord, scenario_id)
    if rec is None:
        raise HTTPException(404, f"no stored scenario with id {scenario_id!r}")
    return StoredScenario(id=rec.id, name=rec.name, created=_iso(rec.created), body=rec.body)


@app.post("/runs", status_code=202, tags=["runs"], response_model=RunCreated)
def create_run(body: RunIn, _: Annotated[str, Depends(require("planner"))]) -> RunCreated:
    """Queue a run; it executes in a worker process. Poll ``GET /runs/{id}``."""
    sid, scenario = _scenario_for(body.scenario_id, body.scenario)
    with session(app.state.url) as s:
        run = RunRecord(scenario_id=sid, scenario=scenario)
        s.add(run)
        s.commit()
        return RunCreated(id=run.id)


def _run(run_id: str) -> RunRecord:
    with session(app.state.url) as s:
        run = s.get(RunRecord, run_id)
    if run is None:
        raise HTTPException(404, f"no run with id {run_id!r}")
    return run


@app.get("/runs/{run_id}", tags=["runs"], response_model=RunState)
def get_run(run_id: str, _: Annotated[str, Depends(require("viewer"))]) -> RunState:
    """A run's status, progress and the solver's gap so far."""
    return _state(_run(run_id))


@app.get("/runs/{run_id}/result", tags=["runs"])
def get_result(run_id: str, _: Annotated[str, Depends(require("viewer"))]) -> dict:
    """The finished run's summary and tables (409 while it has none)."""
    run = _run(run_id)
    if run.result is None:
        raise HTTPException(409, f"run {run_id} has no result (status {run.status}" +
                            (f": {run.error}" if run.error else "") + ")")
    return {"id": run.id, "summary": run.result["summary"], "tables": run.result["tables"]}


@app.get("/runs/{run_id}/geojson", tags=["runs"])
def get_geojson(run_id: str, _: Annotated[str, Depends(require("viewer"))]) -> dict:
    """The finished run's network: regions, corridors, centres sized by throughput, flows (EPSG:4326)."""
    run = _run(run_id)
    if run.result is None:
        raise HTTPException(409, f"run {run_id} has no result (status {run.status})")
    return run.result["geojson"]


@app.delete("/runs/{run_id}", tags=["runs"], response_model=RunState)
def cancel_run(run_id: str, _: Annotated[str, Depends(require("planner"))]) -> RunState:
    """Cancel a queued or running run (stops its solve); 409 if it has already ended."""
    _run(run_id)
    if not app.state.jobs.cancel(run_id):
        raise HTTPException(409, f"run {run_id} has already ended")
    return _state(_run(run_id))


def _estimate(body: EstimateIn, kind: str) -> dict:
    from planner.data.loader import load_dataset
    from planner.economics import estimate_loss_reduction, estimate_price_impact

    centres = body.centres
    if body.run_id is not None:
        run = _run(body.run_id)
        if run.result is None:
            raise HTTPException(409, f"run {body.run_id} has no result")
        scenario = run.scenario
        centres = centres or [c["id"] for c in run.result["summary"].get("centres", [])]
    else:
        if (body.scenario_id is None) == (body.scenario is None):
            raise HTTPException(422, [{"loc": ["body"], "msg": "give exactly one of scenario_id, scenario or run_id",
                                       "type": "value_error"}])
        _, scenario = _scenario_for(body.scenario_id, body.scenario)
    sc = parse_scenario(scenario, source="scenario")
    fn = estimate_loss_reduction if kind == "loss" else estimate_price_impact
    try:
        rep = fn(sc, load_dataset(), centres, body.baseline)
    except (ScenarioError, ValueError) as exc:
        raise HTTPException(422, [{"loc": ["body", "centres"], "msg": str(exc), "type": "value_error"}]) from None
    import json

    return clean_json(json.loads(json.dumps(rep.as_dict(), default=float)))


@app.post("/estimate/loss-reduction", tags=["estimates"])
def loss_reduction(body: EstimateIn, _: Annotated[str, Depends(require("planner"))]) -> dict:
    """Tonnes lost by commodity, stage and region with the centres, against the baseline."""
    return _estimate(body, "loss")


@app.post("/estimate/price-impact", tags=["estimates"])
def price_impact(body: EstimateIn, _: Annotated[str, Depends(require("planner"))]) -> dict:
    """Equilibrium price changes with the centres, against the baseline."""
    return _estimate(body, "price")


@app.post("/compare", tags=["runs"])
def compare(body: CompareIn, _: Annotated[str, Depends(require("viewer"))]) -> dict:
    """Two finished runs side by side: status, objective, costs, losses, prices, centres."""
    out = {}
    for label, rid in (("a", body.run_a), ("b", body.run_b)):
        run = _run(rid)
        if run.result is None:
            raise HTTPException(409, f"run {rid} has no result")
        s = run.result["summary"]
        out[label] = {k: s.get(k) for k in ("scenario", "status", "objective", "gap", "cost_breakdown",
                                            "loss_reduction_pct", "price_change_pct")}
        out[label]["centres"] = [c["id"] for c in s.get("centres", [])]
    out["only_a"] = sorted(set(out["a"]["centres"]) - set(out["b"]["centres"]))
    out["only_b"] = sorted(set(out["b"]["centres"]) - set(out["a"]["centres"]))
    return out


def create_app(url: str | None = None, start_jobs: bool = True) -> FastAPI:
    """The app bound to a database URL (tests use their own); ``start_jobs`` False leaves runs queued."""
    app.state.url = url or database_url()
    app.state.start_jobs = start_jobs
    return app


from api.web import install as install_web  # noqa: E402  (the web workspace, offline docs, key scheme: api/web)

install_web(app)
