"""Map layers for the web workspace, built from the embedded dataset (EPSG:4326 GeoJSON).

Regions carry the chosen indicator with its unit, year, source and an ``approximate`` flag; crossings carry a
scenario's open/closed state; candidate sites follow a library scenario's rules. Nothing is invented here: every
figure comes from a dataset table and keeps that table's source and year.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from planner.settings import COMMODITY_BY_KEY, EMBEDDED_DATA_DIR

INDICATORS: dict[str, dict[str, str]] = {
    "employment_share_pct": {"ru": "Доля сельского хозяйства в занятости", "en": "Agriculture's share of employment",
                             "unit": "%", "year_col": "year_employment"},
    "grp_share_pct": {"ru": "Доля сельского хозяйства в ВДС", "en": "Agriculture's share of gross value added",
                      "unit": "%", "year_col": "year_grp"},
    "employment_lq": {"ru": "Коэффициент локализации (занятость)", "en": "Location quotient (employment)",
                      "unit": "—", "year_col": "year_employment"},
    "grp_lq": {"ru": "Коэффициент локализации (ВДС)", "en": "Location quotient (value added)", "unit": "—",
               "year_col": "year_grp"},
    "production": {"ru": "Производство группы продукции", "en": "Production of a commodity group",
                   "unit": "тыс. т / kt", "year_col": "year"},
    "surplus": {"ru": "Избыток (+) или дефицит (−) группы: производство минус потребление",
                "en": "Surplus (+) or deficit (−) of a group: production less consumption",
                "unit": "тыс. т/год / kt a year", "year_col": "year"},
}
"""Indicators a planner can shade regions by: labels (ru, en), unit and the column holding the year."""


class LayerError(ValueError):
    """A layer request names an unknown indicator, commodity group or scenario (message names the field); ``ru``
    is the message in Russian."""

    def __init__(self, message: str, ru: str):
        super().__init__(message)
        self.ru = ru


def _clean(v: Any) -> Any:
    """JSON-safe scalar: NaN becomes None, numpy types become Python ones."""
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


BOUNDARIES_FILE = EMBEDDED_DATA_DIR / "ru_region_boundaries.geojson"
CRIMEA_FILE = EMBEDDED_DATA_DIR / "ru_crimea_sevastopol.geojson"
"""Polygons of the Republic of Crimea and Sevastopol (Natural Earth 10m admin-1), drawn when the dataset has them."""
PARTNERS_FILE = EMBEDDED_DATA_DIR / "partner_admin1.geojson"
"""First-level regions of the partner and transit countries (Natural Earth 10m admin-1), when the dataset ships them."""
NEIGHBOURS_FILE = EMBEDDED_DATA_DIR / "ne_50m_countries.geojson"
"""Neighbouring countries (Natural Earth 1:50m) when the dataset ships them; else pyogrio's 1:110m copy."""


@lru_cache(maxsize=1)
def _boundaries() -> dict:
    """Russia's region polygons, with Crimea's and Sevastopol's and the partner countries' first-level regions
    added when the dataset has them (each feature's ``outline_approximate`` says whether its outline is schematic)."""
    doc = json.loads(BOUNDARIES_FILE.read_text(encoding="utf-8"))
    for f in doc["features"]:
        f["properties"]["outline_approximate"] = False
    for path, first in ((CRIMEA_FILE, False), (PARTNERS_FILE, True)):
        if path.is_file():
            have = {f["properties"]["region_id"] for f in doc["features"]}
            extra = json.loads(path.read_text(encoding="utf-8"))["features"]
            for f in extra:
                f["properties"]["outline_approximate"] = bool(f["properties"].get("approximate"))
            extra = [f for f in extra if f["properties"].get("region_id") not in have]
            # partners first, Crimea last: the page brings each feature to the back in turn, so the order of
            # Russia's regions on the page stays as it was before the partners were added
            doc["features"] = extra + doc["features"] if first else doc["features"] + extra
    return doc


@lru_cache(maxsize=1)
def _dataset():
    from planner.data.loader import load_dataset

    return load_dataset()


def region_layer(indicator: str = "employment_share_pct", commodity: str = "vegetables") -> dict:
    """Region polygons with names (ru, en), federal district, population and the indicator's value.

    Properties per region: ``value`` (in ``unit``), ``year``, ``approximate`` (bool) and ``source``; ``value`` is
    None where the dataset has no figure. The collection's ``meta`` holds the indicator's labels and unit.
    """
    if indicator not in INDICATORS:
        raise LayerError(f"indicator: expected one of {sorted(INDICATORS)}, got {indicator!r}",
                         f"indicator: допустимые показатели {sorted(INDICATORS)}, задано {indicator!r}")
    if indicator in ("production", "surplus") and commodity not in COMMODITY_BY_KEY:
        raise LayerError(f"commodity: expected one of {sorted(COMMODITY_BY_KEY)}, got {commodity!r}",
                         f"commodity: допустимые товарные группы {sorted(COMMODITY_BY_KEY)}, задано {commodity!r}")
    ds = _dataset()
    regions = ds.regions.set_index("region_id")
    values: dict[str, dict] = {}
    if indicator == "production":
        prod = ds.production
        prod = prod[(prod["area_level"] == "region") & (prod["commodity"] == commodity)]
        prod = prod.sort_values("year").groupby("area_id").tail(1)
        for r in prod.to_dict("records"):
            values[r["area_id"]] = {"value": _clean(r["quantity_kt"]), "year": _clean(r["year"]),
                                    "approximate": bool(r["approximate"]) or bool(r.get("derived")),
                                    "source": _clean(r["source"])}
    elif indicator == "surplus":
        values = _surplus(ds, commodity)
    else:
        year_col = INDICATORS[indicator]["year_col"]
        for r in ds.agri_shares.to_dict("records"):
            values[r["region_id"]] = {"value": _clean(r[indicator]), "year": _clean(r[year_col]),
                                      "approximate": bool(r["approximate"]), "source": _clean(r["source"])}
    feats = []
    for f in _boundaries()["features"]:
        rid = f["properties"]["region_id"]
        fp = f["properties"]
        props: dict[str, Any] = {"region_id": rid, "name_en": fp.get("name_en"),
                                 "outline_approximate": bool(fp.get("outline_approximate")),
                                 "outline_notes": fp.get("notes") or None}
        if rid in regions.index:
            row = regions.loc[rid]
            props.update(name_ru=_clean(row["name_ru"]), name_en=_clean(row["name_en"]),
                         country_id=_clean(row["country_id"]),
                         federal_district=_clean(row["federal_district"]), population=_clean(row["population"]),
                         population_year=_clean(row["population_year"]))
        props.update(values.get(rid, {"value": None, "year": None, "approximate": None, "source": None}))
        feats.append({"type": "Feature", "geometry": f["geometry"], "properties": props})
    meta = dict(INDICATORS[indicator], indicator=indicator)
    meta.pop("year_col")
    if indicator in ("production", "surplus"):
        c = COMMODITY_BY_KEY[commodity]
        meta.update(commodity=commodity, commodity_ru=c.name_ru, commodity_en=c.name_en)
    return {"type": "FeatureCollection", "meta": meta, "features": feats}


def _surplus(ds, commodity: str) -> dict[str, dict]:
    """Per Russian region (and partner region with a production figure of its own): production less demand
    (thousand t a year) on the default demand basis (actual consumption per person, as
    :func:`planner.balance.regional_balance` gives it per country), with the production figure's year and source."""
    from planner.balance import DEMAND_BASIS_TEXT, regional_balance
    from planner.parameters import ParameterSet

    prod = ds.production
    prod = prod[(prod["area_level"] == "region") & (prod["commodity"] == commodity)]
    # Russia's regions, and a partner's where the dataset has the group's production by region (Kazakhstan's
    # oblasts for potatoes, vegetables and fruit), so the surplus never rests on a national figure split by people
    reg = ds.regions
    have = set(reg.loc[reg["country_id"] == "RU", "region_id"]) | (
        set(prod["area_id"]) & set(reg.loc[reg["population"].notna(), "region_id"]))
    ids = [f["properties"]["region_id"] for f in _boundaries()["features"] if f["properties"]["region_id"] in have]
    bal = regional_balance(ds, ids, [commodity], ParameterSet(ds.loss_rates), "actual").set_index("region_id")
    prod = prod.sort_values("year").groupby("area_id").tail(1).set_index("area_id")
    out = {}
    for rid, r in bal.iterrows():
        year = _clean(prod.loc[rid, "year"]) if rid in prod.index else None
        src = _clean(prod.loc[rid, "source"]) if rid in prod.index else None
        out[rid] = {"value": _clean(r["surplus_kt"]), "year": year,
                    "approximate": bool(r["approximate"]) or bool(r["demand_approximate"]),
                    "source": f"production: {src}; demand: {DEMAND_BASIS_TEXT['actual']}"}
    return out


COUNTRIES_SOURCE = ("Natural Earth 1:110m admin-0 countries (public domain), the copy pyogrio ships "
                    "(pyogrio/tests/fixtures/naturalearth_lowres); approximate at this scale")


def countries_layer() -> dict:
    """Countries around Russia as a base layer: polygons with Russian and English names, ISO code and source.

    The dataset's Natural Earth 1:50m extract when it ships one (every country in it but Russia, whose regions
    are drawn instead); else the dataset's partner countries from pyogrio's 1:110m copy; else nothing."""
    if NEIGHBOURS_FILE.is_file():
        doc = json.loads(NEIGHBOURS_FILE.read_text(encoding="utf-8"))
        feats = [{"type": "Feature", "geometry": f["geometry"],
                  "properties": {k: f["properties"].get(k) for k in ("iso3", "name_ru", "name_en")}}
                 for f in doc["features"] if f["properties"].get("iso3") != "RUS"]
        source = next((f["properties"].get("source") for f in doc["features"] if f["properties"].get("source")),
                      "Natural Earth 1:50m admin-0 countries (public domain)")
        return {"type": "FeatureCollection", "features": feats, "meta": {"source": source}}
    try:
        import geopandas as gpd
        import pyogrio
    except ImportError:
        return {"type": "FeatureCollection", "features": [], "meta": {"source": None}}
    path = Path(pyogrio.__file__).parent / "tests" / "fixtures" / "naturalearth_lowres" / "naturalearth_lowres.shp"
    if not path.is_file():
        return {"type": "FeatureCollection", "features": [], "meta": {"source": None}}
    frame = gpd.read_file(path)
    ru = dict(zip(_dataset().countries["iso3"], _dataset().countries["name_ru"], strict=True))
    frame = frame[frame["iso_a3"].isin(set(ru) - {"RUS"})]
    feats = [{"type": "Feature", "geometry": r["geometry"].__geo_interface__,
              "properties": {"iso3": r["iso_a3"], "name_en": r["name"], "name_ru": ru[r["iso_a3"]]}}
             for r in frame.to_dict("records")]
    return {"type": "FeatureCollection", "features": feats, "meta": {"source": COUNTRIES_SOURCE}}


def outside_markets() -> list[dict]:
    """Outside markets (``outside_markets`` table): id, names (ru, en), country and the duties in force, % ad
    valorem, with their basis — the form's defaults for a scenario's exits."""
    cols = ("market_id", "name_ru", "name_en", "country_id", "tariff_export_pct", "tariff_import_pct", "tariff_basis")
    return [{k: _clean(r[k]) for k in cols} for r in _dataset().outside_markets.to_dict("records")]


def _points(frame, id_col: str, cols: tuple[str, ...]) -> list[dict]:
    feats = []
    for r in frame.to_dict("records"):
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                      "properties": {"id": r[id_col], **{c: _clean(r.get(c)) for c in cols}}})
    return feats


def centres_layer() -> dict:
    """Existing centres (ОРЦ) and large wholesale markets as points, with capacity (kt) and its source."""
    ds = _dataset()
    cols = ("name_ru", "name_en", "region_id", "city_ru", "city_en", "status", "capacity_kt",
            "capacity_approximate", "capacity_source", "site_confidence")
    feats = [dict(f, properties=dict(f["properties"], kind="orc"))
             for f in _points(ds.existing_centres, "centre_id", cols)]
    feats += [dict(f, properties=dict(f["properties"], kind="wholesale_market"))
              for f in _points(ds.wholesale_markets, "centre_id", cols)]
    return {"type": "FeatureCollection", "features": feats}


def crossings_layer() -> dict:
    """Border crossings as points with countries, mode and typical delay (hours), in the dataset's state (open)."""
    from geo.export import crossings_geojson

    return crossings_geojson(_dataset().border_crossings)


def scenario_layers(body: dict) -> dict[str, dict]:
    """A scenario's border crossings (open/closed) and candidate sites as GeoJSON."""
    from geo.export import candidates_geojson, crossings_geojson
    from planner.candidates import candidate_sites
    from planner.network import scenario_borders, scenario_network
    from planner.scenario import parse_scenario

    sc = parse_scenario(body, source="scenario")
    ds = _dataset()
    G = scenario_network(sc, ds)
    return {"crossings": crossings_geojson(ds.border_crossings, scenario_borders(sc)),
            "candidates": candidates_geojson(candidate_sites(sc, ds, G))}
