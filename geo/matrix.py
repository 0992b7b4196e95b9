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

from geo.costs import MODE_CODES, edge_costs, tariffs
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
    """Distance (km), hours, cost per tonne and crossings along a node path, taking on each hop the parallel edge
    that is best for ``metric`` (as the matrix did)."""
    km = hours = cost = 0.0
    crossings: list[str] = []
    for a, b in zip(path[:-1], path[1:], strict=True):
        best = None
        for d in G.get_edge_data(a, b).values():
            lk = float(d.get("length", 0.0)) / 1000.0
            hr = float(d.get("hours", 0.0))
            c = (edge_costs(np.array([lk]), np.array([hr]), np.array([MODE_CODES.get(d.get("mode", "road"), 0)]),
                            np.array([float(d.get("fee_rub_per_t") or 0.0)]), params, commodity)[0]
                 if params is not None and commodity is not None else 0.0)
            score = {"distance": lk, "time": hr, "cost": c}[metric]
            if best is None or score < best[0]:
                best = (score, lk, hr, c, d.get("crossing_id"))
        km, hours, cost = km + best[1], hours + best[2], cost + best[3]
        if best[4]:
            crossings.append(best[4])
    return {"distance_km": km, "hours": hours, "cost_per_t": cost, "crossings": crossings}
