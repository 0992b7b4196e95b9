"""GIS layers of a run (EPSG:4326, valid geometries): one GeoPackage with a layer per kind, a GeoJSON per layer
beside it, and the combined ``network.geojson`` the API serves.

Layers: ``regions`` (polygons of the Russian regions, and of the first-level regions of every partner country
the scope reaches into, with names, scope flag, production and balance of the scenario's groups, t a year),
``region_points`` (every region of the scope as a point), ``countries`` (Natural Earth neighbours),
``corridors`` (road and rail segments), ``crossings`` (border crossings, open in this scenario or not),
``candidates`` (every candidate site), ``centres`` (opened centres with size, throughput and utilisation),
``flows`` (one line per flow along its network path, with from/to ids and names, group, tonnes a year and the
crossings it passes) and ``trade`` (one point per border crossing, port and outside market the run trades
through: imports into and exports out of the scope, t a year in all and by group, and what else passes a
crossing).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, shape
from shapely.validation import make_valid

from geo.export import candidates_geojson, corridors_geojson, flow_paths
from planner.outputs.files import GEOMETRY_TYPES, LAYERS  # noqa: F401  (re-exported)
from planner.outputs.tables import Names
from planner.settings import EMBEDDED_DATA_DIR
from planner.summary import split_by_crossing


def valid(geom):
    """``shapely.make_valid``, keeping an areal geometry areal: the polygons of any collection it returns, as one
    MultiPolygon (a layer holds one geometry type)."""
    g = make_valid(geom)
    if isinstance(geom, Polygon | MultiPolygon):
        parts = [p for p in getattr(g, "geoms", [g]) if isinstance(p, Polygon | MultiPolygon)]
        polys = [q for p in parts for q in getattr(p, "geoms", [p])]
        return MultiPolygon(polys)
    return g


def _gdf(records: list[dict], geoms: list, columns: list[str] | None = None) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(records, columns=columns) if columns else pd.DataFrame(records)
    return gpd.GeoDataFrame(frame, geometry=[valid(x) for x in geoms], crs=4326)


def _read_embedded(name: str) -> gpd.GeoDataFrame:
    doc = json.loads((EMBEDDED_DATA_DIR / name).read_text(encoding="utf-8"))
    props = [f["properties"] for f in doc["features"]]
    return _gdf(props, [shape(f["geometry"]) for f in doc["features"]])


def countries_layer() -> gpd.GeoDataFrame:
    """Natural Earth 1:50m countries (public domain) of the EAEU and its neighbours."""
    return _read_embedded("ne_50m_countries.geojson")


PARTNER_ADMIN1 = "partner_admin1.geojson"
"""Natural Earth 10m admin-1 polygons of the partner and transit countries (``docs/data.md``)."""


def regions_layer(dataset, scope_regions: list[str], commodities: list[str], summary: dict) -> gpd.GeoDataFrame:
    """Russian regions as polygons (geoBoundaries; Crimea and Sevastopol from Natural Earth admin-1) and, for every
    other country with a region in scope, its first-level regions (Natural Earth 10m; Kazakhstan's post-2018 units
    schematic), with names, federal district, scope flag, ``outline_approximate``, and per group of the scenario:
    production and surplus (t a year)."""
    reg = dataset.regions.set_index("region_id")
    partners = set(reg.loc[reg.index.intersection(scope_regions), "country_id"]) - {"RU"}
    parts = [_read_embedded("ru_region_boundaries.geojson")[["region_id", "geometry"]].assign(approximate=False),
             _read_embedded("ru_crimea_sevastopol.geojson")[["region_id", "geometry", "approximate"]]]
    if partners and (EMBEDDED_DATA_DIR / PARTNER_ADMIN1).is_file():
        pa = _read_embedded(PARTNER_ADMIN1)
        parts.append(pa.loc[pa["country_id"].isin(partners), ["region_id", "geometry", "approximate"]])
    bnd = pd.concat(parts, ignore_index=True)
    out = bnd[bnd["region_id"].isin(reg.index)].copy()
    out["outline_approximate"] = out.pop("approximate").astype(bool)
    out["name_ru"] = out["region_id"].map(reg["name_ru"])
    out["name_en"] = out["region_id"].map(reg["name_en"])
    out["federal_district"] = out["region_id"].map(reg["federal_district"]).fillna("")
    out["in_scope"] = out["region_id"].isin(scope_regions)
    out = _add_production(out, dataset, commodities, summary)
    cols = [c for c in out.columns if c != "geometry"]
    return _gdf(out[cols].to_dict("records"), list(out.geometry))


def _add_production(frame: pd.DataFrame, dataset, commodities: list[str], summary: dict) -> pd.DataFrame:
    """Production (t a year) per group of the scenario and in all, and the run's surplus per group: the run's
    balance for the regions in scope, the dataset's regional figures elsewhere."""
    prod = dataset.production[dataset.production["area_level"] == "region"]
    latest = prod.sort_values("year").groupby(["area_id", "commodity"])["quantity_kt"].last()
    bal = pd.DataFrame(summary.get("balance", []))
    out = frame.copy()
    total = pd.Series(0.0, index=out.index)
    for c in commodities:
        col = out["region_id"].map(latest.xs(c, level="commodity") if c in latest.index.get_level_values(1)
                                   else pd.Series(dtype=float)) * 1000.0
        if not bal.empty:  # the run's own regional figures (national totals split to regions where needed)
            run = bal[bal["commodity"] == c].set_index("region_id")["production_t"].astype(float)
            col = out["region_id"].map(run).fillna(col)
        out[f"production_{c}_t"] = col.round(0)
        total = total + col.fillna(0.0)
        if not bal.empty:
            s = bal[bal["commodity"] == c].set_index("region_id")["surplus_t"]
            out[f"surplus_{c}_t"] = out["region_id"].map(s).astype(float).round(0)
    out["production_scope_groups_t"] = total.round(0)
    return out


def region_points_layer(dataset, scope_regions: list[str], commodities: list[str], summary: dict
                        ) -> gpd.GeoDataFrame:
    """Every region of the scope as a point (its centroid or label point) with names and production."""
    reg = dataset.regions[dataset.regions["region_id"].isin(scope_regions)]
    base = pd.DataFrame({"region_id": reg["region_id"], "name_ru": reg["name_ru"], "name_en": reg["name_en"],
                         "country_id": reg["country_id"]}).reset_index(drop=True)
    out = _add_production(base, dataset, commodities, summary)
    return _gdf(out.to_dict("records"), [Point(x, y) for x, y in zip(reg["lon"], reg["lat"], strict=True)])


def corridors_layer(G) -> gpd.GeoDataFrame:
    """Road and rail segments with corridor names, km and hours."""
    feats = corridors_geojson(G)["features"]
    return _gdf([f["properties"] for f in feats], [shape(f["geometry"]) for f in feats])


def crossings_layer(dataset, G, summary: dict) -> gpd.GeoDataFrame:
    """Border crossings with names, countries, mode, typical delay; ``open`` as the scenario sets it (open unless
    its ``borders`` close it), ``extra_delay_h`` from the scenario, ``on_network`` = the corridor network of this
    run reaches it."""
    used = {d.get("crossing_id") for _, _, d in G.edges(data=True) if d.get("crossing_id")}
    borders = ((summary.get("provenance") or {}).get("scenario") or {}).get("borders") or {}
    x = dataset.border_crossings
    recs = [{"crossing_id": r.crossing_id, "name_ru": r.name_ru, "name_en": r.name_en, "country_a": r.country_a,
             "country_b": r.country_b, "mode": r.mode, "typical_delay_h": float(r.typical_delay_h),
             "approximate": str(r.approximate).lower() == "true",
             "open": bool(borders.get(r.crossing_id, {}).get("open", True)),
             "extra_delay_h": float(borders.get(r.crossing_id, {}).get("extra_delay_h", 0.0) or 0.0),
             "on_network": r.crossing_id in used}
            for r in x.itertuples()]
    return _gdf(recs, [Point(float(a), float(b)) for a, b in zip(x["lon"], x["lat"], strict=True)])


def candidates_layer(planned) -> gpd.GeoDataFrame:
    """Every candidate site of the scenario with its kind, region and access."""
    feats = candidates_geojson(planned.candidates)["features"]
    recs = []
    for f in feats:
        p = dict(f["properties"])
        p["corridors"] = ",".join(p["corridors"]) if isinstance(p.get("corridors"), list | tuple) else p.get(
            "corridors")
        recs.append(p)
    return _gdf(recs, [shape(f["geometry"]) for f in feats])


def centres_layer(sites: pd.DataFrame) -> gpd.GeoDataFrame:
    """Opened centres (the sites table) as points."""
    recs = sites.drop(columns=["lat_deg", "lon_deg"]).to_dict("records")
    return _gdf(recs, [Point(x, y) for x, y in zip(sites["lon_deg"], sites["lat_deg"], strict=True)],
                columns=[c for c in sites.columns if c not in ("lat_deg", "lon_deg")])


def flows_layer(planned, flows: pd.DataFrame, names: Names) -> gpd.GeoDataFrame:
    """Each flow of the flows table as a line along its network path, with the crossings it passes."""
    node = planned.nodes
    trips = [(node.get(r.from_id), node.get(r.to_id), r.commodity) for r in flows.itertuples()]
    paths = flow_paths(planned.graph, [t for t in trips if t[0] is not None and t[1] is not None], planned.params)
    recs, geoms = [], []
    for r, (a, b, c) in zip(flows.itertuples(), trips, strict=True):
        hit = paths.get((a, b, c))
        if hit is None or len(hit[0]) < 2:
            continue
        rec = {k: getattr(r, k) for k in ("kind", "kind_ru", "kind_en", "from_id", "from_ru", "from_en", "to_id",
                                          "to_ru", "to_en", "commodity", "commodity_ru", "commodity_en", "tonnes_t",
                                          "cost_rub_per_t", "lost_t")}
        rec["crossings"] = ",".join(hit[1])
        recs.append(rec)
        geoms.append(LineString(hit[0]))
    cols = ["kind", "kind_ru", "kind_en", "from_id", "from_ru", "from_en", "to_id", "to_ru", "to_en", "commodity",
            "commodity_ru", "commodity_en", "tonnes_t", "cost_rub_per_t", "lost_t", "crossings"]
    return _gdf(recs, geoms, columns=cols)


TRADE_KINDS: dict[str, tuple[str, str]] = {
    "crossing": ("пункт пропуска", "border crossing"), "port": ("порт", "port"),
    "border": ("внешний рынок", "outside market"), "rest_of_russia": ("остальная Россия", "rest of Russia"),
}
"""Russian and English names of the kinds of trade point (a crossing, or an outside market's kind)."""


def trade_layer(planned, dataset, summary: dict, flows: gpd.GeoDataFrame, scope_regions: list[str]
                ) -> gpd.GeoDataFrame:
    """Imports and exports of the run, t a year as the outside markets count them (imports: what a market sells;
    exports: what it buys, i.e. after transit losses): one point per outside market the run trades with (at the
    market's network node; ``kind`` port, border or rest_of_russia; the model's trade from ``summary``) and one per
    border crossing where that trade enters or leaves the scope (``kind`` crossing; from the ``flows`` layer's
    routed flows: each trade flow counts once, at the crossing of the scope's border nearest its market, so a
    market's crossings add up to its trade; a flow to Armenia through Georgia counts at Upper Lars; the split is
    :func:`planner.summary.split_by_crossing`, the one that gives ``summary.json`` its ``imports_by_crossing_t``).
    ``other_passing_t`` is what else passes a crossing: flows between the scope's own places, and a trade flow's
    further crossings (a road that leaves the scope and comes back), as dispatched.

    Columns: ``point_id``, ``kind``, ``kind_ru``, ``kind_en``, ``name_ru``, ``name_en``, ``country_id`` (a market's
    country; a crossing's two countries as ``RU-KZ``), ``imports_t``, ``exports_t``, ``other_passing_t``,
    ``total_t`` (imports and exports), ``imports_<group>_t`` and ``exports_<group>_t`` per group of the scenario,
    ``via`` (the markets a crossing's trade comes from or goes to, or the crossings a market's trade passes: ids),
    ``via_ru``, ``via_en`` (their names)."""
    groups = list(planned.problem.commodities)
    cols = ["point_id", "kind", "kind_ru", "kind_en", "name_ru", "name_en", "country_id", "imports_t", "exports_t",
            "other_passing_t", "total_t", *(f"{d}_{g}_t" for g in groups for d in ("imports", "exports")), "via",
            "via_ru", "via_en"]
    recs, geoms = [], []

    def blank(pid: str, kind: str, name_ru: str, name_en: str, country: str) -> dict:
        r = {c: 0.0 for c in cols if c.endswith("_t")}
        r.update(point_id=pid, kind=kind, kind_ru=TRADE_KINDS[kind][0], kind_en=TRADE_KINDS[kind][1],
                 name_ru=name_ru, name_en=name_en, country_id=country, via=set())
        return r

    imp, exp = summary.get("imports_by_exit_t") or {}, summary.get("exports_by_exit_t") or {}
    for o in planned.outside:
        r = blank(o.market_id, o.kind if o.kind in TRADE_KINDS else "border", o.name_ru, o.name_en, o.country_id)
        for d, src in (("imports", imp), ("exports", exp)):
            for g, t in (src.get(o.market_id) or {}).items():
                if g in groups:
                    r[f"{d}_{g}_t"] += float(t)
                    r[f"{d}_t"] += float(t)
        if r["imports_t"] + r["exports_t"] < 0.5 or o.node not in planned.graph:
            continue
        node = planned.graph.nodes[o.node]
        recs.append(r)
        geoms.append(Point(float(node["x"]), float(node["y"])))
    market_rec = {r["point_id"]: r for r in recs}
    scope_countries = set(dataset.regions.loc[dataset.regions["region_id"].isin(scope_regions), "country_id"])
    x = dataset.border_crossings.set_index("crossing_id")
    at: dict[str, dict] = {}

    def rec_of(cid: str) -> dict:
        c = x.loc[cid]
        return at.setdefault(cid, blank(cid, "crossing", str(c["name_ru"]), str(c["name_en"]),
                                        f"{c['country_a']}-{c['country_b']}"))

    split = split_by_crossing(flows, dataset.border_crossings, scope_countries)  # the summary's split too
    for cid, t in split["other_passing_t"].items():
        rec_of(cid)["other_passing_t"] += t
    for d in ("imports", "exports"):
        for cid, by_group in split[d].items():
            r = rec_of(cid)
            for g, t in by_group.items():
                if g in groups:
                    r[f"{d}_{g}_t"] += t
                r[f"{d}_t"] += t
    for cid, markets in split["via"].items():
        rec_of(cid)["via"] |= markets
    for market, gates in split["market_gates"].items():
        if market in market_rec:
            market_rec[market]["via"] |= gates
    for cid, r in at.items():
        recs.append(r)
        geoms.append(Point(float(x.loc[cid, "lon"]), float(x.loc[cid, "lat"])))
    names = {o.market_id: (o.name_ru, o.name_en) for o in planned.outside}
    names |= {cid: (str(c.name_ru), str(c.name_en)) for cid, c in zip(x.index, x.itertuples(), strict=True)}
    for r in recs:
        r["total_t"] = r["imports_t"] + r["exports_t"]
        via = sorted(r["via"])
        r["via"] = ",".join(via)
        r["via_ru"] = "; ".join(names.get(v, (v, v))[0] for v in via)
        r["via_en"] = "; ".join(names.get(v, (v, v))[1] for v in via)
        for c in cols:
            if c.endswith("_t"):
                r[c] = round(r[c], 0)
    return _gdf(recs, geoms, columns=cols)


def run_layers(planned, dataset, scope_regions: list[str], summary: dict, t: dict[str, pd.DataFrame],
               names: Names) -> dict[str, gpd.GeoDataFrame]:
    """Every layer of :data:`LAYERS` for a run."""
    commodities = list(planned.problem.commodities)
    flows = flows_layer(planned, t["flows"], names)
    return {"regions": regions_layer(dataset, scope_regions, commodities, summary),
            "region_points": region_points_layer(dataset, scope_regions, commodities, summary),
            "countries": countries_layer(), "corridors": corridors_layer(planned.graph),
            "crossings": crossings_layer(dataset, planned.graph, summary), "candidates": candidates_layer(planned),
            "centres": centres_layer(t["sites"]), "flows": flows,
            "trade": trade_layer(planned, dataset, summary, flows, scope_regions)}


def write_layers(layers: dict[str, gpd.GeoDataFrame], folder: Path, gpkg: str = "network.gpkg") -> list[Path]:
    """One GeoPackage with a layer per kind and a GeoJSON file per layer (``layer_<name>.geojson``)."""
    path = folder / gpkg
    if path.exists():
        path.unlink()
    written = [path]
    for name, g in layers.items():
        g.to_file(path, layer=name, driver="GPKG", engine="pyogrio")
        gj = folder / f"layer_{name}.geojson"
        if gj.exists():
            gj.unlink()
        g.to_file(gj, driver="GeoJSON", engine="pyogrio")
        written.append(gj)
    return written


def network_geojson_from(layers: dict[str, gpd.GeoDataFrame]) -> dict:
    """One FeatureCollection of regions, corridors, centres, flows and trade points (crossings, ports, outside
    markets), each feature's ``layer`` property naming its kind (the document ``GET /runs/{id}/geojson`` serves)."""
    feats = []
    for layer, key in (("region", "regions"), ("corridor", "corridors"), ("centre", "centres"), ("flow", "flows"),
                       ("trade", "trade")):
        if key not in layers:
            continue
        doc = json.loads(layers[key].to_json(na="null", drop_id=True))
        for f in doc["features"]:
            f["properties"] = {"layer": layer, **f["properties"]}
            feats.append(f)
    return {"type": "FeatureCollection", "features": feats}
