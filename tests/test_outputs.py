"""The files a run hands on (planner.outputs): their content, not only their existence.

One quick scenario (ncfd_expansion, a few seconds) runs once for the module; the loop over every regional library
scenario is marked ``slow``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from openpyxl import load_workbook
from shapely.validation import explain_validity
from typer.testing import CliRunner

from planner.cli import app
from planner.outputs.files import CSV_TABLES, FILES, GEOMETRY_TYPES, LAYERS, OPTIONAL_FILES
from planner.outputs.labels import COLUMNS, fmt
from planner.outputs.map import projection
from planner.parameters import PARAMETER_BY_NAME
from planner.scenario import parse_scenario
from planner.summary import scenario_hash

ROOT = Path(__file__).resolve().parents[1]
UNIT_SUFFIX = re.compile(r"_(t|pct|mrub|rub_per_t|years|deg|h|km)$")
ID_COLUMNS = {"site_id": "", "region_id": "region", "commodity": "commodity", "from_id": "from", "to_id": "to",
              "market_id": "market", "stage": "stage", "kind": "kind", "country_id": "country"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outputs") / "ncfd"
    res = CliRunner().invoke(app, ["run", str(ROOT / "scenarios" / "ncfd_expansion.yaml"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


class _Spans(HTMLParser):
    """Collects the text of every ``<span class="num" data-key=…>`` (the report's headline figures)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self._key: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "span" and a.get("class") == "num" and "data-key" in a:
            self._key = a["data-key"]

    def handle_data(self, data):
        if self._key is not None:
            self.values.setdefault(self._key, []).append(data)
            self._key = None


def parse_number(text: str) -> float:
    """A number as the report prints it (``−2 170 млн руб.``, ``1,46 %``, ``+0,017``) back to a float."""
    m = re.search(r"[+−-]?[\d\u202f\u00a0 ]*\d(,\d+)?", text)
    assert m, text
    s = m.group(0).replace("\u202f", "").replace("\u00a0", "").replace(" ", "").replace(",", ".")
    return float(s.replace("−", "-"))


def test_a_run_writes_every_file(run_dir: Path):
    names = {p.name for p in run_dir.iterdir()}
    assert set(FILES) <= names and names - set(FILES) <= set(OPTIONAL_FILES)
    ranges = (run_dir / "ranges.csv").read_bytes()
    assert ranges.startswith(b"\xef\xbb\xbf") and len(ranges.decode("utf-8-sig").splitlines()) > 2


def test_headline_in_html_equals_summary(run_dir: Path, summary: dict):
    h = summary["headline"]
    for key in ("loss_saved_t", "loss_reduction_pct", "net_social_benefit_mrub", "investor_npv_mrub",
                "capital_new_mrub", "public_support_pct", "public_cofinancing_new_mrub", "centres_new"):
        assert h[key] is not None, key
    # headline figures follow from the detailed figures of the same summary
    saved = sum(summary["loss_tonnes_baseline"].values()) - sum(summary["loss_tonnes_network"].values())
    assert h["loss_saved_t"] == pytest.approx(saved, abs=0.5)
    assert h["investor_npv_mrub"] == pytest.approx(summary["investor"]["totals"]["npv_new_rub"] / 1e6, abs=0.5)
    assert h["net_social_benefit_mrub"] == pytest.approx(summary["net_social_benefit_mrub"], abs=0.5)
    p = _Spans()
    p.feed((run_dir / "report.html").read_text(encoding="utf-8"))
    checked = 0
    for key, texts in p.values.items():
        if "." in key:
            group, commodity = key.split(".", 1)
            expected = h[group][commodity]
        else:
            expected = h[key]
        for text in texts:
            assert parse_number(text) == pytest.approx(expected), (key, text)
            assert "-0" not in text.replace("−", "-")[:2] or expected != 0, (key, text)
            checked += 1
    assert checked >= 12
    assert {"loss_saved_t", "loss_reduction_pct", "investor_npv_mrub", "net_social_benefit_mrub"} <= set(p.values)


def test_report_is_self_contained_bilingual_and_collapses_long_tables(run_dir: Path, summary: dict):
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text.split("<body>")[0]
    assert "<script" not in text and text.count("data:image/png;base64,") >= 4  # map + three charts
    for heading in ("Главное / Key figures", "ОРЦ / Centres", "Потери / Losses", "Допущения / Assumptions",
                    "Данные и происхождение расчёта / Data and provenance", "Ввоз и вывоз / Imports and exports"):
        assert heading in text
    assert "<details>" in text
    prov = summary["provenance"]
    assert prov["scenario_sha256"] in text and prov["data_sha256"] in text and prov["run_started"] in text
    assert "nan" not in re.sub(r"<[^>]+>", " ", text).lower().split()


def test_pdf_text_carries_the_same_headline(run_dir: Path, summary: dict):
    import pypdf

    reader = pypdf.PdfReader(run_dir / "report.pdf")
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages).replace("\u202f", " "))
    assert "Главное / Key figures" in text  # Cyrillic drawn with an embedded font, not boxes
    h = summary["headline"]
    for key, d in (("loss_saved_t", 0), ("loss_reduction_pct", 2), ("investor_npv_mrub", 0),
                   ("net_social_benefit_mrub", 0), ("capital_new_mrub", 0)):
        shown = re.sub(r"\s+", " ", fmt(h[key], d).replace("\u202f", " "))
        assert shown in text, (key, shown)


def test_csv_files_have_bom_units_and_both_names(run_dir: Path):
    for name in CSV_TABLES:
        raw = (run_dir / f"{name}.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), name
        assert not re.search(rb"(^|,)-0(\.0+)?(,|\r?$)", raw, re.M), f"{name}.csv holds a negative zero"
        assert not re.search(rb"\d\.\d{5,}", raw), f"{name}.csv holds unrounded numbers"
        frame = pd.read_csv(run_dir / f"{name}.csv", encoding="utf-8-sig")
        assert not frame.empty, name
        for col in frame.columns:
            if pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col]):
                assert UNIT_SUFFIX.search(col), f"{name}.csv: numeric column {col} names no unit"
                assert col in COLUMNS, f"{name}.csv: {col} not in the column catalogue"
            if col in ID_COLUMNS:
                prefix = ID_COLUMNS[col]
                ru, en = (f"{prefix}_ru", f"{prefix}_en") if prefix else ("name_ru", "name_en")
                assert {ru, en} <= set(frame.columns), f"{name}.csv: {col} without {ru}/{en}"
                assert frame[ru].str.contains(r"[А-Яа-яЁё]").any(), f"{name}.csv: {ru} is not Russian"
    flows = pd.read_csv(run_dir / "flows.csv", encoding="utf-8-sig")
    assert (flows["tonnes_t"] == flows["tonnes_t"].round(0)).all()  # rounded, no float noise


def test_geopackage_layers_open_valid_in_4326(run_dir: Path):
    gpkg = run_dir / "network.gpkg"
    names = {name for name, _ in pyogrio.list_layers(gpkg)}
    assert names == set(LAYERS)
    for name in LAYERS:
        g = gpd.read_file(gpkg, layer=name, engine="pyogrio")
        assert not g.empty, name
        assert g.crs.to_epsg() == 4326, name
        assert set(g.geom_type) <= GEOMETRY_TYPES[name], (name, set(g.geom_type))
        bad = [explain_validity(x) for x in g.geometry if not x.is_valid]
        assert not bad, (name, bad[:3])
        beside = gpd.read_file(run_dir / f"layer_{name}.geojson", engine="pyogrio")
        assert len(beside) == len(g), name
    flows = gpd.read_file(gpkg, layer="flows")
    assert {"from_id", "from_ru", "from_en", "to_id", "to_ru", "to_en", "tonnes_t"} <= set(flows.columns)
    # flows follow the network: most have more vertices than their two ends
    assert (flows.geometry.apply(lambda x: len(x.coords)) > 2).mean() > 0.5
    regions = gpd.read_file(gpkg, layer="regions")
    assert {"RU-CR", "RU-SEV"} <= set(regions["region_id"])
    assert regions.loc[regions["in_scope"].astype(bool), "production_scope_groups_t"].gt(0).all()
    crossings = gpd.read_file(gpkg, layer="crossings")
    assert crossings["open"].astype(bool).all()  # ncfd_expansion closes no crossing
    centres = gpd.read_file(gpkg, layer="centres")
    s = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert sorted(centres["site_id"]) == sorted(c["id"] for c in s["centres"])


def test_workbook_sheets_headers_and_frozen_panes(run_dir: Path, summary: dict):
    wb = load_workbook(run_dir / "results.xlsx")
    assert wb.sheetnames[:2] == ["README", "summary"]
    assert {"sites", "flows", "losses", "losses_by_stage", "prices", "trade", "balance", "costs"} <= set(wb.sheetnames)
    for name in ("sites", "flows", "losses", "prices", "trade", "balance", "costs"):
        ws = wb[name]
        assert ws.freeze_panes in ("A2", "B2"), name
        assert ws.auto_filter.ref, name
        headers = [c.value for c in ws[1]]
        assert all(" / " in h for h in headers), (name, headers)
    sites = wb["sites"]
    head = [c.value for c in sites[1]]
    j = head.index(COLUMNS["throughput_t"].header()) + 1
    assert sites.cell(row=2, column=j).number_format == "#,##0"
    summary_text = " ".join(str(c.value) for row in wb["summary"].iter_rows() for c in row if c.value)
    for part in ("Годовые затраты", "Потери по группам", "Цены по группам", "Взгляд инвестора", "Баланс"):
        assert part in summary_text
    by_label = {r[0]: r[1] for r in wb["summary"].iter_rows(values_only=True) if r and r[0]}
    assert by_label["Сбережено продукции / produce saved"] == summary["headline"]["loss_saved_t"]
    npv = by_label["ЧДД инвестора (новые ОРЦ) / investor NPV (new centres)"]
    assert npv == summary["headline"]["investor_npv_mrub"]


def test_summary_json_provenance_and_keys(summary: dict):
    prov = summary["provenance"]
    assert prov["software"]["version"]
    started = datetime.fromisoformat(prov["run_started"])
    assert started.tzinfo is not None
    assert re.fullmatch(r"[0-9a-f]{64}", prov["scenario_sha256"]) and re.fullmatch(r"[0-9a-f]{64}", prov["data_sha256"])
    used = {p["name"]: p["value"] for p in prov["parameters"]}
    assert used["road_speed_kmh"] == PARAMETER_BY_NAME["road_speed_kmh"].default
    assert set(used) == set(PARAMETER_BY_NAME)
    assert "production" in prov["data_tables"] and prov["data_tables"]["production"]["rows"] > 0

    def keys(obj, path=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield f"{path}.{k}", k
                yield from keys(v, f"{path}.{k}")
        elif isinstance(obj, list):
            for v in obj:
                yield from keys(v, path)

    prose = [p for p, k in keys(summary) if " " in k or "/" in k]
    assert not prose, prose[:5]


def test_scenario_hash_follows_the_scenario():
    a = parse_scenario({"name": "x", "commodities": ["vegetables"]})
    b = parse_scenario({"name": "x", "commodities": ["vegetables"]})
    c = parse_scenario({"name": "x", "commodities": ["vegetables"], "parameters": {"discount_rate_pct": 12}})
    assert scenario_hash(a) == scenario_hash(b) != scenario_hash(c)


def test_map_files_and_projection(run_dir: Path):
    assert (run_dir / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (run_dir / "map.svg").read_text(encoding="utf-8")
    assert "<svg" in svg
    assert "+proj=lcc" in projection((40.0, 41.0, 48.0, 46.0))


def test_number_format_has_no_negative_zero_or_noise():
    assert fmt(-0.0001, 2) == "0,00"
    assert fmt(-1234.5, 1) == "−1\u202f234,5"
    assert fmt(12.0, 0, sign=True, unit="т") == "+12\u00a0т"
    assert fmt(None) == "—" and fmt(float("nan")) == "—"


REGIONAL = sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml") if not p.name.startswith("federal_"))


@pytest.mark.slow
@pytest.mark.parametrize("name", REGIONAL)
def test_every_library_scenario_writes_every_file(name: str, tmp_path: Path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(ROOT / "scenarios" / name), "-o", str(out)])
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert set(FILES) <= names and names - set(FILES) <= set(OPTIONAL_FILES)
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    p = _Spans()
    p.feed((out / "report.html").read_text(encoding="utf-8"))
    for key, texts in p.values.items():
        expected = s["headline"][key] if "." not in key else s["headline"][key.split(".")[0]][key.split(".")[1]]
        assert all(parse_number(t) == pytest.approx(expected) for t in texts), key
    for name_ in LAYERS:
        g = gpd.read_file(out / "network.gpkg", layer=name_)
        assert g.geometry.is_valid.all() and set(g.geom_type) <= GEOMETRY_TYPES[name_], name_
    crossings = gpd.read_file(out / "network.gpkg", layer="crossings").set_index("crossing_id")
    closed = {k for k, v in s["provenance"]["scenario"]["borders"].items() if not v["open"]}
    assert set(crossings.index[~crossings["open"].astype(bool)]) == closed
    if name == "eaeu_upper_lars_closed.yaml":
        assert closed == {"ru_ge_upper_lars"}
        flows = gpd.read_file(out / "network.gpkg", layer="flows")
        assert not flows["crossings"].fillna("").str.contains("ru_ge_upper_lars").any()


def test_a_national_map_is_centred_on_russia_not_on_greenwich():
    """Chukotka runs past the antimeridian (-180…-169°): the map's box and central meridian must stay on the
    scope, or a national map comes out rotated about Greenwich."""
    import geopandas as gpd
    from shapely.geometry import MultiPolygon, Point, box

    from planner.outputs.map import map_extent

    chukotka = MultiPolygon([box(160, 62, 180, 70), box(-180, 64, -169, 68)])
    layers = {"regions": gpd.GeoDataFrame({"in_scope": [True, True]},
                                          geometry=[box(30, 45, 60, 60), chukotka], crs=4326),
              "region_points": gpd.GeoDataFrame(geometry=[Point(40, 50)], crs=4326),
              "centres": gpd.GeoDataFrame(geometry=[Point(135, 48)], crs=4326)}
    x0, _, x1, _ = map_extent(layers)
    assert x0 < 30 and x1 > 191  # the wrapped part counts at 180…191°, not at -180°
    lon_0 = float(projection(map_extent(layers)).split("+lon_0=")[1].split()[0])
    assert 100 < lon_0 < 125
