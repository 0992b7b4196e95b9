"""Run outputs: the files a ministry hands on, one folder per run, nothing overwritten without ``force``.

One entry point, :func:`write_outputs`, writes (see ``docs/outputs.md``):

- ``report.html`` and ``report.pdf``: the briefing (:mod:`planner.outputs.report`, a Jinja2 template);
- ``map.png`` and ``map.svg``: the static map (:mod:`planner.outputs.map`);
- ``results.xlsx``: README, summary and one sheet per table (:mod:`planner.outputs.workbook`);
- one CSV per table (:data:`planner.outputs.tables.CSV_TABLES`; UTF-8 with BOM, units in the column names,
  Russian and English names beside every id);
- ``network.gpkg`` with a layer per kind and ``layer_<kind>.geojson`` beside it (:mod:`planner.outputs.gis`),
  and ``network.geojson`` (the combined document the API serves);
- ``summary.json``: every figure of the run, the headline figures as the report shows them, and provenance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from planner.outputs.files import CSV_TABLES, FILES, LAYERS, OPTIONAL_FILES  # noqa: F401  (public names)

if TYPE_CHECKING:
    import pandas as pd

# The writers (geopandas, matplotlib, jinja2, xhtml2pdf, openpyxl) are imported where they are used, so that
# importing this package for FILES, OutputError or prepare_folder (the command line at start-up) stays cheap.

COST_KEYS: dict[str, str] = {
    "fixed (capital + operating)": "fixed_capital_operating", "transport and handling": "transport_handling",
    "imports (purchases)": "import_purchases", "unmet demand penalty": "unmet_demand_penalty",
    "export revenue (negative cost)": "export_revenue_negative", "seasonal margin (negative cost)":
        "seasonal_margin_negative",
}
"""summary.json keys of the cost components (the in-memory summary keys them by their English description)."""


class OutputError(ValueError):
    """The output folder cannot be written (it exists and holds a run, and ``force`` was not given)."""


def prepare_folder(folder: Path, force: bool) -> Path:
    """Create the run folder; refuse one that already holds outputs unless ``force``."""
    folder = Path(folder)
    if folder.exists() and any((folder / f).exists() for f in FILES) and not force:
        raise OutputError(f"{folder}: already holds a run's outputs; choose another folder or pass --force")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def file_summary(summary: dict) -> dict:
    """The summary as ``summary.json`` holds it: JSON-clean (no NaN), keys without prose (cost components by id,
    tonnes shipped by channel then group), the headline figures (:func:`planner.outputs.report.headline`)."""
    from planner.outputs.report import headline
    from planner.summary import clean_json

    out = json.loads(json.dumps(summary, default=float))
    if "cost_breakdown" in out:
        out["cost_breakdown"] = {COST_KEYS.get(k, k): v for k, v in out["cost_breakdown"].items()}
    if "shipped_t" in out:
        nested: dict[str, dict[str, float]] = {}
        for k, v in out.pop("shipped_t").items():
            channel, commodity = k.split("/", 1)
            nested.setdefault(channel.replace(" ", "_"), {})[commodity] = v
        out["shipped_t"] = nested
    out["headline"] = headline(summary)
    return clean_json(out)


def _scope_from_flows(result) -> list[str]:
    import pandas as pd

    ends = pd.concat([result.flows["from_id"], result.flows["to_id"]]).astype(str)
    return sorted({e.split(":", 1)[1] for e in ends if e.startswith(("farm:", "market:"))})


def result_tables(planned, result, summary: dict, losses=None, prices=None, investor=None, dataset=None
           ) -> dict[str, pd.DataFrame]:
    """The run's tables (:func:`planner.outputs.tables.run_tables`; the embedded dataset names the ids when
    ``dataset`` is not given)."""
    from planner.outputs.tables import run_tables

    if dataset is None:
        from planner.data.loader import load_dataset

        dataset = load_dataset()
    return run_tables(planned, result, summary, dataset, losses, prices, investor)


def network_geojson(planned, result, sites: pd.DataFrame | None = None, dataset=None, summary: dict | None = None
                    ) -> dict:
    """Regions, corridors, centres, flows and trade points in one GeoJSON document (``layer`` names each feature's
    kind), as the API serves it. The scope is the regions of the summary's balance (the scenario's regions, city
    regions included), else the regions the flows start or end in."""
    from planner.outputs.gis import network_geojson_from, run_layers
    from planner.outputs.tables import names_for, run_tables

    if dataset is None:
        from planner.data.loader import load_dataset

        dataset = load_dataset()
    summary = summary if summary is not None else {"centres": []}
    t = run_tables(planned, result, summary, dataset)
    if sites is not None and "site_id" in sites.columns:
        t["sites"] = sites
    scope = sorted({str(b["region_id"]) for b in summary.get("balance") or []}) or _scope_from_flows(result)
    layers = run_layers(planned, dataset, scope, summary, t, names_for(planned, dataset))
    return network_geojson_from(layers)


def write_outputs(folder: Path, planned, result, summary: dict, dataset, scope_regions: list[str], losses=None,
                  prices=None, investor=None, force: bool = False) -> list[Path]:
    """Write every output file of a run (:data:`FILES`; with economics also ``ranges.csv``, and the inter-district
    flows and the producer-surplus change by region beside each region's agricultural shares; for a scope spanning
    federal districts ``districts.csv``, also a workbook sheet and a report section) into ``folder``;
    returns the paths written."""
    from planner.outputs.gis import network_geojson_from, run_layers, write_layers
    from planner.outputs.map import draw_map
    from planner.outputs.report import context, render_html, write_pdf
    from planner.outputs.tables import names_for, run_tables, write_csv
    from planner.outputs.workbook import write_workbook

    folder = prepare_folder(folder, force)
    doc = file_summary(summary)
    (folder / "summary.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    t = run_tables(planned, result, summary, dataset, losses, prices, investor)
    for name in CSV_TABLES:
        write_csv(t[name], folder / f"{name}.csv")
    if summary.get("districts"):  # a scope spanning federal districts: losses, prices, net benefit by district
        import pandas as pd

        t["districts"] = pd.DataFrame(summary["districts"])
    layers = run_layers(planned, dataset, scope_regions, summary, t, names_for(planned, dataset))
    write_layers(layers, folder)
    (folder / "network.geojson").write_text(json.dumps(network_geojson_from(layers), ensure_ascii=False),
                                            encoding="utf-8")
    meta = (summary.get("provenance") or {}).get("scenario") or {}
    commodities = list(planned.problem.commodities)
    draw_map(layers, meta.get("title_ru") or str(summary.get("scenario")),
             meta.get("title_en") or str(summary.get("scenario")), commodities,
             [folder / "map.png", folder / "map.svg"])
    write_workbook(folder / "results.xlsx", doc, t)
    ctx = context(doc, meta, t, layers, dataset, folder / "map.png", pdf=False)
    (folder / "report.html").write_text(render_html(ctx), encoding="utf-8")
    ctx["pdf"] = True
    write_pdf(render_html(ctx), folder / "report.pdf")
    written = [folder / f for f in FILES]
    if summary.get("ranges"):
        from planner.economics.ranges import write_ranges_csv

        written.append(write_ranges_csv(summary["ranges"], folder / "ranges.csv"))
    if "districts" in t:
        from planner.economics.districts import write_district_csv

        written.append(write_district_csv(t["districts"], folder / "districts.csv"))
    if summary.get("interdistrict_flows") or summary.get("distribution_by_region"):
        import pandas as pd

        from planner.economics.districts import write_distribution_csv, write_interdistrict_csv

        if summary.get("interdistrict_flows"):
            written.append(write_interdistrict_csv(pd.DataFrame(summary["interdistrict_flows"]),
                                                   folder / "interdistrict_flows.csv"))
        if summary.get("distribution_by_region"):
            written.append(write_distribution_csv(pd.DataFrame(summary["distribution_by_region"]),
                                                  folder / "distribution_by_region.csv"))
    return written
