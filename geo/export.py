"""GeoJSON export (EPSG:4326) of corridors, border crossings and candidate sites, and the network path of a flow
(for drawing flows along the corridors they use rather than as straight lines)."""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable
from pathlib import Path

import networkx as nx
import pandas as pd

from geo.matrix import od_matrix, path_totals
from geo.network import BorderState
from geo.params import Params


def _fc(features: list[dict]) -> dict:
    return {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4326"}},
            "features": features}


def corridors_geojson(G: nx.MultiDiGraph) -> dict:
    """One LineString per network segment (each direction pair once), with mode, corridor, km and hours."""
    feats, seen = [], set()
    for u, v, d in G.edges(data=True):
        key = (min(u, v), max(u, v), d.get("mode"), d.get("corridor_id"))
        if key in seen or d.get("mode") == "transfer":
            continue
        seen.add(key)
        a, b = G.nodes[u], G.nodes[v]
        feats.append({"type": "Feature",
                      "geometry": {"type": "LineString", "coordinates": [[a["x"], a["y"]], [b["x"], b["y"]]]},
                      "properties": {"from_ru": a.get("name_ru"), "to_ru": b.get("name_ru"),
                                     "from_en": a.get("name_en"), "to_en": b.get("name_en"),
                                     "mode": d.get("mode"), "corridor_id": d.get("corridor_id"),
                                     "corridor_ru": d.get("corridor_ru"), "corridor_en": d.get("corridor_en"),
                                     "km": round(float(d.get("length", 0)) / 1000, 1),
                                     "hours": round(float(d.get("hours", 0)), 2),
                                     "length_source": d.get("length_source"), "crossing_id": d.get("crossing_id")}})
    return _fc(feats)


def crossings_geojson(crossings: pd.DataFrame, borders: dict[str, BorderState] | None = None) -> dict:
    """Border crossings as points with countries, mode, typical delay (hours) and the scenario's open state."""
    borders = borders or {}
    feats = []
    for r in crossings.to_dict("records"):
        state = borders.get(r["crossing_id"], BorderState())
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                      "properties": {k: r[k] for k in ("crossing_id", "name_ru", "name_en", "country_a", "country_b",
                                                       "mode", "typical_delay_h", "approximate")}
                      | {"open": state.open, "extra_delay_h": state.extra_delay_h}})
    return _fc(feats)


def candidates_geojson(candidates: pd.DataFrame) -> dict:
    """Candidate sites as points with region, country, kind, corridors and access."""
    feats = []
    for r in candidates.to_dict("records"):
        props = {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items() if k not in ("lat", "lon")}
        props["node"] = str(props["node"])
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                      "properties": props})
    return _fc(feats)


def write_geojson(doc: dict, path: str | Path) -> Path:
    """Write a GeoJSON document (UTF-8, Russian names kept readable)."""
    path = Path(path)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def flow_paths(G: nx.MultiDiGraph, trips: Iterable[tuple[Hashable, Hashable, str]], params: Params
               ) -> dict[tuple[Hashable, Hashable, str], tuple[list[tuple[float, float]], list[str]]]:
    """The route of each (origin node, destination node, commodity group) trip: the path that is cheapest in the
    commodity's generalised cost (freight plus the time cost of its transit losses, as the model's trips are
    priced, :func:`geo.matrix.trip_matrix`), as lon/lat vertices, and the border crossings it passes.

    Trips whose ends coincide or cannot reach each other are left out."""
    by_commodity: dict[str, set[tuple[Hashable, Hashable]]] = {}
    for o, d, c in trips:
        if o != d and o in G and d in G:
            by_commodity.setdefault(c, set()).add((o, d))
    out: dict[tuple[Hashable, Hashable, str], tuple[list[tuple[float, float]], list[str]]] = {}
    for c, pairs in by_commodity.items():
        origins = sorted({o for o, _ in pairs}, key=str)
        dests = sorted({d for _, d in pairs}, key=str)
        od = od_matrix(G, origins, dests, metric="cost", params=params, commodity=c, return_paths=True)
        for o, d in pairs:
            path = od.paths.get((o, d))
            if not path:
                continue
            coords = [(float(G.nodes[n]["x"]), float(G.nodes[n]["y"])) for n in path]
            crossings = list(path_totals(G, path, params, c)["crossings"])
            out[(o, d, c)] = (coords, crossings)
    return out
