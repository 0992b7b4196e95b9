"""The national corridor network (issue #18): every Russian regional capital and every Kazakh oblast centre on the
road network, Tajikistan joined through Uzbekistan, the new border crossings, and a Tajik scope that runs.

Long-haul road km against published figures are checked with the other pairs in ``test_geo_distances.py`` (the
``national`` rows of ``docs/research-notes/capital_road_distances.csv``).
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest
from typer.testing import CliRunner

from geo.matrix import trip_matrix
from geo.network import mode_subgraph
from planner.cli import app

TABLE = Path(__file__).resolve().parents[1] / "docs" / "research-notes" / "capital_road_distances.csv"

UNREACHABLE_CAPITALS = {
    "RU-KGD": "Kaliningrad: an exclave, reached by road only in transit through Lithuania or Belarus and Lithuania",
    "RU-KAM": "Petropavlovsk-Kamchatsky: no road to the mainland network (sea and air only)",
    "RU-SAK": "Yuzhno-Sakhalinsk: on Sakhalin island (ferry Vanino – Kholmsk, not modelled)",
    "RU-CHU": "Anadyr: no year-round road (winter roads, sea and air)",
    "RU-NEN": "Naryan-Mar: no year-round road (winter road to Usinsk, river and air)",
    "RU-YAN": "Salekhard: no road bridge over the Ob; winter road and ferry from Labytnangi",
    "RU-SA": "Yakutsk: across the Lena from Nizhny Bestyakh (ferry in summer, ice road in winter, cut in the thaw and "
             "the freeze-up; the bridge is under construction)",
}
"""Russian regional capitals the road network does not reach, and why (docs/geo.md)."""

KZ_NEW_CENTRES = {"KZ-55": "Павлодар", "KZ-59": "Петропавловск", "KZ-39": "Костанай", "KZ-11": "Кокшетау",
                  "KZ-63": "Усть-Каменогорск", "KZ-10": "Семей", "KZ-62": "Жезказган", "KZ-47": "Актау"}
"""The centres of the eight Kazakh regions that had no town on the corridor network before issue #18."""


def _reachable_road(G: nx.MultiDiGraph, source: str) -> set[str]:
    road = mode_subgraph(G, "road")
    return set(nx.descendants(road, source)) | {source}


@pytest.fixture(scope="module")
def from_moscow(G) -> set[str]:
    return _reachable_road(G, "road:RU:Москва")


@pytest.fixture(scope="module")
def from_astana(G) -> set[str]:
    return _reachable_road(G, "road:KZ:Астана")


def _russian_capitals(dataset) -> pd.DataFrame:
    """The regional capitals of the cities table, plus the federal cities and Crimea's capital it does not flag."""
    c = dataset.cities
    caps = c[c["is_region_capital"] & (c["country_id"] == "RU")][["region_id", "name_ru", "name_en"]]
    extra = pd.DataFrame([("RU-MOW", "Москва", "Moscow"), ("RU-SPE", "Санкт-Петербург", "St Petersburg"),
                          ("RU-CR", "Симферополь", "Simferopol"), ("RU-SEV", "Севастополь", "Sevastopol")],
                         columns=caps.columns)
    return pd.concat([caps, extra], ignore_index=True)


def test_every_russian_capital_is_reachable_by_road_from_moscow_but_the_stated_ones(dataset, from_moscow):
    caps = _russian_capitals(dataset)
    assert len(caps) >= 80
    unreachable = {r.region_id for r in caps.itertuples() if f"road:RU:{r.name_ru}" not in from_moscow}
    assert unreachable == set(UNREACHABLE_CAPITALS), (
        f"reachable now but listed as an exception: {sorted(set(UNREACHABLE_CAPITALS) - unreachable)}; "
        f"unreachable without a stated reason: {sorted(unreachable - set(UNREACHABLE_CAPITALS))}")


def test_every_russian_region_has_a_road_town_reachable_from_moscow_but_the_stated_ones(dataset, G, from_moscow):
    """Also the regions whose capital the cities table does not flag (Ingushetia, Moscow and Leningrad oblasts)."""
    ru = set(dataset.regions.loc[dataset.regions["country_id"] == "RU", "region_id"])
    assert len(ru) == 85
    served = {G.nodes[n]["region_id"] for n in from_moscow}
    # Yakutia's capital is cut off by the Lena, the republic is not: Neryungri, Aldan and Nizhny Bestyakh are on
    # the A-360
    assert ru - served == set(UNREACHABLE_CAPITALS) - {"RU-SA"}


def test_every_kazakh_region_is_reachable_by_road_from_astana(dataset, G, from_astana):
    kz = set(dataset.regions.loc[dataset.regions["country_id"] == "KZ", "region_id"])
    assert len(kz) == 20
    served = {G.nodes[n]["region_id"] for n in from_astana}
    assert kz <= served, f"Kazakh regions without a road town reachable from Astana: {sorted(kz - served)}"
    for region, centre in KZ_NEW_CENTRES.items():
        node = f"road:KZ:{centre}"
        assert node in from_astana, centre
        assert G.nodes[node]["region_id"] == region, centre


def test_the_new_kazakh_roads_shorten_astana_to_the_north(G):
    """Before issue #18 the north of Kazakhstan had no corridor; the republican roads now give published km."""
    road = mode_subgraph(G, "road")
    km = nx.shortest_path_length(road, "road:KZ:Астана", "road:KZ:Кокшетау", weight="length") / 1000
    assert km == pytest.approx(304, abs=1)  # KazAvtoZhol km post of Kokshetau
    # Petropavl is reached through Kokshetau (not through Russia): well under the 1,000+ km of any detour
    km = nx.shortest_path_length(road, "road:KZ:Астана", "road:KZ:Петропавловск", weight="length") / 1000
    assert 430 < km < 600


def test_tajikistan_is_joined_through_uzbekistan(G, dataset, params):
    road = mode_subgraph(G, "road")
    assert nx.has_path(road, "road:RU:Москва", "road:TJ:Душанбе")
    trips = trip_matrix(G, ["road:TJ:Душанбе"], ["road:UZ:Ташкент", "road:UZ:Термез"], params,
                        return_crossings=True)
    assert trips.km.loc["road:TJ:Душанбе", "road:UZ:Термез"] == pytest.approx(251, abs=1)  # published
    assert trips.crossings[("road:TJ:Душанбе", "road:UZ:Термез")] == ["uz_tj_sariosiyo"]
    assert trips.crossings[("road:TJ:Душанбе", "road:UZ:Ташкент")] in (["uz_tj_oybek"], ["uz_tj_sariosiyo"])


def test_new_crossings_are_listed_and_those_on_the_network_carry_their_delay(dataset, G):
    x = dataset.border_crossings.set_index("crossing_id")
    new = {"ru_kz_petukhovo": ("RU", "KZ"), "ru_kz_isilkul": ("RU", "KZ"), "ru_kz_bugristoye": ("RU", "KZ"),
           "ru_kz_petukhovo_rail": ("RU", "KZ"), "ru_kz_isilkul_rail": ("RU", "KZ"),
           "ru_by_krasnoye_rail": ("RU", "BY"), "ru_cn_zabaykalsk": ("RU", "CN"),
           "ru_cn_zabaykalsk_rail": ("RU", "CN"), "ru_cn_blagoveshchensk": ("RU", "CN"),
           "ru_cn_pogranichny": ("RU", "CN"), "ru_cn_grodekovo_rail": ("RU", "CN"), "uz_tj_oybek": ("UZ", "TJ"),
           "uz_tj_sariosiyo": ("UZ", "TJ")}
    for cid, pair in new.items():
        assert (x.at[cid, "country_a"], x.at[cid, "country_b"]) == pair
    on_edges = {}
    for _, _, d in G.edges(data=True):
        if d.get("crossing_id"):
            on_edges[d["crossing_id"]] = d
    # the Kazakh, Belarusian and Tajik crossings are crossed by corridors; the Chinese side of the Russian
    # crossings is not on the network (cities.csv holds Xinjiang only), so those are listed, not crossed
    for cid in new:
        assert (cid in on_edges) == (not cid.startswith("ru_cn_")), cid
    for cid in ("ru_kz_petukhovo", "ru_kz_isilkul", "ru_kz_bugristoye"):
        assert on_edges[cid]["fee_rub_per_t"] == 0.0  # EAEU: no customs fee
        km = on_edges[cid]["length"] / 1000
        assert on_edges[cid]["hours"] == pytest.approx(km / 65 + float(x.at[cid, "typical_delay_h"]))


def test_every_new_segment_says_where_its_km_come_from(dataset):
    cor = dataset.corridors
    issue18 = set(cor.loc[cor["notes"].fillna("").str.contains("issue #18") & (cor["seq"] == 0), "corridor_id"])
    assert len(issue18) >= 60
    seg = cor[cor["corridor_id"].isin(issue18) & (cor["seq"] > 0)]
    src = seg["km_source"].fillna("")
    assert src.str.match(r"^(published: |estimate)").all()
    # a published segment names its source and km posts; an estimate with a km says what it was split from
    assert (seg.loc[src.str.startswith("published"), "km_from_prev"].notna()).all()
    split = src.str.startswith("estimate: ")
    assert seg.loc[split, "km_from_prev"].notna().all() and src[split].str.contains("split").all()
    assert (src.str.startswith("published")).sum() >= 40


def test_the_distances_table_holds_the_long_haul_pairs():
    t = pd.read_csv(TABLE, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    nat = t[t["scope"] == "national"]
    pairs = set(zip(nat["from_en"], nat["to_en"], strict=True))
    for p in [("Moscow", "St Petersburg"), ("Moscow", "Novosibirsk"), ("Novosibirsk", "Vladivostok"),
              ("Moscow", "Kazan"), ("Dushanbe", "Termez"), ("Astana", "Kokshetau")]:
        assert p in pairs, p


def test_a_tajik_scope_runs(tmp_path):
    """``scope: {countries: [TJ]}`` was refused (no corridor reached Tajikistan, so no candidate); it now solves."""
    sc = tmp_path / "tajikistan_small.yaml"
    sc.write_text("""name: tajikistan_small
title_ru: Таджикистан — малый сценарий
title_en: Tajikistan — small scenario
scope: {countries: [TJ]}
commodities: [potatoes, vegetables]
candidates: {min_spacing_km: 30, max_per_region: 2}
network: {k_nearest: 6}
exits:
  - {market: uz_tashkent, balancing: true}
objective: {type: cost}
solver: {time_limit_s: 20, gap: 0.01}
""", encoding="utf-8")
    res = CliRunner().invoke(app, ["run", str(sc), "-o", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] in ("optimal", "time_limit", "feasible")
    centres = {c["id"] for c in summary["centres"]}
    assert centres and all(c["country"] == "TJ" for c in summary["centres"])
    assert centres <= {"dushanbe", "khudzhand", "istaravshan", "tursunzoda"}
