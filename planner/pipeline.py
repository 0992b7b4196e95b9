"""The pipeline: scenario → data → geo → optimization problem → results.

:func:`build_problem` turns a scenario into the model's data (:class:`optimization.problem.NetworkProblem`):

- **supply** — each region in scope produces its Rosstat quantity of each commodity group (tonnes a year) at
  the network node nearest its centroid; what stays unsold loses the FAO post-harvest storage share;
- **demand** — each region's population × consumption norm, spread over its cities (snapped to network nodes)
  in proportion to their population; **exits** (rest of Russia, ports, borders) take any quantity at
  ``exit_price_pct_of_value`` of the farm-gate value;
- **sites** — the scenario's candidates (generated along the corridors or from its file), each with three size
  modules whose capital is annualised over ``centre_lifetime_years`` at ``discount_rate_pct`` plus
  ``centre_fixed_opex_pct`` a year;
- **arcs** — farm → centre and centre → market within ``network.service_km`` (and to the ``k_nearest`` sites at
  least), centre → exit always, farm → market (traditional channel) within ``network.direct_km`` and farm →
  exit when ``network.traditional_to_exits`` (long-haul traders). Arc cost =
  freight (tariff × km + border and transshipment fees) + handling; arc loss = transit loss (per-day share ×
  fastest hours) combined with the FAO post-harvest and distribution shares (the centre channel keeps
  ``centre_loss_factor`` of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from geo.matrix import od_matrix
from geo.network import NetworkError
from geo.route import resolve_place
from geo.snap import nearest_nodes
from optimization.problem import NetworkProblem, Options
from optimization.results import NetworkResult
from optimization.run import optimize
from optimization.solve import SolverOptions
from planner.balance import demand_kt_per_capita, regional_population, regional_production
from planner.candidates import candidate_sites
from planner.data.loader import Dataset
from planner.network import scenario_network
from planner.parameters import ParameterSet
from planner.scenario import Scenario, ScenarioError

SIZES = ("small", "medium", "large")


def _road_nodes(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    keep = [n for n, d in G.nodes(data=True) if d.get("mode", "road") == "road"]
    return G.subgraph(keep)


def annual_fixed_cost(capital: float, params: ParameterSet) -> float:
    """Annualised capital (capital recovery factor at the discount rate over the lifetime) plus fixed opex."""
    r = params["discount_rate_pct"] / 100.0
    n = params["centre_lifetime_years"]
    crf = 1.0 / n if r == 0 else r * (1 + r) ** n / ((1 + r) ** n - 1)
    return capital * (crf + params["centre_fixed_opex_pct"] / 100.0)


def combine_shares(*shares: np.ndarray | float) -> np.ndarray:
    """Share lost over successive stages: 1 − Π(1 − share)."""
    keep = np.ones_like(np.asarray(shares[0], dtype=float))
    for s in shares:
        keep = keep * (1 - np.asarray(s, dtype=float))
    return 1 - keep


@dataclass
class PlannedProblem:
    """A problem together with what the report needs to name things: the graph, candidates, node of each id."""

    problem: NetworkProblem
    graph: nx.MultiDiGraph
    candidates: pd.DataFrame
    nodes: dict[str, str]
    params: ParameterSet


def build_problem(scenario: Scenario, dataset: Dataset) -> PlannedProblem:
    """Assemble the optimization problem of a scenario (see the module docstring for every modelling choice)."""
    params = scenario.parameter_set(dataset)
    region_ids = scenario.region_ids(dataset)
    G = scenario_network(scenario, dataset)
    road = _road_nodes(G)
    commodities = list(scenario.commodities)
    regions = dataset.regions.set_index("region_id").loc[region_ids].copy()
    regions["population"] = regional_population(dataset).reindex(regions.index)

    prod = regional_production(dataset, region_ids, commodities)
    if prod.empty:
        raise ScenarioError("scope: no regional production data for the scenario's regions and commodities")
    sup_regions = sorted(set(prod["area_id"]))
    sup_nodes, _ = nearest_nodes(road, regions.loc[sup_regions, "lat"], regions.loc[sup_regions, "lon"])
    supply_node = dict(zip([f"farm:{r}" for r in sup_regions], sup_nodes, strict=True))
    value = {c: params[f"value_rub_per_t_{c}"] for c in commodities}
    storage = {c: params.loss_pct(c, "postharvest_handling_storage") / 100 for c in commodities}
    supplies = pd.DataFrame({"supply_id": "farm:" + prod["area_id"], "commodity": prod["commodity"],
                             "quantity_t": prod["quantity_kt"].to_numpy(float) * 1000.0})
    supplies["storage_loss"] = supplies["commodity"].map(storage)
    supplies["value_per_t"] = supplies["commodity"].map(value)

    cities = dataset.cities[dataset.cities["region_id"].isin(region_ids)]
    if cities.empty:
        raise ScenarioError("scope: the scenario's regions have no cities to carry demand")
    c_nodes = pd.Series(index=cities.index, dtype=object)
    for country, group in cities.groupby("country_id"):
        own = road.subgraph([n for n, d in road.nodes(data=True) if d.get("country") == country])
        nodes, _ = nearest_nodes(own if len(own) else road, group["lat"], group["lon"])
        c_nodes.loc[group.index] = nodes
    cities = cities.assign(node=c_nodes)  # each city to the nearest road node of its own country
    share = cities.groupby(["region_id", "node"])["population"].sum()
    share = share / share.groupby(level=0).transform("sum")
    per_capita_t = {c: v * 1000.0 for c, v in demand_kt_per_capita(dataset, params).items()}
    growth = 1 + params["demand_growth_pct_per_year"] / 100.0
    rows = []
    for (rid, node), s in share.items():
        pop = regions.at[rid, "population"]
        if pd.isna(pop):
            continue
        for c in commodities:
            rows.append((f"market:{node}", c, float(pop) * s * per_capita_t[c] * growth))
    demands = pd.DataFrame(rows, columns=["demand_id", "commodity", "quantity_t"])
    demands = demands.groupby(["demand_id", "commodity"], as_index=False, sort=False)["quantity_t"].sum()
    demands["penalty_per_t"] = demands["commodity"].map(value) * params["unmet_penalty_factor"]
    demands["is_exit"] = False
    demands["price_per_t"] = np.nan
    market_node = {d: d.removeprefix("market:") for d in demands["demand_id"]}

    exit_rows, exit_node = [], {}
    for e in scenario.exits:
        try:
            node = resolve_place(G, e.town, "road")
        except NetworkError as exc:
            raise ScenarioError(f"exits: {exc}") from None
        pct = params["exit_price_pct_of_value"] if e.price_pct_of_value is None else e.price_pct_of_value
        eid = f"exit:{e.kind}:{G.nodes[node]['name_en']}"
        exit_node[eid] = node
        for c in commodities:
            exit_rows.append((eid, c, 0.0, np.nan, True, value[c] * pct / 100.0))
    demands = pd.concat([demands, pd.DataFrame(exit_rows, columns=demands.columns)], ignore_index=True)

    cands = candidate_sites(scenario, dataset, G)
    if cands.empty:
        raise ScenarioError("candidates: no candidate site in scope; relax min_spacing_km or give a file")
    fd_of = dataset.regions.set_index("region_id")["federal_district"]
    groups = [f"{r}|{fd_of.get(r)}" if isinstance(fd_of.get(r), str) else r for r in cands["region_id"]]
    sites = pd.DataFrame({"site_id": cands["candidate_id"], "existing": cands["existing"].astype(bool),
                          "group": groups})
    site_node = dict(zip(cands["candidate_id"], cands["node"], strict=True))
    mod_rows = []
    for sid in sites["site_id"]:
        for size in SIZES:
            capital = params[f"module_{size}_capital_mrub"] * 1e6
            mod_rows.append((sid, size, params[f"module_{size}_capacity_kt"] * 1000.0,
                             annual_fixed_cost(capital, params), capital))
    modules = pd.DataFrame(mod_rows, columns=["site_id", "module_id", "capacity_t", "fixed_cost", "capital_cost"])

    origins = sorted(set(supply_node.values()) | set(site_node.values()))
    targets = sorted(set(site_node.values()) | set(market_node.values()) | set(exit_node.values()))
    km = od_matrix(G, origins, targets, metric="distance").values
    freight = od_matrix(G, origins, targets, metric="freight", params=params).values
    hours = od_matrix(G, origins, targets, metric="time").values
    net = scenario.network
    transit = {c: params[f"transit_loss_pct_per_day_{c}"] / 100.0 for c in commodities}
    post = {c: params.loss_pct(c, "postharvest_handling_storage") / 100 for c in commodities}
    dist = {c: params.loss_pct(c, "distribution") / 100 for c in commodities}
    factor = params["centre_loss_factor"]

    def arcs(src: dict[str, str], dst: dict[str, str], limit: float, k_min: int, always: bool = False):
        out = []
        for sid, sn in src.items():
            d = km.loc[sn, [dst[t] for t in dst]].to_numpy()
            ok = np.isfinite(d) & (d <= limit)
            if k_min and np.isfinite(d).any():
                ok |= np.isfinite(d) & (d <= np.sort(d[np.isfinite(d)])[min(k_min, np.isfinite(d).sum()) - 1])
            if always:
                ok |= np.isfinite(d)
            for t, take in zip(dst, ok, strict=True):
                if take:
                    out.append((sid, t, float(freight.at[sn, dst[t]]), float(hours.at[sn, dst[t]])))
        return out

    def frame(rows, a, b, commodity_rows, storage: dict, distribution: dict, extra_cost: float):
        """Arcs × commodities with cost and loss; the loss split by stage (transit, storage, distribution)."""
        rec = []
        for x, y, f, h in rows:
            for c in commodity_rows(x, y):
                t = transit[c] * h / 24
                rec.append((x, y, c, f + extra_cost, float(combine_shares(t, storage[c], distribution[c])), t,
                            storage[c], distribution[c]))
        return pd.DataFrame(rec, columns=[a, b, "commodity", "cost_per_t", "loss", "loss_transit", "loss_storage",
                                          "loss_distribution"])

    have = set(zip(supplies["supply_id"], supplies["commodity"], strict=True))
    sup_k = lambda s, _t: [c for c in commodities if (s, c) in have]  # noqa: E731
    all_k = lambda _s, _t: commodities  # noqa: E731
    none = dict.fromkeys(commodities, 0.0)
    post_centre = {c: post[c] * factor for c in commodities}
    dist_centre = {c: dist[c] * factor for c in commodities}
    inbound = frame(arcs(supply_node, site_node, net.service_km, net.k_nearest), "supply_id", "site_id", sup_k,
                    post_centre, none, params["centre_handling_rub_per_t"])
    to_markets = arcs(site_node, {d: n for d, n in market_node.items()}, net.service_km, net.k_nearest)
    to_exits = arcs(site_node, exit_node, np.inf, 0, always=True)
    outbound = frame(to_markets + to_exits, "site_id", "demand_id", all_k, none, dist_centre, 0.0)
    direct_rows = arcs(supply_node, market_node, net.direct_km, 0)
    if net.traditional_to_exits:
        direct_rows += arcs(supply_node, exit_node, np.inf, 0, always=True)
    direct = frame(direct_rows, "supply_id", "demand_id", sup_k, post, dist, params["traditional_handling_rub_per_t"])

    obj = scenario.objective
    options = Options(p=obj.p, budget=None if obj.budget_mrub is None else obj.budget_mrub * 1e6,
                      force_existing=obj.force_existing, min_per_group=dict(obj.min_per_region),
                      max_per_group=dict(obj.max_per_region),
                      min_share_through_centres=obj.min_share_through_centres, objective=obj.type,
                      strong_linking=scenario.solver.linking)
    known = set(dataset.regions["region_id"]) | set(dataset.regions["federal_district"].dropna())
    for rid in list(obj.min_per_region) + list(obj.max_per_region):
        if rid not in known:
            raise ScenarioError(f"objective: unknown region or federal district {rid!r} in "
                                "min_per_region/max_per_region")
    pb = NetworkProblem(commodities, supplies.reset_index(drop=True), sites, modules, demands, inbound, outbound,
                        direct, options, name=scenario.name, value_per_t=value)
    nodes = {**supply_node, **site_node, **market_node, **exit_node}
    return PlannedProblem(pb, G, cands, nodes, params)


def run_scenario(scenario: Scenario, dataset: Dataset, on_log=None, on_progress=None) -> tuple[PlannedProblem,
                                                                                               NetworkResult]:
    """Build and solve a scenario; returns the planned problem and the tidy results."""
    planned = build_problem(scenario, dataset)
    s = scenario.solver
    result = optimize(planned.problem, SolverOptions(time_limit=s.time_limit_s, rel_gap=s.gap, threads=s.threads,
                                                     log=on_log, on_progress=on_progress, start=s.start))
    return planned, result
