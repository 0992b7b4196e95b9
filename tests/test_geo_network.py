"""The embedded corridor network: conventions, routes planners check, border states, candidates, export."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
from typer.testing import CliRunner

from geo.candidates import CandidateRules, generate_candidates
from geo.costs import time_cost_rub_per_t_hour
from geo.export import candidates_geojson, corridors_geojson
from geo.geodesy import geodesic_km
from geo.matrix import od_matrix, road_rest_hours
from geo.network import BorderState, NetworkError, mode_subgraph
from geo.route import resolve_place, route
from planner.candidates import load_candidates
from planner.cli import app
from planner.network import corridor_graph
from planner.settings import NCFD_REGIONS


def _ncfd_candidates(G, dataset, rules=None):
    """Candidates generated in the NCFD regions from the dataset's cities and existing centres."""
    return generate_candidates(G, dataset.cities, dataset.existing_centres, sorted(NCFD_REGIONS), rules)


def test_osmnx_conventions_and_layers(G):
    assert G.graph["crs"] == "EPSG:4326"
    assert {m for _, _, m in G.edges(data="mode")} == {"road", "rail", "transfer"}
    for _, d in G.nodes(data=True):
        assert -180 <= d["x"] <= 180 and -90 <= d["y"] <= 90 and d["country"]
    for u, v, d in G.edges(data=True):
        assert d["length"] >= 0 and d["hours"] >= 0
        if d["mode"] != "transfer":
            straight = geodesic_km(G.nodes[u]["y"], G.nodes[u]["x"], G.nodes[v]["y"], G.nodes[v]["x"])
            assert d["length"] / 1000 >= 0.98 * straight
    assert nx.is_strongly_connected(G)


def test_network_reaches_every_ncfd_region_and_partner(G):
    regions = {d["region_id"] for _, d in G.nodes(data=True)}
    assert regions >= NCFD_REGIONS
    countries = {d["country"] for _, d in G.nodes(data=True)}
    assert {"RU", "KZ", "GE", "AM", "AZ", "BY", "KG", "UZ"} <= countries
    assert "CN" in countries or any(d.get("crossing_id", "") and "cn" in d["crossing_id"]
                                    for _, _, d in G.edges(data=True))


def test_route_rostov_makhachkala_is_plausible(G, params):
    r = route(G, "Ростов-на-Дону", "Makhachkala", params, "vegetables", "road")
    assert 750 <= r.distance_km <= 1100  # about 900 km by road via Р-217
    assert r.towns[0] == "Ростов-на-Дону" and r.towns[-1] == "Махачкала"
    assert r.crossings == []
    driving = r.distance_km / params["road_speed_kmh"]
    assert r.hours == pytest.approx(driving + float(road_rest_hours(driving)), rel=1e-9)  # door to door


def test_route_to_yerevan_crosses_upper_lars_and_closing_it_disconnects(dataset, params, G):
    r = route(G, "Владикавказ", "Yerevan", params, "fruit_berries", "road")
    assert "ru_ge_upper_lars" in r.crossings
    closed = corridor_graph(dataset, params, {"ru_ge_upper_lars": BorderState(open=False)})
    assert closed.graph["closed_crossings"] == ["ru_ge_upper_lars"]
    with pytest.raises(NetworkError, match="ru_ge_upper_lars"):
        route(closed, "Владикавказ", "Yerevan", params, "fruit_berries", "road")


def test_border_delay_and_fee_raise_the_cost(dataset, params, G):
    base = route(G, "Астрахань", "Atyrau", params, "vegetables", "road")
    slow = corridor_graph(dataset, params, {c: BorderState(extra_delay_h=48) for c in base.crossings})
    later = route(slow, "Астрахань", "Atyrau", params, "vegetables", "road")
    assert later.hours >= base.hours + 48 - 1e-9 or later.crossings != base.crossings
    assert later.cost_per_t > base.cost_per_t


def test_cost_matrix_prices_time_for_perishables_only(G, params):
    towns = [resolve_place(G, t) for t in ("Ставрополь", "Нальчик", "Махачкала")]
    grain = od_matrix(G, towns, towns, metric="cost", params=params, commodity="grain").values.to_numpy()
    veg = od_matrix(G, towns, towns, metric="cost", params=params, commodity="vegetables").values.to_numpy()
    road = mode_subgraph(G, "road")
    road_km = od_matrix(road, towns, towns, metric="distance").values.to_numpy()
    off = ~np.eye(3, dtype=bool)
    assert (veg[off] > grain[off]).all()
    # the cheapest multimodal route never costs more than trucking the shortest road route
    assert (grain[off] <= road_km[off] * params["road_tariff_rub_per_tkm"] + 1e-6).all()


def test_geo_takes_plain_parameters_and_names_an_unknown_commodity(G, params):
    towns = [resolve_place(G, t) for t in ("Ставрополь", "Нальчик", "Махачкала")]
    plain = dict(params.values)  # geo reads params[name] only: a plain mapping does as well as a ParameterSet
    want = od_matrix(G, towns, towns, metric="cost", params=params, commodity="vegetables").values
    got = od_matrix(G, towns, towns, metric="cost", params=plain, commodity="vegetables").values
    assert got.equals(want)
    with pytest.raises(KeyError, match="'wine'.*value_rub_per_t_wine"):
        time_cost_rub_per_t_hour(plain, "wine")


def test_unknown_place_suggests_names(G):
    with pytest.raises(NetworkError, match="Махачкала"):
        resolve_place(G, "Махачкал")


def test_candidates_honour_spacing_caps_and_keep_existing(G, dataset):
    rules = CandidateRules(min_spacing_km=40, max_per_region=2)
    c = _ncfd_candidates(G, dataset, rules)
    assert set(c["region_id"]) <= NCFD_REGIONS
    ex = c[c["existing"]]
    assert set(ex["region_id"]) == {"RU-IN", "RU-KB", "RU-STA", "RU-DA", "RU-KC"}
    assert (c[~c["existing"]].groupby("region_id").size() <= 2).all()
    new = c[~c["existing"]]
    for i, a in new.iterrows():
        d = geodesic_km(a["lat"], a["lon"], c.drop(index=i)["lat"].to_numpy(), c.drop(index=i)["lon"].to_numpy())
        assert d.min() >= 40
    assert c["node"].isin(list(G.nodes)).all()
    assert (c["road_access"] | c["rail_access"]).all()
    fewer = _ncfd_candidates(G, dataset, CandidateRules(min_spacing_km=150))
    assert len(fewer) < len(c) + 5 and len(fewer[~fewer["existing"]]) <= len(new) + 7


def test_nearby_cities_join_the_candidates(G, dataset):
    base = _ncfd_candidates(G, dataset, CandidateRules(min_spacing_km=10, max_per_region=50))
    more = _ncfd_candidates(G, dataset, CandidateRules(min_spacing_km=10, max_per_region=50, nearby_km=25))
    near = more[more["kind"] == "nearby_city"]
    assert len(near) > 0 and len(more) > len(base)
    assert (near["population"] >= 20_000).all()
    road = G.subgraph([n for n, d in G.nodes(data=True) if d["mode"] == "road"])
    for r in near.itertuples():
        assert geodesic_km(r.lat, r.lon, road.nodes[r.node]["y"], road.nodes[r.node]["x"]) <= 25


def test_candidates_from_a_user_file(G, dataset, tmp_path):
    f = tmp_path / "cands.csv"
    f.write_text("candidate_id,name_ru,name_en,lat,lon\nmv,Минеральные Воды,Mineralnye Vody,44.21,43.13\n",
                 encoding="utf-8")
    c = load_candidates(f, G, dataset)
    assert c.loc[0, "region_id"] == "RU-STA" and c.loc[0, "node"] in G
    far = tmp_path / "far.csv"
    far.write_text("candidate_id,name_ru,name_en,lat,lon\nx,Анадырь,Anadyr,64.73,177.51\n", encoding="utf-8")
    with pytest.raises(NetworkError, match="farther than"):
        load_candidates(far, G, dataset)


def test_geojson_export_is_epsg4326(G, dataset):
    doc = corridors_geojson(G)
    assert doc["crs"]["properties"]["name"].endswith("4326")
    assert {f["properties"]["mode"] for f in doc["features"]} == {"road", "rail"}
    c = _ncfd_candidates(G, dataset)
    json.dumps(candidates_geojson(c))


def test_cli_geo_info_export_route(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["geo", "info"])
    assert res.exit_code == 0, res.output
    assert "ru_ge_upper_lars" in res.output
    res = runner.invoke(app, ["geo", "export", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"corridors.geojson", "crossings.geojson",
                                                              "candidates.geojson"}
    res = runner.invoke(app, ["geo", "route", "Краснодар", "Ставрополь", "--json", "--commodity", "grain"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert set(out) == {"from", "to", "distance_km", "hours", "cost_per_t", "path", "crossings"}
    assert out["path"][0] == "Краснодар" and out["path"][-1] == "Ставрополь"
    res = runner.invoke(app, ["geo", "route", "Краснодр", "Ставрополь"])
    assert res.exit_code == 1 and "Краснодар" in res.output
    res = runner.invoke(app, ["geo", "route", "Краснодар", "Ставрополь", "--commodity", "wine"])
    assert res.exit_code == 1 and "wine" in res.output


def test_scenario_closing_a_crossing_through_cli(tmp_path):
    sc = tmp_path / "closed.yaml"
    sc.write_text("name: closed\nborders:\n  ru_ge_upper_lars: {open: false}\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["geo", "route", "Владикавказ", "Ереван", "--mode", "road", "-s", str(sc)])
    assert res.exit_code == 1 and "no road path" in res.output and "ru_ge_upper_lars" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nborders:\n  upper_lars: {open: false}\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["geo", "info", "-s", str(bad)])
    assert res.exit_code == 1 and "upper_lars" in res.output


def test_existing_centres_sit_on_road_nodes_whatever_the_node_order(G, dataset):
    """A town's road and rail nodes share coordinates; the tie must go to the road layer, not to whichever node was
    added first (with the rail node, the centre paid the transshipment on every road delivery in)."""
    regions = sorted(NCFD_REGIONS)
    cands = generate_candidates(G, dataset.cities, dataset.existing_centres, regions)
    existing = cands[cands["existing"]]
    assert len(existing) >= 5
    assert all(str(n).startswith("road:") for n in existing["node"])
    shuffled = nx.MultiDiGraph()
    shuffled.graph.update(G.graph)
    shuffled.add_nodes_from(sorted(G.nodes(data=True), key=lambda nd: (nd[1]["mode"] != "rail", nd[0])))
    shuffled.add_edges_from(G.edges(keys=True, data=True))
    again = generate_candidates(shuffled, dataset.cities, dataset.existing_centres, regions)
    assert list(again.loc[again["existing"], "node"]) == list(existing["node"])
