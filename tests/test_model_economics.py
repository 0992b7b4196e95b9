"""The model's economics on cases small enough to derive by hand: a lost tonne is charged once, outside
markets buy and sell along their steps, and unmet demand carries the cause that produced it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimization.model import build_model, objective_coefficients
from optimization.problem import TIER_COLUMNS, NetworkProblem, Options, ProblemError
from optimization.run import optimize
from optimization.solve import SolverOptions

EXACT = SolverOptions(rel_gap=0.0)
K = "vegetables"
V = 30_000.0  # reference value, RUB per tonne


def two_nodes(supply_t: float = 100.0, demand_t: float = 60.0, exit_price: float = 20_000.0,
              market_loss: float = 0.1, exit_loss: float = 0.2, tiers: pd.DataFrame | None = None,
              extra_supplies: list | None = None, extra_direct: list | None = None) -> NetworkProblem:
    """A farm, a market and an exit, joined by direct arcs only (no sites)."""
    supplies = pd.DataFrame([("farm", K, supply_t, 0.05, V), *(extra_supplies or [])],
                            columns=["supply_id", "commodity", "quantity_t", "storage_loss", "value_per_t"])
    demands = pd.DataFrame([("market", K, demand_t, 5 * V, False, np.nan), ("exit", K, 0.0, np.nan, True, exit_price)],
                           columns=["demand_id", "commodity", "quantity_t", "penalty_per_t", "is_exit", "price_per_t"])
    sites = pd.DataFrame(columns=["site_id", "existing", "group"])
    mods = pd.DataFrame(columns=["site_id", "module_id", "capacity_t", "fixed_cost", "capital_cost"])
    arcs_in = pd.DataFrame(columns=["supply_id", "site_id", "commodity", "cost_per_t", "loss"])
    arcs_out = pd.DataFrame(columns=["site_id", "demand_id", "commodity", "cost_per_t", "loss"])
    direct = pd.DataFrame([("farm", "market", K, 1_000.0, market_loss), ("farm", "exit", K, 3_000.0, exit_loss),
                           *(extra_direct or [])],
                          columns=["supply_id", "demand_id", "commodity", "cost_per_t", "loss"])
    return NetworkProblem([K], supplies, sites, mods, demands, arcs_in, arcs_out, direct, Options(),
                          value_per_t={K: V}, tiers=tiers if tiers is not None else pd.DataFrame(columns=TIER_COLUMNS))


def test_each_arc_coefficient_charges_a_lost_tonne_once():
    pb = two_nodes()
    cost = objective_coefficients(pb)["cost"]
    # market arc: freight only — the demand row makes a lost tonne be shipped again
    # exit arc: freight minus the price of the tonnes that arrive: c − r(1 − ℓ) = 3,000 − 20,000 × 0.8
    assert cost["x0"] == pytest.approx([1_000.0, 3_000.0 - 20_000.0 * 0.8])
    assert cost["w"] == [0.0]  # produce no outlet pays for is worth nothing at the margin
    res = optimize(pb, EXACT)
    # by hand: ship 60/0.9 = 66.67 t to the market (66,667 RUB), the remaining 33.33 t to the exit, which pays
    # 33.33 × (3,000 − 16,000) = −433,333; objective = 66,667 − 433,333
    to_market = 60 / 0.9
    assert res.objective == pytest.approx(to_market * 1_000 + (100 - to_market) * (3_000 - 16_000), rel=1e-9)
    # the value of lost produce is reported at the reference value, once
    lost = to_market * 0.1 + (100 - to_market) * 0.2
    assert res.lost_value == pytest.approx(lost * V, rel=1e-9)
    assert sum(res.costs["value"]) == pytest.approx(res.objective, rel=1e-9)


def with_a_site(exit_price: float = 20_000.0) -> NetworkProblem:
    """:func:`two_nodes` plus one site ``j``: farm → j (inbound, x1), j → market and j → exit (outbound, x2), with
    freight, handling and losses as the pipeline builds them (the farm's first leg pays the part-load markup, the
    centre's despatch none; the centre handles at 1,500 RUB/t against 3,000 for the traditional channel)."""
    pb = two_nodes(exit_price=exit_price)
    pb.sites = pd.DataFrame({"site_id": ["j"], "existing": [True], "group": ["A"]})
    pb.modules = pd.DataFrame({"site_id": ["j"], "module_id": ["m"], "capacity_t": [1_000.0], "fixed_cost": [0.0],
                               "capital_cost": [0.0]})
    pb.inbound = pd.DataFrame([("farm", "j", K, 400.0 * 1.15125 + 1_500.0, 0.03)],
                              columns=["supply_id", "site_id", "commodity", "cost_per_t", "loss"])
    pb.outbound = pd.DataFrame([("j", "market", K, 300.0, 0.05), ("j", "exit", K, 2_000.0, 0.1)],
                               columns=["site_id", "demand_id", "commodity", "cost_per_t", "loss"])
    return pb


def test_each_site_arc_coefficient_charges_a_lost_tonne_once():
    """The inbound arc (x1) costs its freight and handling; the outbound arc to a market (x2) its freight; the
    outbound arc to a flat-price exit its freight minus the price of the tonnes that arrive, c − r(1 − ℓ). None
    charges v·ℓ: the balance at the site and at the market makes a lost tonne be shipped again."""
    pb = with_a_site()
    c = objective_coefficients(pb)
    assert c["cost"]["x1"] == pytest.approx([400.0 * 1.15125 + 1_500.0])
    assert c["cost"]["x2"] == pytest.approx([300.0, 2_000.0 - 20_000.0 * (1 - 0.1)])
    assert c["cost"]["x0"] == pytest.approx([1_000.0, 3_000.0 - 20_000.0 * 0.8])
    # the value of lost produce is a memo at the reference value, not part of any coefficient
    assert c["parts"]["loss_value"]["x1"] == pytest.approx([0.03 * V])
    assert c["parts"]["loss_value"]["x2"] == pytest.approx([0.05 * V, 0.1 * V])
    # solved by hand: the market's 60 t cost 1,000/0.9 = 1,111 RUB a tonne direct against
    # (1,960.5/0.97 + 300)/0.95 = 2,443 through j; a tonne through j to the exit earns 2,000 − 18,000 = −16,000 for
    # 0.97 t arriving at j, i.e. 1,960.5 − 0.97 × 16,000 = −13,559.5 a farm tonne, better than −13,000 direct
    res = optimize(pb, EXACT)
    to_market = 60 / 0.9
    rest = 100 - to_market
    by_hand = to_market * 1_000.0 + rest * (400.0 * 1.15125 + 1_500.0) + rest * 0.97 * (2_000.0 - 18_000.0)
    assert res.objective == pytest.approx(by_hand, rel=1e-9)


def test_the_pipeline_charges_the_part_load_markup_on_a_farms_first_leg_only(ncfd_planned):
    """Each arc coefficient of a real scenario derived by hand from its trip's freight and hours (the group's one
    route, geo.matrix.trip_matrix) and the registry: the farm's first leg to a centre (x1) and to a market or an
    exit (x0) pays freight × (1 + 60.5% × 25%) for vegetables (the part-load markup on the small-lot share), the
    centre's despatch to a market or an exit (x2) and an outside supplier's full loads (x0 from import:) pay the
    bare freight; handling 1,500 RUB/t at a centre (on its inbound arc), 3,000 in the traditional channel; losses
    transit (1.5%/day × hours) with the FAO post-harvest (5%) and distribution (10%) shares, halved in a centre."""
    from geo.matrix import trip_matrix

    pl = ncfd_planned
    p, pb = pl.params, pl.problem
    assert (p["part_load_markup_pct"], p["small_lot_share_pct_vegetables"]) == (60.5, 25.0)
    assert (p["centre_handling_rub_per_t"], p["traditional_handling_rub_per_t"], p["centre_loss_factor"]) == (
        1_500.0, 3_000.0, 0.5)
    markup = 1 + 0.605 * 0.25
    coef = objective_coefficients(pb)["cost"]
    site = dict(zip(pl.candidates["candidate_id"], pl.candidates["node"], strict=True))
    farm, j, market = "farm:RU-CE", "ru_in_orc", "market:road:RU:Хасавюрт"
    exit_, imp = "exit:ru_rest", "import:ru_rest"
    nodes = {**pl.nodes, j: site[j]}

    def trip(a: str, b: str) -> tuple[float, float]:
        t = trip_matrix(pl.graph, [nodes[a]], [nodes[b]], p, commodity=K)
        return float(t.freight.iat[0, 0]), float(t.hours.iat[0, 0])

    def lost(hours: float, *shares: float) -> float:
        keep = 1 - 0.015 * hours / 24
        for s in shares:
            keep *= 1 - s
        return 1 - keep

    def row(table: pd.DataFrame, a: str, b: str, cols: tuple[str, str]) -> int:
        hit = table.index[(table[cols[0]] == a) & (table[cols[1]] == b) & (table["commodity"] == K)]
        assert len(hit) == 1, (a, b)
        return int(hit[0])

    f, h = trip(farm, j)
    assert f > 0
    i = row(pb.inbound, farm, j, ("supply_id", "site_id"))
    assert coef["x1"][i] == pytest.approx(f * markup + 1_500.0)
    assert pb.inbound.at[i, "loss"] == pytest.approx(lost(h, 0.05 * 0.5))
    for dest in (market, exit_):  # the centre's despatch: bare freight, the exits' prices are on their steps
        f, h = trip(j, dest)
        i = row(pb.outbound, j, dest, ("site_id", "demand_id"))
        assert coef["x2"][i] == pytest.approx(f)
        assert pb.outbound.at[i, "loss"] == pytest.approx(lost(h, 0.10 * 0.5))
    for src, dest, up in ((farm, market, markup), (farm, exit_, markup), (imp, market, 1.0)):
        f, h = trip(src, dest)
        i = row(pb.direct, src, dest, ("supply_id", "demand_id"))
        assert coef["x0"][i] == pytest.approx(f * up + 3_000.0), (src, dest)
        assert pb.direct.at[i, "loss"] == pytest.approx(lost(h, 0.05, 0.10)), (src, dest)


def test_losses_cost_what_the_lost_tonne_could_have_earned():
    """With the exit open, a market arc that loses 10 % more costs 10 % more tonnes of exit revenue forgone;
    without a paying outlet (a glut), it costs only the freight of the extra tonnes."""
    a = optimize(two_nodes(market_loss=0.1), EXACT).objective
    b = optimize(two_nodes(market_loss=0.2), EXACT).objective
    extra = 60 / 0.8 - 60 / 0.9  # tonnes shipped extra
    assert b - a == pytest.approx(extra * (1_000 - (3_000 - 16_000)), rel=1e-9)
    a = optimize(two_nodes(market_loss=0.1, exit_price=0.0), EXACT).objective
    b = optimize(two_nodes(market_loss=0.2, exit_price=0.0), EXACT).objective
    assert b - a == pytest.approx(extra * 1_000, rel=1e-9)


def _steps(kind: str, row: str, widths, prices) -> pd.DataFrame:
    return pd.DataFrame({"row_kind": kind, "row_id": row, "commodity": K, "width_t": widths, "price_per_t": prices})


def test_an_exit_with_steps_buys_at_most_its_steps_in_price_order():
    tiers = _steps("demand", "exit", [10.0, 10.0, 10.0], [30_000.0, 20_000.0, 2_000.0])
    res = optimize(two_nodes(tiers=tiers), EXACT)
    t = res.trade.set_index("row_id")
    # arriving at the exit: 30 t at most; the third step (2,000) does not pay the freight (3,000/0.8 per t)
    assert t.at["exit", "tonnes"] == pytest.approx(20.0)
    assert t.at["exit", "direction"] == "export"
    assert res.unsold["unsold_t"].sum() == pytest.approx(100 - 60 / 0.9 - 20 / 0.8)


def test_an_outside_supplier_imports_only_what_local_supply_cannot_cover():
    imp = ("import:border", K, 0.0, 0.0, V)
    arc = ("import:border", "market", K, 500.0, 0.0)
    tiers = _steps("supply", "import:border", [20.0, 20.0], [25_000.0, 40_000.0])
    # local supply short by 60 − 45 × 0.9 = 19.5 t: bought on the first step
    res = optimize(two_nodes(supply_t=45.0, tiers=tiers, extra_supplies=[imp], extra_direct=[arc]), EXACT)
    got = res.trade.set_index("row_id")
    assert got.at["import:border", "tonnes"] == pytest.approx(60 - 45 * 0.9)
    assert got.at["import:border", "direction"] == "import"
    assert res.service.set_index("demand_id").at["market", "unmet_t"] == pytest.approx(0.0, abs=1e-6)
    # with no farm at all and steps too small, the rest is unmet and the cause says the sources are used up
    res = optimize(two_nodes(supply_t=0.0, tiers=tiers, extra_supplies=[imp], extra_direct=[arc]), EXACT)
    assert res.trade["tonnes"].sum() == pytest.approx(40.0)
    [d] = res.diagnosis
    assert d["cause"] == "supply_exhausted" and d["unmet_t"] == pytest.approx(20.0)


def test_no_route_is_named():
    pb = two_nodes()
    pb.direct = pb.direct[pb.direct["demand_id"] != "market"].reset_index(drop=True)
    [d] = optimize(pb, EXACT).diagnosis
    assert d["cause"] == "no_route" and "no arc reaches it" in d["message"]


def test_steps_must_name_an_outside_row():
    with pytest.raises(ProblemError, match="not a exit|not a supply row|exit"):
        build_model(two_nodes(tiers=_steps("demand", "market", [1.0], [1.0])))
    with pytest.raises(ProblemError, match=r"tiers\.width_t"):
        build_model(two_nodes(tiers=_steps("demand", "exit", [np.inf], [1.0])))


def with_site(storage_months: float = 8.0, storage_t: float = 5.0, season=((10.0, 5_000.0),)) -> NetworkProblem:
    """A farm, one site and a market; the site may hold vegetables for the off-season."""
    supplies = pd.DataFrame([("farm", K, 100.0, 0.05, V)],
                            columns=["supply_id", "commodity", "quantity_t", "storage_loss", "value_per_t"])
    demands = pd.DataFrame([("market", K, 60.0, 5 * V, False, np.nan)],
                           columns=["demand_id", "commodity", "quantity_t", "penalty_per_t", "is_exit", "price_per_t"])
    sites = pd.DataFrame({"site_id": ["j"], "existing": [False], "group": ["A"]})
    mods = pd.DataFrame({"site_id": ["j"], "module_id": ["m"], "capacity_t": [100.0], "fixed_cost": [1.0],
                         "capital_cost": [1.0], "storage_t": [storage_t]})
    arcs_in = pd.DataFrame([("farm", "j", K, 100.0, 0.0)], columns=["supply_id", "site_id", "commodity", "cost_per_t",
                                                                   "loss"])
    arcs_out = pd.DataFrame([("j", "market", K, 100.0, 0.0)], columns=["site_id", "demand_id", "commodity",
                                                                      "cost_per_t", "loss"])
    direct = pd.DataFrame(columns=["supply_id", "demand_id", "commodity", "cost_per_t", "loss"])
    tiers = pd.DataFrame([("season", "season", K, w, p) for w, p in season], columns=TIER_COLUMNS)
    storage = pd.DataFrame({"commodity": [K], "months": [storage_months], "loss": [0.05]})
    return NetworkProblem([K], supplies, sites, mods, demands, arcs_in, arcs_out, direct, Options(),
                          value_per_t={K: V}, tiers=tiers, storage=storage)


def test_seasonal_storage_is_bounded_by_tonne_months_and_by_the_off_season_market():
    # 5 t of storage × 12 months / 8 months held = 7.5 t: below the 10 t the off-season market takes
    res = optimize(with_site(), EXACT)
    held = res.storage.set_index("site_id").at["j", "held_t"]
    assert held == pytest.approx(7.5)
    # the stored tonnes lose 5 %: the market's 60 t need 60 + 0.05 × 7.5 t through the site
    assert res.sites.set_index("site_id").at["j", "throughput_t"] == pytest.approx(60 + 0.05 * 7.5)
    costs = res.costs.set_index("component")["value"]
    assert costs["seasonal margin (negative cost)"] == pytest.approx(-7.5 * 5_000.0)
    # a larger store fills the off-season market and no more; a falling step is filled only while it pays
    res = optimize(with_site(storage_t=50.0, season=((10.0, 5_000.0), (10.0, 1_000.0), (10.0, 0.0))), EXACT)
    assert res.storage["held_t"].sum() == pytest.approx(20.0)


def test_fixing_the_sites_keeps_the_outside_markets_and_the_storage():
    from planner.economics.losses import with_sites

    pb = with_site()
    fixed = with_sites(pb, ["j"])
    assert fixed.tiers.equals(pb.tiers) and fixed.storage.equals(pb.storage)
    assert optimize(fixed, EXACT).objective == pytest.approx(optimize(pb, EXACT).objective)


def _cause(pb: NetworkProblem) -> dict:
    """The one unmet-demand diagnosis of a solved case."""
    [d] = optimize(pb, EXACT).diagnosis
    return d


def test_no_supply_is_named_when_nothing_of_the_group_is_grown_or_offered():
    d = _cause(two_nodes(supply_t=0.0))
    assert d["cause"] == "no_supply" and d["unmet_t"] == pytest.approx(60.0)
    assert "no production of this commodity in scope" in d["message"]


def test_costlier_than_penalty_is_named_when_supply_is_spare_but_dearer_than_the_penalty():
    pb = two_nodes(exit_price=0.0)  # nothing pays for the spare tonnes: they stay on the farm
    pb.demands.loc[pb.demands["demand_id"] == "market", "penalty_per_t"] = 500.0  # < 1,000 / 0.9 a delivered tonne
    d = _cause(pb)
    assert d["cause"] == "costlier_than_penalty" and d["unmet_t"] == pytest.approx(60.0)


def test_centres_closed_is_named_when_only_a_closed_centre_reaches_a_market():
    pb = with_a_site()
    pb.direct = pb.direct[pb.direct["demand_id"] != "market"].reset_index(drop=True)
    pb.sites["existing"] = False
    pb.options = Options(p=0)  # no centre may open
    d = _cause(pb)
    assert d["cause"] == "centres_closed" and d["unmet_t"] == pytest.approx(60.0)


def test_centres_full_is_named_when_the_only_centre_that_reaches_a_market_is_at_capacity():
    pb = with_a_site()
    pb.direct = pb.direct[pb.direct["demand_id"] != "market"].reset_index(drop=True)
    pb.modules["capacity_t"] = 20.0  # 20 t a year through j: 20 × 0.97 × 0.95 t reach the market
    res = optimize(pb, EXACT)
    assert res.sites.set_index("site_id").at["j", "utilisation"] == pytest.approx(1.0)
    [d] = res.diagnosis
    assert d["cause"] == "centres_full" and d["unmet_t"] == pytest.approx(60.0 - 20.0 * 0.97 * 0.95)
