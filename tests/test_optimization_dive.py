"""The commodity merge and the LP dive that warm-start large multi-commodity models."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_optimization_properties import EXACT, make_problem

from optimization import dive
from optimization.aggregate import aggregate_commodities
from optimization.dive import dive_sites
from optimization.heuristic import greedy_sites
from optimization.problem import NetworkProblem
from optimization.run import optimize
from optimization.solve import SolverOptions


def one_group(pb: NetworkProblem, k: str) -> NetworkProblem:
    """The problem restricted to commodity group ``k``."""
    keep = {t: getattr(pb, t)[getattr(pb, t)["commodity"] == k].reset_index(drop=True)
            for t in ("supplies", "demands", "inbound", "outbound", "direct")}
    return NetworkProblem([k], keep["supplies"], pb.sites, pb.modules, keep["demands"], keep["inbound"],
                          keep["outbound"], keep["direct"], pb.options, value_per_t={k: pb.value_per_t[k]})


def test_merging_a_single_group_keeps_the_optimum():
    pb = one_group(make_problem(3, 4, 3), "fruit_berries")
    merged = aggregate_commodities(pb)
    assert merged.commodities == ["all"] and merged.value_per_t == {"all": 0.0}
    a, b = optimize(pb, EXACT), optimize(merged, EXACT)
    assert a.status == b.status == "optimal"
    assert b.objective == pytest.approx(a.objective, rel=1e-6)
    assert sorted(a.open_sites) == sorted(b.open_sites)


def test_merging_keeps_tonnes_and_places_and_averages_costs():
    pb = make_problem(5, 4, 3)
    merged = aggregate_commodities(pb)
    assert merged.supplies["quantity_t"].sum() == pytest.approx(pb.supplies["quantity_t"].sum())
    assert merged.demands["quantity_t"].sum() == pytest.approx(pb.demands["quantity_t"].sum())
    assert set(merged.demands["demand_id"]) == set(pb.demands["demand_id"])
    assert merged.demands.set_index("demand_id").at["exit", "is_exit"]
    for name, a, b in (("inbound", "supply_id", "site_id"), ("outbound", "site_id", "demand_id"),
                       ("direct", "supply_id", "demand_id")):
        orig, m = getattr(pb, name), getattr(merged, name)
        assert not m.duplicated([a, b]).any()
        full = orig["cost_per_t"]  # a lost tonne is charged through the balances, not folded into the cost
        lo = full.groupby([orig[a], orig[b]]).min()
        hi = full.groupby([orig[a], orig[b]]).max()
        cost = m.set_index([a, b])["cost_per_t"]
        assert ((cost >= lo.reindex(cost.index) - 1e-9) & (cost <= hi.reindex(cost.index) + 1e-9)).all(), name


def test_a_place_that_is_exit_and_market_cannot_be_merged():
    pb = make_problem(5, 2, 2)
    pb.demands.loc[pb.demands.index[0], "is_exit"] = True
    assert aggregate_commodities(pb) is None
    choice, report = dive_sites(pb)
    assert choice is None and "exit" in report["reason"]


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6), st.integers(1, 4), st.sampled_from([None, 1, 2]))
def test_the_dive_gives_one_module_per_site_and_honours_p(seed, n_sites, n_markets, p):
    pb = make_problem(seed, n_sites, n_markets)
    pb.options.p = p
    greedy = greedy_sites(pb)
    choice, report = dive_sites(pb, greedy)
    assert choice is not None, report
    modules = set(zip(pb.modules["site_id"], pb.modules["module_id"], strict=True))
    assert all((s, m) in modules for s, m in choice.items())
    if p is not None:
        assert len(choice) == p
    assert report["merged_cost_dive"] >= report["merged_lp_bound"] - 1e-6 * abs(report["merged_lp_bound"])
    if "merged_cost_greedy" in report:
        expected = "greedy" if report["merged_cost_greedy"] < report["merged_cost_dive"] else "dive"
        assert report["chosen"] == expected
        assert (choice == greedy) if expected == "greedy" else True


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_dive_with_many_sites_and_a_small_p_still_gives_p_sites(seed):
    """With p = 2 and a dozen sites the LP spreads y thinly; fixing the top tenth at once can exceed p, and
    the dive then retries with the single best module instead of giving up."""
    pb = make_problem(seed, 12, 4)
    pb.options.p = 2
    choice, report = dive_sites(pb)
    assert choice is not None, report
    assert len(choice) == 2


@pytest.mark.parametrize("seed", [2, 7])
def test_a_dive_start_reaches_the_same_optimum_as_the_greedy_start(seed):
    pb = make_problem(seed, 5, 4)
    by_greedy = optimize(pb, SolverOptions(rel_gap=0.0, start="greedy"))
    by_dive = optimize(pb, SolverOptions(rel_gap=0.0, start="dive"))
    assert by_greedy.status == by_dive.status == "optimal"
    assert by_dive.objective == pytest.approx(by_greedy.objective, rel=1e-6)
    assert by_greedy.start["method"] == "greedy"
    assert by_dive.start["method"] in ("dive", "greedy") and "merged_cost_dive" in by_dive.start


def test_auto_dives_only_on_large_multi_commodity_models(monkeypatch):
    pb = make_problem(4, 3, 3)
    assert optimize(pb, EXACT).start["method"] == "greedy"
    assert "merged_cost_dive" not in optimize(pb, EXACT).start
    monkeypatch.setattr(dive, "DIVE_MIN_ARCS", 0)
    assert "merged_cost_dive" in optimize(pb, EXACT).start
    assert "merged_cost_dive" not in optimize(one_group(pb, "vegetables"), EXACT).start


def test_dive_time_runs_out_cleanly(monkeypatch):
    import optimization.run as run

    pb = make_problem(4, 3, 3)
    choice, report = dive_sites(pb, greedy_sites(pb), seconds=0.0)
    assert choice is None and "time" in report["reason"]
    monkeypatch.setattr(run, "DIVE_SHARE", 0.0)
    res = optimize(pb, SolverOptions(rel_gap=0.0, start="dive", time_limit=30.0))
    assert res.status == "optimal" and "greedy kept" in res.start.get("dive", "")


def test_a_time_limit_below_a_second_is_not_raised_to_one():
    from optimization.solve import remaining_limit

    assert remaining_limit(120.0, 20.0) == 100.0
    assert remaining_limit(120.0, 130.0) == 1.0
    assert remaining_limit(0.2, 0.5) == 0.2


def test_unknown_start_is_refused():
    with pytest.raises(ValueError, match="SolverOptions.start"):
        optimize(make_problem(1, 2, 2), SolverOptions(start="random"))


def test_highest_module_per_site():
    y = np.array([0.4, 0.5, 0.3, 0.9])
    site = np.array([0, 0, 1, 1])
    out = dive._highest_per_site(y, np.array([True, True, True, False]), site)
    assert out.tolist() == [False, True, True, False]


def test_the_cheaper_of_two_starts_priced_in_the_model_goes_to_highs(monkeypatch):
    """With start completion on, every candidate start is completed and priced in the original model; HiGHS
    gets the cheapest, whatever order the starts come in."""
    import optimization.completion as completion
    import optimization.solve as solve
    from optimization.heuristic import warm_start_values
    from optimization.model import build_model

    monkeypatch.setattr(completion, "COMPLETE_START_COLUMNS", 0)
    pb = make_problem(6, 4, 3)
    good = warm_start_values(pb, greedy_sites(pb))
    bad = warm_start_values(pb, {s: "large" for s in pb.sites["site_id"]})
    assert good != bad
    before = {"start_completion": "before"}
    first = solve.solve_model(build_model(pb), SolverOptions(rel_gap=0.0, warm_start=bad, alternative_starts=[good],
                                                             **before))
    assert len(first.start_costs) == 2 and first.start_costs[1] < first.start_costs[0]
    assert first.start_used == 1
    second = solve.solve_model(build_model(pb), SolverOptions(rel_gap=0.0, warm_start=good, alternative_starts=[bad],
                                                              **before))
    assert second.start_used == 0
    assert second.objective == pytest.approx(first.objective, rel=1e-6)
    none_open = {name: 0.0 for name in good}
    third = solve.solve_model(build_model(pb), SolverOptions(rel_gap=0.0, warm_start=none_open,
                                                             alternative_starts=[good], **before))
    assert third.start_costs[1] is not None and third.start_used == 1
    beside = solve.solve_model(build_model(pb), SolverOptions(rel_gap=0.0, warm_start=bad, alternative_starts=[good],
                                                              start_completion="background", start_wait=60.0))
    assert beside.start_costs == pytest.approx(first.start_costs) and beside.start_used == 1
    assert beside.objective == pytest.approx(first.objective, rel=1e-6)
    assert third.objective == pytest.approx(first.objective, rel=1e-6)


def test_the_dive_keys_sites_as_the_greedy_does():
    """Site ids keep their type (here integers), so the warm start finds the dive's modules."""
    from optimization.heuristic import warm_start_values

    pb = make_problem(8, 4, 3)
    ids = {s: i for i, s in enumerate(pb.sites["site_id"])}
    for table in ("sites", "modules", "inbound", "outbound"):
        getattr(pb, table)["site_id"] = getattr(pb, table)["site_id"].map(ids)
    choice, _ = dive_sites(pb, greedy_sites(pb))
    assert choice and all(isinstance(s, int) for s in choice)
    assert sum(warm_start_values(pb, choice).values()) == len(choice)


def test_a_site_with_arcs_but_no_modules_carries_nothing():
    """A site listed with arcs but no size modules cannot open: its linking rows read x ≤ 0."""
    pb = make_problem(3, 3, 2)
    pb.modules = pb.modules[pb.modules["site_id"] != "j0"].reset_index(drop=True)
    res = optimize(pb, EXACT)
    assert res.status == "optimal"
    assert res.flows[(res.flows["kind"] != "direct") & ((res.flows["from_id"] == "j0") | (res.flows["to_id"] == "j0"))
                     ]["tonnes"].sum() == 0
