"""The business case of a centre: existing centres carry their documented capacity and no capital (it is sunk);
an expansion costs only its own capital."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.pipeline import type_modules
from planner.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def planned(ncfd_planned):
    return ncfd_planned


def test_existing_centres_carry_their_documented_capacity_and_no_capital(planned):
    p = planned.params
    mods = planned.problem.modules.set_index(["site_id", "module_id"])
    turns = p["centre_storage_turns_per_year"]
    # Nevinnomyssk: 30 kt of storage (TASS 2023) × turns a year
    assert mods.at[("ru_sta_orc", "existing"), "capacity_t"] == pytest.approx(30_000 * turns)
    assert mods.at[("ru_sta_orc", "existing"), "capital_cost"] == 0.0
    assert mods.at[("ru_sta_orc", "existing"), "fixed_cost"] > 0  # it still pays its operating cost
    # an expansion adds a new module's capacity at that module's capital only
    small = p["module_small_capital_mrub"] * 1e6
    assert mods.at[("ru_sta_orc", "existing+small"), "capital_cost"] == pytest.approx(small)
    assert mods.at[("ru_sta_orc", "existing+small"), "capacity_t"] == pytest.approx(
        30_000 * turns + p["module_small_capacity_kt"] * 1000)
    # a new site has no "existing" module
    new = planned.problem.sites.loc[~planned.problem.sites["existing"], "site_id"].iloc[0]
    assert "existing" not in set(mods.loc[new].index)


def test_an_undocumented_capacity_is_said_and_flagged(planned):
    p = planned.params
    mods = planned.problem.modules.set_index(["site_id", "module_id"])
    assert mods.at[("ru_kb_orc", "existing"), "capacity_t"] == pytest.approx(
        p["existing_centre_capacity_kt"] * 1000 * p["centre_storage_turns_per_year"])
    assert planned.capacity_status["ru_kb_orc"] == "not published: scenario value"
    assert planned.capacity_status["ru_sta_orc"] == "approximate"  # completion not confirmed
    assert any("ru_kb_orc" in n and "not published" in n for n in planned.notes)


@pytest.fixture(scope="module")
def run(ncfd_run):
    return ncfd_run


def test_net_social_benefit_adds_up_against_todays_network(run):
    s = run.summary["social"]
    assert s["baseline"] == "existing centres"
    parts = (s["consumer_surplus_change_mrub"] + s["producer_surplus_change_mrub"] + s["import_duty_change_mrub"]
             + s["centre_margin_change_mrub"] + s["seasonal_value_change_mrub"] - s["annualised_capital_mrub"]
             - s["fixed_opex_change_mrub"])
    assert s["net_social_benefit_mrub"] == pytest.approx(parts, rel=1e-9, abs=1e-9)
    assert run.summary["net_social_benefit_mrub"] == s["net_social_benefit_mrub"]
    p = run.planned.params
    capital = {module_id: k / 1e6 for module_id, _, _, k, _ in type_modules(p)}
    new_capital = sum(capital[c["size"]] for c in run.summary["centres"] if not c["existing"])
    assert s["new_capital_mrub"] == pytest.approx(new_capital)
    # the social case is discounted at its own rate, the investor's at his
    assert s["social_discount_rate_pct"] != p["discount_rate_pct"]
    assert s["investor_npv_mrub"] == pytest.approx(run.summary["investor"]["totals"]["npv_new_rub"] / 1e6)


def test_todays_network_against_itself_has_no_social_benefit(dataset):
    from planner.execute import execute_scenario

    out = execute_scenario(load_scenario(ROOT / "scenarios" / "ncfd_baseline.yaml"), dataset)
    s = out.summary["social"]
    assert s["new_capital_mrub"] == 0.0
    assert abs(s["net_social_benefit_mrub"]) < 1e-3


def test_break_even_figures_zero_the_npv(dataset):
    """At the break-even spread (or capital) the module's NPV is zero, and today's defaults sit where the table
    says: a centre storing potatoes at a distribution centre's capital does not pay on the mean spread."""
    from planner.economics.break_even import break_even_table
    from planner.parameters import ParameterSet

    p = ParameterSet(dataset.loss_rates)
    t = break_even_table(p).set_index(["store_type", "size", "commodity"])
    r = t.loc[("dc", "small", "potatoes")]
    # NPV is linear in the spread: from the NPV at the mean and the break-even spread, the slope must agree with
    # h × value × annuity
    a = (1 - 1.1 ** -25) / 0.1
    slope = r["held_t"] * p["value_rub_per_t_potatoes"] / 100 * a / 1e6
    assert r["investor_npv_mean_mrub"] + slope * (r["investor_break_even_spread_pct"] - r["spread_mean_pct"]) == \
        pytest.approx(0.0, abs=1e-6)
    assert r["investor_npv_mean_mrub"] < 0 and r["investor_break_even_spread_pct"] > r["spread_mean_pct"]
    assert r["investor_break_even_capital_krub_per_t"] < r["capital_krub_per_t_storage"]


def test_kazakhstan_production_is_not_split_onto_its_city_regions(dataset):
    """Almaty city, Astana and Shymkent farm next to nothing: the national totals go to the oblasts (today's
    proxy until oblast statistics are compiled), and every farm node lies in its own country."""
    from planner.balance import regional_production

    kz = dataset.regions.loc[dataset.regions["country_id"] == "KZ", "region_id"].tolist()
    prod = regional_production(dataset, kz, ["vegetables", "potatoes"])
    cities = prod[prod["area_id"].isin(["KZ-71", "KZ-75", "KZ-79"])]
    assert (cities["quantity_kt"] == 0).all()
    assert prod.loc[prod["area_id"] == "KZ-61", "quantity_kt"].sum() > 0  # Turkestan, the main growing region


def test_todays_network_is_never_expanded_for_free(planned):
    """The baseline of the net social benefit and of every `existing` comparison is today's network: each existing
    centre at its documented capacity. Were it routed with sizes free it could take an expansion module without
    being charged its capital (the Kazakh pilots' baseline expanded all four for 26 bn RUB), while the plan pays
    for the same expansion."""
    from planner.economics.losses import existing_network, resolve_centres, route_with_sites

    scenario = load_scenario(ROOT / "scenarios" / "ncfd_expansion.yaml")
    today = existing_network(planned)
    assert today and set(today.values()) == {"existing"}
    assert resolve_centres(planned, None, "existing") == (today, today)
    base = route_with_sites(planned, today, scenario)
    opened = base.sites[base.sites["open"]]
    assert set(opened["site_id"]) == set(today) and set(opened["module_id"]) == {"existing"}
    # sizes free can only do better (expansions cost nothing in a routing): the fixed module is what holds them
    free = route_with_sites(planned, list(today), scenario)
    assert free.objective <= base.objective + 1e-9 * abs(base.objective)
    # a solved plan is routed with the modules it chose, not re-sized
    ids = list(today)
    sid = ids[0]
    mods = planned.problem.modules
    bigger = mods.loc[(mods["site_id"] == sid) & (mods["module_id"] != "existing"), "module_id"].iloc[-1]
    fixed = route_with_sites(planned, {**today, sid: bigger}, scenario)
    got = fixed.sites[fixed.sites["open"]].set_index("site_id")["module_id"]
    assert got[sid] == bigger


def test_a_run_says_where_its_time_went(run):
    stages = run.summary["stage_seconds"]
    assert {"siting", "losses", "prices", "investor", "net_social_benefit", "ranges", "districts"} <= set(stages)
    assert all(v >= 0 for v in stages.values())
    assert sum(stages.values()) <= run.summary["runtime_seconds"] + 0.05 * len(stages)
    assert stages["siting"] >= run.summary["solve_seconds"] - 0.01


def test_every_range_has_a_russian_name(dataset):
    """ranges.csv names each range in Russian beside English (readers are Russian-speaking ministry staff)."""
    from planner.economics.ranges import NAMES_RU, range_entries
    from planner.parameters import ParameterSet

    missing = [e.key for e in range_entries(ParameterSet(dataset.loss_rates)) if e.key not in NAMES_RU]
    assert not missing, missing
