"""Store types, the preferential loan and the ranges (issue #15, items 3, 4, 6): a site chooses what it is built
as, a potato and vegetable store never takes fruit, the investor's NPV shows the loan, and a run's NPV and net
social benefit are given at both ends of every cited range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from optimization.problem import NetworkProblem, Options
from optimization.run import optimize
from optimization.solve import SolverOptions
from planner.parameters import PARAMETERS, STORE_TYPES, ParameterSet
from planner.pipeline import run_scenario, site_modules, type_modules
from planner.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
EXACT = SolverOptions(rel_gap=0.0)


def one_site(groups: list[str], mods: pd.DataFrame, direct_cost: float) -> NetworkProblem:
    """One farm with 100 t of each of ``groups``, one site ``j`` offering ``mods``, one market taking 100 t of each;
    the route through the site costs 2 RUB/t, the direct one ``direct_cost``."""
    supplies = pd.DataFrame([("farm", k, 100.0, 0.0, 1.0) for k in groups],
                            columns=["supply_id", "commodity", "quantity_t", "storage_loss", "value_per_t"])
    demands = pd.DataFrame([("market", k, 100.0, np.nan, False, np.nan) for k in groups],
                           columns=["demand_id", "commodity", "quantity_t", "penalty_per_t", "is_exit", "price_per_t"])
    sites = pd.DataFrame({"site_id": ["j"], "existing": [False], "group": ["A"]})
    cols = ["cost_per_t", "loss"]
    inbound = pd.DataFrame([("farm", "j", k, 1.0, 0.0) for k in groups], columns=["supply_id", "site_id",
                                                                                  "commodity", *cols])
    outbound = pd.DataFrame([("j", "market", k, 1.0, 0.0) for k in groups], columns=["site_id", "demand_id",
                                                                                     "commodity", *cols])
    direct = pd.DataFrame([("farm", "market", k, direct_cost, 0.0) for k in groups],
                          columns=["supply_id", "demand_id", "commodity", *cols])
    return NetworkProblem(groups, supplies, sites, mods, demands, inbound, outbound, direct, Options())


def store_or_centre(direct_cost: float = 5.0) -> NetworkProblem:
    """Potatoes and fruit; the site may be a cheap store (potatoes only) or a dear distribution centre (every
    group) (:func:`one_site`)."""
    mods = pd.DataFrame({"site_id": ["j", "j"], "module_id": ["store_small", "small"], "store_type": ["store", "dc"],
                         "groups": ["potatoes", ""], "capacity_t": [1_000.0, 1_000.0], "fixed_cost": [10.0, 1_000.0],
                         "capital_cost": [10.0, 1_000.0]})
    return one_site(["potatoes", "fruit_berries"], mods, direct_cost)


def test_a_store_never_receives_fruit():
    # the store is the cheaper module and the site the cheaper route: the store opens for the potatoes, and the
    # fruit goes the traditional way (before store types, the store took the fruit too: 410 RUB instead of 710)
    res = optimize(store_or_centre(direct_cost=5.0), EXACT)
    site = res.sites.set_index("site_id").loc["j"]
    assert site["module_id"] == "store_small" and site["store_type"] == "store"
    inbound = res.flows[res.flows["kind"] == "inbound"].groupby("commodity")["tonnes"].sum()
    assert inbound.get("fruit_berries", 0.0) == pytest.approx(0.0, abs=1e-6)
    assert inbound["potatoes"] == pytest.approx(100.0)
    assert res.objective == pytest.approx(10 + 100 * 2 + 100 * 5)


def test_a_centre_opens_where_the_fruit_needs_it():
    # the direct route is so dear that the fruit must pass the site: only the distribution centre takes it
    res = optimize(store_or_centre(direct_cost=50.0), EXACT)
    site = res.sites.set_index("site_id").loc["j"]
    assert site["module_id"] == "small" and site["store_type"] == "dc"
    assert res.objective == pytest.approx(1_000 + 200 * 2)


@pytest.fixture(scope="module")
def planned(ncfd_planned):
    return ncfd_planned


def test_new_sites_offer_each_store_type_at_its_cited_capital(planned):
    p = planned.params
    mods = planned.problem.modules.set_index(["site_id", "module_id"])
    new = planned.problem.sites.loc[~planned.problem.sites["existing"], "site_id"].iloc[0]
    store = mods.loc[(new, "store_small")]
    storage = p["module_small_capacity_kt"] * 1000 / p["centre_storage_turns_per_year"]
    assert store["store_type"] == "store" and set(store["groups"].split("|")) == {"potatoes", "vegetables"}
    assert store["capital_cost"] == pytest.approx(p["store_capital_krub_per_t"] * 1e3 * storage)
    assert store["capacity_t"] == pytest.approx(storage * p["store_storage_turns_per_year"])
    dc = mods.loc[(new, "small")]
    # the distribution centre takes fruit, vegetables and potatoes, not grain, milk or meat (issue #18)
    assert dc["store_type"] == "dc" and set(dc["groups"].split("|")) == {"potatoes", "vegetables", "fruit_berries"}
    # the controlled-atmosphere fruit store costs more per tonne than the centre and takes fewer groups: dominated
    assert not any(m.startswith("ca_fruit") for m in mods.loc[new].index)
    # existing centres keep their own module and grow as distribution centres only
    assert set(mods.loc["ru_sta_orc", "store_type"]) == {"dc"}


def test_a_cheap_fruit_store_is_offered(planned, dataset):
    cheap = planned.params.with_values({"ca_store_capital_krub_per_t": 20.0})
    mods, _, _ = site_modules(planned.problem.sites, dataset.existing_centres, cheap,
                              list(planned.problem.commodities))
    ca = mods[mods["store_type"] == "ca_fruit"]
    assert len(ca) and set(ca["groups"]) == {"fruit_berries"}


def test_a_type_outside_the_scenario_is_not_offered(planned, dataset):
    mods, _, _ = site_modules(planned.problem.sites, dataset.existing_centres, planned.params, ["fruit_berries"])
    assert "store" not in set(mods["store_type"])


def _run_with(dataset, tmp_path: Path, **overrides: float):
    d = yaml.safe_load((ROOT / "scenarios" / "ncfd_expansion.yaml").read_text(encoding="utf-8"))
    d["parameters"] = {**(d.get("parameters") or {}), **overrides}
    path = tmp_path / "sc.yaml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    return run_scenario(load_scenario(path), dataset)


def test_what_opens_follows_the_stores_capital(dataset, tmp_path):
    """North Caucasus: a potato and vegetable surplus and a large spring spread. At the cited central capital the
    new sites open as stores; with a store dearer per tonne than a distribution centre, they open as centres."""
    planned, res = _run_with(dataset, tmp_path)
    new = res.sites[res.sites["open"] & ~res.sites["existing"]]
    assert (new["store_type"] == "store").all() and len(new) == 3
    stores = set(new["site_id"])
    fruit_in = res.flows[(res.flows["kind"] == "inbound") & res.flows["to_id"].isin(stores)
                         & (res.flows["commodity"] == "fruit_berries")]
    assert fruit_in["tonnes"].sum() == pytest.approx(0.0, abs=1e-6)
    _, dear = _run_with(dataset, tmp_path, store_capital_krub_per_t=400.0)
    new = dear.sites[dear.sites["open"] & ~dear.sites["existing"]]
    assert (new["store_type"] == "dc").all() and len(new) == 3


@pytest.fixture(scope="module")
def run(ncfd_run):
    return ncfd_run


def test_centres_say_their_store_type(run):
    for c in run.summary["centres"]:
        assert c["store_type"] in STORE_TYPES
        assert c["store_type_ru"] == STORE_TYPES[c["store_type"]].name_ru and c["store_type_en"]
    # sites.csv joins the centres with the investor table: the store type comes once, from the centres
    from planner.outputs import result_tables

    sites = result_tables(run.planned, run.result, run.summary, run.losses, run.prices, run.investor)["sites"]
    assert "store_type" in sites.columns and "store_type_x" not in sites.columns


def test_the_preferential_loan_adds_the_interest_it_saves(run):
    from planner.pipeline import annuity_factor

    p = run.planned.params
    table, totals = run.investor
    new = table[~table["existing"]]
    r = new.iloc[0]
    loan = r["investor_capital_rub"] * p["preferential_loan_share_pct"] / 100
    assert r["loan_rub"] == pytest.approx(loan)
    n = p["preferential_loan_years"]
    # paid back in equal instalments at the preferential rate, discounted at the market rate
    instalment = loan / annuity_factor(p["preferential_loan_rate_pct"], n)
    saving = loan - instalment * annuity_factor(p["market_loan_rate_pct"], n)
    assert r["loan_interest_saving_rub"] == pytest.approx(saving) and saving > 0
    assert r["npv_with_loan_rub"] == pytest.approx(r["npv_rub"] + saving)
    assert totals["npv_new_with_loan_rub"] == pytest.approx(new["npv_with_loan_rub"].sum())
    # at market terms the loan is worth nothing
    from planner.economics.investor import loan_saving

    same = p.with_values({"preferential_loan_rate_pct": p["market_loan_rate_pct"]})
    assert loan_saving(np.array([1e9]), same)[1][0] == pytest.approx(0.0, abs=1e-3)


def test_every_default_with_a_cited_range_is_its_central_value():
    for p in PARAMETERS:
        if p.low is not None:
            assert p.low <= p.default <= p.high, p.name
            assert p.default == pytest.approx((p.low + p.high) / 2), p.name


def test_ranges_re_evaluate_the_plan_at_both_ends(run, tmp_path):
    rg = run.summary["ranges"]
    inv = run.summary["investor"]["totals"]
    assert rg["plan_fixed"] is True
    assert rg["central"]["npv_new_mrub"] == pytest.approx(inv["npv_new_rub"] / 1e6)
    assert rg["central"]["nsb_mrub"] == pytest.approx(run.summary["net_social_benefit_mrub"])
    e = {r["key"]: r for r in rg["entries"]}
    # the stores opened: a dearer store lowers the NPV and the net social benefit, a cheaper one raises them
    s = e["store_capital_krub_per_t"]
    assert s["low"] == 12.0 and s["high"] == 90.0
    assert s["npv_new_mrub_low"] > rg["central"]["npv_new_mrub"] > s["npv_new_mrub_high"]
    assert s["nsb_mrub_low"] > rg["central"]["nsb_mrub"] > s["nsb_mrub_high"]
    # the social discount rate moves the public case only; the loan's terms the investor's case with the loan only
    d = e["social_discount_rate_pct"]
    assert d["npv_new_mrub_low"] == pytest.approx(d["npv_new_mrub_high"]) and d["nsb_mrub_low"] > d["nsb_mrub_high"]
    loan = e["preferential_loan_rate_pct"]
    assert loan["npv_new_with_loan_mrub_low"] > loan["npv_new_with_loan_mrub_high"]
    assert loan["nsb_mrub_low"] == pytest.approx(loan["nsb_mrub_high"])
    # every end at once is a bound above every single end, and not a business case
    fav = rg["favourable_all"]
    assert fav["business_case"] is False
    assert fav["npv_new_mrub"] >= max(max(r["npv_new_mrub_low"], r["npv_new_mrub_high"]) for r in rg["entries"])
    from planner.economics.ranges import write_ranges_csv

    path = write_ranges_csv(rg, tmp_path / "ranges.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(path, encoding="utf-8-sig")
    assert "Наименование" in table.columns and any("M RUB" in c for c in table.columns)
    assert set(table.iloc[:, 0]) >= {"store_capital_krub_per_t", "central", "favourable_all"}


def test_the_price_model_does_not_move_with_a_ranged_parameter(run, dataset):
    """The cheap path is exact: re-running the price model at a range end gives the run's price report."""
    from dataclasses import replace

    from planner.economics import estimate_price_impact

    sc = load_scenario(ROOT / "scenarios" / "ncfd_expansion.yaml")
    q = run.planned.params.with_values({"store_capital_krub_per_t": 90.0, "social_discount_rate_pct": 7.0,
                                        "support_compensation_pct": 25.0})
    again = estimate_price_impact(sc, dataset, run.result, "traditional", planned=replace(run.planned, params=q))
    pd.testing.assert_frame_equal(again.summary, run.prices.summary)


def test_break_even_by_store_type(dataset):
    from planner.economics.break_even import break_even_table

    p = ParameterSet(dataset.loss_rates)
    t = break_even_table(p)
    assert set(t.loc[t["store_type"] == "store", "commodity"]) == {"potatoes", "vegetables"}
    assert set(t.loc[t["store_type"] == "ca_fruit", "commodity"]) == {"fruit_berries"}
    by = t.set_index(["store_type", "size", "commodity"])
    # at the cited central capitals a store is cheaper per tonne than a centre, and pays where a centre does not
    store, dc = by.loc[("store", "large", "vegetables")], by.loc[("dc", "large", "vegetables")]
    assert store["capital_krub_per_t_storage"] < dc["capital_krub_per_t_storage"]
    assert store["investor_npv_mean_mrub"] > 0 > dc["investor_npv_mean_mrub"]
    assert (t["investor_npv_mean_with_loan_mrub"] > t["investor_npv_mean_mrub"]).all()
    assert {m for m, *_ in type_modules(p)} >= {"small", "store_small", "ca_fruit_small"}


def test_a_group_no_module_takes_is_routed_the_traditional_way(dataset):
    """Milk passes no centre (no dairy module is modelled): a scenario of milk alone still solves — the start
    heuristic once failed on the empty inbound table (a 500 on /estimate/* that schemathesis found)."""
    from planner.economics import estimate_loss_reduction
    from planner.scenario import parse_scenario

    sc = parse_scenario({"name": "milk_only", "scope": {"regions": ["RU-KB"]}, "commodities": ["milk"]})
    rep = estimate_loss_reduction(sc, dataset, None, "traditional")
    assert rep.network_status in ("optimal", "feasible")
    s = rep.summary.set_index("commodity")
    assert s.at["milk", "baseline_t"] > 0 and abs(s.at["milk", "saved_t"]) < 1e-6  # no centre, nothing saved


def store_beside_elevator() -> NetworkProblem:
    """Potatoes and vegetables; the site may be a store (potatoes and vegetables, 100 t a year, 100 RUB) or an
    elevator (grain only, 1,000 t, 1 RUB); the direct way costs 50 RUB/t (:func:`one_site`)."""
    mods = pd.DataFrame({"site_id": ["j", "j"], "module_id": ["store_small", "elevator_large"],
                         "store_type": ["store", "elevator"], "groups": ["potatoes|vegetables", "grain"],
                         "capacity_t": [100.0, 1_000.0], "fixed_cost": [100.0, 1.0], "capital_cost": [100.0, 1.0]})
    return one_site(["potatoes", "vegetables"], mods, direct_cost=50.0)


def test_the_relaxation_lends_no_elevator_capacity_to_a_store():
    # the store opens and takes 100 t of the 200: 100 + 100 × 2 + 100 × 50. The LP relaxation reaches the same:
    # half a store and half an elevator may not pass potatoes and vegetables through the elevator's 1,000 t
    # (without the group-set rows the relaxation cost 1,364 RUB, a bound 74% below the plan)
    import pyomo.environ as pyo

    from optimization.model import build_model
    from optimization.solve import solve_model

    pb = store_beside_elevator()
    res = optimize(pb, EXACT)
    assert res.sites.set_index("site_id").at["j", "module_id"] == "store_small"
    assert res.objective == pytest.approx(100 + 100 * 2 + 100 * 50)
    model = build_model(pb)
    pyo.TransformationFactory("core.relax_integer_vars").apply_to(model)
    relaxed = solve_model(model, EXACT)
    assert relaxed.objective == pytest.approx(res.objective)
