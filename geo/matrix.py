"""Origin-destination matrices of distance, time and generalised cost, by multi-source Dijkstra on CSR arrays.

The graph is turned once into edge arrays (cached by a hash of its edges), then each metric into a CSR matrix
whose parallel edges keep their minimum weight; :func:`scipy.sparse.csgraph.dijkstra` runs from all origins at
once. Each metric is its own shortest path: ``distance`` the shortest km, ``time`` the fastest hours, ``cost``
the cheapest RUB per tonne for a commodity group. Paths (node lists) come back when asked.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from geo.costs import MODE_CODES, edge_costs, tariffs, time_cost_rub_per_t_hour
from geo.params import Params

ZERO_WEIGHT = 1e-9
"""Stand-in for zero-weight edges (transfers have no length): a sparse matrix cannot hold an explicit zero edge."""


@dataclass(frozen=True)
class GraphArrays:
    """A graph as flat edge arrays: node order, edge endpoints (indices), km, hours, mode code, fee per tonne."""

    nodes: list[Hashable]
    index: dict[Hashable, int]
    u: np.ndarray
    v: np.ndarray
    length_km: np.ndarray
    hours: np.ndarray
    mode: np.ndarray
    fee: np.ndarray
    digest: str


_ARRAYS: OrderedDict[tuple[int, int, int], tuple[object, GraphArrays]] = OrderedDict()
_CSR: OrderedDict[tuple, csr_matrix] = OrderedDict()
_CACHE_SIZE = 16


def graph_arrays(G: nx.MultiDiGraph) -> GraphArrays:
    """Edge arrays of a graph (osmnx conventions: ``length`` in metres; optional ``hours``, ``mode``, ``fee``).

    Cached per graph object: graphs are treated as immutable once built (build a new one to change it).
    """
    key = (id(G), G.number_of_nodes(), G.number_of_edges())
    hit = _ARRAYS.get(key)
    if hit is not None and hit[0] is G:
        return hit[1]
    nodes = list(G.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    m = G.number_of_edges()
    u = np.empty(m, dtype=np.int64)
    v = np.empty(m, dtype=np.int64)
    length = np.empty(m)
    hours = np.empty(m)
    mode = np.empty(m, dtype=np.int64)
    fee = np.empty(m)
    default_speed = G.graph.get("default_speed_kmh", 50.0)
    for i, (a, b, d) in enumerate(G.edges(data=True)):
        u[i], v[i] = index[a], index[b]
        length[i] = float(d.get("length", 0.0)) / 1000.0
        hours[i] = float(d["hours"]) if "hours" in d else length[i] / default_speed
        mode[i] = MODE_CODES.get(d.get("mode", "road"), 0)
        fee[i] = float(d.get("fee_rub_per_t", 0.0) or 0.0)
    arrays = GraphArrays(nodes, index, u, v, length, hours, mode, fee, _digest(nodes, u, v, length, hours, mode, fee))
    _ARRAYS[key] = (G, arrays)
    while len(_ARRAYS) > _CACHE_SIZE:
        _ARRAYS.popitem(last=False)
    return arrays


def _digest(nodes: list, *arrays: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update("\x1f".join(map(str, nodes)).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def graph_hash(G: nx.MultiDiGraph) -> str:
    """A digest of the graph's edges and their length, hours, mode and fee: the matrix cache key."""
    return graph_arrays(G).digest


def edge_weights(arrays: GraphArrays, metric: str, params: Params | None = None,
                 commodity: str | None = None) -> np.ndarray:
    """Per-edge weights: km (``distance``), hours (``time``), RUB per tonne (``cost``, needs params and a commodity),
    or RUB per tonne without the time term (``freight``: tariff × km + fees; for models that count transit losses
    themselves)."""
    if metric == "distance":
        return arrays.length_km
    if metric == "time":
        return arrays.hours
    if metric == "freight":
        if params is None:
            raise ValueError("metric 'freight' needs parameters")
        return arrays.length_km * tariffs(params)[arrays.mode] + arrays.fee
    if metric == "cost":
        if params is None or commodity is None:
            raise ValueError("metric 'cost' needs parameters and a commodity group")
        return edge_costs(arrays.length_km, arrays.hours, arrays.mode, arrays.fee, params, commodity)
    raise ValueError(f"metric: expected distance, time, cost or freight, got {metric!r}")


def csr_for(arrays: GraphArrays, weights: np.ndarray) -> csr_matrix:
    """CSR adjacency with the minimum weight over parallel edges (zero weights nudged to a tiny positive)."""
    key = (arrays.digest, hashlib.blake2b(weights.tobytes(), digest_size=16).hexdigest())
    hit = _CSR.get(key)
    if hit is not None:
        return hit
    n = len(arrays.nodes)
    w = np.maximum(weights, ZERO_WEIGHT)
    frame = pd.DataFrame({"u": arrays.u, "v": arrays.v, "w": w}).groupby(["u", "v"], sort=False)["w"].min()
    uu = frame.index.get_level_values(0).to_numpy()
    vv = frame.index.get_level_values(1).to_numpy()
    mat = csr_matrix((frame.to_numpy(), (uu, vv)), shape=(n, n))
    _CSR[key] = mat
    while len(_CSR) > _CACHE_SIZE:
        _CSR.popitem(last=False)
    return mat


@dataclass
class ODResult:
    """An origin-destination matrix (``values``: origins × destinations, ``inf`` = unreachable) and paths."""

    metric: str
    values: pd.DataFrame
    paths: dict[tuple[Hashable, Hashable], list[Hashable]] = field(default_factory=dict)


def od_matrix(G: nx.MultiDiGraph, origins: Sequence[Hashable], destinations: Sequence[Hashable] | None = None,
              metric: str = "distance", params: Params | None = None, commodity: str | None = None,
              return_paths: bool = False) -> ODResult:
    """Shortest-path matrix from every origin to every destination (all nodes when ``destinations`` is None).

    Units: km for ``distance``, hours for ``time``, RUB per tonne for ``cost``. With ``return_paths`` the node
    list of every reachable pair is returned as well.
    """
    arrays = graph_arrays(G)
    missing = [o for o in list(origins) + list(destinations or []) if o not in arrays.index]
    if missing:
        raise KeyError(f"not nodes of the graph: {missing[:5]}")
    dest = list(destinations) if destinations is not None else arrays.nodes
    mat = csr_for(arrays, edge_weights(arrays, metric, params, commodity))
    o_idx = np.array([arrays.index[o] for o in origins], dtype=np.int64)
    d_idx = np.array([arrays.index[d] for d in dest], dtype=np.int64)
    if len(o_idx) == 0:
        return ODResult(metric, pd.DataFrame(index=list(origins), columns=dest, dtype=float))
    dist, pred = dijkstra(mat, directed=True, indices=o_idx, return_predecessors=True)
    values = pd.DataFrame(dist[:, d_idx], index=list(origins), columns=dest)
    result = ODResult(metric, values)
    if return_paths:
        for i, o in enumerate(origins):
            for j, d in zip(d_idx, dest, strict=True):
                if np.isfinite(dist[i, j]):
                    result.paths[(o, d)] = [arrays.nodes[k] for k in _walk(pred[i], int(o_idx[i]), int(j))]
    return result


def _walk(pred_row: np.ndarray, source: int, target: int) -> list[int]:
    path = [target]
    while path[-1] != source:
        path.append(int(pred_row[path[-1]]))
    return path[::-1]


def path_totals(G: nx.MultiDiGraph, path: Sequence[Hashable], params: Params | None = None,
                commodity: str | None = None, metric: str = "cost") -> dict[str, float | list]:
    """Distance (km), hours, freight and cost per tonne and crossings along a node path, taking on each hop the
    parallel edge that is best for ``metric`` (as the matrix did; ``cost`` without a commodity is freight).

    ``hours`` is door to door: the edges' hours plus the drivers' rest on the path's road driving hours
    (:func:`road_rest_hours`), as :func:`trip_matrix` counts it; ``driving_h`` is the road driving alone."""
    km = hours = cost = freight = driving = 0.0
    crossings: list[str] = []
    tariff = tariffs(params) if params is not None else None
    speed = _driving_speed(params)
    for a, b in zip(path[:-1], path[1:], strict=True):
        best = None
        for d in G.get_edge_data(a, b).values():
            lk = float(d.get("length", 0.0)) / 1000.0
            hr = float(d.get("hours", 0.0))
            mode = MODE_CODES.get(d.get("mode", "road"), 0)
            fee = float(d.get("fee_rub_per_t") or 0.0)
            fr = lk * tariff[mode] + fee if tariff is not None else 0.0
            c = (edge_costs(np.array([lk]), np.array([hr]), np.array([mode]), np.array([fee]), params, commodity)[0]
                 if params is not None and commodity is not None else fr)
            dr = (min(hr, lk / speed) if speed else hr) if mode == MODE_CODES["road"] else 0.0
            score = {"distance": lk, "time": hr, "cost": c, "freight": fr}[metric]
            if best is None or score < best[0]:
                best = (score, lk, hr, c, d.get("crossing_id"), fr, dr)
        km, hours, cost = km + best[1], hours + best[2], cost + best[3]
        freight, driving = freight + best[5], driving + best[6]
        if best[4]:
            crossings.append(best[4])
    hours += float(road_rest_hours(driving))
    return {"distance_km": km, "hours": hours, "cost_per_t": cost, "freight_per_t": freight, "driving_h": driving,
            "crossings": crossings}


# --- one path per trip -------------------------------------------------------------------------------------------

DAILY_DRIVING_H = 9.0
"""Hours of driving a day: Приказ Минтранса России № 424 от 16.10.2020 (Особенности режима рабочего времени и
времени отдыха, условий труда водителей автомобилей) and the traffic rules as amended by постановление
Правительства № 1733 от 20.12.2019: at most 9 h of driving a day (10 h at most twice a week)."""
DAILY_REST_H = 15.0
"""Hours a truck stands still after each full driving day: 24 h − 9 h of driving, one driving day per day. It
holds the 45-min break due after 4.5 h of driving, the daily rest of at least 11 h (same rules) and some 3 h of
other work (fuelling, checks, meals)."""
BREAK_AFTER_H = 4.5
"""Hours of driving after which a 45-min break is due (same rules)."""
BREAK_H = 0.75
"""The break due after 4.5 h of driving, hours (same rules)."""


def road_rest_hours(driving_h: np.ndarray | float) -> np.ndarray:
    """Hours of rest a trip with ``driving_h`` hours of road driving adds under the drivers' hours rules.

    Path-level, not edge-level: every full 9 h of driving that more driving follows adds the 15-h daily stop
    (:data:`DAILY_REST_H`); the last day's driving, when longer than 4.5 h, adds the 45-min break. So 9 h of
    driving adds 0.75 h, 9 h 1 min adds 15 h, 15 h adds 15.75 h (a 1,000 km trip at 65 km/h: 15.4 h driving,
    31.1 h door to door). Weekly rest (56 h of driving a week at most) is not modelled: no trip on the network is
    that long.
    """
    d = np.asarray(driving_h, dtype=float)
    rest = np.zeros(d.shape)
    long = d > BREAK_AFTER_H + 1e-9  # shorter trips need no stop at all
    dl = d[long]
    days = np.maximum(np.ceil(dl / DAILY_DRIVING_H - 1e-9) - 1.0, 0.0)  # full driving days before the last one
    rest[long] = days * DAILY_REST_H + (dl - days * DAILY_DRIVING_H > BREAK_AFTER_H + 1e-9) * BREAK_H
    return rest


def _driving_speed(params: Params | None) -> float | None:
    """``road_speed_kmh`` (the driving speed, km/h) where the parameters give it, else None."""
    if params is None:
        return None
    try:
        return float(params["road_speed_kmh"])
    except KeyError:
        return None


def _driving_hours(arrays: GraphArrays, params: Params | None) -> np.ndarray:
    """Hours of driving on each edge: road edges' hours without a border crossing's waiting (km at
    ``road_speed_kmh``, the driving speed, where that is less than the edge's hours); 0 on rail and transfers."""
    road = arrays.mode == MODE_CODES["road"]
    drive = arrays.hours.copy()
    speed = _driving_speed(params)
    if speed:
        drive = np.minimum(drive, arrays.length_km / speed)
    return np.where(road, drive, 0.0)


def _best_parallel(arrays: GraphArrays, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every (u, v) pair the index of the parallel edge with the least weight (the first on ties, as
    :func:`path_totals` picks), and the sorted pair keys ``u × n + v``."""
    n = len(arrays.nodes)
    keys = arrays.u * n + arrays.v
    order = np.lexsort((np.arange(len(keys)), weights, keys))
    first = np.ones(len(order), dtype=bool)
    first[1:] = keys[order][1:] != keys[order][:-1]
    best = order[first]
    return best, keys[best]


_ROUTE: OrderedDict[tuple, tuple[np.ndarray, np.ndarray, csr_matrix]] = OrderedDict()
_DENSE_LOOKUP_NODES = 2048
"""Up to this many nodes the chosen edge of a (u, v) hop is read from a dense n × n table, above by binary search."""


def _route_csr(arrays: GraphArrays, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, csr_matrix]:
    """The chosen parallel edges (a dense u × n + v → edge table for small graphs, else the edges with their sorted
    pair keys) and the CSR of their weights (cached like :func:`csr_for`)."""
    key = (arrays.digest, hashlib.blake2b(weights.tobytes(), digest_size=16).hexdigest())
    hit = _ROUTE.get(key)
    if hit is not None:
        return hit
    n = len(arrays.nodes)
    best, keys = _best_parallel(arrays, weights)
    mat = csr_matrix((np.maximum(weights[best], ZERO_WEIGHT), (arrays.u[best], arrays.v[best])), shape=(n, n))
    if n <= _DENSE_LOOKUP_NODES:
        table = np.zeros(n * n, dtype=np.int64)
        table[keys] = best
        best, keys = table, None
    _ROUTE[key] = (best, keys, mat)
    while len(_ROUTE) > _CACHE_SIZE:
        _ROUTE.popitem(last=False)
    return best, keys, mat


@dataclass
class TripMatrix:
    """Trips from origins to targets, each measured along its ONE route (the cheapest for the route weight):
    ``freight`` (RUB per tonne: tariff × km + transshipment and border fees), ``km``, ``hours`` (door to door:
    road driving, the drivers' rest on the whole road part of the path, rail, transshipment, border waiting),
    ``driving_h`` (road driving hours), ``cost`` (the route weight: freight, plus the commodity's time cost on
    the edges' hours when a commodity is given). ``crossings``: (origin, target) → crossing ids, when asked.
    ``inf`` = unreachable."""

    freight: pd.DataFrame
    km: pd.DataFrame
    hours: pd.DataFrame
    driving_h: pd.DataFrame
    cost: pd.DataFrame
    commodity: str | None = None
    crossings: dict[tuple[Hashable, Hashable], list[str]] = field(default_factory=dict)


def _crossing_codes(G: nx.MultiDiGraph) -> tuple[np.ndarray, list[str]]:
    ids: dict[str, int] = {}
    code = np.full(G.number_of_edges(), -1, dtype=np.int64)
    for i, (_, _, c) in enumerate(G.edges(data="crossing_id")):
        if c:
            code[i] = ids.setdefault(str(c), len(ids))
    return code, list(ids)


def trip_matrix(G: nx.MultiDiGraph, origins: Sequence[Hashable], targets: Sequence[Hashable] | None,
                params: Params, commodity: str | None = None, return_crossings: bool = False,
                chunk: int = 256) -> TripMatrix:
    """Freight, km and hours of every origin → target trip along one path: ONE Dijkstra per origin set.

    The route is the cheapest for the generalised cost: freight (tariff × km + fees) and, when ``commodity`` is
    given, the time cost of :func:`geo.costs.edge_costs` (value × transit loss per hour on the edges' hours).
    Km, hours and freight are then summed along that route's predecessor tree (pointer doubling, numpy over
    origins × nodes), on the very parallel edge the CSR minimum chose, transshipment and border edges included.
    The drivers' rest (:func:`road_rest_hours`) is added once per trip on the path's total road driving hours;
    it is not an edge weight, so route choice sees driving time only.
    """
    arrays = graph_arrays(G)
    origins = list(origins)
    dest = list(targets) if targets is not None else list(arrays.nodes)
    missing = [o for o in origins + dest if o not in arrays.index]
    if missing:
        raise KeyError(f"not nodes of the graph: {missing[:5]}")
    freight_e = edge_weights(arrays, "freight", params)
    weight_e = freight_e if commodity is None else edge_weights(arrays, "cost", params, commodity)
    drive_e = _driving_hours(arrays, params)
    n = len(arrays.nodes)
    best, keys, mat = _route_csr(arrays, weight_e)
    o_idx = np.array([arrays.index[o] for o in origins], dtype=np.int64)
    d_idx = np.array([arrays.index[d] for d in dest], dtype=np.int64)
    codes, cross_ids = _crossing_codes(G) if return_crossings else (None, [])
    words = max(1, -(-len(cross_ids) // 63))
    shape = (len(origins), len(dest))
    out = {k: np.full(shape, np.inf) for k in ("freight", "km", "hours", "drive", "cost")}
    masks = np.zeros(shape + (words,), dtype=np.int64) if return_crossings else None
    tc = 0.0 if commodity is None else time_cost_rub_per_t_hour(params, commodity)
    per_edge = np.stack([arrays.length_km, arrays.hours, drive_e], axis=0)
    step = max(1, min(chunk, 4_000_000 // max(n, 1)))  # bounds the (origins × nodes) × 3 work arrays
    for s in range(0, len(origins), step):
        rows = o_idx[s:s + step]
        if len(rows) == 0:
            break
        dist, pred = dijkstra(mat, directed=True, indices=rows, return_predecessors=True)
        m = len(rows)
        has = pred >= 0
        itype = np.int32 if m * n < 2**31 else np.int64
        node = np.arange(n, dtype=itype)
        hop = np.where(has, pred * n + node, 0) if keys is not None or n * n >= 2**31 else \
            np.where(has, pred.astype(itype) * itype(n) + node, 0)
        edge = best[hop] if keys is None else best[np.minimum(np.searchsorted(keys, hop), len(best) - 1)]
        vals = np.take(per_edge, edge.ravel(), axis=1)  # the edge into each node on its route (origin × node)
        vals[:, ~has.ravel()] = 0.0
        base = (np.arange(m, dtype=itype) * itype(n))[:, None]
        anc = (base + np.where(has, pred.astype(itype), node)).ravel()  # flat index of the predecessor; self at roots
        bits = None
        if return_crossings:
            bits = np.zeros((m * n, words), dtype=np.int64)
            c = np.where(has, codes[edge], -1).ravel()
            hit = np.nonzero(c >= 0)[0]
            bits[hit, c[hit] // 63] = np.int64(1) << (c[hit] % 63)
        # pointer doubling: vals[v] holds the sums over the route from anc[v] to v; each pass doubles that stretch
        while True:
            up = np.take(anc, anc)
            if np.array_equal(up, anc):  # every stretch starts at its origin (or the node is unreachable)
                break
            for row in vals:
                row += np.take(row, anc)
            if bits is not None:
                bits |= np.take(bits, anc, axis=0)
            anc = up
        all_nodes = len(dest) == n and bool(np.array_equal(d_idx, np.arange(n)))
        pick = None if all_nodes else (base + d_idx[None, :].astype(itype)).ravel()
        sel = (vals if pick is None else np.take(vals, pick, axis=1)).reshape(3, m, len(dest))
        d = dist if all_nodes else dist[:, d_idx]  # the route weight summed (zero-weight edges nudged by 1e-9)
        unreached = ~np.isfinite(d)
        km, hrs, drive = sel[0], sel[1], sel[2]
        hrs = hrs + road_rest_hours(drive)
        for a in (km, hrs, drive):
            a[unreached] = np.inf
        out["cost"][s:s + m] = d
        out["freight"][s:s + m] = d if tc == 0.0 else d - tc * sel[1]  # the weight is freight + time cost × hours
        out["km"][s:s + m] = km
        out["drive"][s:s + m] = drive
        out["hours"][s:s + m] = hrs
        if masks is not None:
            masks[s:s + m] = bits[pick].reshape(m, len(dest), words)
    o_index, d_index = pd.Index(origins), pd.Index(dest)
    frames = {k: pd.DataFrame(v, index=o_index, columns=d_index, copy=False) for k, v in out.items()}
    result = TripMatrix(frames["freight"], frames["km"], frames["hours"], frames["drive"], frames["cost"], commodity)
    if masks is not None:
        lists: dict[tuple[int, int], list[str]] = {}
        for b, cid in enumerate(cross_ids):
            for i, j in zip(*np.nonzero(masks[..., b // 63] >> (b % 63) & 1), strict=True):
                lists.setdefault((int(i), int(j)), []).append(cid)
        for i, j in zip(*np.nonzero(np.isfinite(out["km"])), strict=True):
            result.crossings[(origins[i], dest[j])] = lists.get((int(i), int(j)), [])
    return result
