"""Credible flows on the library scenarios: no group leaves the scope while a market of it goes unserved, duties
and closed crossings move prices where trade runs through them, the baseline reproduces the reference prices,
every channel has the same reach, and farms and markets sit on nodes of their own region."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from optimization.run import optimize
from optimization.solve import SolverOptions
from planner.economics import estimate_price_impact
from planner.pipeline import build_problem
from planner.scenario import ScenarioError, load_scenario, parse_scenario
from planner.summary import trade_summary

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ["ncfd_expansion", "ncfd_baseline", "south_russia_corridors", "eaeu_crossborder",
           "eaeu_upper_lars_closed", "eaeu_tariff_shock", "kazakhstan_pilots"]


@pytest.fixture(scope="module")
def prices(dataset):
    """Price reports (existing centres against no centres) of the cross-border scenario and its two variants."""
    return {name: estimate_price_impact(load_scenario(ROOT / "scenarios" / f"{name}.yaml"), dataset, None,
                                        "traditional")
            for name in ("eaeu_crossborder", "eaeu_tariff_shock", "eaeu_upper_lars_closed")}


@pytest.mark.parametrize("name", LIBRARY)
def test_no_group_leaves_while_a_market_of_it_goes_unserved(dataset, name):
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    planned = build_problem(sc, dataset)
    res = optimize(planned.problem, SolverOptions(rel_gap=sc.solver.gap, time_limit=120))
    assert res.objective is not None
    t = trade_summary(planned, res)
    for k in planned.problem.commodities:
        assert not (t["exports_t"][k] > 1.0 and t["unmet_t"][k] > 1.0), (k, t["exports_t"][k], t["unmet_t"][k])
    # imports stand in where local supply falls short: nothing is left unmet in the library
    assert sum(t["unmet_t"].values()) < 1.0, t["unmet_causes"][:3]


def _consumer(report, commodity: str) -> pd.Series:
    r = report.regions[report.regions["commodity"] == commodity]
    return r.set_index("region_id")["consumer_price_base"]


def _net_sales(report, commodity: str, market: str) -> float:
    o = report.outside
    row = o[(o["commodity"] == commodity) & (o["market_id"] == market)]
    return float(row["net_sales_base_t"].iat[0]) if len(row) else float("nan")


def test_a_duty_on_azerbaijan_moves_prices_most_where_its_trade_runs(prices):
    free, shock = prices["eaeu_crossborder"], prices["eaeu_tariff_shock"]
    # the scope buys vegetables and fruit from Azerbaijan: a 30% duty both ways cuts what it buys
    for k in ("vegetables", "fruit_berries"):
        before, after = _net_sales(free, k, "az_baku"), _net_sales(shock, k, "az_baku")
        assert before < -50_000 and after > before + 0.4 * abs(before), (k, before, after)
    # ... and raises consumer prices everywhere: regions pricing off the rest of Russia nearly evenly (the whole
    # south ships vegetables there and its prices move with that netback), regions buying via Baku (Dagestan,
    # Chechnya) because the slower clearance at both Azerbaijani crossings reaches Iranian produce in transit too.
    # Outside reference prices are calibrated on the recorded border policy, so the shock is not re-calibrated
    # away (pipeline.reference_trips). Fruit, bought via Baku, rises at least as much in Dagestan (at the
    # crossing) as in Crimea (farthest).
    for k, low, high in (("vegetables", 0.2, 3.0), ("fruit_berries", 0.5, 6.0)):
        change = 100 * (_consumer(shock, k) / _consumer(free, k) - 1)
        assert (change > low).all() and (change < high).all(), (k, change.to_dict())
    fruit = 100 * (_consumer(shock, "fruit_berries") / _consumer(free, "fruit_berries") - 1)
    assert fruit["RU-DA"] >= fruit["RU-CR"] - 1e-6
    # Azerbaijan buys fewer Russian potatoes: potato prices fall, most in Dagestan
    potatoes = 100 * (_consumer(shock, "potatoes") / _consumer(free, "potatoes") - 1)
    assert potatoes["RU-DA"] < -0.1 and potatoes["RU-DA"] <= potatoes.min() + 0.05 and (potatoes < 1e-6).all()


def test_closing_upper_lars_cuts_armenia_and_georgia_and_raises_fruit_prices(prices):
    open_, closed = prices["eaeu_crossborder"], prices["eaeu_upper_lars_closed"]
    assert _net_sales(open_, "fruit_berries", "am_yerevan") < -50_000
    # no longer reachable: no trade (its reference price stays the recorded world's, as with any closure)
    assert _net_sales(closed, "fruit_berries", "am_yerevan") == 0.0
    change = 100 * (_consumer(closed, "fruit_berries") / _consumer(open_, "fruit_berries") - 1)
    assert (change > 0.5).all() and (change < 6.0).all(), change.to_dict()
    # the rise is where the lost imports went: the regions that bought Armenian and Georgian fruit (importers ship
    # full loads, so it reaches Volgograd and Rostov as well as North Ossetia) rise by at least the scope's median
    flows = open_.trade_flows()
    bought = flows[(flows["commodity"] == "fruit_berries")
                   & flows["from"].isin(["outside:am_yerevan", "outside:ge_tbilisi"])]
    buyers = bought.groupby("to")["tonnes_base"].sum()
    buyers = buyers[buyers > 0.05 * buyers.sum()].index
    assert len(buyers) >= 2
    weighted = float((change[buyers] * bought.groupby("to")["tonnes_base"].sum()[buyers]).sum()
                     / bought.groupby("to")["tonnes_base"].sum()[buyers].sum())
    assert weighted >= float(change.median()) - 1e-6, (weighted, change.to_dict())


def test_the_baseline_reproduces_the_reference_prices(prices, dataset):
    """Today's network (the existing centres) reproduces the reference prices within the tolerance
    docs/economics.md states: demand-weighted mean within ±5%, every region within ±12%. Kazakhstan's pilots are
    left out: no regional prices and almost no trade records anchor them (measured deviations in docs/economics.md)."""
    reports = [estimate_price_impact(load_scenario(ROOT / "scenarios" / f"{name}.yaml"), dataset, None, "existing")
               for name in ("eaeu_crossborder", "ncfd_expansion")]
    for r in reports:
        c = r.calibration.set_index("commodity")
        assert (c["consumer_dev_mean_pct"].abs() < 5.0).all(), c
        assert (c["consumer_dev_max_pct"] < 12.0).all() and (c["consumer_dev_min_pct"] > -12.0).all(), c


def test_the_old_distance_cut_offs_are_refused_by_name():
    for key in ("direct_km", "service_km"):
        with pytest.raises(ScenarioError, match=f"network.{key}"):
            parse_scenario({"name": "x", "network": {key: 250}})


def test_every_channel_has_the_same_reach(dataset):
    """Without any centre the traditional channel reaches every market it reaches with centres: the centres
    are no bridge past a cut-off (fruit at Stavropol and Kropotkin was "unmet" without centres)."""
    sc = parse_scenario({"name": "x", "commodities": ["fruit_berries"],
                         "candidates": {"include_junctions": False, "include_rail_stations": False,
                                        "include_towns": False}, "objective": {"force_existing": False, "p": 0}})
    planned = build_problem(sc, dataset)
    res = optimize(planned.problem, SolverOptions(rel_gap=0.0))
    assert res.status == "optimal" and res.service["unmet_t"].sum() < 1.0


@pytest.mark.parametrize("name", ["ncfd_expansion", "south_russia_corridors"])
def test_no_centre_reaches_a_market_its_farm_cannot_reach_directly(dataset, name):
    """Structurally, not through imports: every (farm, market, group) that a route through a centre joins has a
    direct arc of its own, so a centre is never a bridge past a cut-off (the old `direct_km` made centres bridge
    Nalchik – Stavropol); what a centre changes is the cost, the loss and the season, never the reach."""
    pb = build_problem(load_scenario(ROOT / "scenarios" / f"{name}.yaml"), dataset).problem
    inbound = pb.inbound[["supply_id", "site_id", "commodity"]].drop_duplicates()
    outbound = pb.outbound[["site_id", "demand_id", "commodity"]].drop_duplicates()
    via = inbound.merge(outbound, on=["site_id", "commodity"])[["supply_id", "demand_id", "commodity"]]
    via = via[via["supply_id"].str.startswith("farm:") & ~via["demand_id"].str.startswith("exit:")].drop_duplicates()
    direct = set(map(tuple, pb.direct[["supply_id", "demand_id", "commodity"]].drop_duplicates().to_numpy()))
    assert len(via) > 100
    missing = [t for t in map(tuple, via.to_numpy()) if t not in direct]
    assert not missing, missing[:5]


def test_farms_and_markets_sit_in_their_own_region_and_country(dataset):
    """A region's farm node and the market nodes that carry its demand lie in the region itself where it has a
    node of its own, else in its own country (Stavropol krai's cities once carried their demand to the Kropotkin
    node in Krasnodar krai): each region's demand (its balance, t a year) sits whole at market nodes of its own
    region."""
    from planner.balance import regional_balance

    for name in ("south_russia_corridors", "kazakhstan_pilots"):
        sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
        planned = build_problem(sc, dataset)
        G = planned.graph
        region_of = dataset.regions.set_index("region_id")["country_id"]
        has_node = {d.get("region_id") for _, d in G.nodes(data=True)}
        for key, node in planned.nodes.items():
            if not key.startswith("farm:"):
                continue
            rid = key.removeprefix("farm:")
            assert G.nodes[node]["country"] == region_of[rid], (key, node)
            if rid in has_node:
                assert G.nodes[node]["region_id"] == rid, (key, node)
        d = planned.problem.demands
        d = d[~d["is_exit"].astype(bool)]
        nodes = d["demand_id"].map(planned.nodes)
        assert nodes.notna().all() and d["demand_id"].str.startswith("market:").all()
        scope = sc.region_ids(dataset)
        scope_countries = set(region_of[scope])
        assert {G.nodes[n]["country"] for n in nodes} <= scope_countries, name
        assert {G.nodes[n]["region_id"] for n in nodes} <= set(scope), name
        at = d.assign(region=[G.nodes[n]["region_id"] for n in nodes]).groupby(["region", "commodity"])[
            "quantity_t"].sum()
        bal = regional_balance(dataset, scope, list(sc.commodities), planned.params, sc.demand_basis)
        own = bal[bal["region_id"].isin(has_node) & (bal["demand_kt"] > 0)]
        assert len(own) > 0
        for r in own.itertuples():  # a region with a node of its own: its whole demand at its own market nodes
            assert at.get((r.region_id, r.commodity), 0.0) >= r.demand_kt * 1000.0 * (1 - 1e-9), (name, r.region_id)
