"""Matrices from scipy's multi-source Dijkstra agree with networkx and with OR-Library graph distances."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.matrix import graph_hash, od_matrix
from geo.orlib import read_pmedian_graph

PMED = Path(__file__).resolve().parents[2] / "shared" / "data" / "orlib" / "pmedian"


def _graph(edges: list[tuple[int, int, float]], n: int) -> nx.MultiDiGraph:
    G = nx.MultiDiGraph(crs="EPSG:4326")
    for i in range(n):
        G.add_node(i, x=float(i), y=0.0)
    for u, v, w in edges:
        G.add_edge(u, v, length=w * 1000.0)
    return G


edge_lists = st.integers(min_value=2, max_value=12).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(
        st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(0.1, 500, allow_nan=False)),
        min_size=1, max_size=40)))


@settings(max_examples=60, deadline=None)
@given(edge_lists)
def test_distance_matrix_matches_networkx(case):
    n, edges = case
    G = _graph(edges, n)
    res = od_matrix(G, list(G.nodes), metric="distance", return_paths=True)
    D = nx.DiGraph()
    D.add_nodes_from(G.nodes)
    for u, v, d in G.edges(data=True):  # parallel edges: the shortest one counts
        w = d["length"] / 1000.0
        if not D.has_edge(u, v) or D[u][v]["weight"] > w:
            D.add_edge(u, v, weight=w)
    for o in G.nodes:
        ref = nx.single_source_dijkstra_path_length(D, o)
        for t in G.nodes:
            got = res.values.at[o, t]
            if t in ref:
                assert got == pytest.approx(ref[t], rel=1e-9, abs=1e-6)
                path = res.paths[(o, t)]
                assert path[0] == o and path[-1] == t
                assert sum(D[a][b]["weight"] for a, b in zip(path[:-1], path[1:], strict=True)) == pytest.approx(
                    ref[t], rel=1e-9, abs=1e-6)
            else:
                assert np.isinf(got)


def test_graph_hash_changes_with_edges():
    G = _graph([(0, 1, 5.0)], 2)
    H = _graph([(0, 1, 6.0)], 2)
    assert graph_hash(G) != graph_hash(H)
    assert graph_hash(G) == graph_hash(_graph([(0, 1, 5.0)], 2))


def test_pmedian_parser_keeps_the_last_duplicate_edge(tmp_path):
    f = tmp_path / "tiny.txt"
    f.write_text("3 3 1\n1 2 10\n2 3 5\n1 2 4\n")
    G, p = read_pmedian_graph(f)
    assert p == 1
    res = od_matrix(G, [1], [2, 3], metric="distance")
    assert res.values.at[1, 2] == pytest.approx(4.0)
    assert res.values.at[1, 3] == pytest.approx(9.0)


@pytest.mark.skipif(not PMED.is_dir(), reason="OR-Library files in ../shared are not present")
@pytest.mark.parametrize("name", ["pmed1.txt", "pmed6.txt"])
def test_orlib_pmedian_all_pairs_match_networkx(name):
    G, p = read_pmedian_graph(PMED / name)
    nodes = list(G.nodes)
    res = od_matrix(G, nodes, nodes, metric="distance")
    U = nx.Graph()
    for u, v, d in G.edges(data=True):
        U.add_edge(u, v, weight=d["length"] / 1000.0)
    ref = dict(nx.all_pairs_dijkstra_path_length(U))
    got = res.values.to_numpy()
    want = np.array([[ref[a][b] for b in nodes] for a in nodes])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isfinite(got).all() and p > 0
