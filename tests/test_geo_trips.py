"""One path per trip (geo.matrix.trip_matrix): km, hours and freight of a trip are those of its cheapest route;
the drivers' rest is added on the path's road driving hours; the links added for issue #14 (Crimea, А-146,
Rostov – Stavropol) carry their published or estimated km."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.matrix import od_matrix, path_totals, road_rest_hours, trip_matrix
from geo.network import mode_subgraph
from geo.route import resolve_place

PARAMS = {"road_tariff_rub_per_tkm": 4.0, "rail_tariff_rub_per_tkm": 2.0, "road_speed_kmh": 65.0,
          "value_rub_per_t_vegetables": 30_000.0, "transit_loss_pct_per_day_vegetables": 1.5}


def _edge(G, u, v, km, mode, hours=None, fee=0.0, crossing=None):
    speed = {"road": 65.0, "rail": 25.0, "transfer": 1.0}[mode]
    G.add_edge(u, v, length=km * 1000.0, mode=mode, hours=km / speed if hours is None else hours,
               fee_rub_per_t=fee, crossing_id=crossing)


def _rail_or_road() -> nx.MultiDiGraph:
    """A → B 1,000 km by road (fast, dear) or by road 10 km + transfer + rail 1,000 km + transfer (cheap, slow)."""
    G = nx.MultiDiGraph()
    G.add_nodes_from(["A", "B", "a", "b"])
    _edge(G, "A", "B", 1000.0, "road")
    _edge(G, "A", "a", 0.0, "transfer", hours=12.0, fee=300.0)
    _edge(G, "a", "b", 1000.0, "rail")
    _edge(G, "b", "B", 0.0, "transfer", hours=12.0, fee=300.0)
    return G


def test_hours_are_those_of_the_cheapest_path_not_of_the_fastest():
    G = _rail_or_road()
    trip = trip_matrix(G, ["A"], ["B"], PARAMS)
    assert trip.freight.at["A", "B"] == pytest.approx(2 * 1000 + 600)  # rail is cheaper
    assert trip.km.at["A", "B"] == pytest.approx(1000.0)
    assert trip.hours.at["A", "B"] == pytest.approx(1000 / 25 + 24)  # the rail path's 64 h ...
    fastest = od_matrix(G, ["A"], ["B"], metric="time").values.at["A", "B"]
    assert fastest == pytest.approx(1000 / 65)  # ... not the road path's 15.4 h the three-matrix code mixed in


def test_the_commodity_prices_time_in_route_choice():
    G = _rail_or_road()
    G.edges["a", "b", 0]["hours"] = 400.0  # a very slow train: 400 h × 18.75 RUB/t/h outweighs the freight saved
    trip = trip_matrix(G, ["A"], ["B"], PARAMS, commodity="vegetables")
    assert trip.freight.at["A", "B"] == pytest.approx(4000.0)  # by road
    assert trip.hours.at["A", "B"] == pytest.approx(1000 / 65 + float(road_rest_hours(1000 / 65)))
    assert trip_matrix(G, ["A"], ["B"], PARAMS).freight.at["A", "B"] == pytest.approx(2600.0)  # freight alone: rail


def test_rest_by_the_drivers_rules_on_a_1000_km_road_trip():
    G = nx.MultiDiGraph()
    _edge(G, "X", "Y", 600.0, "road")
    _edge(G, "Y", "Z", 400.0, "road")
    trip = trip_matrix(G, ["X"], ["Y", "Z"], PARAMS)
    driving = 1000 / 65  # 15.4 h: one full 9-h day, then 6.4 h with a 45-min break
    assert trip.driving_h.at["X", "Z"] == pytest.approx(driving)
    assert trip.hours.at["X", "Z"] == pytest.approx(driving + 15.0 + 0.75)
    assert float(road_rest_hours(4.0)) == 0.0 and float(road_rest_hours(9.0)) == 0.75
    assert float(road_rest_hours(9.5)) == 15.0 and float(road_rest_hours(23.0)) == 2 * 15.0 + 0.75
    assert float(road_rest_hours(27.5)) == 3 * 15.0
    # path-level, not edge-level: the two 600 and 400 km legs alone would need no daily rest each
    assert trip.hours.at["X", "Y"] == pytest.approx(600 / 65 + 15.0)


def test_border_waiting_is_not_driving():
    G = nx.MultiDiGraph()
    _edge(G, "X", "Y", 65.0, "road", hours=1.0 + 20.0, fee=150.0, crossing="x1")  # 1 h driving + 20 h queue
    trip = trip_matrix(G, ["X"], ["Y"], PARAMS, return_crossings=True)
    assert trip.driving_h.at["X", "Y"] == pytest.approx(1.0)
    assert trip.hours.at["X", "Y"] == pytest.approx(21.0)
    assert trip.freight.at["X", "Y"] == pytest.approx(4 * 65 + 150)
    assert trip.crossings[("X", "Y")] == ["x1"]


def test_parallel_edges_keep_their_own_km_and_hours():
    G = nx.MultiDiGraph()
    _edge(G, "X", "Y", 100.0, "road")  # 400 RUB/t
    _edge(G, "X", "Y", 150.0, "rail")  # 300 RUB/t, slower, longer: the CSR minimum takes this one
    trip = trip_matrix(G, ["X"], ["Y"], PARAMS)
    assert trip.km.at["X", "Y"] == pytest.approx(150.0)
    assert trip.hours.at["X", "Y"] == pytest.approx(6.0)


edge_lists = st.integers(min_value=2, max_value=9).flatmap(lambda n: st.tuples(st.just(n), st.lists(
    st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(1, 900), st.sampled_from(["road", "rail"]),
              st.sampled_from([0.0, 0.0, 150.0])), min_size=1, max_size=30)))


@settings(max_examples=60, deadline=None)
@given(edge_lists, st.sampled_from([None, "vegetables"]))
def test_path_totals_agrees_with_the_matrix_on_every_path(case, commodity):
    n, edges = case
    G = nx.MultiDiGraph()
    G.add_nodes_from(range(n))
    for u, v, km, mode, fee in edges:
        _edge(G, u, v, km, mode, fee=fee)
    trip = trip_matrix(G, list(G.nodes), list(G.nodes), PARAMS, commodity=commodity)
    metric = "cost" if commodity else "freight"
    paths = od_matrix(G, list(G.nodes), list(G.nodes), metric=metric, params=PARAMS, commodity=commodity,
                      return_paths=True).paths
    for (o, d), path in paths.items():
        t = path_totals(G, path, PARAMS, commodity, metric="cost")
        assert trip.km.at[o, d] == pytest.approx(t["distance_km"], rel=1e-9, abs=1e-6)
        assert trip.hours.at[o, d] == pytest.approx(t["hours"], rel=1e-9, abs=1e-6)
        assert trip.freight.at[o, d] == pytest.approx(t["freight_per_t"], rel=1e-9, abs=1e-6)
    assert np.isinf(trip.km.to_numpy()).sum() == n * n - len(paths)


def test_path_totals_agrees_on_the_embedded_network(G, params):
    nodes = [n for n in G.nodes if str(n).startswith(("road:RU:", "rail:RU:"))][:40]
    trip = trip_matrix(G, nodes, nodes, params, commodity="vegetables", return_crossings=True)
    paths = od_matrix(G, nodes, nodes, metric="cost", params=params, commodity="vegetables",
                      return_paths=True).paths
    for (o, d), path in paths.items():
        t = path_totals(G, path, params, "vegetables")
        assert trip.km.at[o, d] == pytest.approx(t["distance_km"], rel=1e-9, abs=1e-6)
        assert trip.hours.at[o, d] == pytest.approx(t["hours"], rel=1e-9, abs=1e-6)
        assert trip.crossings[(o, d)] == sorted(t["crossings"], key=trip.crossings[(o, d)].index)


def test_khasavyurt_moscow_hours_follow_the_cheapest_path(G, params):
    o, d = resolve_place(G, "Хасавюрт"), resolve_place(G, "Москва")
    trip = trip_matrix(G, [o], [d], params)
    path = od_matrix(G, [o], [d], metric="freight", params=params, return_paths=True).paths[(o, d)]
    assert any(str(n).startswith("rail:") for n in path)  # the cheapest freight goes by rail ...
    assert trip.hours.at[o, d] == pytest.approx(path_totals(G, path, params, metric="freight")["hours"])
    assert trip.hours.at[o, d] > 2 * od_matrix(G, [o], [d], metric="time").values.at[o, d]  # ... and takes long


@pytest.mark.parametrize(("a", "b", "low", "high"), [
    ("Краснодар", "Новороссийск", 140, 160),  # А-146, about 150 km
    ("Ростов-на-Дону", "Ставрополь", 330, 365),  # the direct road, about 340-360 km
    ("Волгоград", "Элиста", 280, 320),  # Р-221
    ("Керчь", "Севастополь", 240, 275),  # «Таврида», 250.7 km
])
def test_new_road_links_have_their_km(G, a, b, low, high):
    road = mode_subgraph(G, "road")
    km = od_matrix(road, [f"road:RU:{a}"], [f"road:RU:{b}"], metric="distance").values.iat[0, 0]
    assert low <= km <= high


@pytest.mark.parametrize("mode", ["road", "rail"])
def test_crimea_and_sevastopol_are_reachable(G, mode):
    H = mode_subgraph(G, mode)
    for town in ("Симферополь", "Севастополь", "Керчь"):
        nid = f"{mode}:RU:{town}"
        assert nid in H
        km = od_matrix(H, [f"{mode}:RU:Краснодар"], [nid], metric="distance").values.iat[0, 0]
        assert np.isfinite(km) and km < 700
    regions = {d["region_id"] for _, d in G.nodes(data=True)}
    assert {"RU-CR", "RU-SEV", "RU-AD"} <= regions
