"""The federal network's model and scenario features (issue #18, "Model and scenario" and "Outputs"): the scope by
agriculture location quotient, the coverage rule, the distinct-regions constraint, centre types by group, a scope
covering the whole country, the inter-district flow table and the producer surplus by region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimization.problem import NetworkProblem, Options, ProblemError
from optimization.results import NetworkResult
from optimization.run import optimize
from optimization.solve import SolverOptions
from planner.economics.districts import (
    ALL_GROUPS,
    DISTRIBUTION_COLUMNS,
    DISTRICT_COLUMNS,
    FLOW_COLUMNS,
    OUTSIDE,
    _origin_destination,
    scope_districts,
    surplus_by_region,
    write_distribution_csv,
    write_district_csv,
    write_interdistrict_csv,
)
from planner.parameters import ParameterSet
from planner.pipeline import build_problem
from planner.scenario import Exit, ScenarioError, agri_location_quotients, dataset_errors, parse_scenario
from planner.trade import covers_country, market_curves, resolve_markets

EXACT = SolverOptions(rel_gap=0.0)


def three_sites(**options) -> NetworkProblem:
    """One farm, one market; sites a1 and a2 in region A (cheap: fixed cost 10) and b in region B (dear: 50).
    Routing through any site costs 1 RUB/t, the direct route 100 RUB/t, so two centres open."""
    supplies = pd.DataFrame([("farm", "potatoes", 100.0, 0.0, 1.0)],
                            columns=["supply_id", "commodity", "quantity_t", "storage_loss", "value_per_t"])
    demands = pd.DataFrame([("market", "potatoes", 100.0, np.nan, False, np.nan)],
                           columns=["demand_id", "commodity", "quantity_t", "penalty_per_t", "is_exit", "price_per_t"])
    ids = ["a1", "a2", "b"]
    sites = pd.DataFrame({"site_id": ids, "existing": False, "group": ["A|D1", "A|D1", "B|D1"]})
    mods = pd.DataFrame({"site_id": ids, "module_id": "small", "capacity_t": 60.0, "fixed_cost": [10.0, 10.0, 50.0],
                         "capital_cost": [10.0, 10.0, 50.0]})
    cols = ["cost_per_t", "loss"]
    inbound = pd.DataFrame([("farm", j, "potatoes", 0.5, 0.0) for j in ids],
                           columns=["supply_id", "site_id", "commodity", *cols])
    outbound = pd.DataFrame([(j, "market", "potatoes", 0.5, 0.0) for j in ids],
                            columns=["site_id", "demand_id", "commodity", *cols])
    direct = pd.DataFrame([("farm", "market", "potatoes", 100.0, 0.0)],
                          columns=["supply_id", "demand_id", "commodity", *cols])
    return NetworkProblem(["potatoes"], supplies, sites, mods, demands, inbound, outbound, direct,
                          Options(p=2, **options))


# --- 2. distinct regions -----------------------------------------------------------------------------------------

def test_min_regions_spreads_the_centres_over_regions():
    plain = optimize(three_sites(), EXACT)
    assert set(plain.open_sites) == {"a1", "a2"}  # the two cheap sites, both in region A
    spread = optimize(three_sites(min_regions=2), EXACT)
    assert "b" in spread.open_sites and len(spread.open_sites) == 2
    assert spread.objective == pytest.approx(plain.objective + 40.0)


def test_min_regions_beyond_the_regions_of_the_sites_is_refused():
    with pytest.raises(ProblemError, match="min_regions"):
        optimize(three_sites(min_regions=3), EXACT)


# --- 1. coverage rule --------------------------------------------------------------------------------------------

def test_coverage_opens_a_centre_within_reach_of_every_covered_region():
    res = optimize(three_sites(coverage={"RU-X": ["b"], "RU-Y": ["a1", "b"]}), EXACT)
    assert "b" in res.open_sites
    with pytest.raises(ProblemError, match="RU-Z"):
        optimize(three_sites(coverage={"RU-Z": []}), EXACT)


def test_coverage_hours_in_a_scenario(dataset):
    sc = parse_scenario({"name": "cov", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["potatoes"],
                         "objective": {"coverage_hours": 3.0}})
    planned = build_problem(sc, dataset)
    cov = planned.problem.options.coverage
    assert set(cov) == set(sc.region_ids(dataset))
    tight = parse_scenario({"name": "cov", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["potatoes"],
                            "objective": {"coverage_hours": 0.001}})
    with pytest.raises(ScenarioError, match=r"coverage_hours.*RU-\w+ \(.*nearest site \d"):
        build_problem(tight, dataset)
    # a looser rule reaches at least as many sites per region
    loose = build_problem(parse_scenario({"name": "cov", "scope": {"federal_districts": ["NCFD"]},
                                          "commodities": ["potatoes"], "objective": {"coverage_hours": 6.0}}),
                          dataset).problem.options.coverage
    assert all(set(cov[r]) <= set(loose[r]) for r in cov) and sum(map(len, loose.values())) > sum(map(len,
                                                                                                       cov.values()))


def test_coverage_needs_hours():
    with pytest.raises(ScenarioError, match="coverage_hours"):
        parse_scenario({"name": "x", "objective": {"coverage_min_agri_lq": 1.0}})


# --- 1. scope by location quotient ---------------------------------------------------------------------------------

def test_scope_keeps_the_regions_specialised_in_agriculture(dataset):
    lq = agri_location_quotients(dataset)
    both = parse_scenario({"name": "lq", "scope": {"federal_districts": ["NCFD", "SFD"], "min_agri_lq": 2.0}})
    ids = both.region_ids(dataset)
    fd = dataset.regions.set_index("region_id")["federal_district"]
    assert ids and all(lq[r] >= 2.0 and fd[r] in ("NCFD", "SFD") for r in ids)
    dropped = [r for r in dataset.regions_in("SFD")["region_id"] if lq.get(r, 0) < 2.0]
    assert dropped and not set(dropped) & set(ids)
    alone = parse_scenario({"name": "lq", "scope": {"min_agri_lq": 1.0}}).region_ids(dataset)
    assert set(alone) == {r for r, v in lq.items() if v >= 1.0} and all(r.startswith("RU-") for r in alone)
    by_va = parse_scenario({"name": "lq", "scope": {"min_agri_lq": 1.0, "agri_lq_basis": "value_added"}})
    assert set(by_va.region_ids(dataset)) == {r for r, v in agri_location_quotients(dataset, "value_added").items()
                                              if v >= 1.0}
    with pytest.raises(ScenarioError, match="min_agri_lq"):
        parse_scenario({"name": "lq", "scope": {"federal_districts": ["CFD"], "min_agri_lq": 99}}).region_ids(dataset)


def test_min_regions_is_checked_against_the_scope(dataset):
    sc = parse_scenario({"name": "x", "scope": {"federal_districts": ["NCFD"]}, "objective": {"min_regions": 8}})
    errors = dataset_errors(sc, dataset)
    assert any(loc == ("objective", "min_regions") for loc, _ in errors)


# --- 3. centre types by group --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def six_groups(dataset):
    sc = parse_scenario({"name": "six", "scope": {"regions": ["RU-STA", "RU-KB", "RU-KC"]},
                         "candidates": {"max_per_region": 2},
                         "solver": {"time_limit_s": 60, "gap": 0.01}})
    planned = build_problem(sc, dataset)
    res = optimize(planned.problem, SolverOptions(time_limit=60, rel_gap=0.01))
    assert res.objective is not None, res.message
    return planned, res


def test_grain_passes_only_elevators_and_milk_and_meat_no_centre(six_groups):
    planned, res = six_groups
    pb = planned.problem
    assert not set(pb.inbound["commodity"]) & {"milk", "meat"}
    assert not set(pb.outbound["commodity"]) & {"milk", "meat"}
    assert any("milk, meat" in n for n in planned.notes)
    mods = pb.modules
    elevator_sites = set(mods.loc[mods["store_type"] == "elevator", "site_id"])
    assert elevator_sites and set(pb.inbound.loc[pb.inbound["commodity"] == "grain", "site_id"]) <= elevator_sites
    # no module but the elevator takes grain, and the elevator takes nothing else
    for g, t in zip(mods["groups"], mods["store_type"], strict=True):
        assert ("grain" in g.split("|")) == (t == "elevator") and g
    opened = res.sites.set_index("site_id")
    inflow = res.flows[res.flows["kind"] == "inbound"]
    for sid, k in zip(inflow["to_id"], inflow["commodity"], strict=True):
        assert (opened.at[sid, "store_type"] == "elevator") == (k == "grain")


# --- 4. a scope covering the whole country -------------------------------------------------------------------------

def test_a_whole_country_scope_has_no_rest_of_country_market(dataset):
    ru = list(dataset.regions_in(country_id="RU")["region_id"])
    assert covers_country(ru, dataset, "RU") and not covers_country(ru[:-1], dataset, "RU")
    exits = [Exit(market="ru_rest"), Exit(market="port_novorossiysk"), Exit(market="port_astrakhan"),
             Exit(market="kz_atyrau")]
    part = resolve_markets(exits, dataset, "RU", lambda town, i: town)
    assert [o.market_id for o in part if o.balancing] == ["ru_rest"]
    whole = resolve_markets(exits, dataset, "RU", lambda town, i: town, whole_country=True)
    assert "ru_rest" not in {o.market_id for o in whole}
    assert {o.market_id for o in whole if o.balancing} == {"port_novorossiysk", "port_astrakhan"}
    # the two ports share the national balance: together they carry it once, not twice
    params = ParameterSet(dataset.loss_rates)
    delivered = {(o.market_id, "grain"): 1000.0 for o in whole}
    curves = market_curves(whole, ["grain"], params, {"grain": 40e6}, {"grain": 30e6}, delivered).set_index(
        "market_id")
    assert curves.loc[["port_novorossiysk", "port_astrakhan"], "N0_t"].sum() == pytest.approx(40e6)
    assert curves.at["kz_atyrau", "N0_t"] == pytest.approx(0.0)


# --- 5. inter-district flows ---------------------------------------------------------------------------------------

def _result(rows, held=()) -> NetworkResult:
    res = NetworkResult("optimal", "", 0.0, 0.0, 0.0, 0.0, 0.0)
    res.flows = pd.DataFrame(rows, columns=["kind", "from_id", "to_id", "commodity", "tonnes"])
    res.storage = pd.DataFrame(list(held), columns=["site_id", "commodity", "held_t"])
    return res


def test_a_centre_passes_each_origin_on_in_its_own_proportions():
    where = {"farm:S": "SFD", "farm:N": "NCFD", "c": "NCFD", "market:n": "NCFD", "market:s": "SFD",
             "exit:port": OUTSIDE}
    res = _result([("inbound", "farm:S", "c", "vegetables", 100.0), ("inbound", "farm:N", "c", "vegetables", 100.0),
                   ("outbound", "c", "market:n", "vegetables", 90.0), ("outbound", "c", "market:s", "vegetables",
                                                                       60.0),
                   ("direct", "farm:S", "exit:port", "vegetables", 10.0)],
                  held=[("c", "vegetables", 30.0)])
    od = _origin_destination(res, where)
    # the centre sends 90 + 30 held (its own district) of 180 to NCFD and 60 to SFD: 2/3 and 1/3 of each origin
    assert od[("SFD", "NCFD", "vegetables")] == pytest.approx(100 * 120 / 180)
    assert od[("SFD", "SFD", "vegetables")] == pytest.approx(100 * 60 / 180)
    assert od[("NCFD", "SFD", "vegetables")] == pytest.approx(100 * 60 / 180)
    assert od[("SFD", OUTSIDE, "vegetables")] == pytest.approx(10.0)
    assert od.sum() == pytest.approx(210.0)  # every tonne the farms shipped, once


@pytest.fixture(scope="module")
def south_run(dataset):
    from planner.execute import execute_scenario
    from planner.scenario import load_scenario

    sc = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "south_russia_corridors.yaml")
    sc = sc.model_copy(update={"solver": sc.solver.model_copy(update={"time_limit_s": 60.0, "gap": 0.01})})
    return execute_scenario(sc, dataset)


def test_interdistrict_table_in_the_summary(south_run, tmp_path):
    s = south_run.summary
    table = pd.DataFrame(s["interdistrict_flows"])
    assert list(table.columns) == list(FLOW_COLUMNS) and s["interdistrict_baseline"] == "existing"
    assert {"NCFD", "SFD"} <= set(table["from_district"])
    assert (table["from_district"] != table["to_district"]).any()
    assert np.allclose(table["change_t"], table["tonnes_with_network"] - table["tonnes_without_network"])
    # with the network, the table accounts for every tonne the farms and outside suppliers shipped
    f = south_run.result.flows
    shipped = f[f["kind"] != "outbound"].groupby("commodity")["tonnes"].sum()
    got = table.groupby("commodity")["tonnes_with_network"].sum()
    assert got.reindex(shipped.index).to_numpy() == pytest.approx(shipped.to_numpy(), rel=1e-6)
    path = write_interdistrict_csv(table, tmp_path / "interdistrict.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    head = raw.decode("utf-8-sig").splitlines()[0]
    assert "Без сети, т/год" in head and "Without the network, t/yr" in head


# --- 1. distributional table ---------------------------------------------------------------------------------------

def test_producer_surplus_by_region_beside_its_agricultural_share(dataset, south_run, tmp_path):
    regions = pd.DataFrame({"region_id": ["RU-DA", "RU-DA", "RU-ROS"], "commodity": ["potatoes", "vegetables",
                                                                                      "potatoes"],
                            "producer_surplus_change_rub": [2e6, 3e6, -1e6]})
    t = surplus_by_region(regions, dataset).set_index("region_id")
    assert t.at["RU-DA", "producer_surplus_change_mrub"] == pytest.approx(5.0)
    assert t.at["RU-ROS", "producer_surplus_change_mrub"] == pytest.approx(-1.0)
    shares = dataset.agri_shares.set_index("region_id")
    assert t.at["RU-DA", "agri_employment_share_pct"] == shares.at["RU-DA", "employment_share_pct"]
    assert t.at["RU-DA", "agri_value_added_share_pct"] == shares.at["RU-DA", "grp_share_pct"]
    assert t.at["RU-DA", "name_ru"] == "Республика Дагестан"
    summary = pd.DataFrame(south_run.summary["distribution_by_region"])
    assert list(summary.columns) == list(DISTRIBUTION_COLUMNS)
    assert set(summary["region_id"]) == set(south_run.prices.regions["region_id"])
    head = write_distribution_csv(summary, tmp_path / "d.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert "млн руб./год" in head and "million RUB/yr" in head


# --- per-district losses, prices and net benefit ---------------------------------------------------------------------

def test_per_district_losses_prices_and_net_benefit(south_run, tmp_path):
    from planner.economics.losses import stage_losses

    s, planned, result = south_run.summary, south_run.planned, south_run.result
    t = pd.DataFrame(s["districts"])
    assert list(t.columns) == list(DISTRICT_COLUMNS)
    groups = list(planned.problem.commodities)
    for d in ("NCFD", "SFD"):
        assert sorted(t.loc[t["federal_district"] == d, "commodity"]) == sorted([*groups, ALL_GROUPS])
    per_group = t[(t["commodity"] != ALL_GROUPS)]
    total = t[(t["commodity"] == ALL_GROUPS) & (t["federal_district"] != "RU")]
    # losses with the network, where they happen, add up to the routed plan's; shares are of the district's output
    region = {sid: sid.removeprefix("farm:") for sid in planned.problem.supplies["supply_id"]
              if sid.startswith("farm:")}  # outside suppliers' losses belong to no district
    region.update(dict(zip(planned.candidates["candidate_id"], planned.candidates["region_id"], strict=True)))
    lost = stage_losses(planned, result, region)
    assert per_group["loss_with_t"].sum() == pytest.approx(lost.loc[lost["region_id"] != "other", "tonnes"].sum())
    assert per_group["loss_share_with_pct"].to_numpy() == pytest.approx(
        (100 * per_group["loss_with_t"] / per_group["production_t"]).to_numpy())
    assert total["loss_without_t"].sum() == pytest.approx(per_group["loss_without_t"].sum())
    farms = planned.problem.supplies[planned.problem.supplies["supply_id"].str.startswith("farm:")]
    assert total["production_t"].sum() == pytest.approx(farms["quantity_t"].sum())
    # surpluses and the centres' cost add up to the national net social benefit (duty and kept margin: row RU)
    social = s["social"]
    assert total["consumer_surplus_change_mrub"].sum() == pytest.approx(social["consumer_surplus_change_mrub"])
    assert total["producer_surplus_change_mrub"].sum() == pytest.approx(social["producer_surplus_change_mrub"])
    assert total["seasonal_value_change_mrub"].sum() == pytest.approx(social["seasonal_value_change_mrub"])
    assert total["centre_cost_mrub"].sum() == pytest.approx(social["annualised_capital_mrub"]
                                                            + social["fixed_opex_change_mrub"])
    assert t["net_benefit_mrub"].sum() == pytest.approx(social["net_social_benefit_mrub"])
    # every group row of a district with consumers carries a price change; the total row carries the net benefit
    assert per_group["consumer_price_change_pct"].notna().all() and total["net_benefit_mrub"].notna().all()
    assert per_group.loc[per_group["production_t"] > 0, "farm_price_change_pct"].notna().all()

    head = write_district_csv(t, tmp_path / "d.csv").read_bytes()
    assert head.startswith(b"\xef\xbb\xbf")
    line = head.decode("utf-8-sig").splitlines()[0]
    assert "Потери с сетью, т/год" in line and "Losses with the network, t/yr" in line
    assert "Чистая выгода, млн руб./год" in line


def test_a_district_price_is_weighed_over_the_regions_that_have_one():
    from planner.economics.districts import _weighted_mean

    # a region with no producers has no farm-gate price (NaN): it neither counts nor blanks the district's mean
    assert _weighted_mean(np.array([1.0, np.nan, 3.0]), np.array([1.0, 0.0, 3.0])) == pytest.approx(2.5)
    assert _weighted_mean(np.array([1.0, 5.0]), np.array([0.0, 2.0])) == pytest.approx(5.0)
    assert np.isnan(_weighted_mean(np.array([np.nan]), np.array([1.0])))


def test_the_district_table_goes_to_a_csv_a_sheet_and_the_report(dataset, south_run, tmp_path):
    from openpyxl import load_workbook

    from planner.outputs import write_outputs

    sc_regions = sorted({b["region_id"] for b in south_run.summary["balance"]})
    written = write_outputs(tmp_path / "run", south_run.planned, south_run.result, south_run.summary, dataset,
                            sc_regions, south_run.losses, south_run.prices, south_run.investor)
    assert tmp_path / "run" / "districts.csv" in written
    rows = pd.read_csv(tmp_path / "run" / "districts.csv", encoding="utf-8-sig")
    assert len(rows) == len(south_run.summary["districts"])
    wb = load_workbook(tmp_path / "run" / "results.xlsx", read_only=True)
    assert "districts" in wb.sheetnames
    header = [c.value for c in next(wb["districts"].iter_rows(max_row=1))]
    assert header == list(DISTRICT_COLUMNS.values())
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "По федеральным округам / By federal district" in html and "Северо-Кавказский" in html


def test_only_a_scope_spanning_districts_gets_the_district_table(dataset):
    assert scope_districts(["RU-STA", "RU-KB", "RU-DA"], dataset) == ["NCFD"]
    assert scope_districts(["RU-STA", "RU-ROS"], dataset) == ["NCFD", "SFD"]
    kz = dataset.regions_in(country_id="KZ")["region_id"].iat[0]
    assert scope_districts(["RU-AST", kz], dataset) == ["KZ", "SFD"]


def test_centres_that_pay_counts_the_new_centres_with_a_positive_npv(south_run):
    pays = south_run.summary["centres_that_pay"]
    table = south_run.investor[0]
    new = table[~table["existing"].astype(bool)]
    assert pays["new_centres"] == len(new)
    assert pays["paying"] == int((new["npv_rub"] >= 0).sum())
    assert set(pays["paying_ids"]) == set(new.loc[new["npv_rub"] >= 0, "id"])
    assert pays["paying_with_loan"] >= pays["paying"]  # the loan only lowers the cost of capital


def test_an_infeasible_coverage_is_explained_by_region():
    # two covered regions, each reached by one site only, and p = 1: no plan meets the rule
    res = optimize(_with_p(three_sites(coverage={"RU-X": ["a1"], "RU-Y": ["b"]}), 1), EXACT)
    assert res.status == "infeasible"
    assert "coverage rule" in res.message and "RU-X" in res.message and "RU-Y" in res.message
    assert "at least 2 centres" in res.message and "p is 1" in res.message


def _with_p(pb: NetworkProblem, p: int) -> NetworkProblem:
    from dataclasses import replace

    return replace(pb, options=replace(pb.options, p=p))


def test_the_rules_cost_what_they_force_in_a_regional_scenario(dataset):
    """North Caucasus and South, nine centres: alone the plan crowds Stavropol and Dagestan (six regions); asking
    for nine regions or for a centre within 3 h of every region with a location quotient of 2 or more spreads it
    and costs more, never less (both are constraints on the same plan)."""
    from planner.pipeline import run_scenario

    base = {"name": "rules", "scope": {"federal_districts": ["NCFD", "SFD"]},
            "commodities": ["vegetables", "fruit_berries"], "candidates": {"max_per_region": 2},
            "solver": {"time_limit_s": 60, "gap": 0.0}}
    runs = {}
    for key, obj in (("free", {"p": 9}), ("regions", {"p": 9, "min_regions": 9}),
                     ("cover", {"p": 9, "coverage_hours": 3.0, "coverage_min_agri_lq": 2.0})):
        planned, res = run_scenario(parse_scenario({**base, "objective": obj}), dataset)
        assert res.status == "optimal"
        runs[key] = (planned, res)
    regions = {k: res.sites.loc[res.sites["open"], "region"].nunique() for k, (_, res) in runs.items()}
    assert regions["free"] < 9 and regions["regions"] == 9
    planned, res = runs["cover"]
    opened = set(res.open_sites)
    lq = agri_location_quotients(dataset)
    covered = planned.problem.options.coverage
    assert all(lq[r] >= 2.0 for r in covered) and all(set(ids) & opened for ids in covered.values())
    free = runs["free"][1].objective
    assert runs["regions"][1].objective >= free - 1e-6 * abs(free)
    assert runs["cover"][1].objective >= free - 1e-6 * abs(free)
    assert any(not set(ids) & set(runs["free"][1].open_sites) for ids in covered.values())  # the rule binds


def test_more_centres_than_candidate_sites_is_refused_before_the_solve(dataset):
    sc = parse_scenario({"name": "many", "scope": {"regions": ["RU-STA", "RU-KB"]}, "commodities": ["vegetables"],
                         "candidates": {"max_per_region": 4}, "objective": {"p": 12}})
    with pytest.raises(ScenarioError, match=r"objective\.p: 12 centres asked, but the scope has \d+ candidate sites"):
        build_problem(sc, dataset)
    spread = parse_scenario({"name": "spread", "scope": {"regions": ["RU-STA", "RU-KB"]},
                             "commodities": ["vegetables"], "objective": {"p": 3, "min_regions": 3}})
    with pytest.raises(ScenarioError, match="min_regions"):
        build_problem(spread, dataset)
