"""The result map's trade layer: imports and exports at border crossings, ports and outside markets, as the web
workspace gets it (``GET /runs/{id}/geojson`` serves the document :func:`planner.outputs.network_geojson` builds
in the worker) — and the partners' first-level regions drawn for a scope in Kazakhstan."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kz_run(dataset):
    """Kazakhstan's pilot scenario without its share curve (about 10 s), with the document the API serves."""
    from planner.execute import execute_scenario
    from planner.outputs import network_geojson, result_tables
    from planner.scenario import parse_scenario

    body = yaml.safe_load((ROOT / "scenarios" / "kazakhstan_pilots.yaml").read_text(encoding="utf-8"))
    body.pop("outputs", None)
    body["solver"] = {"time_limit_s": 60, "gap": 0.02}
    out = execute_scenario(parse_scenario(body, source="test"), dataset)
    t = result_tables(out.planned, out.result, out.summary, out.losses, out.prices, out.investor)
    return out.summary, t, network_geojson(out.planned, out.result, t["sites"], dataset, out.summary)


def test_trade_points_carry_the_runs_tonnes_at_markets_and_crossings(kz_run, dataset):
    summary, tables, gj = kz_run
    trade = {f["properties"]["point_id"]: f for f in gj["features"] if f["properties"]["layer"] == "trade"}
    markets = {k: v["properties"] for k, v in trade.items() if v["properties"]["kind"] != "crossing"}
    crossings = {k: v["properties"] for k, v in trade.items() if v["properties"]["kind"] == "crossing"}
    groups = list(summary["imports_t"])
    # every market the run trades with is on the map with the summary's tonnes, by group and in all
    traded = {m for m in {*summary["imports_by_exit_t"], *summary["exports_by_exit_t"]}
              if sum(summary["imports_by_exit_t"].get(m, {}).values())
              + sum(summary["exports_by_exit_t"].get(m, {}).values()) >= 0.5}
    assert traded and set(markets) == traded
    for mid, p in markets.items():
        for d, key in (("imports", "imports_by_exit_t"), ("exports", "exports_by_exit_t")):
            want = summary[key].get(mid, {})
            assert p[f"{d}_t"] == pytest.approx(sum(want.values()), abs=1.0), (mid, d)
            for g in groups:
                assert p[f"{d}_{g}_t"] == pytest.approx(want.get(g, 0.0), abs=1.0), (mid, d, g)
        assert p["name_ru"] and p["name_en"] and p["name_ru"] != p["name_en"]
        assert trade[mid]["geometry"]["type"] == "Point"
    # each market's trade passes the crossings named in its ``via``, and they carry its tonnes (counted once)
    for mid, p in markets.items():
        via = [c for c in p["via"].split(",") if c]
        assert via, mid  # every market of this scenario is abroad: its trade crosses a border
        for d in ("imports", "exports"):
            at_crossings = sum(crossings[c][f"{d}_t"] for c in via if mid in crossings[c]["via"].split(","))
            assert at_crossings == pytest.approx(p[f"{d}_t"], rel=0.001, abs=5.0), (mid, d)
    # Uzbekistan's purchases cross at Zhibek Zholy – Gisht-Kuprik, with the crossing's Russian and English names
    uz = crossings["kz_uz_zhibek_zholy"]
    assert markets["uz_tashkent"]["exports_t"] > 0
    assert uz["exports_t"] == pytest.approx(markets["uz_tashkent"]["exports_t"], abs=5.0)
    bc = dataset.border_crossings.set_index("crossing_id").loc["kz_uz_zhibek_zholy"]
    assert (uz["name_ru"], uz["name_en"]) == (bc["name_ru"], bc["name_en"]) and uz["country_id"] == "KZ-UZ"
    assert trade["kz_uz_zhibek_zholy"]["geometry"]["coordinates"] == pytest.approx([float(bc["lon"]),
                                                                                   float(bc["lat"])])
    # a crossing's figures by group add up to its totals, and the popup's kind names are bilingual
    for p in crossings.values():
        for d in ("imports", "exports"):
            assert sum(p[f"{d}_{g}_t"] for g in groups) == pytest.approx(p[f"{d}_t"], abs=len(groups))
        assert (p["kind_ru"], p["kind_en"]) == ("пункт пропуска", "border crossing")
        assert p["total_t"] == pytest.approx(p["imports_t"] + p["exports_t"])


def test_a_scope_in_kazakhstan_draws_its_regions_as_polygons(kz_run, dataset):
    _, _, gj = kz_run
    regions = {f["properties"]["region_id"]: f for f in gj["features"] if f["properties"]["layer"] == "region"}
    kz = set(dataset.regions.loc[dataset.regions["country_id"] == "KZ", "region_id"])
    assert kz <= set(regions)
    for rid in kz:
        p = regions[rid]["properties"]
        assert regions[rid]["geometry"]["type"] in {"Polygon", "MultiPolygon"}
        assert p["in_scope"] and p["name_ru"] and p["name_en"]
    assert regions["KZ-79"]["properties"]["outline_approximate"]  # Shymkent: schematic
    assert not regions["KZ-71"]["properties"]["outline_approximate"]
    assert not any(r.startswith(("UZ-", "AM-")) for r in regions)  # countries outside the scope are not drawn


def test_summary_splits_trade_by_crossing_and_port_as_the_map_does(kz_run):
    """summary.json's imports and exports by border crossing (or port, or a market reached without one), group
    and tonnes a year: the map's crossing figures (one split, planner.summary.split_by_crossing) and, with the
    markets reached without a crossing, every group's imports and exports in all."""
    summary, _, gj = kz_run
    trade = {f["properties"]["point_id"]: f["properties"] for f in gj["features"]
             if f["properties"]["layer"] == "trade"}
    groups = list(summary["imports_t"])
    names = {p["id"]: p for p in summary["trade_points"]}
    for d in ("imports", "exports"):
        by = summary[f"{d}_by_crossing_t"]
        # each group's rows add up to the group's trade in all
        for g in groups:
            assert sum(v.get(g, 0.0) for v in by.values()) == pytest.approx(summary[f"{d}_t"][g], rel=1e-3,
                                                                             abs=5.0), (d, g)
        for pid, row in by.items():
            assert pid in names and names[pid]["name_ru"] and names[pid]["name_en"]
            if names[pid]["kind"] == "crossing":  # the map's point: the same tonnes (its flows rounded)
                for g in groups:
                    assert trade[pid][f"{d}_{g}_t"] == pytest.approx(row.get(g, 0.0), rel=1e-4, abs=5.0), (pid, d, g)
            else:  # reached without a crossing: a market of the run
                assert pid in summary[f"{d}_by_exit_t"]
    # Uzbekistan's purchases are counted at Zhibek Zholy, not at the market
    assert sum(summary["exports_by_crossing_t"]["kz_uz_zhibek_zholy"].values()) > 0
    assert "uz_tashkent" not in summary["exports_by_crossing_t"]
