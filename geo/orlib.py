"""OR-Library p-median graphs (Beasley) as networks: ``nodes edges p`` then ``u v length`` lines, 1-based,
undirected; a repeated edge replaces the earlier one, as in the original definition.

:func:`pmedian_distances` is the instance's shortest-path matrix, which the caller hands to
:func:`optimization.orlib.read_pmedian` (the optimization layer does not read graphs).
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pandas as pd

from geo.matrix import od_matrix


def read_pmedian_graph(path: str | Path) -> tuple[nx.MultiDiGraph, int]:
    """The graph of a p-median instance (``length`` in metres = instance units × 1000) and its p."""
    tokens = Path(path).read_text().split()
    n, m, p = int(tokens[0]), int(tokens[1]), int(tokens[2])
    edges: dict[frozenset[int], tuple[int, int, float]] = {}
    for i in range(m):
        u, v, w = int(tokens[3 + 3 * i]), int(tokens[4 + 3 * i]), float(tokens[5 + 3 * i])
        edges[frozenset((u, v))] = (u, v, w)
    G = nx.MultiDiGraph(crs=None, name=Path(path).stem)
    for k in range(1, n + 1):
        G.add_node(k, x=float(k), y=0.0)
    for u, v, w in edges.values():
        G.add_edge(u, v, length=w * 1000.0, mode="road")
        G.add_edge(v, u, length=w * 1000.0, mode="road")
    return G, p


def pmedian_distances(path: str | Path) -> pd.DataFrame:
    """Shortest-path distances (instance units) between every pair of nodes of a p-median graph; rows and
    columns are the node numbers in order (``inf`` where the graph is not connected)."""
    G, _ = read_pmedian_graph(path)
    nodes = sorted(G.nodes)
    return od_matrix(G, nodes, nodes, metric="distance").values
