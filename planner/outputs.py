"""Run outputs: one folder per run, nothing overwritten without ``force``.

Files: ``summary.json``; ``sites.csv``, ``flows.csv``, ``losses.csv``, ``prices.csv``; ``network.geojson``
(regions, corridors, centres sized by throughput, flows as lines; EPSG:4326); ``map.png`` (regions shaded by
production, corridors, centres, main flows); ``results.xlsx`` (one sheet per table); ``report.html``
(self-contained: summary, the map, tables; opens offline).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import geopandas as gpd  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from shapely.geometry import shape  # noqa: E402

from geo.export import corridors_geojson  # noqa: E402
from planner.settings import EMBEDDED_DATA_DIR  # noqa: E402
from planner.summary import clean_json  # noqa: E402

FILES = ("summary.json", "sites.csv", "flows.csv", "losses.csv", "prices.csv", "network.geojson", "map.png",
         "results.xlsx", "report.html")


class OutputError(ValueError):
    """The output folder cannot be written (it exists and holds a run, and ``force`` was not given)."""


def prepare_folder(folder: Path, force: bool) -> Path:
    """Create the run folder; refuse one that already holds outputs unless ``force``."""
    folder = Path(folder)
    if folder.exists() and any((folder / f).exists() for f in FILES) and not force:
        raise OutputError(f"{folder}: already holds a run's outputs; choose another folder or pass --force")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def tables(planned, result, summary: dict, losses, prices, investor) -> dict[str, pd.DataFrame]:
    """The run's tables: sites, flows (with place names), losses by stage and region, prices by region."""
    names = {}
    G = planned.graph
    for key, node in planned.nodes.items():
        names[key] = G.nodes[node].get("name_ru", str(node))
    names.update(dict(zip(planned.candidates["candidate_id"], planned.candidates["name_ru"], strict=True)))
    flows = result.flows.copy()
    if not flows.empty:
        flows["from_name"] = flows["from_id"].map(names)
        flows["to_name"] = flows["to_id"].map(names)
    sites = pd.DataFrame(summary.get("centres", []))
    if investor is not None and not investor[0].empty:
        sites = sites.merge(investor[0].drop(columns=["name_ru", "name_en", "size", "existing", "throughput_t"]),
                            on="id", how="left")
    loss = losses.compare("stage") if losses is not None else pd.DataFrame()
    loss_region = losses.compare("region_id") if losses is not None else pd.DataFrame()
    price = prices.regions if prices is not None else pd.DataFrame()
    return {"sites": sites, "flows": flows, "losses": loss, "losses_by_region": loss_region, "prices": price}


def network_geojson(planned, result, sites: pd.DataFrame) -> dict:
    """Regions (polygons where known, else points), corridors, centres (with throughput) and flows as lines."""
    G = planned.graph
    feats = []
    bnd = json.loads((EMBEDDED_DATA_DIR / "ru_region_boundaries.geojson").read_text(encoding="utf-8"))
    for f in bnd["features"]:
        feats.append({"type": "Feature", "geometry": f["geometry"],
                      "properties": {"layer": "region", **f["properties"]}})
    for f in corridors_geojson(G)["features"]:
        f["properties"]["layer"] = "corridor"
        feats.append(f)
    cand = planned.candidates.set_index("candidate_id")
    for r in sites.to_dict("records"):
        c = cand.loc[r["id"]]
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [c["lon"], c["lat"]]},
                      "properties": {"layer": "centre", "id": r["id"], "name_ru": r["name_ru"], "name_en": r["name_en"],
                                     "size": r["size"], "throughput_t": r["throughput_t"],
                                     "utilisation": r["utilisation"], "existing": bool(r["existing"])}})
    node_of = planned.nodes
    for f in result.flows.itertuples():
        a, b = node_of.get(f.from_id), node_of.get(f.to_id)
        if a is None or b is None or a == b:
            continue
        feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [
            [G.nodes[a]["x"], G.nodes[a]["y"]], [G.nodes[b]["x"], G.nodes[b]["y"]]]},
            "properties": {"layer": "flow", "kind": f.kind, "commodity": f.commodity, "tonnes": f.tonnes}})
    return {"type": "FeatureCollection", "features": feats}


def draw_map(doc: dict, dataset, scope_regions: list[str], path: Path) -> None:
    """PNG map: regions in scope shaded by production (thousand t), corridors, centres sized by throughput, flows."""
    feats = doc["features"]
    regions = gpd.GeoDataFrame([{"region_id": f["properties"]["region_id"], "geometry": shape(f["geometry"])}
                                for f in feats if f["properties"]["layer"] == "region"], crs=4326)
    prod = dataset.production[dataset.production["area_level"] == "region"].groupby("area_id")["quantity_kt"].sum()
    regions["production_kt"] = regions["region_id"].map(prod)
    fig, ax = plt.subplots(figsize=(11, 8))
    inscope = regions[regions["region_id"].isin(scope_regions)]
    regions.plot(ax=ax, color="#f2f2f2", edgecolor="#bbbbbb", linewidth=0.3)
    if not inscope.empty:
        inscope.plot(ax=ax, column="production_kt", cmap="YlGn", edgecolor="#888888", linewidth=0.5, legend=True,
                     legend_kwds={"label": "production in scope, thousand t (Rosstat 2023, approximate)"},
                     missing_kwds={"color": "#f2f2f2"})
    lines = [f for f in feats if f["properties"]["layer"] == "corridor"]
    for f in lines:
        xs, ys = zip(*f["geometry"]["coordinates"], strict=True)
        ax.plot(xs, ys, color="#c0392b" if f["properties"]["mode"] == "road" else "#34495e",
                linewidth=0.8, alpha=0.6)
    flows = [f for f in feats if f["properties"]["layer"] == "flow"]
    if flows:
        top = max(f["properties"]["tonnes"] for f in flows)
        for f in sorted(flows, key=lambda f: -f["properties"]["tonnes"])[:60]:
            xs, ys = zip(*f["geometry"]["coordinates"], strict=True)
            ax.plot(xs, ys, color="#2980b9", linewidth=0.5 + 4 * f["properties"]["tonnes"] / top, alpha=0.5)
    for f in feats:
        if f["properties"]["layer"] == "centre":
            x, y = f["geometry"]["coordinates"]
            ax.scatter([x], [y], s=30 + f["properties"]["throughput_t"] / 1000, zorder=5,
                       color="#8e44ad" if f["properties"]["existing"] else "#e67e22", edgecolor="black")
            ax.annotate(f["properties"]["name_ru"][:28], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    pts = [shape(f["geometry"]) for f in feats if f["properties"]["layer"] in ("centre", "flow")]
    if pts:
        b = gpd.GeoSeries(pts).total_bounds
        ax.set_xlim(b[0] - 3, b[2] + 3)
        ax.set_ylim(b[1] - 2, b[3] + 2)
    ax.set_title("Centres (orange new, purple existing), corridors (red road, grey rail), flows (blue)")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(folder: Path, planned, result, summary: dict, dataset, scope_regions: list[str], losses=None,
                  prices=None, investor=None, force: bool = False) -> list[Path]:
    """Write every output file of a run into ``folder``; returns the paths written."""
    folder = prepare_folder(folder, force)
    t = tables(planned, result, summary, losses, prices, investor)
    (folder / "summary.json").write_text(json.dumps(clean_json(json.loads(json.dumps(summary, default=float))),
                                                    ensure_ascii=False, indent=2), encoding="utf-8")
    t["sites"].to_csv(folder / "sites.csv", index=False)
    t["flows"].to_csv(folder / "flows.csv", index=False)
    pd.concat([t["losses"].assign(by="stage"), t["losses_by_region"].assign(by="region")],
              ignore_index=True).to_csv(folder / "losses.csv", index=False)
    t["prices"].to_csv(folder / "prices.csv", index=False)
    doc = network_geojson(planned, result, t["sites"])
    (folder / "network.geojson").write_text(json.dumps(doc, ensure_ascii=False, default=float), encoding="utf-8")
    draw_map(doc, dataset, scope_regions, folder / "map.png")
    with pd.ExcelWriter(folder / "results.xlsx", engine="openpyxl") as xl:
        pd.DataFrame([{k: v for k, v in summary.items() if not isinstance(v, list | dict)}]).to_excel(
            xl, sheet_name="summary", index=False)
        for name, frame in t.items():
            frame.to_excel(xl, sheet_name=name[:31], index=False)
    (folder / "report.html").write_text(report_html(summary, t, folder / "map.png"), encoding="utf-8")
    return [folder / f for f in FILES]


def report_html(summary: dict, t: dict[str, pd.DataFrame], map_png: Path) -> str:
    """A self-contained HTML report (the map embedded as base64)."""
    img = base64.b64encode(map_png.read_bytes()).decode()
    keys = ["scenario", "status", "objective", "gap", "loss_reduction_pct", "price_change_pct", "runtime_seconds"]
    head = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(summary.get(k), default=float))}</td>"
                   f"</tr>" for k in keys)
    parts = [f"<h2>{html.escape(name)}</h2>" + frame.head(200).to_html(index=False, float_format=lambda v: f"{v:,.2f}")
             for name, frame in t.items() if not frame.empty]
    buf = io.StringIO()
    buf.write("<!doctype html><html lang='ru'><head><meta charset='utf-8'><title>ОРЦ planner — "
              f"{html.escape(str(summary.get('scenario')))}</title><style>body{{font-family:sans-serif;margin:2em}}"
              "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
              "</style></head><body>")
    buf.write(f"<h1>Отчёт по сценарию / Scenario report: {html.escape(str(summary.get('scenario')))}</h1>")
    buf.write(f"<table>{head}</table><img alt='map' style='max-width:100%' src='data:image/png;base64,{img}'>")
    buf.write("".join(parts))
    buf.write("</body></html>")
    return buf.getvalue()
