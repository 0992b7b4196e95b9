"""The optimization API (FastAPI): datasets, stored scenarios, runs as background jobs, estimates (answered at
once, or with ``?wait=false`` queued as jobs like runs: ``/estimates/{id}``).

Access: an API key in the ``X-API-Key`` header; ``viewer`` keys read, ``planner`` keys also write and run,
``admin`` keys do all that across organisations. Without a key: 401; with a key of the wrong role: 403.
Ownership: a key sees and cancels only its organisation's scenarios and runs (plus the library scenarios, which
everyone reads); another organisation's object is answered 404, exactly as one that does not exist, so ids do
not leak. Bad input: 422 naming the field down to the item (a
scenario is checked against the dataset before it is stored); bodies over ``PLANNER_MAX_BODY`` bytes (default
1 MiB, counted as they stream): 413; unknown ids: 404; too many active runs or estimates: 429 with
``Retry-After``; no stack traces in any answer. The limits are in :mod:`api.limits` and docs/api.md.
"""

from __future__ import annotations

import math
import re
import threading
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import func, select
from sqlalchemy.orm import defer, load_only
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.db import (
    RunRecord,
    ScenarioRecord,
    database_url,
    key_of,
    lock_admission,
    now,
    runs_visible,
    scenarios_visible,
    session,
)
from api.guard import BodyGuard
from api.jobs import JobManager
from api.library import is_library_file, library, library_record, visible_scenario
from api.limits import Limits, load_limits, tile_layer
from api.messages import NO_KEY, NO_KEY_RU, ApiError, bilingual_items, item, ru_detail, ru_item, ru_run_error, status_ru
from planner.scenario import Scenario, SolverSettings, dataset_errors, error_loc, short

EXAMPLE = {"name": "ncfd_api", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["vegetables"],
           "objective": {"p": 7}}


class ScenarioIn(Scenario):
    """A scenario, as in a scenario file; ``extends`` names a stored scenario id, never a file path; ``data``
    and ``candidates.file`` (server paths) are not accepted over the API."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})


class Error(BaseModel):
    """An error answer: what went wrong, in English (``detail``) and in Russian (``detail_ru``)."""

    detail: str
    detail_ru: str


class ErrorItem(BaseModel):
    """One invalid input: where (``loc``, e.g. ``["body", "scope", "regions", 0]``), what in English (``msg``) and
    in Russian (``msg_ru``), and its kind."""

    loc: list[str | int]
    msg: str
    msg_ru: str
    type: str


class ValidationErrors(BaseModel):
    """A 422 answer: every invalid input with its location."""

    detail: list[ErrorItem]


def _err(description: str, model: type[BaseModel] = Error, headers: dict | None = None) -> dict:
    out: dict[str, Any] = {"description": description, "model": model}
    if headers:
        out["headers"] = headers
    return out


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _err("malformed request (e.g. a Content-Length that is not a number)"),
    401: _err("missing, unknown or revoked API key (X-API-Key)"),
    403: _err("the key's role may not do this (viewer keys read only; library scenarios: admin keys only)"),
    404: _err("no such stored scenario or run (or it belongs to another organisation)"),
    409: _err("the run has no result yet, or has already ended"),
    413: _err("request body over PLANNER_MAX_BODY bytes"),
    422: _err("invalid input; each item names its location", ValidationErrors),
    429: _err("too many active runs or estimates; retry after the Retry-After seconds", Error,
              {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}),
}


class StoredScenario(BaseModel):
    """A stored scenario; ``library`` ones are read by every organisation. ``status``: ``ok``; ``repaired`` or
    ``quarantined`` for one stored by an older version that the start-up check had to repair or could not accept
    (``problem`` says what; a quarantined scenario cannot be run, estimated or extended). ``read_only``: a file
    of the scenario library (``scenarios/*.yaml``), listed beside the stored ones, never changed over HTTP."""

    id: str
    name: str
    created: str
    library: bool = False
    read_only: bool = False
    status: Literal["ok", "repaired", "quarantined"] = "ok"
    problem: str | None = None
    body: dict[str, Any] | None = None


def one_of(model: BaseModel, names: tuple[str, ...]) -> None:
    """Exactly one of the fields ``names`` given, else a ``one_of`` error located at a field (``ctx["field"]``,
    which :func:`planner.scenario.error_loc` appends): none given — at the first ("give scenario_id or
    scenario"); several — at the second given ("give only one of … and …")."""
    given = [n for n in names if getattr(model, n) is not None]
    listed, listed_ru = (f"{', '.join(names[:-1])} {word} {names[-1]}" for word in ("or", "или"))
    if not given:
        raise PydanticCustomError("one_of", f"give {listed} (exactly one of them)",
                                  {"field": names[0], "ru": f"укажите {listed_ru} (ровно одно из них)"})
    if len(given) > 1:
        both = " and ".join(given)
        raise PydanticCustomError("one_of", f"give only one of {both}",
                                  {"field": given[1], "ru": f"укажите только одно из полей {', '.join(given)}, "
                                                            "а не несколько сразу"})


class RunIn(BaseModel):
    """Start a run from a stored scenario id or from a scenario given inline (exactly one of the two)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"scenario": EXAMPLE}],
        "oneOf": [{"required": ["scenario_id"]}, {"required": ["scenario"]}]})

    scenario_id: str = Field(None, max_length=64, description="id of a stored scenario")
    scenario: ScenarioIn = Field(None, description="a scenario given inline")

    @model_validator(mode="after")
    def _one(self) -> RunIn:
        one_of(self, ("scenario_id", "scenario"))
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
    error_ru: str | None = Field(None, description="the error in Russian (the job layer's and the scenario checks' "
                                                   "own messages translated; any other after a Russian lead-in)")
    problem: str | None = Field(None, description="what the start-up check repaired in a run stored by an older "
                                                  "version")


class EstimateJob(BaseModel):
    """An estimate computed as a job (``?wait=false``): its state, and once ``succeeded`` the estimate itself
    (the same JSON the synchronous call answers)."""

    id: str
    kind: Literal["loss-reduction", "price-impact"]
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: str
    created: str
    started: str | None
    finished: str | None
    error: str | None
    error_ru: str | None = Field(None, description="the error in Russian (as for runs)")
    result: dict[str, Any] | None = None


class EstimateIn(BaseModel):
    """A quick estimate for a set of centres (candidate ids) or a finished run's centres, without a siting run:
    exactly one of ``scenario_id``, ``scenario`` and ``run_id``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"scenario": EXAMPLE, "centres": ["ru_sta_orc", "ru_kb_orc"], "baseline": "traditional"}],
        "oneOf": [{"required": ["scenario_id"]}, {"required": ["scenario"]}, {"required": ["run_id"]}]})

    scenario_id: str = Field(None, max_length=64, description="id of a stored scenario")
    scenario: ScenarioIn = Field(None, description="a scenario given inline")
    run_id: str = Field(None, max_length=64, description="use the centres this finished run opened (and its "
                                                         "scenario)")
    centres: list[Annotated[str, Field(max_length=100)]] | None = Field(
        None, max_length=1000, description="candidate ids; default the existing centres")
    baseline: Literal["traditional", "existing"] = "traditional"

    @model_validator(mode="after")
    def _one(self) -> EstimateIn:
        one_of(self, ("scenario_id", "scenario", "run_id"))
        return self


class CompareIn(BaseModel):
    """Two finished runs to compare."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"run_a": "RUN_ID_A",
                                                                               "run_b": "RUN_ID_B"}]})

    run_a: str = Field(max_length=64)
    run_b: str = Field(max_length=64)


class CompareRun(BaseModel):
    """One side of a comparison: its label and scenario, and (as before) its stored figures."""

    label: str | None = Field(None, description="the run's name on screen: its scenario and the id's first 8 "
                                                "characters")
    scenario: str | None = None
    status: str | None = Field(None, description="the solver's status, e.g. optimal")
    objective: float | None = Field(None, description="annual cost less sales to outside markets, RUB a year")
    gap: float | None = Field(None, description="relative MIP gap (0.01 = 1 %)")
    cost_breakdown: dict[str, float | None] | None = Field(None, description="cost by item, RUB a year")
    loss_reduction_pct: dict[str, float | None] | None = Field(None, description="by commodity group, %")
    price_change_pct: dict[str, float | None] | None = Field(None, description="consumer price change by "
                                                                                "commodity group, %")
    centres: list[str] = Field(default_factory=list, description="ids of the centres open")


class CompareHeadline(BaseModel):
    """A headline figure of both runs (unit in the key and the labels)."""

    key: str
    label_en: str
    label_ru: str
    a: float | None
    b: float | None
    change: float | None = Field(description="B − A")


class CompareCentre(BaseModel):
    """A centre open in A or B, matched by its stable site identity (town slug or existing centre's id)."""

    id: str
    name_ru: str | None
    name_en: str | None
    region: str | None
    existing: bool
    change: Literal["opened in B", "closed in B", "resized", "kept"]
    size_a: str | None
    size_b: str | None
    throughput_a_t: float | None = Field(description="t a year")
    throughput_b_t: float | None = Field(description="t a year")
    throughput_change_t: float = Field(description="B − A, t a year")


class CompareTrade(BaseModel):
    """Trade of one outside market, country or border crossing, t a year: ``exports`` are what the outside buys
    from the scope, ``imports`` what it sells to it; A, B and B − A."""

    market: str | None = Field(None, description="the market's id (trade_by_market rows)")
    country: str | None = Field(None, description="ISO code (trade_by_market and trade_by_country rows)")
    crossing: str | None = Field(None, description="the border crossing's id (trade_by_crossing rows)")
    kind: str | None = Field(None, description="border, port or rest_of_russia (trade_by_market rows)")
    name_en: str | None = None
    name_ru: str | None = None
    markets: list[str] | None = Field(None, description="the markets summed in this row")
    reachable_a: bool | None = None
    reachable_b: bool | None = None
    exports_a_t: float
    exports_b_t: float
    exports_change_t: float
    imports_a_t: float
    imports_b_t: float
    imports_change_t: float


class CompareGroup(BaseModel):
    """A figure by commodity group (or cost item) in A and B, and B − A."""

    commodity: str
    a: float | None
    b: float | None
    change: float | None


class CompareOut(BaseModel):
    """Two runs side by side, as ``planner compare --json`` writes them (:func:`planner.compare.compare_summaries`)
    plus the lists of centre ids open only in A or only in B."""

    a: CompareRun
    b: CompareRun
    only_a: list[str] = Field(description="ids of the centres open in A and not in B")
    only_b: list[str] = Field(description="ids of the centres open in B and not in A")
    headline: list[CompareHeadline]
    centres: list[CompareCentre] = Field(description="opened in B, closed in B, resized, then kept")
    trade_by_market: list[CompareTrade]
    trade_by_country: list[CompareTrade]
    trade_by_crossing: list[CompareTrade] = Field(description="each market's trade counted at every crossing on "
                                                              "its shortest path into the scope's country")
    loss_reduction_pct: list[CompareGroup] = Field(description="%")
    consumer_price_change_pct: list[CompareGroup] = Field(description="%")
    farm_price_change_pct: list[CompareGroup] = Field(description="%")
    cost_breakdown_rub: list[CompareGroup] = Field(description="RUB a year, by cost item")


class Caller(NamedTuple):
    """The key a request came with: its id, role and organisation."""

    key_id: str
    role: str
    org: str


def require(role: str):
    """Dependency: the caller's key must be active and allow ``role`` (planner also allows viewer; admin allows
    everything)."""

    def check(x_api_key: Annotated[str | None, Header()] = None) -> Caller:
        found = key_of(x_api_key, app.state.url)
        if found is None:
            raise ApiError(401, NO_KEY, NO_KEY_RU)
        if role == "planner" and found[1] not in ("planner", "admin"):
            raise ApiError(403, "this key may read but not write or run (role viewer); use a planner key",
                           "этот ключ даёт только чтение (роль «viewer»): для записи и запуска нужен ключ планировщика")
        return Caller(*found)

    return check


def _stored(rec: ScenarioRecord, body: bool = True) -> StoredScenario:
    """A stored scenario as answered."""
    return StoredScenario(id=rec.id, name=rec.name, created=_iso(rec.created), library=rec.org is None,
                          read_only=is_library_file(rec), status=rec.status or "ok", problem=rec.problem,
                          body=rec.body if body else None)


def _usable(rec: ScenarioRecord, prefix: tuple = ("body", "scenario_id")) -> dict:
    """The body of a stored scenario that may be run, estimated or extended: 409 for a quarantined one; 422 at
    ``prefix`` for one whose solver time limit is over this service's (``PLANNER_MAX_TIME_LIMIT_S``, a setting
    that may have been lowered since it was stored, so it is checked at each use, never by quarantine)."""
    if rec.status == "quarantined":
        raise ApiError(409, f"stored scenario {short(rec.id)} is quarantined ({rec.problem}); store a corrected "
                            "copy and use that",
                       f"сохранённый сценарий {short(rec.id)} помещён в карантин ({rec.problem}); сохраните "
                       "исправленную копию и используйте её")
    cap = app.state.limits.max_time_limit_s
    limit = _time_limit(rec.body)
    if limit > cap:
        raise _invalid([((), f"stored scenario {short(rec.id)} has solver.time_limit_s {limit:g} s, over this "
                             f"service's limit of {cap} s (PLANNER_MAX_TIME_LIMIT_S); store a copy with a lower "
                             "solver.time_limit_s and use that",
                         f"у сохранённого сценария {short(rec.id)} solver.time_limit_s {limit:g} с — больше предела "
                         f"этого сервиса {cap} с (PLANNER_MAX_TIME_LIMIT_S); сохраните копию с меньшим "
                         "solver.time_limit_s и используйте её")], prefix)
    return rec.body


def _time_limit(body: dict) -> float:
    """A stored scenario's solver time limit, seconds: as stored, else the schema's default."""
    value = (body.get("solver") or {}).get("time_limit_s") if isinstance(body, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return float(SolverSettings.model_fields["time_limit_s"].default)


def _visible_scenario(sid: str, caller: Caller) -> ScenarioRecord | None:
    """The stored scenario ``sid`` if the caller may read it (its organisation's, a library one, or any for an
    admin), else the library file of that name (``scenarios/*.yaml``, read-only), else None — whether it exists
    elsewhere is not told."""
    return visible_scenario(app.state.url, caller.role, caller.org, sid)


def _iso(t: datetime | None) -> str | None:
    """ISO 8601 with the time zone: times are stored in UTC (SQLite returns them without a zone)."""
    if t is None:
        return None
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).isoformat()


def _invalid(items: list[tuple], prefix: tuple = ("body",)) -> HTTPException:
    """A 422 listing each (location, message[, Russian message]); locations are relative to ``prefix``. A message
    without its Russian (from the domain's checks) is put into Russian by :func:`api.messages.ru_item`."""
    return HTTPException(422, [item([*prefix, *it[0]], it[1], it[2] if len(it) > 2 else ru_item(it[1]))
                               for it in items])


FIELD = re.compile(r"^([A-Za-z_]+(?:\[\d+\])?(?:\.[A-Za-z_]+(?:\[\d+\])?)*): ")


def _domain_error(msg: str, prefix: tuple) -> HTTPException:
    """A 422 for a domain error's message (ScenarioError, NetworkError) at the field it starts with
    (``exits[0].market: ...`` → ``[*prefix, "exits", 0, "market"]``), else at ``prefix``."""
    m = FIELD.match(msg)
    loc: list = []
    if m:
        for part in m.group(1).split("."):
            name, _, idx = part.partition("[")
            loc += [name] + ([int(idx.rstrip("]"))] if idx else [])
    if loc and loc[0] in ("centres", "baseline"):
        return _invalid([(tuple(loc), msg)])
    return _invalid([(tuple(loc), msg)], prefix)


def _state(run: RunRecord) -> RunState:
    """A run's state as answered; a gap that is not a finite number (an unbounded solve) is answered as null."""
    gap = run.gap if run.gap is not None and math.isfinite(run.gap) else None
    return RunState(id=run.id, scenario_id=run.scenario_id, status=run.status, progress=run.progress, gap=gap,
                    created=_iso(run.created), started=_iso(run.started), finished=_iso(run.finished),
                    error=run.error, error_ru=ru_run_error(run.error), problem=run.problem)


def _body(sc: ScenarioIn, caller: Caller, prefix: tuple = ("body",)) -> dict:
    """Validate an API scenario before anything is stored: resolve ``extends`` against the stored scenarios the key
    may read and the library files (never a path), refuse server file paths and a solver time limit over the
    service's, and check every id it names against the dataset. Errors are 422s at the offending item, under
    ``prefix`` (where the scenario sits in the request)."""
    body = sc.model_dump(exclude_unset=True, mode="json")
    if body.get("data") or (body.get("candidates") or {}).get("file"):
        where = ("data",) if body.get("data") else ("candidates", "file")
        raise _invalid([(where, "server file paths (data, candidates.file) are not accepted over the API",
                         "пути к файлам сервера (data, candidates.file) через API не принимаются")], prefix)
    parent = body.pop("extends", None)
    if parent is not None:
        base = _visible_scenario(parent, caller)
        if base is None:
            raise _invalid([(("extends",), f"no stored or library scenario with id {short(parent)}",
                             f"нет сохранённого или библиотечного сценария с id {short(parent)}")], prefix)
        if getattr(base, "status", None) == "quarantined":
            raise _invalid([(("extends",), f"stored scenario {short(parent)} is quarantined: {base.problem}",
                             f"сохранённый сценарий {short(parent)} помещён в карантин: {base.problem}")], prefix)
        from planner.scenario import _merge

        body = _merge(dict(base.body), body)
    return _checked(body, prefix)


def _checked(body: dict, prefix: tuple) -> dict:
    """A scenario mapping validated against the schema, the service's solver time limit and the dataset, as it is
    stored and run; 422s at the offending item, under ``prefix``."""
    from planner.data.loader import load_dataset

    try:
        validated = Scenario.model_validate(body)
    except ValidationError as exc:
        raise _invalid([(error_loc(e), e["msg"].removeprefix("Value error, "),
                         ru_item(e["msg"].removeprefix("Value error, "), e["type"], e.get("ctx")))
                        for e in exc.errors()], prefix) from None
    cap = app.state.limits.max_time_limit_s
    if validated.solver.time_limit_s > cap:
        got = f"{validated.solver.time_limit_s:g}"
        raise _invalid([(("solver", "time_limit_s"), f"at most {cap} s on this service (PLANNER_MAX_TIME_LIMIT_S)"
                         f", got {got}",
                         f"на этом сервисе не больше {cap} с (PLANNER_MAX_TIME_LIMIT_S), задано {got}")],
                       prefix)
    errors = dataset_errors(validated, load_dataset())
    if errors:
        raise _invalid(errors, prefix)
    return validated.model_dump(mode="json", exclude={"extends"})


def _scenario_for(sid: str | None, sc: ScenarioIn | None, caller: Caller) -> tuple[str | None, dict]:
    """The scenario a request names: a stored one the caller may read (else 404), or one given inline."""
    if sid is not None:
        rec = _visible_scenario(sid, caller)
        if rec is None:
            raise ApiError(404, f"no stored scenario with id {short(sid)}",
                           f"нет сохранённого сценария с id {short(sid)}")
        if is_library_file(rec):
            # a library file: checked now against this service's limits and the dataset (a stored scenario was
            # checked when it was stored)
            return sid, _checked(rec.body, ("body", "scenario_id"))
        return sid, _usable(rec)
    return None, _body(sc, caller, ("body", "scenario"))


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Read the limits and the web map's tile setting (a bad setting stops the start-up, naming the variable),
    start the job manager (recovering runs a previous server left running) and stop it at shutdown."""
    app.state.limits = load_limits()
    app.state.tiles = tile_layer()
    app.state.estimates = threading.BoundedSemaphore(app.state.limits.max_estimates)
    app.state.url = app.state.url if getattr(app.state, "url", None) else database_url()
    from api.repair import check_stored

    check_stored(app.state.url)
    app.state.jobs = JobManager(app.state.url, app.state.limits)
    if app.state.start_jobs:
        app.state.jobs.start()
    else:
        app.state.jobs.recover()
    yield
    app.state.jobs.shutdown()


app = FastAPI(title="ОРЦ planner API", version="0.1.0", lifespan=lifespan,
              description="Siting wholesale distribution centres (ОРЦ) for farm produce, with loss and price "
                          "estimates. Send an API key in X-API-Key (viewer: read; planner: write and run). Limits "
                          "and what a client sees when it meets one: docs/api.md.", responses=RESPONSES)
app.state.url = None
app.state.start_jobs = True
app.state.limits = Limits()
app.state.tiles = None
app.add_middleware(BodyGuard, max_body=lambda: app.state.limits.max_body,
                   key_ok=lambda key: key_of(key, app.state.url) is not None)


@app.exception_handler(RequestValidationError)
async def invalid_request(request: Request, exc: RequestValidationError):
    """422 with each error's location down to the item, its message and kind; the input is not echoed (it may be
    large, or hold what JSON cannot carry)."""
    errors = list(exc.errors())
    model = _body_model(request)
    if model is not None and any(tuple(e["loc"]) == ("body",) and e["type"] == "missing" for e in errors):
        # an empty body is read as an empty object: the answer names the fields it lacks
        try:
            model.model_validate({})
        except ValidationError as empty:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in empty.errors()]
    detail = []
    for e in errors:
        loc, msg = list(error_loc(e)), str(e["msg"]).removeprefix("Value error, ")
        msg_ru = ru_item(msg, e["type"], e.get("ctx"))
        if loc == ["body"]:  # the body as a whole is not an object (or is empty): name the object expected
            name = model.__name__ if model is not None else "object"
            got = "nothing" if e["type"] == "missing" else _json_kind(e.get("input"))
            loc = ["body", name]
            msg = (f"expected a JSON (or YAML) object with the fields of {name} (components.schemas.{name} in "
                   f"/openapi.json), got {got}")
            msg_ru = (f"ожидается объект JSON (или YAML) с полями {name} (components.schemas.{name} в "
                      f"/openapi.json), получено: {JSON_KIND_RU.get(got, got)}")
        detail.append(item(loc, msg, msg_ru, e["type"]))
    return JSONResponse({"detail": detail}, status_code=422)


JSON_KIND_RU = {"nothing": "пустое тело", "an array": "массив", "a string": "строка", "a number": "число",
                "a boolean": "логическое значение", "null": "null", "a value": "значение"}
"""Russian of :func:`_json_kind`'s names."""


def _json_kind(v: Any) -> str:
    """What a JSON value is, in words (an array, a string, …)."""
    if isinstance(v, list):
        return "an array"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str | bytes):
        return "a string"
    return "null" if v is None else "a value"


def _body_model(request: Request) -> type[BaseModel] | None:
    """The pydantic model of the body the request's route expects (None for a route without one)."""
    field = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""HTTP methods a route may serve (what a 405's ``Allow`` is computed from)."""


def allowed_methods(app_: FastAPI, scope: dict) -> list[str]:
    """Every method some route of ``app_`` serves on the request's path: a method is allowed when a route matches
    the path with it fully. Asking each route (rather than reading ``route.methods``) also covers routers included
    whole (``app.include_router``), whose routes are not flattened into ``app.router.routes``."""
    allowed = []
    for method in METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app_.router.routes):
            allowed.append(method)
    return allowed


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException):
    """HTTP errors as FastAPI answers them; a 405 lists in ``Allow`` every method the path has on any route
    (Starlette names only those of the first route that matched the path, e.g. POST but not the web pages'
    GET on ``/runs``)."""
    if exc.status_code == 405:
        allowed = allowed_methods(request.app, request.scope)
        if allowed:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
    if exc.status_code in (204, 304):
        return await http_exception_handler(request, exc)
    return JSONResponse(bilingual(exc), status_code=exc.status_code, headers=exc.headers)


def bilingual(exc: StarletteHTTPException) -> dict:
    """An error's body in both languages (api.messages): ``detail`` and ``detail_ru``, or a list of located errors
    each with ``msg`` and ``msg_ru``."""
    if isinstance(exc.detail, list):
        return {"detail": bilingual_items(exc.detail)}
    detail = str(exc.detail)
    return {"detail": detail, "detail_ru": getattr(exc, "detail_ru", None) or ru_detail(detail, exc.status_code)}


@app.exception_handler(Exception)
async def internal_error(request: Request, exc: Exception):
    """No stack traces in answers: the details go to the server log."""
    import logging

    logging.getLogger("planner.api").exception("unhandled error on %s", request.url.path)
    return JSONResponse({"detail": "internal error; the server log has the details",
                         "detail_ru": "внутренняя ошибка; подробности — в журнале сервера"}, status_code=500)


@app.get("/health", tags=["service"])
def health() -> dict:
    """Liveness: the service and its database answer."""
    with session(app.state.url) as s:
        s.execute(select(1))
    return {"status": "ok", "time": now().isoformat()}


@app.get("/datasets/regions", tags=["datasets"])
def regions(_: Annotated[Caller, Depends(require("viewer"))]) -> dict:
    """Regions as GeoJSON points (EPSG:4326) with names (ru, en), country, federal district and population."""
    from planner.data.loader import load_dataset

    feats = []
    for r in load_dataset().regions.to_dict("records"):
        props = {k: (None if v != v else v) for k, v in r.items() if k not in ("lat", "lon")}
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                      "properties": props})
    return {"type": "FeatureCollection", "features": feats}


@app.get("/datasets/corridors", tags=["datasets"])
def corridors(_: Annotated[Caller, Depends(require("viewer"))]) -> dict:
    """The embedded road and rail corridors as GeoJSON lines (EPSG:4326)."""
    from geo.export import corridors_geojson
    from planner.data.loader import load_dataset
    from planner.network import corridor_graph
    from planner.parameters import ParameterSet

    ds = load_dataset()
    return corridors_geojson(corridor_graph(ds, ParameterSet(ds.loss_rates)))


SCENARIO_LINKS = {
    "GetScenario": {"operationId": "get_scenario", "parameters": {"scenario_id": "$response.body#/id"},
                    "description": "read the stored scenario"},
    "RunScenario": {"operationId": "create_run", "requestBody": {"scenario_id": "$response.body#/id"},
                    "description": "start a run of the stored scenario"},
}
RUN_LINKS = {
    "GetRun": {"operationId": "get_run", "parameters": {"run_id": "$response.body#/id"}},
    "GetResult": {"operationId": "get_result", "parameters": {"run_id": "$response.body#/id"}},
    "GetGeojson": {"operationId": "get_geojson", "parameters": {"run_id": "$response.body#/id"}},
    "CancelRun": {"operationId": "cancel_run", "parameters": {"run_id": "$response.body#/id"}},
}
"""OpenAPI links (a stored scenario's id feeds its reads and runs; a run's id its reads and cancel): clients and
schemathesis's stateful tests follow them."""


@app.post("/scenarios", status_code=201, tags=["scenarios"], response_model=StoredScenario,
          operation_id="create_scenario", responses={201: {"links": SCENARIO_LINKS}})
def create_scenario(sc: ScenarioIn, caller: Annotated[Caller, Depends(require("planner"))],
                    library: Annotated[bool, Query(description="store it in the library, read by every "
                                                               "organisation (admin keys only)")] = False,
                    ) -> StoredScenario:
    """Validate and store a scenario for the key's organisation (``extends`` may name a stored scenario id the
    key can read); ``library=true`` (admin keys) stores it for everyone."""
    if library and caller.role != "admin":
        raise ApiError(403, "only an admin key may store library scenarios",
                       "сохранять библиотечные сценарии может только ключ администратора")
    body = _body(sc, caller)
    with session(app.state.url) as s:
        rec = ScenarioRecord(name=body["name"], body=body, org=None if library else caller.org)
        s.add(rec)
        s.commit()
        return _stored(rec)


@app.get("/scenarios", tags=["scenarios"], response_model=list[StoredScenario])
def list_scenarios(caller: Annotated[Caller, Depends(require("viewer"))]) -> list[StoredScenario]:
    """The stored scenarios the key may read (its organisation's and the library's), newest first, then the
    library files (``scenarios/*.yaml``, read-only, their file name as the id) by name; without bodies."""
    with session(app.state.url) as s:
        recs = s.scalars(select(ScenarioRecord).options(load_only(ScenarioRecord.id, ScenarioRecord.name,
                                                                  ScenarioRecord.created, ScenarioRecord.org,
                                                                  ScenarioRecord.status, ScenarioRecord.problem))
                         .where(scenarios_visible(caller.role, caller.org))
                         .order_by(ScenarioRecord.created.desc()))
        out = [_stored(r, body=False) for r in recs]
    files = [rec for name in sorted(library()) if (rec := library_record(name)) is not None]
    return out + [_stored(r, body=False) for r in files]


@app.get("/scenarios/{scenario_id}", tags=["scenarios"], response_model=StoredScenario, operation_id="get_scenario")
def get_scenario(scenario_id: str, caller: Annotated[Caller, Depends(require("viewer"))]) -> StoredScenario:
    """One stored scenario with its body (404 for another organisation's)."""
    rec = _visible_scenario(scenario_id, caller)
    if rec is None:
        raise ApiError(404, f"no stored scenario with id {short(scenario_id)}",
                       f"нет сохранённого сценария с id {short(scenario_id)}")
    return _stored(rec)


@app.post("/runs", status_code=202, tags=["runs"], response_model=RunCreated, operation_id="create_run",
          responses={202: {"links": RUN_LINKS}})
def create_run(body: RunIn, caller: Annotated[Caller, Depends(require("planner"))]) -> RunCreated:
    """Queue a run; it executes in a worker process. Poll ``GET /runs/{id}``. 429 with ``Retry-After`` when the
    queue (PLANNER_MAX_QUEUE) or the key's share of it (PLANNER_MAX_RUNS_PER_KEY) is full."""
    sid, scenario = _scenario_for(body.scenario_id, body.scenario, caller)
    return RunCreated(id=_admit(RunRecord(scenario_id=sid, scenario=scenario, key_id=caller.key_id,
                                          org=caller.org), caller))


def _admit(run: RunRecord, caller: Caller) -> str:
    """Queue a run or an estimate job if the quotas allow, else 429. The counts and the insert happen in one
    transaction that first takes the database's admission lock, so the limits hold across every server process
    on the database (not per process); returns the new row's id."""
    limits: Limits = app.state.limits
    with session(app.state.url) as s:
        lock_admission(s)
        active = RunRecord.status.in_(("queued", "running"))
        mine = s.scalar(select(func.count()).select_from(RunRecord).where(active, RunRecord.key_id == caller.key_id))
        if mine >= limits.max_active_runs_per_key:
            s.rollback()
            raise _busy(f"this key has {mine} runs or estimate jobs queued or running, the most one key may have "
                        f"(PLANNER_MAX_RUNS_PER_KEY); wait for one to end or cancel one",
                        f"у этого ключа {mine} запусков или заданий оценки в очереди или в работе — больше одному "
                        f"ключу нельзя (PLANNER_MAX_RUNS_PER_KEY); дождитесь окончания одного или отмените его")
        total = s.scalar(select(func.count()).select_from(RunRecord).where(active))
        if total >= limits.max_active_runs:
            s.rollback()
            raise _busy(f"the queue holds {total} runs and estimate jobs, its limit (PLANNER_MAX_QUEUE); retry "
                        "later",
                        f"в очереди {total} запусков и заданий оценки — это её предел (PLANNER_MAX_QUEUE); "
                        "повторите позже")
        s.add(run)
        s.commit()
        return run.id


def _busy(msg: str, msg_ru: str) -> HTTPException:
    """A 429 telling the client when to retry."""
    return ApiError(429, msg, msg_ru, headers={"Retry-After": str(app.state.limits.retry_after_s)})


def _run(run_id: str, caller: Caller, full: bool = False) -> RunRecord:
    """The run ``run_id`` if the caller may see it (its organisation's; any for an admin), else 404. Without
    ``full`` its state only: the scenario and the result (large JSON) are not read (``GET /runs/{id}`` at 40
    concurrent clients went from 11 to about 100 requests per second, docs/benchmarks.md)."""
    query = select(RunRecord).where(RunRecord.id == run_id, runs_visible(caller.role, caller.org))
    if not full:
        query = query.options(defer(RunRecord.result), defer(RunRecord.scenario))
    with session(app.state.url) as s:
        run = s.scalar(query)
    if run is None:
        raise ApiError(404, f"no run with id {short(run_id)}", f"нет запуска с id {short(run_id)}")
    return run


@app.get("/runs/{run_id}", tags=["runs"], response_model=RunState, operation_id="get_run")
def get_run(run_id: str, caller: Annotated[Caller, Depends(require("viewer"))]) -> RunState:
    """A run's status, progress and the solver's gap so far."""
    return _state(_run(run_id, caller))


@app.get("/runs/{run_id}/result", tags=["runs"], operation_id="get_result")
def get_result(run_id: str, caller: Annotated[Caller, Depends(require("viewer"))]) -> dict:
    """The finished run's summary and tables (409 while it has none)."""
    run = _run(run_id, caller, full=True)
    if run.result is None:
        why, why_ru = (f": {run.error}", f": {ru_run_error(run.error)}") if run.error else ("", "")
        raise ApiError(409, f"run {run_id} has no result (status {run.status}{why})",
                       f"у запуска {run_id} нет результата (состояние: {status_ru(run.status)}{why_ru})")
    return {"id": run.id, "summary": run.result["summary"], "tables": run.result["tables"]}


@app.get("/runs/{run_id}/geojson", tags=["runs"], operation_id="get_geojson")
def get_geojson(run_id: str, caller: Annotated[Caller, Depends(require("viewer"))]) -> dict:
    """The finished run's network: regions, corridors, centres sized by throughput, flows (EPSG:4326)."""
    run = _run(run_id, caller, full=True)
    if run.result is None:
        raise ApiError(409, f"run {run_id} has no result (status {run.status})",
                       f"у запуска {run_id} нет результата (состояние: {status_ru(run.status)})")
    return run.result["geojson"]


@app.delete("/runs/{run_id}", tags=["runs"], response_model=RunState, operation_id="cancel_run")
def cancel_run(run_id: str, caller: Annotated[Caller, Depends(require("planner"))]) -> RunState:
    """Cancel a queued or running run of the key's organisation (stops its solve, on whichever server runs it);
    409 if it has already ended."""
    _run(run_id, caller)
    if not app.state.jobs.cancel(run_id):
        raise ApiError(409, f"run {run_id} has already ended", f"запуск {run_id} уже завершён")
    return _state(_run(run_id, caller))


KINDS = {"loss": "loss-reduction", "price": "price-impact"}
"""Estimate kinds as stored (``runs.kind``) and as named in paths."""
ESTIMATE_LINKS = {
    "GetEstimate": {"operationId": "get_estimate", "parameters": {"job_id": "$response.body#/id"}},
    "CancelEstimate": {"operationId": "cancel_estimate", "parameters": {"job_id": "$response.body#/id"}},
}
WAIT = Query(description="unset (default): answer 200 with the estimate when it is computed within "
                         "PLANNER_ESTIMATE_SYNC_S (5 s), else it becomes a job like a run: 202 with its id and a "
                         "Location to poll (GET /estimates/{id}); true: compute in the request, up to "
                         "PLANNER_ESTIMATE_DEADLINE_S (else 422); false: queue it as a job at once (202)")
ESTIMATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "queued as a job (wait=false, or unset and not computed within PLANNER_ESTIMATE_SYNC_S): "
                         "poll the Location", "model": EstimateJob,
          "headers": {"Location": {"description": "the job, /estimates/{id}", "schema": {"type": "string"}}},
          "links": ESTIMATE_LINKS}}


def _estimate_source(body: EstimateIn, caller: Caller) -> tuple[dict, list[str] | None, tuple]:
    """The scenario, centres and error location an estimate request names (a finished run's, a stored or an
    inline scenario)."""
    centres = body.centres
    if body.run_id is not None:
        run = _run(body.run_id, caller, full=True)
        if run.result is None:
            raise ApiError(409, f"run {short(body.run_id)} has no result",
                           f"у запуска {short(body.run_id)} нет результата")
        scenario, where = run.scenario, ("body", "run_id")
        centres = centres or [c["id"] for c in run.result["summary"].get("centres", [])]
    else:
        _, scenario = _scenario_for(body.scenario_id, body.scenario, caller)
        where = ("body", "scenario_id") if body.scenario_id is not None else ("body", "scenario")
    return scenario, centres, where


def _estimate_job(body: EstimateIn, kind: str, caller: Caller) -> JSONResponse:
    """Queue an estimate as a job (through the run queue and its quotas); 202 with its id and Location."""
    scenario, centres, _ = _estimate_source(body, caller)
    jid = _admit(RunRecord(scenario=scenario, key_id=caller.key_id, org=caller.org, kind=kind,
                           request={"centres": centres, "baseline": body.baseline}), caller)
    job = _job(jid, caller)
    return JSONResponse(_job_state(job).model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/estimates/{jid}"})


def _job(job_id: str, caller: Caller) -> RunRecord:
    """The estimate job ``job_id`` if the caller may see it, else 404."""
    with session(app.state.url) as s:
        job = s.scalar(select(RunRecord).where(RunRecord.id == job_id,
                                               runs_visible(caller.role, caller.org, "estimate")))
    if job is None:
        raise ApiError(404, f"no estimate job with id {short(job_id)}",
                       f"нет задания оценки с id {short(job_id)}")
    return job


def _job_state(job: RunRecord) -> EstimateJob:
    return EstimateJob(id=job.id, kind=KINDS[job.kind], status=job.status, progress=job.progress,
                       created=_iso(job.created), started=_iso(job.started), finished=_iso(job.finished),
                       error=job.error, error_ru=ru_run_error(job.error),
                       result=job.result if job.status == "succeeded" else None)


@app.get("/estimates/{job_id}", tags=["estimates"], response_model=EstimateJob, operation_id="get_estimate")
def get_estimate(job_id: str, caller: Annotated[Caller, Depends(require("viewer"))]) -> EstimateJob:
    """An estimate job's state, and its estimate once ``succeeded``."""
    return _job_state(_job(job_id, caller))


@app.delete("/estimates/{job_id}", tags=["estimates"], response_model=EstimateJob, operation_id="cancel_estimate")
def cancel_estimate(job_id: str, caller: Annotated[Caller, Depends(require("planner"))]) -> EstimateJob:
    """Cancel a queued or running estimate job (stops its process, on whichever server runs it); 409 if it has
    already ended."""
    _job(job_id, caller)
    if not app.state.jobs.cancel(job_id):
        raise ApiError(409, f"estimate job {short(job_id)} has already ended",
                       f"задание оценки {short(job_id)} уже завершено")
    return _job_state(_job(job_id, caller))


def _estimate(body: EstimateIn, kind: str, caller: Caller, wait: bool | None = None) -> dict | Response:
    """With ``wait`` false: queue the estimate as a job (202). Else run the estimate in the request, at most
    ``PLANNER_MAX_ESTIMATES`` at once in this server process (else 429): with ``wait`` true up to
    ``PLANNER_ESTIMATE_DEADLINE_S``; unset (the default), up to ``PLANNER_ESTIMATE_SYNC_S``, past which its process
    is stopped and the estimate becomes a job (202): no request holds a connection and a core for long
    (issue #19). Domain errors are 422s at their field:
    the scenario's (``["body", "scenario", ...]``, or ``["body", "scenario_id"]`` / ``["body", "run_id"]``
    for a stored one) or the centre id (``["body", "centres", i]``)."""
    if wait is False:
        return _estimate_job(body, kind, caller)
    if not app.state.estimates.acquire(blocking=False):
        n = app.state.limits.max_estimates
        raise _busy(f"{n} estimates are being computed, the most at once (PLANNER_MAX_ESTIMATES); retry later",
                    f"уже считается оценок: {n} — больше одновременно нельзя (PLANNER_MAX_ESTIMATES); повторите позже")
    try:
        answer = _estimate_now(body, kind, caller, handover=wait is None)
    finally:
        app.state.estimates.release()
    return _estimate_job(body, kind, caller) if answer is None else answer


def _estimate_now(body: EstimateIn, kind: str, caller: Caller, handover: bool = False) -> dict | None:
    """The estimate computed in the request; with ``handover``, within ``PLANNER_ESTIMATE_SYNC_S`` or None (not
    done by then: the caller makes it a job)."""
    from api.estimates import run_estimate

    scenario, centres, where = _estimate_source(body, caller)
    limits: Limits = app.state.limits
    window = min(limits.estimate_sync_s, limits.estimate_deadline_s) if handover else limits.estimate_deadline_s
    tag, value = run_estimate(kind, scenario, centres, body.baseline, window, limits.worker_memory_mb,
                              own_deadline=not handover)
    if tag == "deadline" and handover:
        return None
    if tag == "ok":
        return value
    if tag == "invalid":
        raise _invalid(value)
    if tag == "domain":
        raise _domain_error(value, where)
    if tag == "deadline":
        at = f" at stage '{value}'" if value else ""
        at_ru = f" на этапе «{value}»" if value else ""
        raise _invalid([((), f"the estimate did not finish within {limits.estimate_deadline_s} s (the service's "
                         f"deadline, PLANNER_ESTIMATE_DEADLINE_S) and was stopped{at}; submit it as a job "
                         "(?wait=false), "
                         "narrow the scope or the commodities, or submit the scenario as a run",
                         f"оценка не уложилась в {limits.estimate_deadline_s} с (срок сервиса, "
                         f"PLANNER_ESTIMATE_DEADLINE_S) и остановлена{at_ru}; отправьте её как задание "
                         "(?wait=false), "
                         "сузьте охват или товарные группы либо отправьте сценарий как запуск")], where)
    if tag == "memory":
        raise _invalid([((), f"the estimate needed more memory than the limit of {limits.worker_memory_mb} MiB "
                         "(PLANNER_WORKER_MEMORY_MB); narrow the scope or the commodities",
                         f"оценке не хватило предела памяти {limits.worker_memory_mb} МиБ "
                         "(PLANNER_WORKER_MEMORY_MB); сузьте охват или товарные группы")], where)
    raise RuntimeError(f"estimate failed in its process:\n{value}")


@app.post("/estimate/loss-reduction", tags=["estimates"], response_model=dict[str, Any],
          responses=ESTIMATE_RESPONSES)
def loss_reduction(body: EstimateIn, caller: Annotated[Caller, Depends(require("planner"))],
                   wait: Annotated[bool | None, WAIT] = None) -> Any:
    """Tonnes lost by commodity, stage and region with the centres, against the baseline (``wait=false``: as a
    job)."""
    return _estimate(body, "loss", caller, wait)


@app.post("/estimate/price-impact", tags=["estimates"], response_model=dict[str, Any],
          responses=ESTIMATE_RESPONSES)
def price_impact(body: EstimateIn, caller: Annotated[Caller, Depends(require("planner"))],
                 wait: Annotated[bool | None, WAIT] = None) -> Any:
    """Equilibrium price changes with the centres, against the baseline (``wait=false``: as a job)."""
    return _estimate(body, "price", caller, wait)


@app.post("/compare", tags=["runs"], response_model=CompareOut)
def compare(body: CompareIn, caller: Annotated[Caller, Depends(require("viewer"))]) -> dict:
    """Two finished runs side by side, as ``planner compare`` shows them (the same domain function): headline
    figures, centres opened, closed or resized by stable site identity, trade by outside market, by country and by
    border crossing (t a year, A, B, change), losses, prices and costs by commodity group; and, as before, each
    run's status, objective, gap, cost breakdown, centre ids and the ids open only in A or only in B."""
    from planner.compare import compare_inputs, compare_summaries
    from planner.data.loader import load_dataset

    summaries, labels = {}, {}
    for label, rid in (("a", body.run_a), ("b", body.run_b)):
        run = _run(rid, caller, full=True)
        if run.result is None:
            raise ApiError(409, f"run {rid} has no result", f"у запуска {rid} нет результата")
        summaries[label] = s = run.result["summary"]
        labels[label] = f"{s.get('scenario')} · {rid[:8]}"
    sa, sb = summaries["a"], summaries["b"]
    out = compare_summaries(sa, sb, labels["a"], labels["b"], *compare_inputs(load_dataset(), sa, sb))
    for label, s in summaries.items():
        out[label].update({k: s.get(k) for k in ("objective", "gap", "cost_breakdown", "loss_reduction_pct",
                                                 "price_change_pct")})
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
