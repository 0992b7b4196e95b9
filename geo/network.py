"""The multimodal corridor network as an osmnx-compatible MultiDiGraph.

Conventions (osmnx/networkx): nodes carry ``x`` (longitude) and ``y`` (latitude) in EPSG:4326 and the graph
carries ``crs``; every edge carries ``length`` in metres. On top of those, every edge carries:

- ``mode``: ``road``, ``rail`` or ``transfer`` (road↔rail transshipment at a station);
- ``hours``: travel time, including a border crossing's delay;
- ``fee_rub_per_t``: fixed charge per tonne on the edge (transshipment cost, border fee);
- ``crossing_id`` on edges that cross a border (``None`` elsewhere);
- ``length_source``: ``published`` or ``estimate`` (geodesic km × circuity factor).

Nodes carry ``name_ru``, ``name_en``, ``country``, ``region_id`` and ``mode``. Node ids are
``"<mode>:<country>:<town_ru>"``, so the same town on several corridors of one mode is one node: that is how
corridors join. Any graph following these conventions — embedded corridors, an OpenStreetMap extract
(:mod:`geo.osm`) — works with the matrix, routing and candidate code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from geo.geodesy import geodesic_km
from geo.params import Params

CRS = "EPSG:4326"


@dataclass(frozen=True)
class BorderState:
    """A scenario's setting for one border crossing: open or closed, extra delay (hours), fee (RUB per tonne)."""

    open: bool = True
    extra_delay_h: float = 0.0
    fee_rub_per_t: float | None = None


class NetworkError(ValueError):
    """The network cannot answer: an unknown place, no path, or a corridor that does not match the crossings."""


def node_id(mode: str, country: str, town_ru: str) -> str:
    """The id of a town's node in one layer of the network."""
    return f"{mode}:{country}:{town_ru}"


def _region_lookup(cities: pd.DataFrame):
    """Function (country, town_ru, lat, lon) -> region_id: by city name, else the nearest city of the country."""
    by_name = {(c, n): r for c, n, r in zip(cities["country_id"], cities["name_ru"], cities["region_id"], strict=True)}

    def lookup(country: str, town_ru: str, lat: float, lon: float) -> str | None:
        if (country, town_ru) in by_name:
            return by_name[(country, town_ru)]
        same = cities[cities["country_id"] == country]
        if same.empty:
            return None
        d = geodesic_km(lat, lon, same["lat"].to_numpy(), same["lon"].to_numpy())
        return str(same["region_id"].iloc[int(np.argmin(d))])

    return lookup


def _match_crossing(crossings: pd.DataFrame, mode: str, a: dict, b: dict) -> pd.Series | None:
    """The crossing of this mode between the two towns' countries nearest to either town (None if none)."""
    pair = {a["country"], b["country"]}
    cand = crossings[(crossings["mode"] == mode)
                     & crossings.apply(lambda r: {r["country_a"], r["country_b"]} == pair, axis=1)]
    if cand.empty:
        return None
    lat, lon = cand["lat"].to_numpy(), cand["lon"].to_numpy()
    d = np.minimum(geodesic_km(a["lat"], a["lon"], lat, lon), geodesic_km(b["lat"], b["lon"], lat, lon))
    return cand.iloc[int(np.argmin(d))]


def crossing_fee(crossing: Mapping, both_eaeu: bool, params: Params, state: BorderState | None = None) -> float:
    """The charge per tonne at a crossing, RUB per tonne: the scenario's ``fee_rub_per_t`` if it sets one, else the
    crossing's own ``fee_rub_per_t`` from the crossings table (official charges with their source), else the
    registry's ``border_fee_rub_per_t_eaeu`` (both countries in the EAEU) or ``border_fee_rub_per_t_other``."""
    if state is not None and state.fee_rub_per_t is not None:
        return float(state.fee_rub_per_t)
    own = crossing.get("fee_rub_per_t")
    if own is not None and pd.notna(own) and str(own).strip() != "":
        return float(own)
    return float(params["border_fee_rub_per_t_eaeu" if both_eaeu else "border_fee_rub_per_t_other"])


def build_corridor_graph(corridors: pd.DataFrame, crossings: pd.DataFrame, countries: pd.DataFrame,
                         cities: pd.DataFrame, params: Params,
                         borders: Mapping[str, BorderState] | None = None) -> nx.MultiDiGraph:
    """Build the road and rail corridor network with transshipment and border-crossing edges.

    The tables are the dataset's ``corridors``, ``border_crossings``, ``countries`` (its ``eaeu_member`` flag
    picks the border fee) and ``cities`` (a town's region: by name, else the nearest city of its country);
    ``params`` gives speeds, fees, transshipment and ``road_circuity_factor``. A crossing's edge carries its
    ``typical_delay_h`` (plus the scenario's ``extra_delay_h``) in ``hours`` and its charge per tonne
    (:func:`crossing_fee`) in ``fee_rub_per_t``: the trip's hours (transit losses) and freight see both.
    ``borders`` maps crossing ids to a scenario's :class:`BorderState`; a closed crossing's edges are left out
    and listed in ``G.graph["closed_crossings"]``. Segment length is the published km where the corridor table
    gives it, else geodesic km × ``road_circuity_factor`` (flagged ``length_source="estimate"``).
    """
    borders = dict(borders or {})
    unknown = sorted(set(borders) - set(crossings["crossing_id"]))
    if unknown:
        raise NetworkError(f"borders: unknown crossing id(s) {unknown}; known: {sorted(crossings['crossing_id'])}")
    eaeu = set(countries.loc[countries["eaeu_member"], "country_id"])
    region_of = _region_lookup(cities)
    speed = {"road": params["road_speed_kmh"], "rail": params["rail_speed_kmh"]}

    G = nx.MultiDiGraph(crs=CRS, name="embedded corridors", closed_crossings=[])
    cor = corridors.sort_values(["corridor_id", "seq"])
    for cid, g in cor.groupby("corridor_id", sort=False):
        towns = g.to_dict("records")
        for t in towns:
            nid = node_id(t["mode"], t["country"], t["town_ru"])
            if nid not in G:
                G.add_node(nid, x=float(t["lon"]), y=float(t["lat"]), name_ru=t["town_ru"], name_en=t["town_en"],
                           country=t["country"], mode=t["mode"], corridors=[],
                           region_id=region_of(t["country"], t["town_ru"], t["lat"], t["lon"]))
            G.nodes[nid]["corridors"].append(cid)
        for a, b in zip(towns[:-1], towns[1:], strict=True):
            mode = a["mode"]
            straight = float(geodesic_km(a["lat"], a["lon"], b["lat"], b["lon"]))
            if pd.notna(b["km_from_prev"]) and "estimate" not in str(b["km_source"] or "estimate").lower():
                km, source = float(b["km_from_prev"]), "published"
            elif pd.notna(b["km_from_prev"]):
                km, source = float(b["km_from_prev"]), "estimate"
            else:
                km, source = straight * params["road_circuity_factor"], "estimate"
            attrs = dict(mode=mode, corridor_id=cid, corridor_ru=a["name_ru"], corridor_en=a["name_en"],
                         length=km * 1000.0, hours=km / speed[mode], fee_rub_per_t=0.0, crossing_id=None,
                         length_source=source)
            if a["country"] != b["country"]:
                x = _match_crossing(crossings, mode, a, b)
                if x is None:
                    raise NetworkError(
                        f"corridor {cid!r} crosses {a['country']}–{b['country']} between {a['town_en']} and "
                        f"{b['town_en']} by {mode}, but border_crossings lists no such {mode} crossing")
                state = borders.get(x["crossing_id"], BorderState())
                if not state.open:
                    if x["crossing_id"] not in G.graph["closed_crossings"]:
                        G.graph["closed_crossings"].append(x["crossing_id"])
                    continue
                attrs.update(crossing_id=x["crossing_id"],
                             hours=attrs["hours"] + float(x["typical_delay_h"]) + state.extra_delay_h,
                             fee_rub_per_t=crossing_fee(x, a["country"] in eaeu and b["country"] in eaeu, params,
                                                        state))
            u = node_id(mode, a["country"], a["town_ru"])
            v = node_id(mode, b["country"], b["town_ru"])
            G.add_edge(u, v, **attrs)
            G.add_edge(v, u, **attrs)

    for nid, data in list(G.nodes(data=True)):
        if data["mode"] == "rail":
            road = node_id("road", data["country"], data["name_ru"])
            if road in G:
                attrs = dict(mode="transfer", corridor_id=None, corridor_ru=None, corridor_en=None, length=0.0,
                             hours=params["transshipment_hours"], fee_rub_per_t=params["transshipment_cost_rub_per_t"],
                             crossing_id=None, length_source="published")
                G.add_edge(road, nid, **attrs)
                G.add_edge(nid, road, **attrs)
                G.nodes[nid]["station"] = True
                G.nodes[road]["station"] = True
    return G


def mode_subgraph(G: nx.MultiDiGraph, mode: str) -> nx.MultiDiGraph:
    """The network restricted to one mode (``road`` or ``rail``), or the whole multimodal network (``any``)."""
    if mode == "any":
        return G
    if mode not in ("road", "rail"):
        raise NetworkError(f"mode: expected road, rail or any, got {mode!r}")
    H = G.edge_subgraph([(u, v, k) for u, v, k, m in G.edges(keys=True, data="mode") if m == mode]).copy()
    H.graph.update(G.graph)
    return H
