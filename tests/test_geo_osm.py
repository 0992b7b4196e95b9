"""A user's OpenStreetMap extract loads through osmnx into the planner's graph conventions and routes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from geo.matrix import od_matrix
from geo.osm import graph_from_osm_file
from geo.route import route
from planner.cli import app
from planner.parameters import ParameterSet

OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <node id="1" lat="45.0000" lon="42.0000" version="1"/>
  <node id="2" lat="45.0000" lon="42.0500" version="1"/>
  <node id="3" lat="45.0000" lon="42.1000" version="1"/>
  <node id="4" lat="45.0500" lon="42.1000" version="1"/>
  <way id="10" version="1">
    <nd ref="1"/><nd ref="2"/><nd ref="3"/>
    <tag k="highway" v="trunk"/><tag k="name" v="Р-217"/>
  </way>
  <way id="11" version="1">
    <nd ref="3"/><nd ref="4"/>
    <tag k="highway" v="primary"/>
  </way>
</osm>
"""


@pytest.fixture
def osm_file(tmp_path):
    p = tmp_path / "extract.osm"
    p.write_text(OSM, encoding="utf-8")
    return p


def test_osm_extract_loads_with_planner_conventions(osm_file, dataset):
    G = graph_from_osm_file(osm_file, ParameterSet(dataset.loss_rates), country="RU")
    assert G.graph["crs"] == "epsg:4326" or str(G.graph["crs"]).upper() == "EPSG:4326"
    assert set(G.nodes) == {1, 4}  # osmnx simplification merges the interstitial nodes 2 and 3
    assert G.number_of_edges() == 2
    for _, _, d in G.edges(data=True):
        assert d["mode"] == "road" and d["hours"] > 0 and d["length"] > 0
    res = od_matrix(G, [1], [4], metric="distance")
    # 0.1° of longitude at 45° N (≈7.86 km) plus 0.05° of latitude (≈5.56 km)
    assert res.values.at[1, 4] == pytest.approx(7.86 + 5.56, rel=0.01)
    r = route(G, "1", "4", ParameterSet(dataset.loss_rates), "grain")
    assert r.distance_km == pytest.approx(13.42, rel=0.01)


def test_cli_routes_on_an_osm_extract(osm_file):
    res = CliRunner().invoke(app, ["geo", "route", "1", "4", "--osm", str(osm_file), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["distance_km"] == pytest.approx(13.4, abs=0.1)
    assert out["crossings"] == []
