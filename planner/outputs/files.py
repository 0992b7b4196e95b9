"""The names of a run's files and GIS layers (no heavy imports: the command line reads them at start-up)."""

from __future__ import annotations

CSV_TABLES: tuple[str, ...] = ("sites", "flows", "losses", "losses_by_stage", "losses_by_region", "prices",
                               "trade", "balance", "costs")
"""Tables written as ``<name>.csv`` (one table per file)."""

LAYERS: tuple[str, ...] = ("regions", "region_points", "countries", "corridors", "crossings", "candidates",
                           "centres", "flows", "trade")
"""The GeoPackage's layers (each also written as ``layer_<name>.geojson``)."""

GEOMETRY_TYPES: dict[str, set[str]] = {
    "regions": {"MultiPolygon"}, "region_points": {"Point"}, "countries": {"MultiPolygon"},
    "corridors": {"LineString"}, "crossings": {"Point"}, "candidates": {"Point"}, "centres": {"Point"},
    "flows": {"LineString"}, "trade": {"Point"},
}
"""The geometry types each layer may hold (tests check them)."""

FILES: tuple[str, ...] = (
    "summary.json", *(f"{t}.csv" for t in CSV_TABLES), "network.geojson", "network.gpkg",
    *(f"layer_{name}.geojson" for name in LAYERS), "map.png", "map.svg", "results.xlsx", "report.html",
    "report.pdf",
)
"""Every file :func:`planner.outputs.write_outputs` writes into a run folder."""
OPTIONAL_FILES: tuple[str, ...] = ("ranges.csv", "interdistrict_flows.csv", "distribution_by_region.csv",
                                   "districts.csv", "share_curve.csv", "share_curve.png", "run.log")
"""Files a run folder may hold besides :data:`FILES`: NPV and net social benefit across the cited ranges (runs
with economics), the share-through-centres curve (scenarios with ``outputs.share_curve``), the solver's log (the
command line)."""
