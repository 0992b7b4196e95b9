"""The web workspace's server side: offline /docs and /redoc, the key's security scheme, the page and its
assets, map layers, the scenario library, the parameter registry, the run list (paged, filtered) and a run's files
(only its own, written from its stored result). The browser flow is in tests/test_web_browser.py."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from servers import free_port, wait_healthy  # tests/servers.py

from api.db import DEFAULT_ORG, RunRecord, create_key, now, session

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


@pytest.fixture
def web(api):
    """The service's test client (``conftest.api``): client, planner and viewer key headers, database URL."""
    return api


def _finished_run(url: str, name: str = "stored_run", status: str = "succeeded", org: str = DEFAULT_ORG) -> str:
    """A run record with a small stored result (as the worker writes it), for the list and download endpoints."""
    result = {"summary": {"scenario": name, "status": "optimal", "objective": 1.5e9, "gap": 0.0,
                          "centres": [{"id": "pyatigorsk", "name_ru": "Пятигорск", "name_en": "Pyatigorsk",
                                       "throughput_t": 1000.0}],
                          "cost_breakdown": {"transport and handling": 1.0e9}},
              "tables": {"sites": [{"id": "pyatigorsk", "name_ru": "Пятигорск", "throughput_t": 1000.0}],
                         "flows": [{"from_id": "a", "to_id": "b", "commodity": "vegetables", "tonnes": 10.0}],
                         "losses": [], "losses_by_region": [], "prices": []},
              "geojson": {"type": "FeatureCollection", "features": []}}
    with session(url) as s:
        run = RunRecord(scenario_id=None, scenario={"name": name}, status=status, progress="done",
                        result=result if status == "succeeded" else None, finished=now(), org=org)
        s.add(run)
        s.commit()
        return run.id


def test_docs_and_redoc_are_served_offline_with_an_authorize_button(web):
    tc, _, _, _ = web
    for path in ("/docs", "/redoc"):
        page = tc.get(path)
        assert page.status_code == 200
        assert not OUTSIDE.search(page.text), OUTSIDE.search(page.text)
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in re.findall(r"""(?:src|href)=["']?(/[^"' >]+)""", page.text):
            assert tc.get(asset).status_code == 200, asset
    assert "cdn.redoc.ly" not in tc.get("/static-offline-docs/redoc.standalone.js").text
    schema = tc.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": schema["components"]["securitySchemes"]["APIKey"]["description"]}
    assert schema["paths"]["/runs"]["post"]["security"] == [{"APIKey": []}]
    assert "security" not in schema["paths"]["/health"]["get"]
    params = schema["paths"]["/runs/{run_id}"]["get"].get("parameters", [])
    assert all(p["name"].lower() != "x-api-key" for p in params)


def test_page_and_assets_load_from_this_server_only(web):
    tc, _, _, _ = web
    page = tc.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not OUTSIDE.search(page.text)
    assert "Планировщик сети ОРЦ" in page.text and 'lang="ru"' in page.text  # Russian by default
    vocab = json.loads(re.search(r"window.ORC_VOCAB = (.*?);</script>", page.text).group(1))
    assert {c["key"]: c["ru"] for c in vocab["commodities"]}["potatoes"] == "картофель"
    assert {d["key"]: d["en"] for d in vocab["districts"]}["NCFD"] == "North Caucasus Federal District"
    for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)""", page.text):
        assert tc.get(asset).status_code == 200, asset
    assert "BSD 2-Clause" in tc.get("/static/vendor/leaflet-1.9.4/LICENSE").text
    js = tc.get("/static/js/app.js").text
    assert "sessionStorage" in js and "X-API-Key" in js and "http://" not in js and "https://" not in js
    i18n = tc.get("/static/js/i18n.js").text.split("window.ORC_I18N")[1]
    ru = set(re.findall(r"\b([a-z_][a-z_0-9]*): \"", i18n.split("en: {")[0]))
    en = set(re.findall(r"\b([a-z_][a-z_0-9]*): \"", i18n.split("en: {")[1]))
    assert ru == en and len(ru) > 100  # every label in both languages
    used = set(re.findall(r'data-i18n="([a-z_0-9]+)"', page.text)) | set(re.findall(r'\bt\("([a-z_0-9]+)"\)', js))
    assert used and used <= ru, used - ru


def _js_pairs(js: str, name: str) -> dict[str, tuple[str, str]]:
    """The ``{key: {ru, en}}`` table ``window.<name>`` of a script, as key → (Russian, English)."""
    block = re.search(rf"window\.{name} = \{{(.*?)\}};\n", js, re.S).group(1)
    return {k: (ru, en) for k, ru, en in re.findall(r'([a-z_]+|"[^"]+"): \{ ru: "([^"]+)", en: "([^"]+)" \}', block)}


def test_solver_status_sizes_and_group_colours_have_both_languages(web):
    """Values the API sends as English words (the solver's status, a centre's module id) have a Russian name on the
    page, and the result map's flow colours are the report charts' palette, one per commodity group."""
    from optimization import solve
    from planner.outputs.charts import GROUP_COLOURS
    from planner.outputs.labels import SIZE_NAMES
    from planner.parameters import STORE_TYPES
    from planner.settings import COMMODITIES

    tc, _, _, _ = web
    js = tc.get("/static/js/i18n.js").text
    cyrillic = re.compile("[а-яё]", re.I)
    status = _js_pairs(js, "ORC_SOLVER_STATUS")
    # every status word optimization/solve.py gives a result
    words = set(re.findall(r'status(?:, msg)? = "([a-z_]+)"', Path(solve.__file__).read_text(encoding="utf-8")))
    assert words >= {"optimal", "feasible", "infeasible", "time_limit_no_solution"}
    assert words <= set(status), words - set(status)
    sizes, types = _js_pairs(js, "ORC_SIZES"), _js_pairs(js, "ORC_STORE_TYPES")
    assert set(SIZE_NAMES) <= set(sizes) and set(STORE_TYPES) <= set(types)
    assert {k: v[0] for k, v in sizes.items()} == {k: v[0] for k, v in SIZE_NAMES.items()}  # the report's names
    for ru, en in [*status.values(), *sizes.values(), *types.values()]:
        assert cyrillic.search(ru) and not cyrillic.search(en), (ru, en)
    colours = re.findall(r'"(#[0-9a-f]{6})"', re.search(r"ORC_GROUP_COLOURS = \[(.*?)\]", js).group(1))
    assert tuple(colours) == GROUP_COLOURS and len(set(colours)) >= len(COMMODITIES)


def test_keys_and_roles(web):
    tc, p, v, _ = web
    assert tc.get("/whoami").status_code == 401
    assert tc.get("/whoami", headers={"X-API-Key": "orc_wrong"}).status_code == 401
    assert tc.get("/whoami", headers=v).json() == {"role": "viewer", "org": "default"}
    assert tc.get("/whoami", headers=p).json() == {"role": "planner", "org": "default"}
    for path in ("/datasets/layers/regions", "/datasets/layers/centres", "/library", "/parameters", "/runs"):
        assert tc.get(path).status_code == 401, path


def test_region_layer_carries_indicator_unit_year_source(web, dataset):
    tc, _, v, _ = web
    doc = tc.get("/datasets/layers/regions", headers=v).json()
    assert doc["meta"]["unit"] == "%" and len(doc["features"]) >= 83
    stav = next(f["properties"] for f in doc["features"] if f["properties"]["region_id"] == "RU-STA")
    row = dataset.agri_shares.set_index("region_id").loc["RU-STA"]
    assert stav["value"] == pytest.approx(float(row["employment_share_pct"]))
    assert stav["year"] == int(row["year_employment"]) and stav["source"] == row["source"]
    assert stav["name_ru"] == "Ставропольский край" and stav["name_en"]
    grain = tc.get("/datasets/layers/regions?indicator=production&commodity=grain", headers=v).json()
    prod = dataset.production
    want = prod[(prod["area_id"] == "RU-STA") & (prod["commodity"] == "grain") & (prod["area_level"] == "region")]
    got = next(f["properties"] for f in grain["features"] if f["properties"]["region_id"] == "RU-STA")
    assert got["value"] == pytest.approx(float(want.sort_values("year")["quantity_kt"].iloc[-1]))
    assert grain["meta"]["commodity_ru"].startswith("зерно")
    sur = tc.get("/datasets/layers/regions?indicator=surplus&commodity=potatoes", headers=v).json()
    from planner.balance import regional_balance
    from planner.parameters import ParameterSet

    bal = regional_balance(dataset, ["RU-STA", "RU-MOW"], ["potatoes"], ParameterSet(dataset.loss_rates))
    want = dict(zip(bal["region_id"], bal["surplus_kt"], strict=True))
    got = {f["properties"]["region_id"]: f["properties"] for f in sur["features"]}
    assert got["RU-STA"]["value"] == pytest.approx(want["RU-STA"])
    assert got["RU-MOW"]["value"] == pytest.approx(want["RU-MOW"]) and got["RU-MOW"]["value"] < 0  # a city eats
    assert "demand" in got["RU-STA"]["source"] and sur["meta"]["unit"].startswith("тыс. т/год")
    # the partners' first-level regions are on the base layer, named in both languages, shaded where data exist
    pot = tc.get("/datasets/layers/regions?indicator=production&commodity=potatoes", headers=v).json()
    by_id = {f["properties"]["region_id"]: f for f in pot["features"]}
    partners = dataset.regions[dataset.regions["country_id"].isin(["KZ", "BY", "AM", "KG", "UZ", "TJ"])]
    assert set(partners["region_id"]) <= set(by_id)
    ast = by_id["KZ-71"]
    assert ast["geometry"]["type"] in {"Polygon", "MultiPolygon"} and ast["properties"]["name_ru"] == "Астана"
    want = prod[(prod["area_id"] == "KZ-10") & (prod["commodity"] == "potatoes") & (prod["area_level"] == "region")]
    assert by_id["KZ-10"]["properties"]["value"] == pytest.approx(float(want["quantity_kt"].iloc[-1]))
    assert by_id["KZ-10"]["properties"]["outline_approximate"] and not by_id["BY-HM"]["properties"][
        "outline_approximate"]
    bad = tc.get("/datasets/layers/regions?indicator=bogus", headers=v)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "indicator"]
    bad = tc.get("/datasets/layers/regions?indicator=production&commodity=rice", headers=v)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "commodity"]


def test_scenario_layers_follow_the_scenario(web):
    tc, _, v, _ = web
    open_ = tc.get("/datasets/layers/scenario?scenario=eaeu_crossborder", headers=v).json()
    closed = tc.get("/datasets/layers/scenario?scenario=eaeu_upper_lars_closed", headers=v).json()
    state = {f["properties"]["crossing_id"]: f["properties"]["open"] for f in closed["crossings"]["features"]}
    assert state["ru_ge_upper_lars"] is False
    assert {f["properties"]["crossing_id"]: f["properties"]["open"]
            for f in open_["crossings"]["features"]}["ru_ge_upper_lars"] is True
    assert len(closed["candidates"]["features"]) > 0
    assert tc.get("/datasets/layers/scenario?scenario=nope", headers=v).status_code == 404
    countries = tc.get("/datasets/layers/countries", headers=v).json()
    names = {f["properties"]["iso3"]: (f["properties"]["name_ru"], f["properties"]["name_en"])
             for f in countries["features"]}
    assert names["KAZ"] == ("Казахстан", "Kazakhstan") and names["GEO"][0] == "Грузия" and "RUS" not in names
    assert "Natural Earth" in countries["meta"]["source"]
    centres = tc.get("/datasets/layers/centres", headers=v).json()["features"]
    assert {f["properties"]["kind"] for f in centres} == {"orc", "wholesale_market"}


def test_library_yaml_and_parameters(web):
    tc, p, v, _ = web
    lib = {s["name"]: s for s in tc.get("/library", headers=v).json()}
    assert "ncfd_expansion" in lib and lib["ncfd_expansion"]["title_ru"]
    child = tc.get("/library/eaeu_upper_lars_closed", headers=v).json()["body"]
    assert child["borders"]["ru_ge_upper_lars"]["open"] is False and "extends" not in child
    text = tc.get("/library/ncfd_expansion/yaml", headers=v)
    assert text.status_code == 200 and "name: ncfd_expansion" in text.text
    assert tc.get("/library/../etc", headers=v).status_code == 404
    sid = tc.post("/scenarios", json={"name": "web_yaml", "commodities": ["vegetables"]},
                  headers=p).json()["id"]
    assert "web_yaml" in tc.get(f"/scenarios/{sid}/yaml", headers=v).text
    assert tc.get("/scenarios/nope/yaml", headers=v).status_code == 404
    params = {q["name"]: q for q in tc.get("/parameters", headers=v).json()}
    speed = params["road_speed_kmh"]
    assert (speed["unit"], speed["minimum"], speed["maximum"]) == ("km/h", 10, 120) and speed["source"]


def test_run_list_is_paged_and_filtered(web):
    tc, _, v, url = web
    ids = [_finished_run(url, f"s{i % 2}") for i in range(5)]
    failed = _finished_run(url, "s0", status="failed")
    page = tc.get("/runs?limit=2", headers=v).json()
    assert page["total"] == 6 and len(page["items"]) == 2 and page["items"][0]["id"] == failed  # newest first
    rest = tc.get("/runs?limit=2&offset=4", headers=v).json()
    assert [r["id"] for r in rest["items"]] == [ids[1], ids[0]]
    assert tc.get("/runs?status=failed", headers=v).json()["total"] == 1
    assert tc.get("/runs?status=succeeded&scenario_name=s0", headers=v).json()["total"] == 3
    assert tc.get("/runs?status=nonsense", headers=v).status_code == 422
    assert tc.get("/runs?limit=0", headers=v).status_code == 422
    assert tc.get(f"/runs?offset={10 ** 30}", headers=v).status_code == 422  # never an overflow in the database
    # each run carries its scenario's solver time limit (the page's progress bar runs against it), s
    assert {r["time_limit_s"] for r in page["items"]} == {120.0}  # the scenario model's default
    with session(url) as s:
        s.add(RunRecord(scenario_id=None, scenario={"name": "quick", "solver": {"time_limit_s": 45}},
                        status="queued", progress="queued", org=DEFAULT_ORG))
        s.commit()
    assert tc.get("/runs?scenario_name=quick", headers=v).json()["items"][0]["time_limit_s"] == 45.0


def test_a_real_run_offers_every_output_file_the_command_line_writes(tmp_path, monkeypatch):
    """A run through the job manager (a worker process, a real solve) writes its folder with the command line's
    writer (``planner.outputs.write_outputs``): every file of ``FILES`` is listed and served with its media type —
    the PDF report is a PDF, the GeoPackage opens with its layers, the workbook is the formatted one (README
    sheet) —, nothing else in the folder is served, and only to a key of the run's organisation."""
    import openpyxl
    import pyogrio
    from conftest import SMALL_RUN
    from fastapi.testclient import TestClient

    from api.app import create_app
    from planner.outputs import FILES, LAYERS

    for var in ("PLANNER_MAX_QUEUE", "PLANNER_MAX_RUNS_PER_KEY", "PLANNER_MAX_TIME_LIMIT_S", "PLANNER_MAX_RUNS"):
        monkeypatch.delenv(var, raising=False)
    url = f"sqlite:///{tmp_path / 'files.db'}"
    _, pk = create_key("planner", url=url)
    _, vk = create_key("viewer", url=url)
    _, other = create_key("viewer", url=url, org="other_ministry")
    p, v = {"X-API-Key": pk}, {"X-API-Key": vk}
    with TestClient(create_app(url, start_jobs=True), raise_server_exceptions=False) as tc:
        rid = tc.post("/runs", json={"scenario": SMALL_RUN}, headers=p).json()["id"]
        for _ in range(1200):  # up to 5 minutes on a loaded machine (about 20 s alone)
            state = tc.get(f"/runs/{rid}", headers=v).json()
            if state["status"] not in ("queued", "running"):
                break
            if state["status"] == "running":  # files are listed only once the run has succeeded
                assert tc.get(f"/runs/{rid}/files", headers=v).status_code == 409
            time.sleep(0.25)
        assert state["status"] == "succeeded", state
        listed = {f["name"]: f for f in tc.get(f"/runs/{rid}/files", headers=v).json()}
        assert set(FILES) <= set(listed), set(FILES) - set(listed)
        assert listed["report.pdf"]["media_type"] == "application/pdf" and listed["report.pdf"]["bytes"] > 10_000
        pdf = tc.get(f"/runs/{rid}/files/report.pdf", headers=v)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        gpkg = tc.get(f"/runs/{rid}/files/network.gpkg", headers=v)
        assert gpkg.status_code == 200 and gpkg.headers["content-type"] == "application/geopackage+sqlite3"
        (tmp_path / "got.gpkg").write_bytes(gpkg.content)
        assert {name for name, _ in pyogrio.list_layers(tmp_path / "got.gpkg")} == set(LAYERS)
        centres = pyogrio.read_dataframe(tmp_path / "got.gpkg", layer="centres")
        assert len(centres) >= 6  # the six opened centres (and any existing ones in scope)
        xlsx = tc.get(f"/runs/{rid}/files/results.xlsx", headers=v)
        assert "spreadsheetml" in xlsx.headers["content-type"]
        assert "README" in openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True).sheetnames
        expected = {"report.html": "text/html", "map.png": "image/png", "map.svg": "image/svg+xml",
                    "layer_flows.geojson": "application/geo+json", "sites.csv": "text/csv",
                    "summary.json": "application/json"}
        for name, media in expected.items():
            r = tc.get(f"/runs/{rid}/files/{name}", headers=v)
            assert r.status_code == 200 and r.headers["content-type"].split(";")[0] == media, name
            assert "sandbox" in r.headers["content-security-policy"], name  # a report opened here runs no script
        assert tc.get(f"/runs/{rid}/files/sites.csv", headers=v).content.startswith(b"\xef\xbb\xbf")
        assert json.loads(tc.get(f"/runs/{rid}/files/summary.json", headers=v).content)["scenario"] == "api_small"
        folder = tmp_path / "runs" / rid
        assert folder.is_dir()  # PLANNER_RUNS_DIR/<run id>/
        (folder / "secret.txt").write_text("not a run file")
        for name in ("secret.txt", "..%2F..%2Ffiles.db", "%2Fetc%2Fpasswd", "run.log"):
            assert tc.get(f"/runs/{rid}/files/{name}", headers=v).status_code == 404, name
        assert tc.get(f"/runs/{rid}/files/report.pdf").status_code == 401
        assert tc.get(f"/runs/{rid}/files/report.pdf", headers={"X-API-Key": other}).status_code == 404
        assert tc.get("/runs/nope/files", headers=v).status_code == 404


def test_run_files_answer_409_before_success_and_when_the_folder_holds_none(web, small_run_files):
    """A failed run has no files (409); a succeeded run whose folder is missing (finished before the service wrote
    files, or on a server with another ``PLANNER_RUNS_DIR``) says so with 409 rather than serving something else;
    with its folder in place it lists exactly the output files."""
    from conftest import with_files

    from planner.outputs import FILES

    tc, _, v, url = web
    failed = _finished_run(url, status="failed")
    assert tc.get(f"/runs/{failed}/files", headers=v).status_code == 409
    bare = _finished_run(url)
    r = tc.get(f"/runs/{bare}/files", headers=v)
    assert r.status_code == 409 and "PLANNER_RUNS_DIR" in r.json()["detail"], r.text
    assert "запустите сценарий ещё раз" in r.json()["detail_ru"]
    rid = with_files(_finished_run(url), small_run_files)
    names = [f["name"] for f in tc.get(f"/runs/{rid}/files", headers=v).json()]
    assert names[:len(FILES)] == list(FILES)


def test_pages_show_only_the_keys_organisation(web):
    """The run list, a run's files and a stored scenario's YAML are scoped to the key's organisation (404 for
    another's, as for a missing id); an admin sees all."""
    tc, p, v, url = web
    ours = _finished_run(url, "ours")
    theirs = _finished_run(url, "theirs", org="other_ministry")
    _, other = create_key("viewer", url=url, org="other_ministry")
    _, admin = create_key("admin", url=url, org="ops")
    assert [r["id"] for r in tc.get("/runs", headers=v).json()["items"]] == [ours]
    assert [r["id"] for r in tc.get("/runs", headers={"X-API-Key": other}).json()["items"]] == [theirs]
    assert tc.get("/runs", headers={"X-API-Key": admin}).json()["total"] == 2
    assert tc.get(f"/runs/{theirs}/files", headers=v).status_code == 404
    assert tc.get(f"/runs/{ours}/files", headers={"X-API-Key": other}).status_code == 404
    sid = tc.post("/scenarios", json={"name": "ours_only", "scope": {"regions": ["RU-KB"]},
                                      "commodities": ["vegetables"]}, headers=p).json()["id"]
    assert tc.get(f"/scenarios/{sid}/yaml", headers=v).status_code == 200
    assert tc.get(f"/scenarios/{sid}/yaml", headers={"X-API-Key": other}).status_code == 404
    assert tc.get(f"/datasets/layers/scenario?scenario={sid}", headers={"X-API-Key": other}).status_code == 404
    assert tc.get("/whoami", headers={"X-API-Key": admin}).json() == {"role": "admin", "org": "ops"}


def _requirement_closure(requires: list[str], omit: frozenset[str] = frozenset()) -> dict[str, object]:
    """The installed distributions (of the environment running the tests) that ``pip install`` of a wheel whose
    ``Requires-Dist`` is ``requires`` would bring: each requirement, its extras' requirements and theirs, markers
    evaluated for this interpreter; by normalised name, leaving out the names in ``omit`` (and what only they
    need). A requirement this environment does not have installed fails the test: the main venv must hold it."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, object] = {}
    todo = [Requirement(r) for r in requires]
    while todo:
        req = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
            continue
        name = canonicalize_name(req.name)
        if name in omit:
            continue
        dist = md.distribution(req.name)  # PackageNotFoundError: the main venv lacks a declared dependency
        extras = set(req.extras)
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in found:
            continue
        found[key] = dist
        for sub in dist.requires or []:
            r = Requirement(sub)
            if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in ("", *extras)):
                todo.append(r)
    return {k.split("[")[0]: d for k, d in found.items()}


def _dependency_view(folder: Path, dists: dict[str, object]) -> Path:
    """A folder holding links to exactly the files of ``dists`` (their top-level packages, modules, shared
    libraries and metadata folders), taken from the environment running the tests: put on a fresh venv's path, it
    offers what ``pip install`` would have installed from the wheel's declared dependencies, and nothing else."""
    folder.mkdir()
    for dist in dists.values():
        base = Path(dist.locate_file(""))
        for f in dist.files or []:
            top = Path(f).parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth") or (folder / top).exists():
                continue
            if (base / top).exists():
                (folder / top).symlink_to(base / top)
    return folder


def _fresh_venv(tmp: Path, wheel: Path, view: Path | None, name: str) -> Path:
    """A new venv (``python -m venv``, no system site-packages) with the wheel installed without dependencies and,
    when given, the dependency view on its path (a ``.pth`` file); returns its bin folder."""
    venv = tmp / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)], check=True,
                   env={"PATH": "/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if view is not None:
        site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        Path(site, "declared_dependencies.pth").write_text(f"{view}\n", encoding="utf-8")
    return venv / "bin"


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_serves_the_pages_and_runs(tmp_path):
    """Build the wheel and install it into a fresh venv (``python -m venv``: no system site-packages, none of the
    development venv's packages) together with exactly the distributions its ``Requires-Dist`` declares,
    resolved transitively (extras and markers included) from the development venv and offered through a ``.pth``
    file — what ``pip install orc-planner`` would bring, without a network or a wheelhouse. Then, from that venv
    alone, ``planner serve`` answers the page, a vendored asset, the offline /docs and its bundle and a map layer,
    and ``planner run -o`` writes a small run's report, workbook and GeoPackage. So a runtime dependency the code
    imports but ``pyproject.toml`` does not declare (say ``fastapi-offline`` for /docs, or ``xhtml2pdf`` for the
    report), or a page, asset or data file the wheel does not ship, fails here. A control proves the check can
    fail: the same venv without ``fastapi-offline`` (which no other dependency brings) cannot start the API."""
    import email

    import httpx
    from conftest import SMALL_RUN

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("orc_planner-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = email.message_from_bytes(z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
    assert "api/templates/index.html" in names and "api/static/vendor/leaflet-1.9.4/leaflet.js" in names
    assert "api/static/vendor/leaflet-1.9.4/LICENSE" in names and "api/static/js/app.js" in names
    requires = meta.get_all("Requires-Dist") or []
    assert any(r.startswith("fastapi-offline") for r in requires) and any(r.startswith("jinja2") for r in requires)
    deps = _requirement_closure(requires)
    assert "fastapi-offline" in deps and "orc-planner" not in deps
    bin_ = _fresh_venv(tmp_path, wheel, _dependency_view(tmp_path / "deps", deps), "fresh")
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "HOME": str(tmp_path), "MPLBACKEND": "Agg",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "PLANNER_RUNS_DIR": str(tmp_path / "runs")}
    where = subprocess.run([str(bin_ / "python"), "-c", "import api.app, planner, sys; print(api.app.__file__); "
                            "print(planner.__file__); print(sys.flags.no_site, sys.prefix)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr[-3000:]
    assert all(line.startswith(str(tmp_path / "fresh")) for line in where.stdout.splitlines()[:2]), where.stdout
    _, key = create_key("viewer", url=env["DATABASE_URL"])
    port = free_port()
    server = subprocess.Popen([str(bin_ / "planner"), "serve", "--port", str(port)], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server, 120)
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "window.ORC_VOCAB" in page.text
        for path in ("/static/vendor/leaflet-1.9.4/leaflet.js", "/docs", "/static-offline-docs/swagger-ui-bundle.js"):
            assert httpx.get(f"{base}{path}").status_code == 200, path
        layer = httpx.get(f"{base}/datasets/layers/regions", headers={"X-API-Key": key}, timeout=60)
        assert layer.status_code == 200 and len(layer.json()["features"]) >= 83
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(SMALL_RUN), encoding="utf-8")
    run = subprocess.run([str(bin_ / "planner"), "run", "small.yaml", "-o", "out"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    assert (tmp_path / "out" / "report.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "out" / "network.gpkg").stat().st_size > 0 and (tmp_path / "out" / "results.xlsx").is_file()
    # the control: without a declared dependency nothing else brings, the API does not start
    without = _requirement_closure(requires, omit=frozenset({"fastapi-offline"}))
    bare = _fresh_venv(tmp_path, wheel, _dependency_view(tmp_path / "deps_without", without), "fresh_without")
    out = subprocess.run([str(bare / "python"), "-c", "import api.app"], env={**env, "PATH": f"{bare}:/usr/bin:/bin"},
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode != 0 and "No module named 'fastapi_offline'" in out.stderr, out.stderr[-2000:]


def test_shipped_neighbours_and_crimea_are_preferred(web, tmp_path, monkeypatch):
    """When the dataset ships neighbouring countries and Crimea's and Sevastopol's polygons, the map uses them."""
    from api.web import layers, routes

    square = {"type": "Polygon", "coordinates": [[[33, 44.5], [34, 44.5], [34, 45.5], [33, 45.5], [33, 44.5]]]}
    ne = tmp_path / "ne.geojson"
    ne.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": square, "properties": {"iso3": "GEO", "name_en": "Georgia",
                                                               "name_ru": "Грузия", "source": "NE 1:50m"}},
        {"type": "Feature", "geometry": square, "properties": {"iso3": "RUS", "name_en": "Russia",
                                                               "name_ru": "Россия", "source": "NE 1:50m"}}]}))
    crimea = tmp_path / "crimea.geojson"
    crimea.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": square, "properties": {"region_id": "RU-CR", "name_en": "Crimea"}}]}))
    monkeypatch.setattr(layers, "NEIGHBOURS_FILE", ne)
    monkeypatch.setattr(layers, "CRIMEA_FILE", crimea)
    for cached in (layers._boundaries, routes._countries):
        cached.cache_clear()
    try:
        tc, _, v, _ = web
        doc = tc.get("/datasets/layers/countries", headers=v).json()
        assert [f["properties"]["iso3"] for f in doc["features"]] == ["GEO"] and doc["meta"]["source"] == "NE 1:50m"
        regions = tc.get("/datasets/layers/regions", headers=v).json()["features"]
        assert "RU-CR" in {f["properties"]["region_id"] for f in regions}
    finally:
        monkeypatch.undo()
        for cached in (layers._boundaries, routes._countries):
            cached.cache_clear()


def _page_vocab(page) -> dict:
    return json.loads(re.search(r"window.ORC_VOCAB = (.*?);</script>", page.text).group(1))


def test_no_tile_layer_unless_the_operator_sets_one(tmp_path, monkeypatch):
    """``PLANNER_TILE_URL`` unset: the page's vocabulary has no tile layer and the CSP admits images from this
    server only, as before. Set: the page carries the URL and attribution, its CSP admits images from that origin
    only (nothing else widened; /docs unchanged); a path on this server widens nothing; a bad value stops the
    start-up naming the variable. The client adds ``L.tileLayer`` only when the vocabulary has one."""
    from fastapi.testclient import TestClient

    from api.app import app, create_app
    from api.limits import SettingsError
    from api.web import CSP

    monkeypatch.setattr(app.state, "tiles", None)  # restored after the test: no later test sees a tile setting
    url = f"sqlite:///{tmp_path / 'tiles.db'}"
    for var in ("PLANNER_TILE_URL", "PLANNER_TILE_ATTRIBUTION"):
        monkeypatch.delenv(var, raising=False)
    with TestClient(create_app(url, start_jobs=False)) as tc:
        page = tc.get("/")
        assert _page_vocab(page)["tiles"] is None
        assert page.headers["content-security-policy"] == CSP and "img-src 'self' data: blob:;" in CSP
    monkeypatch.setenv("PLANNER_TILE_URL", "https://{s}.tiles.example.org/osm/{z}/{x}/{y}.png")
    monkeypatch.setenv("PLANNER_TILE_ATTRIBUTION", "© участники OpenStreetMap")
    with TestClient(create_app(url, start_jobs=False)) as tc:
        page = tc.get("/")
        assert _page_vocab(page)["tiles"] == {"url": "https://{s}.tiles.example.org/osm/{z}/{x}/{y}.png",
                                              "attribution": "© участники OpenStreetMap"}
        policy = page.headers["content-security-policy"]
        assert "img-src 'self' data: blob: https://*.tiles.example.org;" in policy
        assert policy.replace(" https://*.tiles.example.org", "") == CSP  # only img-src widened
        assert tc.get("/docs").headers["content-security-policy"] == CSP
    monkeypatch.setenv("PLANNER_TILE_URL", "/tiles/{z}/{x}/{y}.png")  # served from this origin (a proxy)
    with TestClient(create_app(url, start_jobs=False)) as tc:
        page = tc.get("/")
        assert _page_vocab(page)["tiles"]["url"] == "/tiles/{z}/{x}/{y}.png"
        assert page.headers["content-security-policy"] == CSP
    for bad, var in (("https://tiles.example.org/{z}/{x}.png", "PLANNER_TILE_URL"),
                     ("https://tiles.example.org/{z}/{x}/{y}.png; script-src *", "PLANNER_TILE_URL"),
                     ("https://tiles.example.org/{z}/{x}/{y}.png", "PLANNER_TILE_ATTRIBUTION")):
        monkeypatch.setenv("PLANNER_TILE_URL", bad)
        if var == "PLANNER_TILE_ATTRIBUTION":
            monkeypatch.delenv("PLANNER_TILE_ATTRIBUTION")
        with pytest.raises(SettingsError, match=var), TestClient(create_app(url, start_jobs=False)):
            pass
    js = (ROOT / "api" / "static" / "js" / "app.js").read_text(encoding="utf-8")
    assert re.search(r"if \(VOCAB\.tiles\) \{ L\.tileLayer\(VOCAB\.tiles\.url", js)
