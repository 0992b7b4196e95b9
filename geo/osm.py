"""OpenStreetMap graphs (a user's .osm extract, or an osmnx download when online) in the planner's conventions."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import osmnx as ox

from geo.params import Params


def _to_planner_conventions(G: nx.MultiDiGraph, params: Params, country: str | None) -> nx.MultiDiGraph:
    """Add the attributes the planner's code reads: mode, hours, fee, crossing id; node names and country."""
    speed = params["road_speed_kmh"]
    for _, _, d in G.edges(data=True):
        d.setdefault("mode", "road")
        d["hours"] = float(d["length"]) / 1000.0 / speed
        d.setdefault("fee_rub_per_t", 0.0)
        d.setdefault("crossing_id", None)
        d.setdefault("length_source", "osm")
    for n, d in G.nodes(data=True):
        d.setdefault("name_ru", str(n))
        d.setdefault("name_en", str(n))
        d.setdefault("country", country)
        d.setdefault("mode", "road")
    G.graph.setdefault("closed_crossings", [])
    return G


def graph_from_osm_file(path: str | Path, params: Params, country: str | None = None,
                        simplify: bool = True) -> nx.MultiDiGraph:
    """Load a user's OpenStreetMap XML extract (``.osm``) with osmnx ``graph_from_xml``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: OSM file not found")
    G = ox.graph_from_xml(path, bidirectional=False, simplify=simplify, retain_all=True)
    return _to_planner_conventions(G, params, country)


def graph_from_place(place: str, params: Params, network_type: str = "drive",
                     country: str | None = None) -> nx.MultiDiGraph:  # pragma: no cover - needs the internet
    """Download a road graph from OpenStreetMap with osmnx (online only)."""
    G = ox.graph_from_place(place, network_type=network_type)
    return _to_planner_conventions(G, params, country)
