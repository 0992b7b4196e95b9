"""Endpoints of the web workspace: the page, map layers, the scenario library, the parameter registry, the run
list and a run's files. Every data endpoint needs an API key (``X-API-Key``), like the rest of the API."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

import yaml
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from api.db import RunRecord, ScenarioRecord, key_of, runs_visible, session
from api.library import library, library_scenario, visible_scenario
from api.limits import runs_dir
from api.messages import NO_KEY, NO_KEY_RU, ApiError, item, status_ru
from api.web import TEMPLATES_DIR, offline_html
from api.web.layers import (
    LayerError,
    centres_layer,
    countries_layer,
    crossings_layer,
    outside_markets,
    region_layer,
    scenario_layers,
)
from planner.outputs.files import FILES, OPTIONAL_FILES
from planner.scenario import SolverSettings, short

router = APIRouter()
templates = Jinja2Templates(directory=TEMPLATES_DIR)


class Key(NamedTuple):
    """The key a page request came with: its role and organisation (what it may see, api.db)."""

    role: str
    org: str


def viewer(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> Key:
    """Dependency: an active key of any role; 401 otherwise. Returns its role and organisation."""
    found = key_of(x_api_key, request.app.state.url)
    if found is None:
        raise ApiError(401, NO_KEY, NO_KEY_RU)
    return Key(found[1], found[2])


Viewer = Annotated[Key, Depends(viewer)]


# ---------------------------------------------------------------- page


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def page(request: Request) -> HTMLResponse:
    """The workspace (one page; its views load data from the API with the key the user signs in with). The page's
    vocabulary carries the optional tile layer (``PLANNER_TILE_URL``, ``PLANNER_TILE_ATTRIBUTION``; null when
    unset), and its Content-Security-Policy admits that tile server's images only when one is set."""
    from planner.settings import COMMODITIES, FEDERAL_DISTRICTS

    markets = outside_markets()
    tiles = getattr(request.app.state, "tiles", None)
    vocab = {"commodities": [{"key": c.key, "ru": c.name_ru, "en": c.name_en} for c in COMMODITIES],
             "districts": [{"key": d.code, "ru": d.name_ru, "en": d.name_en} for d in FEDERAL_DISTRICTS],
             "markets": markets,
             "tiles": {"url": tiles.url, "attribution": tiles.attribution} if tiles is not None else None}
    return offline_html(templates.TemplateResponse(request, "index.html", {"vocab": vocab}),
                        tiles.origin if tiles is not None else None)


@router.get("/whoami", tags=["web"])
def whoami(key: Viewer) -> dict:
    """The role of the key sent (viewer, planner or admin) and its organisation: the pages offer run and save only
    to planners and admins."""
    return {"role": key.role, "org": key.org}


# ---------------------------------------------------------------- map layers


@router.get("/datasets/layers/regions", tags=["datasets"])
def layer_regions(_: Viewer, indicator: Annotated[str, Query(max_length=40)] = "employment_share_pct",
                  commodity: Annotated[str, Query(max_length=40)] = "vegetables") -> dict:
    """Region polygons (EPSG:4326) with names (ru, en) and an indicator's value, unit, year, source and
    approximate flag. ``indicator``: employment_share_pct, grp_share_pct (% of employment / gross value added in
    agriculture), employment_lq, grp_lq (location quotients), production (thousand t of ``commodity``)."""
    try:
        return region_layer(indicator, commodity)
    except LayerError as exc:
        field = str(exc).split(":")[0]
        raise HTTPException(422, [item(["query", field], str(exc), exc.ru)]) from None


@router.get("/datasets/layers/countries", tags=["datasets"])
def layer_countries(_: Viewer) -> dict:
    """Countries around Russia (Natural Earth, public domain) as the map's base layer, with Russian and English
    names; ``meta.source`` names the copy used (the dataset's 1:50m extract, else pyogrio's 1:110m copy)."""
    return _countries()


@lru_cache(maxsize=1)
def _countries() -> dict:
    return countries_layer()


@router.get("/datasets/layers/centres", tags=["datasets"])
def layer_centres(_: Viewer) -> dict:
    """Existing centres (ОРЦ) and large wholesale markets as points, with capacity (thousand t) and sources."""
    return centres_layer()


@router.get("/datasets/layers/crossings", tags=["datasets"])
def layer_crossings(_: Viewer) -> dict:
    """Border crossings as points: countries, mode, typical delay (hours), all open (the dataset's state)."""
    return crossings_layer()


def _visible(request: Request, key: Key, scenario_id: str) -> ScenarioRecord | None:
    """The stored scenario if the key's organisation may read it (its own, the library's; an admin: any), else the
    library file of that name (``api.library``)."""
    return visible_scenario(request.app.state.url, key.role, key.org, scenario_id)


def _scenario_body(request: Request, scenario: str, key: Key) -> dict:
    """A library scenario's body by name, else a stored scenario's by id (one the key may read); 404 if neither."""
    lib = library()
    if scenario in lib:
        return lib[scenario]["body"]
    rec = _visible(request, key, scenario)
    if rec is None:
        raise ApiError(404, f"scenario: no library scenario or stored scenario {short(scenario)}",
                       f"scenario: нет ни библиотечного, ни сохранённого сценария {short(scenario)}")
    return rec.body


@router.get("/datasets/layers/scenario", tags=["datasets"])
def layer_scenario(request: Request, key: Viewer,
                   scenario: Annotated[str, Query(max_length=200)] = "ncfd_expansion") -> dict:
    """For a library scenario (name) or a stored one (id): its border crossings with their open/closed state and
    its candidate sites, as two GeoJSON collections."""
    return scenario_layers(_scenario_body(request, scenario, key))


# ---------------------------------------------------------------- library and registry


@router.get("/library", tags=["scenarios"])
def list_library(_: Viewer) -> list[dict]:
    """The library scenarios (read-only): name and title in Russian and English."""
    return [{k: v for k, v in s.items() if k in ("name", "title_ru", "title_en")} for s in library().values()]


@router.get("/library/{name}", tags=["scenarios"])
def get_library(name: str, _: Viewer) -> dict:
    """One library scenario with its body (``extends`` resolved)."""
    found = library_scenario(name)
    if found is None:
        raise ApiError(404, f"no library scenario {short(name)}", f"нет библиотечного сценария {short(name)}")
    return {k: v for k, v in found.items() if k != "modified"}


class YamlResponse(PlainTextResponse):
    """A YAML document (UTF-8)."""

    media_type = "application/yaml"


YAML_200 = {200: {"description": "the scenario as a YAML file (UTF-8), ready for `planner run`",
                  "content": {"application/yaml": {"schema": {
                      "type": "object", "description": "a scenario file: the fields of a scenario (the body's "
                                                       "schema), as YAML"}}}}}
"""OpenAPI entry of the YAML downloads: the media type they answer, with the schema of the document it parses to
(a mapping; ``{"type": "string"}`` would be wrong, since a client — schemathesis among them — parses YAML before
checking it against the schema)."""


def _yaml(body: dict, name: str) -> YamlResponse:
    text = yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
    return YamlResponse(text, media_type="application/yaml; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.yaml"'})


@router.get("/library/{name}/yaml", tags=["scenarios"], response_class=YamlResponse, responses=YAML_200)
def library_yaml(name: str, _: Viewer) -> YamlResponse:
    """A library scenario as YAML (the resolved body)."""
    return _yaml(get_library(name, _)["body"], name)


@router.get("/scenarios/{scenario_id}/yaml", tags=["scenarios"], response_class=YamlResponse, responses=YAML_200)
def scenario_yaml(scenario_id: str, request: Request, key: Viewer) -> YamlResponse:
    """A stored scenario as YAML, ready to save as a scenario file."""
    rec = _visible(request, key, scenario_id)
    if rec is None:
        raise ApiError(404, f"no stored scenario with id {short(scenario_id)}",
                       f"нет сохранённого сценария с id {short(scenario_id)}")
    return _yaml(rec.body, rec.name)


@router.get("/parameters", tags=["scenarios"])
def parameters(_: Viewer) -> list[dict]:
    """The parameter registry: name, unit, default, admissible range, source and description of each."""
    from planner import parameters as reg

    out = []
    for group in ("PARAMETERS", "GEO_PARAMETERS", "CENTRE_PARAMETERS"):
        for p in getattr(reg, group, ()):
            out.append({"name": p.name, "unit": p.unit, "default": p.default, "minimum": p.minimum,
                        "maximum": p.maximum, "source": p.source, "description": p.description})
    return out


# ---------------------------------------------------------------- runs


class RunItem(BaseModel):
    """One run in the list: state and the scenario's name."""

    id: str
    scenario_id: str | None
    scenario_name: str | None
    status: str
    progress: str
    gap: float | None
    created: str
    started: str | None
    finished: str | None
    time_limit_s: float | None = Field(None, description="the solver's time limit of the run's scenario, s "
                                                         "(solver.time_limit_s or its default): the page's "
                                                         "progress bar runs against it")


def _time_limit(scenario: dict | None) -> float | None:
    """``solver.time_limit_s`` of a stored run's scenario body, else the scenario model's default (seconds)."""
    solver = (scenario or {}).get("solver") or {}
    value = solver.get("time_limit_s") if isinstance(solver, dict) else None
    return float(value) if isinstance(value, int | float) else SolverSettings.model_fields["time_limit_s"].default


class RunPage(BaseModel):
    """A page of runs, newest first, and how many match the filters."""

    total: int
    limit: int
    offset: int
    items: list[RunItem]


def _iso(t) -> str | None:
    return t.isoformat() if t is not None else None


@router.get("/runs", tags=["runs"], response_model=RunPage)
def list_runs(request: Request, key: Viewer,
              status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
              scenario_id: Annotated[str | None, Query(max_length=64)] = None,
              scenario_name: Annotated[str | None, Query(max_length=200)] = None,
              limit: Annotated[int, Query(ge=1, le=200)] = 20,
              offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0) -> RunPage:
    """Runs, newest first, paged (``limit`` 1–200, ``offset``) and filtered by status, stored scenario id or
    scenario name."""
    cols = (RunRecord.id, RunRecord.scenario_id, RunRecord.scenario, RunRecord.status, RunRecord.progress,
            RunRecord.gap, RunRecord.created, RunRecord.started, RunRecord.finished)
    # never the results: a page of the list stays small however large the runs' results are; only the runs of the
    # key's organisation (an admin: all)
    q = select(*cols).where(runs_visible(key.role, key.org))
    if status:
        q = q.where(RunRecord.status == status)
    if scenario_id:
        q = q.where(RunRecord.scenario_id == scenario_id)
    q = q.order_by(RunRecord.created.desc())
    with session(request.app.state.url) as s:
        if scenario_name:  # the name sits inside the scenario's JSON: filtered here, portable across databases
            rows = [r for r in s.execute(q) if (r.scenario or {}).get("name") == scenario_name]
            total, rows = len(rows), rows[offset:offset + limit]
        else:
            total = s.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
            rows = list(s.execute(q.limit(limit).offset(offset)))
    items = [RunItem(id=r.id, scenario_id=r.scenario_id, scenario_name=(r.scenario or {}).get("name"),
                     status=r.status, progress=r.progress, gap=r.gap, created=_iso(r.created),
                     started=_iso(r.started), finished=_iso(r.finished), time_limit_s=_time_limit(r.scenario))
             for r in rows]
    return RunPage(total=total, limit=limit, offset=offset, items=items)


RUN_FILES: tuple[str, ...] = (*FILES, *(f for f in OPTIONAL_FILES if f != "run.log"))
"""The names a run's files may have, in the order they are listed: :data:`planner.outputs.FILES` (every run)
then the optional ones (economics ranges, inter-district flows, districts, share curve); nothing else in a run's
folder is ever served."""
NO_FILES = ("run {rid} has no files on this server: its worker writes them into PLANNER_RUNS_DIR/{rid}/ when the "
            "run succeeds; a run that succeeded before the service wrote them (or on a server with another runs "
            "folder) has none: run its scenario again")
NO_FILES_RU = ("у запуска {rid} нет файлов на этом сервере: процесс расчёта записывает их в папку "
               "PLANNER_RUNS_DIR/{rid}/, когда запуск завершается успешно; у запуска, завершённого до того, как "
               "служба стала их записывать (или на сервере с другой папкой запусков), их нет: запустите сценарий "
               "ещё раз")


def _run_folder(request: Request, run_id: str, key: Key) -> tuple[Path, list[str]]:
    """The run's folder and the names of its files (those of :data:`RUN_FILES` it holds), as its worker wrote
    them with :func:`planner.outputs.write_outputs`; 404 for another organisation's run, as for a missing one;
    409 before the run has succeeded, or when its folder holds none."""
    with session(request.app.state.url) as s:
        row = s.execute(select(RunRecord.id, RunRecord.status, RunRecord.result.is_(None))
                        .where(RunRecord.id == run_id, runs_visible(key.role, key.org))).first()
    if row is None:
        raise ApiError(404, f"no run with id {short(run_id)}", f"нет запуска с id {short(run_id)}")
    rid, status, no_result = row
    if no_result or status != "succeeded":
        raise ApiError(409, f"run {rid} has no files (status {status})",
                       f"у запуска {rid} нет файлов (состояние: {status_ru(status)})")
    folder = runs_dir() / rid
    names = [f for f in RUN_FILES if (folder / f).is_file()]
    if not names:
        raise ApiError(409, NO_FILES.format(rid=rid), NO_FILES_RU.format(rid=rid))
    return folder, names


@router.get("/runs/{run_id}/files", tags=["runs"])
def run_files(run_id: str, request: Request, key: Viewer) -> list[dict]:
    """The succeeded run's files with their sizes in bytes and media types, as ``planner run -o`` writes them:
    report.html, report.pdf, results.xlsx, network.gpkg, layer_<kind>.geojson, network.geojson, map.png,
    map.svg, one CSV per table (UTF-8 with BOM), summary.json, and with economics ranges.csv and the district
    tables (409 while the run has none)."""
    folder, names = _run_folder(request, run_id, key)
    return [{"name": f, "bytes": (folder / f).stat().st_size, "media_type": media_type(f),
             "url": f"/runs/{run_id}/files/{f}"} for f in names]


FILE_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "geojson": "application/geo+json",
              "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
              "pdf": "application/pdf", "html": "text/html; charset=utf-8",
              "gpkg": "application/geopackage+sqlite3", "png": "image/png", "svg": "image/svg+xml"}
"""Media type of each kind of run file, by its extension (every extension of :data:`RUN_FILES`)."""
BINARY = {"type": "string", "format": "binary"}
FILE_200 = {200: {"description": "the file: report.pdf or report.html (the briefing), results.xlsx (the "
                                 "workbook), network.gpkg (GeoPackage, a layer per kind), a GeoJSON layer, "
                                 "map.png or map.svg, a table as CSV (UTF-8 with BOM), summary.json",
                  "content": {"application/json": {"schema": {"type": "object"}},
                              "text/csv": {"schema": {"type": "string"}},
                              "application/geo+json": {"schema": {"type": "object"}},
                              FILE_TYPES["xlsx"]: {"schema": BINARY},
                              "application/pdf": {"schema": BINARY},
                              "text/html": {"schema": {"type": "string"}},
                              "application/geopackage+sqlite3": {"schema": BINARY},
                              "image/png": {"schema": BINARY},
                              "image/svg+xml": {"schema": {"type": "string"}}}}}
"""OpenAPI entry of a run file download: every media type it may answer, each with the schema of what a client
parses from it (JSON documents are objects; CSV, HTML and SVG are text; the workbook, PDF, GeoPackage and PNG are
bytes)."""
FILE_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
"""Content-Security-Policy of a downloaded file: a report or SVG opened from this origin runs no script and loads
nothing (the report's images are inline)."""


def media_type(name: str) -> str:
    """The media type a run file is served with, by its extension (:data:`FILE_TYPES`)."""
    return FILE_TYPES[name.rsplit(".", 1)[1]]


@router.get("/runs/{run_id}/files/{name}", tags=["runs"], response_class=FileResponse, responses=FILE_200)
def run_file(run_id: str, name: str, request: Request, key: Viewer) -> FileResponse:
    """Download one file of the run's folder; only the names ``GET /runs/{id}/files`` lists are served."""
    folder, names = _run_folder(request, run_id, key)
    if name not in names:
        raise ApiError(404, f"run {run_id} has no file {short(name)}; files: {', '.join(names)}",
                       f"у запуска {run_id} нет файла {short(name)}; файлы: {', '.join(names)}")
    return FileResponse(folder / name, media_type=media_type(name), filename=f"{run_id[:8]}_{name}",
                        headers={"Content-Security-Policy": FILE_CSP, "X-Content-Type-Options": "nosniff"})
