"""Properties of the network model on small random problems (hypothesis), and the statuses a user sees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimization.problem import NetworkProblem, Options, ProblemError
from optimization.run import optimize
from optimization.solve import SolverOptions

EXACT = SolverOptions(rel_gap=0.0)


def make_problem(seed: int, n_sites: int, n_markets: int, direct: bool = True) -> NetworkProblem:
    """Two commodities, two farms, ``n_sites`` sites with two modules, ``n_markets`` markets and an exit."""
    rng = np.random.default_rng(seed)
    ks = ["vegetables", "fruit_berries"]
    farms = ["f1", "f2"]
    sites = [f"j{i}" for i in range(n_sites)]
    markets = [f"d{i}" for i in range(n_markets)]
    supplies = pd.DataFrame([(f, k, float(rng.uniform(50, 150)), 0.08, 30_000.0) for f in farms for k in ks],
                            columns=["supply_id", "commodity", "quantity_t", "storage_loss", "value_per_t"])
    demands = pd.DataFrame([(d, k, float(rng.uniform(10, 40)), 50_000.0, False, np.nan) for d in markets for k in ks]
                           + [("exit", k, 0.0, np.nan, True, 25_000.0) for k in ks],
                           columns=["demand_id", "commodity", "quantity_t", "penalty_per_t", "is_exit", "price_per_t"])
    mods = pd.DataFrame([(j, size, cap, fc, fc * 8) for j in sites
                         for size, cap, fc in (("small", 60.0, float(rng.uniform(2e5, 6e5))),
                                               ("large", 150.0, float(rng.uniform(5e5, 1.2e6))))],
                        columns=["site_id", "module_id", "capacity_t", "fixed_cost", "capital_cost"])
    inbound = pd.DataFrame([(f, j, k, float(rng.uniform(500, 3000)), 0.02) for f in farms for j in sites for k in ks],
                           columns=["supply_id", "site_id", "commodity", "cost_per_t", "loss"])
    outbound = pd.DataFrame([(j, d, k, float(rng.uniform(500, 3000)), 0.03) for j in sites
                             for d in markets + ["exit"] for k in ks],
                            columns=["site_id", "demand_id", "commodity", "cost_per_t", "loss"])
    dr = [(f, d, k, float(rng.uniform(2000, 9000)), 0.15) for f in farms for d in markets for k in ks] if direct else []
    direct_arcs = pd.DataFrame(dr, columns=["supply_id", "demand_id", "commodity", "cost_per_t", "loss"])
    groups = ["A" if i % 2 else "B" for i in range(n_sites)]
    sites_df = pd.DataFrame({"site_id": sites, "existing": False, "group": groups})
    return NetworkProblem(ks, supplies, sites_df, mods, demands, inbound, outbound, direct_arcs, Options(),
                          value_per_t={"vegetables": 30_000.0, "fruit_berries": 50_000.0})


def restrict(pb: NetworkProblem, keep: list[str]) -> NetworkProblem:
    return NetworkProblem(pb.commodities, pb.supplies, pb.sites[pb.sites["site_id"].isin(keep)].reset_index(drop=True),
                          pb.modules[pb.modules["site_id"].isin(keep)].reset_index(drop=True), pb.demands,
                          pb.inbound[pb.inbound["site_id"].isin(keep)].reset_index(drop=True),
                          pb.outbound[pb.outbound["site_id"].isin(keep)].reset_index(drop=True), pb.direct,
                          Options(), value_per_t=pb.value_per_t)


cases = st.tuples(st.integers(0, 10_000), st.integers(2, 5), st.integers(1, 4))


@settings(max_examples=20, deadline=None)
@given(cases)
def test_adding_a_candidate_never_raises_the_optimal_cost(case):
    seed, n, m = case
    pb = make_problem(seed, n, m)
    full = optimize(pb, EXACT)
    fewer = optimize(restrict(pb, list(pb.sites["site_id"])[:-1]), EXACT)
    assert full.objective <= fewer.objective + 1e-6 * abs(fewer.objective)


@settings(max_examples=20, deadline=None)
@given(cases, st.integers(0, 4))
def test_forcing_a_site_open_never_lowers_the_optimal_cost(case, which):
    seed, n, m = case
    pb = make_problem(seed, n, m)
    free = optimize(pb, EXACT)
    pb.sites.loc[which % n, "existing"] = True
    forced = optimize(pb, EXACT)
    assert forced.objective >= free.objective - 1e-6 * abs(free.objective)
    assert pb.sites.at[which % n, "site_id"] in forced.open_sites


@settings(max_examples=20, deadline=None)
@given(cases, st.booleans())
def test_flows_conserve_mass_and_respect_opened_capacity(case, with_direct):
    seed, n, m = case
    pb = make_problem(seed, n, m, direct=with_direct)
    res = optimize(pb, EXACT)
    f = res.flows
    inbound = f[f["kind"] == "inbound"]
    outbound = f[f["kind"] == "outbound"]
    for site in pb.sites["site_id"]:
        got_in = inbound.loc[inbound["to_id"] == site]
        arrived = (got_in["tonnes"] - got_in["lost_t"]).sum()
        assert arrived == pytest.approx(outbound.loc[outbound["from_id"] == site, "tonnes"].sum(), abs=1e-5)
    shipped = f[f["kind"].isin(["inbound", "direct"])].groupby(["from_id", "commodity"])["tonnes"].sum()
    for r in res.unsold.itertuples():
        assert shipped.get((r.supply_id, r.commodity), 0.0) + r.unsold_t == pytest.approx(r.quantity_t, abs=1e-5)
    markets = res.service[~res.service["is_exit"]]
    assert (markets["delivered_t"] + markets["unmet_t"]).to_numpy() == pytest.approx(
        markets["quantity_t"].to_numpy(), abs=1e-5)
    sites = res.sites.set_index("site_id")
    assert (sites["throughput_t"] <= sites["capacity_t"] + 1e-6).all()
    assert (sites.loc[~sites["open"], "throughput_t"] < 1e-6).all()
    assert not set(outbound["from_id"]) - set(res.open_sites)


def test_options_p_budget_and_groups():
    pb = make_problem(3, 5, 3)
    pb.options.p = 2
    assert len(optimize(pb, EXACT).open_sites) == 2
    pb.options = Options(max_per_group={"A": 0}, min_per_group={"B": 1})
    res = optimize(pb, EXACT)
    groups = pb.sites.set_index("site_id")["group"]
    assert all(groups[s] == "B" for s in res.open_sites) and res.open_sites
    pb.options = Options(budget=0.0)
    assert optimize(pb, EXACT).open_sites == []
    pb.options = Options(min_share_through_centres=0.9)
    res = optimize(pb, EXACT)
    f = res.flows
    assert f.loc[f["kind"] == "inbound", "tonnes"].sum() >= 0.9 * f.loc[f["kind"] != "outbound", "tonnes"].sum() - 1e-6


def test_loss_objective_within_budget_loses_less():
    pb = make_problem(5, 4, 3)
    cost_min = optimize(pb, EXACT)
    pb.options = Options(objective="loss", budget=1e9)
    loss_min = optimize(pb, EXACT)
    lost = lambda r: r.flows["lost_t"].sum() + (r.unsold["unsold_t"] * 0.08).sum() + r.service["unmet_t"].sum()  # noqa: E731
    assert lost(loss_min) <= lost(cost_min) + 1e-6


def test_infeasible_status_and_unmet_diagnosis():
    pb = make_problem(1, 3, 2, direct=False)
    pb.demands["penalty_per_t"] = np.nan  # demand must be met, but p = 0 opens nothing
    pb.options.p = 0
    res = optimize(pb, EXACT)
    assert res.status == "infeasible" and "p" in res.message
    pb = make_problem(1, 3, 2, direct=False)
    pb.options.p = 0
    res = optimize(pb, EXACT)
    assert res.status == "optimal"
    assert res.diagnosis and all(d["cause"] == "centres_closed" and "none of them is open" in d["message"]
                                 for d in res.diagnosis)


def test_time_limit_returns_the_warm_start_or_better():
    pb = make_problem(9, 5, 4)
    res = optimize(pb, SolverOptions(time_limit=1e-3, rel_gap=0.0))
    assert res.status in ("optimal", "feasible")
    assert res.objective is not None
    if res.status == "feasible":
        assert "time limit" in res.message
        # a gap is reported whenever HiGHS has a finite bound; before that it is unknown, not zero
        assert (res.gap is None) == (res.bound is None or not np.isfinite(res.bound))


def test_bad_problem_data_names_the_column():
    pb = make_problem(1, 2, 2)
    pb.modules.loc[0, "capacity_t"] = -5
    with pytest.raises(ProblemError, match=r"modules\.capacity_t"):
        optimize(pb)
    pb = make_problem(1, 2, 2)
    pb.inbound.loc[0, "site_id"] = "nowhere"
    with pytest.raises(ProblemError, match="nowhere"):
        optimize(pb)


@pytest.mark.slow
def test_interrupting_a_solve_keeps_the_incumbent():
    from pathlib import Path

    from optimization.orlib import read_cflp

    capb = Path(__file__).resolve().parents[2] / "shared" / "data" / "orlib" / "cflp" / "capb.txt"
    if not capb.is_file():
        pytest.skip("OR-Library files in ../shared are not present")
    events: list[dict] = []
    res = optimize(read_cflp(capb, capacity=5000), SolverOptions(rel_gap=0.0, on_progress=events.append,
                                                                 should_stop=lambda: bool(events)))
    assert res.status == "feasible" and "interrupt" in res.message
    assert res.objective is not None and res.objective >= 13656379.578 - 1e-3  # capb5000's optimum
    assert events and events[0]["objective"] is not None


def test_a_time_limit_before_highs_has_a_solution_keeps_the_completed_start():
    """HiGHS can stop at its time limit before it has looked at the start it was given (under load, or a limit
    shorter than its presolve): the completed start is then the incumbent, never 'no solution'."""
    pb = make_problem(9, 5, 4)
    res = optimize(pb, SolverOptions(time_limit=1e-9, rel_gap=0.0))
    assert res.status == "feasible" and "time limit" in res.message
    exact = optimize(pb, EXACT)
    assert res.objective is not None and res.objective >= exact.objective - 1e-6 * abs(exact.objective)
    assert not res.flows.empty and res.flows["tonnes"].sum() > 0
