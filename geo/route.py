"""Routes between two places on the network, for planners checking it against the road distances they know."""

from __future__ import annotations

import difflib
from collections.abc import Hashable
from dataclasses import dataclass

import networkx as nx

from geo.matrix import od_matrix, path_totals
from geo.network import NetworkError, mode_subgraph
from geo.params import Params


@dataclass
class Route:
    """The cheapest route for a commodity group: towns passed, km, hours, RUB per tonne, crossings."""

    origin: str
    destination: str
    nodes: list[Hashable]
    towns: list[str]
    distance_km: float
    hours: float
    cost_per_t: float
    crossings: list[str]

    def as_dict(self) -> dict:
        """JSON-ready form: from, to, distance_km, hours, cost_per_t, path (towns), crossings."""
        return {"from": self.origin, "to": self.destination, "distance_km": round(self.distance_km, 1),
                "hours": round(self.hours, 2), "cost_per_t": round(self.cost_per_t, 2), "path": self.towns,
                "crossings": self.crossings}


def resolve_place(G: nx.MultiDiGraph, name: str, prefer_mode: str = "road") -> Hashable:
    """Node id for a town name (Russian or English, any case) or a node id; unknown names get suggestions."""
    if name in G:
        return name
    key = name.strip().casefold()
    matches = [n for n, d in G.nodes(data=True)
               if key in (str(d.get("name_ru", "")).casefold(), str(d.get("name_en", "")).casefold())]
    if matches:
        matches.sort(key=lambda n: G.nodes[n].get("mode") != prefer_mode)
        return matches[0]
    names = sorted({str(d.get(k)) for _, d in G.nodes(data=True) for k in ("name_ru", "name_en") if d.get(k)})
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise NetworkError(f"unknown place {name!r} on the network{hint}")


def route(G: nx.MultiDiGraph, origin: str, destination: str, params: Params, commodity: str = "vegetables",
          mode: str = "any") -> Route:
    """Cheapest route per tonne of ``commodity`` between two places, on one mode or multimodal (``any``)."""
    H = mode_subgraph(G, mode)
    o = resolve_place(H if len(H) else G, origin, "rail" if mode == "rail" else "road")
    d = resolve_place(H if len(H) else G, destination, "rail" if mode == "rail" else "road")
    if o not in H or d not in H:
        raise NetworkError(f"{origin!r} or {destination!r} is not on the {mode} network")
    res = od_matrix(H, [o], [d], metric="cost", params=params, commodity=commodity, return_paths=True)
    if (o, d) not in res.paths:
        closed = G.graph.get("closed_crossings") or []
        why = f"; closed crossings: {', '.join(closed)}" if closed else ""
        raise NetworkError(f"no {mode} path from {origin!r} to {destination!r}{why}")
    path = res.paths[(o, d)]
    totals = path_totals(H, path, params, commodity, metric="cost")
    towns: list[str] = []
    for n in path:
        label = str(H.nodes[n].get("name_ru") or n)
        if not towns or towns[-1] != label:
            towns.append(label)
    return Route(origin, destination, path, towns, totals["distance_km"], totals["hours"], totals["cost_per_t"],
                 totals["crossings"])
