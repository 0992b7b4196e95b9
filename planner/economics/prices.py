"""Price impact of a network of centres: the spatial price equilibrium with and without it, per commodity group.

Markets are the scenario's regions with population, and its outside markets (:mod:`planner.trade`). For group
*k* in region *i*:

- reference quantities — supply :math:`S_0` = regional production, demand :math:`D_0` = population ×
  per-capita consumption (the scenario's ``demand_basis``), plus livestock feed for grain
  (:func:`planner.balance.feed_demand_kt`) and each group's seed, processing and other feed
  (:func:`planner.balance.production_use_kt`);
- reference prices — farm gate :math:`p^s_0` = ``value_rub_per_t_<k>``; consumer :math:`p^d_0 = p^s_0 + m_i`,
  the traditional chain's local margin (``traditional_handling_rub_per_t`` plus the value of the FAO
  post-harvest and distribution losses);
- elasticities ``supply_elasticity_<k>``, ``demand_elasticity_<k>``.

An outside market *o* is a market of its own, with the same reference point and elasticity as in the siting
model: its net excess demand for the scope's produce passes through (N0, P0) with elasticity ε at volume T0,
written as demand :math:`D_0 = T_0 + N_0/2` and supply :math:`S_0 = T_0 - N_0/2` at price :math:`P_0`, each with
half the slope. It trades with the scope's regions only.

Trade costs per tonne from i to j, traditional channel: freight on the network (tariff × km + border and
transshipment fees; from a scope region × (1 + the group's part-load share,
:meth:`planner.parameters.ParameterSet.part_load_share`), since small lots leave the farm part-loaded) +
traditional handling + value × (transit, post-harvest and distribution losses); into an
outside market + its duty on the exporter's price (``tariff_export_pct`` × P0 / (1 + the duty in force)); out of
it + the scope's duty (``tariff_import_pct`` × P0). Through a centre *c*: freight i → c (with the same
part-load markup) → j (full loads, none) +
``centre_handling_rub_per_t`` + value × (transit and the FAO shares × ``centre_loss_factor``). With the network, an
arc costs the traditional cost minus ``price_pass_through`` × the saving of the cheapest open centre (imperfect
competition keeps part of the saving as margin) × the share of the group's shipments the centres carry when flows
are routed at fixed sites (:func:`centre_shares`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geo.matrix import trip_matrix
from optimization.results import NetworkResult
from planner.balance import demand_kt_per_capita, feed_demand_kt, production_use_kt
from planner.data.loader import Dataset
from planner.economics.equilibrium import Equilibrium, solve_equilibrium
from planner.pipeline import PlannedProblem, build_problem, combine_shares
from planner.scenario import Scenario, ScenarioError


@dataclass
class PriceReport:
    """Equilibria without and with the network, per commodity; per-region price changes and surplus changes."""

    centres: list[str]
    regions: pd.DataFrame
    summary: pd.DataFrame
    equilibria: dict[str, tuple[Equilibrium, Equilibrium]]
    outside: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_crossing: dict = field(default_factory=dict)
    """``imports_by_crossing_t``, ``exports_by_crossing_t`` and ``trade_points`` of the equilibrium with the
    network (:func:`equilibrium_trade_by_crossing`)."""

    def trade_flows(self, min_tonnes: float = 1.0) -> pd.DataFrame:
        """Inter-regional flows (tonnes a year) with and without the network, per commodity."""
        parts = []
        for k, (e0, e1) in self.equilibria.items():
            f = e0.flows[["from", "to"]].assign(commodity=k, tonnes_base=e0.flows["tonnes"],
                                                tonnes_network=e1.flows["tonnes"])
            parts.append(f[(f["from"] != f["to"]) & (f[["tonnes_base", "tonnes_network"]].max(axis=1) >= min_tonnes)])
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def trade(self) -> dict:
        """The equilibrium's trade with the network, keyed as in a run's ``summary.json``: ``imports_t`` and
        ``exports_t`` by group, ``imports_by_exit_t`` and ``exports_by_exit_t`` by outside market and group
        (tonnes a year), and ``imports_by_crossing_t`` and ``exports_by_crossing_t`` by border crossing or port and
        group (:func:`equilibrium_trade_by_crossing`). ``unmet_t`` carries the same key as a run's: zero for every
        group, because the equilibrium rations demand by price, never by quantity; what the network changes in the
        quantity eaten is ``consumption_change_t`` (network − base, by group, tonnes a year), and ``unmet_causes``
        is empty."""
        out: dict = {"imports_t": {}, "exports_t": {}, "imports_by_exit_t": {}, "exports_by_exit_t": {},
                     "unmet_t": {k: 0.0 for k in self.equilibria}, "unmet_causes": [],
                     "consumption_change_t": {}}
        if not self.regions.empty and {"commodity", "consumption_base_t", "consumption_network_t"} <= set(
                self.regions.columns):
            d = self.regions.groupby("commodity")[["consumption_base_t", "consumption_network_t"]].sum()
            out["consumption_change_t"] = (d["consumption_network_t"] - d["consumption_base_t"]).astype(float).to_dict()
        for r in (self.outside.itertuples() if not self.outside.empty else []):
            n = float(r.net_sales_network_t)
            side = "exports" if n > 0 else "imports"
            out[f"{side}_t"][r.commodity] = out[f"{side}_t"].get(r.commodity, 0.0) + abs(n)
            out[f"{side}_by_exit_t"].setdefault(r.market_id, {})[r.commodity] = abs(n)
        out.update(self.by_crossing or {"imports_by_crossing_t": {}, "exports_by_crossing_t": {},
                                        "trade_points": []})
        return out

    def as_dict(self) -> dict:
        """JSON-ready form (RUB per tonne, tonnes, RUB)."""
        return {"centres": self.centres, "summary": self.summary.to_dict("records"), **self.trade(),
                "outside": self.outside.to_dict("records"), "calibration": self.calibration.to_dict("records"),
                "regions": self.regions.to_dict("records"), "trade_flows": self.trade_flows().to_dict("records")}


def _outside_markets(planned: PlannedProblem, commodity: str) -> pd.DataFrame:
    """The outside markets of a run as equilibrium markets (see the module docstring): reference net sales N0
    split as demand D0 = T0 + N0/2 and supply S0 = T0 − N0/2 at the reference price P0, with slopes that give the
    market's excess demand the elasticity ``ε`` at its reference volume T0."""
    c = planned.curves
    if c is None or c.empty:
        return pd.DataFrame(columns=["market", "S0", "D0", "ps0", "pd0", "eps_s", "eps_d"])
    c = c[(c["commodity"] == commodity) & np.isfinite(c["P0_rub_per_t"]) & (c["T0_t"] > 0)]
    T0, N0, eps = c["T0_t"].to_numpy(float), c["N0_t"].to_numpy(float), c["elasticity"].to_numpy(float)
    D0, S0 = T0 + N0 / 2, T0 - N0 / 2
    return pd.DataFrame({"market": "outside:" + c["market_id"], "S0": S0, "D0": D0,
                         "ps0": c["P0_rub_per_t"].to_numpy(float), "pd0": c["P0_rub_per_t"].to_numpy(float),
                         "eps_s": eps * T0 / (2 * S0), "eps_d": -eps * T0 / (2 * D0)})


def _markets_and_costs(planned: PlannedProblem, dataset: Dataset, scenario: Scenario, commodity: str,
                       open_sites: list[str]):
    params = planned.params
    pb = planned.problem
    G = planned.graph
    from planner.pipeline import regional_population

    regions = dataset.regions.set_index("region_id").assign(population=regional_population(dataset))
    supply_node = {s.removeprefix("farm:"): n for s, n in planned.nodes.items() if s.startswith("farm:")}
    ids = [r for r in scenario.region_ids(dataset) if pd.notna(regions.at[r, "population"]) and r in supply_node]
    if not ids:
        raise ScenarioError("scope: no region with population and production to form markets")
    value = params[f"value_rub_per_t_{commodity}"]
    post = params.loss_pct(commodity, "postharvest_handling_storage") / 100
    dist = params.loss_pct(commodity, "distribution") / 100
    transit = params[f"transit_loss_pct_per_day_{commodity}"] / 100 / 24
    f = params["centre_loss_factor"]
    trad_h, centre_h = params["traditional_handling_rub_per_t"], params["centre_handling_rub_per_t"]
    prod = pb.supplies[pb.supplies["commodity"] == commodity].set_index("supply_id")["quantity_t"]
    per_capita_t = demand_kt_per_capita(dataset, params, ids, scenario.demand_basis)["kt_per_capita"].xs(
        commodity, level="commodity") * 1000.0  # per region, t per person
    local_margin = trad_h + value * float(combine_shares(post, dist))
    feed_t = (feed_demand_kt(dataset, ids)["feed_kt"] * 1000.0 if commodity == "grain"
              else pd.Series(0.0, index=ids))  # livestock feed: grain demand beside food, t a year
    uses = production_use_kt(dataset, ids)["use_kt"]
    if commodity in set(uses.index.get_level_values("commodity")):  # seed, processing, other feed, t a year
        feed_t = feed_t.add(uses.xs(commodity, level="commodity") * 1000.0, fill_value=0.0)
    markets = pd.DataFrame({
        "market": ids, "S0": [float(prod.get(f"farm:{r}", 0.0)) for r in ids],
        "D0": [float(regions.at[r, "population"]) * per_capita_t[r] + float(feed_t.get(r, 0.0)) for r in ids],
        "ps0": value, "pd0": value + local_margin,
        "eps_s": params[f"supply_elasticity_{commodity}"], "eps_d": params[f"demand_elasticity_{commodity}"]})
    outside = _outside_markets(planned, commodity)
    by_id = {o.market_id: o for o in planned.outside}
    out_node = {m: by_id[m.removeprefix("outside:")].node for m in outside["market"]}
    markets = pd.concat([markets, outside], ignore_index=True)
    site_node = dict(zip(planned.candidates["candidate_id"], planned.candidates["node"], strict=True))
    centre_nodes = [site_node[s] for s in open_sites]
    place = {**{r: supply_node[r] for r in ids}, **out_node}
    nodes = sorted(set(place.values()) | set(centre_nodes))
    trip = trip_matrix(G, nodes, nodes, params, commodity=commodity)  # freight and hours along one route per pair
    freight, hours = trip.freight, trip.hours
    curves = planned.curves.set_index(["market_id", "commodity"]) if len(planned.curves) else None
    pos = {n: k for k, n in enumerate(freight.index)}
    F, H = freight.to_numpy(float), hours.to_numpy(float)
    # cheapest route through any open centre, for every pair of nodes (a, c, b): freight and hours in, then out
    # a region's produce pays the part-load markup on its first leg (to the market or to the centre), an
    # outside market's full loads do not (consolidation, planner.pipeline)
    part_load = params.part_load_share(commodity)
    cpos = [pos[c] for c in centre_nodes]

    def through_centres(first_leg: float, origins: list[str]) -> dict[int, np.ndarray]:
        """Cheapest cost through an open centre from each origin node's row to every node (inf where none)."""
        rows = sorted({pos[place[i]] for i in origins})
        if not cpos:
            return {a: np.full(F.shape[1], np.inf) for a in rows}
        Fr, Hr = F[rows][:, cpos], H[rows][:, cpos]
        via = (Fr[:, :, None] * first_leg + F[cpos, :][None, :, :] + centre_h + value * combine_shares(
            transit * (Hr[:, :, None] + H[cpos, :][None, :, :]), post * f, dist * f))
        return dict(zip(rows, np.where(np.isfinite(via), via, np.inf).min(axis=1), strict=True))

    # a region's node and an outside market's may coincide (a port town): each origin kind gets its own rows
    via_farm = through_centres(1.0 + part_load, [i for i in place if not i.startswith("outside:")])
    via_outside = through_centres(1.0, [i for i in place if i.startswith("outside:")])
    rows = []
    for i in place:
        for j in place:
            if i.startswith("outside:") and j.startswith("outside:") and i != j:
                continue  # outside markets trade with the scope, not with each other through it
            if i == j and i.startswith("outside:"):
                rows.append((i, j, 0.0, 0.0, 0.0))  # the outside market's own supply meeting its own demand
                continue
            a, b = pos[place[i]], pos[place[j]]
            fr = float(F[a, b])
            if not np.isfinite(fr):
                continue
            from_region = not i.startswith("outside:")
            trad = (fr * (1.0 + part_load if from_region else 1.0) + trad_h
                    + value * float(combine_shares(transit * float(H[a, b]), post, dist)))
            if j.startswith("outside:"):  # the scope sells: the market's duty on the exporter's price
                o = by_id[j.removeprefix("outside:")]
                p0 = float(curves.at[(o.market_id, commodity), "P0_rub_per_t"])
                trad += o.tariff_export_pct / 100 * p0 / (1 + o.base_tariff_export_pct / 100)
            duty_in = 0.0
            if i.startswith("outside:"):  # the scope buys: its duty on the market's price
                o = by_id[i.removeprefix("outside:")]
                duty_in = o.tariff_import_pct / 100 * float(curves.at[(o.market_id, commodity), "P0_rub_per_t"])
                trad += duty_in
            best = float((via_farm if from_region else via_outside)[a][b])
            rows.append((i, j, trad, max(0.0, trad - best), duty_in))
    arcs = pd.DataFrame(rows, columns=["from", "to", "traditional", "saving", "duty_in"])
    return markets, arcs


def centre_shares(planned: PlannedProblem, open_ids, scenario: Scenario) -> dict[str, float]:
    """Share of each group's shipped tonnes that passes through the centres when flows are routed with exactly
    ``open_ids`` open (ids, or id → module as :func:`planner.economics.losses.with_sites` takes; their capacity
    limits how much of the chain the saving reaches)."""
    from planner.economics.losses import route_with_sites

    if not open_ids:
        return {}
    res = route_with_sites(planned, open_ids, scenario)
    if res.objective is None or res.flows.empty:
        return {}
    f = res.flows[res.flows["kind"] != "outbound"]
    total = f.groupby("commodity")["tonnes"].sum()
    via = f[f["kind"] == "inbound"].groupby("commodity")["tonnes"].sum()
    return {k: float(via.get(k, 0.0) / total[k]) for k in total.index if total[k] > 0}


def estimate_price_impact(scenario: Scenario, dataset: Dataset, centres: Iterable[str] | NetworkResult | None = None,
                          baseline: str = "traditional", planned: PlannedProblem | None = None) -> PriceReport:
    """Equilibrium prices with the network of ``centres`` (ids, a solved result, or None = the existing ones)
    against the baseline (``traditional``: no centres; ``existing``: the existing centres). ``planned`` is the run's
    problem when the caller has it (not rebuilt)."""
    from planner.economics.losses import resolve_centres

    planned = planned or build_problem(scenario, dataset)
    open_ids, ref_sites = resolve_centres(planned, centres, baseline)
    theta = planned.params["price_pass_through"]
    share_net = centre_shares(planned, open_ids, scenario)
    share_ref = centre_shares(planned, ref_sites, scenario) if ref_sites else {}
    rows, summary, eqs, trade, calib = [], [], {}, [], []
    for k in scenario.commodities:
        markets, arcs = _markets_and_costs(planned, dataset, scenario, k, open_ids)
        if ref_sites:
            _, ref_arcs = _markets_and_costs(planned, dataset, scenario, k, ref_sites)
            base_cost = ref_arcs["traditional"] - theta * share_ref.get(k, 0.0) * ref_arcs["saving"]
        else:
            base_cost = arcs["traditional"]
        e0 = solve_equilibrium(markets, arcs.assign(cost=base_cost))
        net_cost = arcs["traditional"] - theta * share_net.get(k, 0.0) * arcs["saving"]
        e1 = solve_equilibrium(markets, arcs.assign(cost=net_cost), regularisation=e0.regularisation)
        if e1.regularisation != e0.regularisation:  # compared equilibria carry the same regularisation
            e0 = solve_equilibrium(markets, arcs.assign(cost=base_cost), regularisation=e1.regularisation)
        # rents and revenue inside the scope: the share of the centres' saving the pass-through withholds is the
        # centres' margin (income, not a cost); the scope's import duties are its revenue
        base_saving = (ref_arcs["saving"] * share_ref.get(k, 0.0)) if ref_sites else 0.0 * arcs["saving"]
        margin0 = float(((1 - theta) * base_saving * e0.flows["tonnes"]).sum())
        margin1 = float(((1 - theta) * share_net.get(k, 0.0) * arcs["saving"] * e1.flows["tonnes"]).sum())
        duty0 = float((arcs["duty_in"] * e0.flows["tonnes"]).sum())
        duty1 = float((arcs["duty_in"] * e1.flows["tonnes"]).sum())
        eqs[k] = (e0, e1)
        trade.append(_outside_trade(k, e0, e1))
        calib.append(_calibration(k, e0))
        scope0 = ~e0.markets["market"].str.startswith("outside:")
        e0s, e1s = e0.markets[scope0], e1.markets[scope0]
        a, b = e0s.set_index("market"), e1s.set_index("market")
        dp_d = b["demand_price"] - a["demand_price"]
        dp_s = b["supply_price"] - a["supply_price"]
        reg = pd.DataFrame({
            "commodity": k, "region_id": a.index,
            "consumer_price_base": a["demand_price"], "consumer_price_network": b["demand_price"],
            "consumer_price_change_pct": 100 * dp_d / a["demand_price"],
            "farm_price_base": a["supply_price"], "farm_price_network": b["supply_price"],
            "farm_price_change_pct": 100 * dp_s / a["supply_price"],
            "consumption_base_t": a["D"], "consumption_network_t": b["D"],
            "consumer_surplus_change_rub": -dp_d * (a["D"] + b["D"]) / 2,
            "producer_surplus_change_rub": dp_s * (a["S"] + b["S"]) / 2}).reset_index(drop=True)
        rows.append(reg)
        w = a["D"] / a["D"].sum()
        summary.append({"commodity": k, "consumer_price_change_pct": float((reg.set_index("region_id")[
            "consumer_price_change_pct"] * w).sum()), "farm_price_change_pct": float(
            (reg["farm_price_change_pct"] * (a["S"] / a["S"].sum()).to_numpy()).sum()),
            "consumer_surplus_change_rub": float(reg["consumer_surplus_change_rub"].sum()),
            "producer_surplus_change_rub": float(reg["producer_surplus_change_rub"].sum()),
            "welfare_change_rub": e1.welfare - e0.welfare,
            "centre_margin_change_rub": margin1 - margin0, "import_duty_change_rub": duty1 - duty0,
            "flow_regularisation": e1.regularisation})
    return PriceReport(list(open_ids), pd.concat(rows, ignore_index=True), pd.DataFrame(summary), eqs,
                       pd.concat(trade, ignore_index=True) if trade else pd.DataFrame(), pd.DataFrame(calib),
                       equilibrium_trade_by_crossing(planned, dataset, scenario, eqs))


def equilibrium_trade_by_crossing(planned: PlannedProblem, dataset: Dataset, scenario: Scenario,
                                  eqs: dict[str, tuple[Equilibrium, Equilibrium]]) -> dict:
    """The equilibrium's trade with the network by border crossing or port, keyed as a run's ``summary.json``
    (:func:`planner.summary.trade_by_crossing`, the run's own split): each outside market's net sales (what the
    report's ``imports_by_exit_t`` / ``exports_by_exit_t`` hold) spread over its flows in the net direction in
    proportion to their tonnes, each flow routed from the region's node to the market's node; tonnes a year."""
    from planner.summary import trade_by_crossing

    rows = []
    for k, (_, e1) in eqs.items():
        f = e1.flows[(e1.flows["from"] != e1.flows["to"]) & (e1.flows["tonnes"] > 1e-6)]
        sells = f[f["to"].str.startswith("outside:")]
        buys = f[f["from"].str.startswith("outside:")]
        for m in set(sells["to"]) | set(buys["from"]):
            out_t, in_t = sells.loc[sells["to"] == m, "tonnes"].sum(), buys.loc[buys["from"] == m, "tonnes"].sum()
            net = float(out_t - in_t)
            leg = sells[sells["to"] == m] if net > 0 else buys[buys["from"] == m]
            gross = float(out_t if net > 0 else in_t)
            mid = m.removeprefix("outside:")
            for a, b, t in zip(leg["from"], leg["to"], leg["tonnes"], strict=True):
                region = a if net > 0 else b
                rows.append({"from_id": f"farm:{region}" if net > 0 else f"import:{mid}",
                             "to_id": f"exit:{mid}" if net > 0 else f"farm:{region}", "commodity": k,
                             "tonnes": float(t) * abs(net) / gross, "lost_t": 0.0})
    cols = ["from_id", "to_id", "commodity", "tonnes", "lost_t"]
    return trade_by_crossing(planned, pd.DataFrame(rows, columns=cols), dataset, scenario.region_ids(dataset))


def _calibration(commodity: str, e0: Equilibrium) -> dict:
    """How far the baseline equilibrium's prices lie from the reference prices the markets were calibrated on:
    demand-weighted mean and range of the deviation, % (consumer and farm-gate), over the scope's regions."""
    m = e0.markets[~e0.markets["market"].str.startswith("outside:")]
    dd = 100 * (m["demand_price"] / m["pd0"] - 1)
    ds = 100 * (m["supply_price"] / m["ps0"] - 1)
    w = m["D0"] / m["D0"].sum()
    ws = m["S0"] / m["S0"].sum() if m["S0"].sum() > 0 else w
    return {"commodity": commodity, "consumer_dev_mean_pct": float((dd * w).sum()),
            "consumer_dev_min_pct": float(dd.min()), "consumer_dev_max_pct": float(dd.max()),
            "farm_dev_mean_pct": float((ds.fillna(0) * ws).sum()), "farm_dev_min_pct": float(ds.min()),
            "farm_dev_max_pct": float(ds.max())}


def _outside_trade(commodity: str, e0: Equilibrium, e1: Equilibrium) -> pd.DataFrame:
    """Per outside market: the scope's net sales to it (t a year; negative = purchases) and its price (RUB/t),
    without and with the network."""
    def net(e: Equilibrium) -> pd.Series:
        f = e.flows
        f = f[f["from"] != f["to"]]
        out = f[f["to"].str.startswith("outside:")].groupby("to")["tonnes"].sum()
        inn = f[f["from"].str.startswith("outside:")].groupby("from")["tonnes"].sum()
        return out.sub(inn, fill_value=0.0)

    m0 = e0.markets[e0.markets["market"].str.startswith("outside:")].set_index("market")
    if m0.empty:
        return pd.DataFrame()
    m1 = e1.markets.set_index("market").loc[m0.index]
    n0, n1 = net(e0).reindex(m0.index).fillna(0.0), net(e1).reindex(m0.index).fillna(0.0)
    return pd.DataFrame({"commodity": commodity, "market_id": m0.index.str.removeprefix("outside:"),
                         "net_sales_base_t": n0.to_numpy(), "net_sales_network_t": n1.to_numpy(),
                         "price_base": m0["demand_price"].to_numpy(), "price_network": m1["demand_price"].to_numpy()})
