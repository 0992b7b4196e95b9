"""Snap points (regions, cities, candidates, border crossings) to the nearest network node with osmnx."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd

from geo.geodesy import geodesic_km


def nearest_nodes(G: nx.MultiDiGraph, lat: Sequence[float], lon: Sequence[float]) -> tuple[list[Hashable], np.ndarray]:
    """Nearest node of ``G`` to each point (osmnx ``nearest_nodes``, BallTree on unprojected graphs) and the
    geodesic distance to it in km (WGS84)."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if lat.size == 0:
        return [], np.empty(0)
    nodes = list(ox.distance.nearest_nodes(G, X=lon, Y=lat))
    nx_ = np.array([G.nodes[n]["x"] for n in nodes])
    ny_ = np.array([G.nodes[n]["y"] for n in nodes])
    return nodes, geodesic_km(lat, lon, ny_, nx_)


def snap_frame(G: nx.MultiDiGraph, frame: pd.DataFrame, lat: str = "lat", lon: str = "lon") -> pd.DataFrame:
    """Copy of ``frame`` with ``node`` (nearest node id) and ``snap_km`` (distance to it, km) columns."""
    nodes, km = nearest_nodes(G, frame[lat].to_numpy(), frame[lon].to_numpy())
    return frame.assign(node=nodes, snap_km=km)
