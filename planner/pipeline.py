"""The pipeline: scenario → data → geo → optimization problem → results.

:func:`build_problem` turns a scenario into the model's data (:class:`optimization.problem.NetworkProblem`):

- **supply** — each region in scope produces its Rosstat quantity of each commodity group (tonnes a year) at
  the network node of its own region nearest its centroid; what stays unsold loses the FAO post-harvest storage
  share (tonnes reported; no cost: produce no outlet pays for is worth nothing at the margin);
- **demand** — each region's population × per-capita consumption (``demand_basis``: Rosstat's actual
  consumption or the Ministry of Health norm), spread over its cities in proportion to their population, each
  city snapped to a road node of its own region; grain demand adds the region's livestock feed
  (:func:`planner.balance.feed_demand_kt`) and every group its production use (seed, processing, other feed:
  :func:`planner.balance.production_use_kt`) at its farm node;
- **outside markets** (:mod:`planner.trade`) — the rest of Russia, partner countries and ports, each buying and
  selling along its own curve, calibrated on recorded trade, with the duties of the agreement in force: sales are
  exit rows with demand steps, purchases outside-supplier rows with supply steps, so a market short of local
  supply imports at import parity instead of going "unmet";
- **sites** — the scenario's candidates (generated along the corridors or from its file), each with three size
  modules whose capital is annualised over ``centre_lifetime_years`` at ``discount_rate_pct`` plus
  ``centre_fixed_opex_pct`` a year;
- **arcs** — every channel has the same reach: a farm, a site and a market each keep arcs to their
  ``network.k_nearest`` cheapest partners of each kind (farm → market, farm → site, site → market; a pair is kept
  when either end lists the other), and every farm, site and market reaches every outside market. Arc cost =
  freight (tariff × km + border and transshipment fees) + handling; arc loss = transit loss (per-day share ×
  hours) combined with the FAO post-harvest and distribution shares (the centre channel keeps
  ``centre_loss_factor`` of them).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

from geo.geodesy import geodesic_km
from geo.matrix import trip_matrix
from geo.network import NetworkError
from geo.route import resolve_place
from geo.snap import nearest_nodes
from optimization.problem import TIER_COLUMNS, NetworkProblem, Options
from optimization.results import NetworkResult
from optimization.run import optimize
from optimization.solve import SolverOptions
from planner import deadline
from planner.balance import (
    demand_kt_per_capita,
    feed_demand_kt,
    production_use_kt,
    regional_population,
    regional_production,
)
from planner.candidates import candidate_sites
from planner.data.loader import Dataset
from planner.network import corridor_graph, scenario_network
from planner.parameters import CENTRE_GROUPS, STORE_TYPES, ParameterSet
from planner.scenario import Scenario, ScenarioError
from planner.storage import seasonal_storage
from planner.trade import DeliveredCosts, OutsideMarket, covers_country, market_curves, resolve_markets

SIZES = ("small", "medium", "large")


def _road_nodes(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    keep = [n for n, d in G.nodes(data=True) if d.get("mode", "road") == "road"]
    return G.subgraph(keep)


def annuity_factor(rate_pct: float, years: float) -> float:
    """Present value of 1 RUB a year for ``years`` years at ``rate_pct`` % a year (years where the rate is 0)."""
    r = rate_pct / 100.0
    return years if r == 0 else (1 - (1 + r) ** -years) / r


def capital_recovery_factor(params: ParameterSet) -> float:
    """Share of capital repaid each year at ``discount_rate_pct`` over ``centre_lifetime_years`` (1/yr)."""
    r = params["discount_rate_pct"] / 100.0
    n = params["centre_lifetime_years"]
    return 1.0 / n if r == 0 else r * (1 + r) ** n / ((1 + r) ** n - 1)


def annual_fixed_cost(capital: float, params: ParameterSet) -> float:
    """Annualised capital (capital recovery factor at the discount rate over the lifetime) plus fixed opex."""
    return capital * (capital_recovery_factor(params) + params["centre_fixed_opex_pct"] / 100.0)


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
    outside: list[OutsideMarket] = field(default_factory=list)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    capacity_status: dict[str, str] = field(default_factory=dict)
    storage: pd.DataFrame = field(default_factory=pd.DataFrame)
    routed: dict = field(default_factory=dict, repr=False)
    """Flows routed with a fixed set of sites, by frozenset of (site id, module or None) pairs
    (planner.economics.losses.route_with_sites)."""


def existing_capacity(existing: pd.DataFrame, params: ParameterSet) -> pd.DataFrame:
    """Per existing centre: storage capacity (t), annual throughput capacity (t a year = storage ×
    ``centre_storage_turns_per_year``), and whether the storage figure is documented (else
    ``existing_centre_capacity_kt``, flagged)."""
    storage_kt = pd.to_numeric(existing["capacity_kt"], errors="coerce")
    documented = storage_kt.notna()
    storage_t = storage_kt.fillna(params["existing_centre_capacity_kt"]).to_numpy(float) * 1000.0
    return pd.DataFrame({"centre_id": existing["centre_id"].to_numpy(), "storage_t": storage_t,
                         "capacity_t": storage_t * params["centre_storage_turns_per_year"],
                         "documented": documented.to_numpy(bool)}).set_index("centre_id")


def type_modules(params: ParameterSet) -> list[tuple[str, str, float, float, float]]:
    """The modules a new site may open: (module id, store type, throughput t a year, capital RUB, storage t).

    Every store type comes in the three sizes, each with the storage of the distribution-centre module of that
    size (``module_<size>_capacity_kt`` / ``centre_storage_turns_per_year``); its throughput is that storage ×
    the type's turns a year, its capital the type's capital per tonne × storage (the distribution centre's is
    ``module_<size>_capital_mrub``). Module ids: ``small`` … for the distribution centre (as before store types
    existed), ``store_small`` …, ``ca_fruit_small`` … for the others."""
    out = []
    for key, t in STORE_TYPES.items():
        for size in SIZES:
            storage = params[f"module_{size}_capacity_kt"] * 1000.0 / params["centre_storage_turns_per_year"]
            if t.capital_per_t is None:
                capital = params[f"module_{size}_capital_mrub"] * 1e6
            else:
                capital = params[t.capital_per_t] * 1e3 * storage
            out.append((size if key == "dc" else f"{key}_{size}", key, storage * params[t.turns], capital, storage))
    return out


def drop_dominated(modules: pd.DataFrame) -> pd.DataFrame:
    """Drop each module another module of the same site dominates: at least its throughput and storage, at most
    its fixed cost and capital, and every group it takes. A cost-minimising plan never opens a dominated module
    (and the loss objective's budget counts capital), so dropping it changes no optimum and saves binaries; at
    the registry's defaults the controlled-atmosphere fruit store is dominated by the distribution centre
    (costlier per tonne, fewer groups, the same loss rates and months)."""
    keep = np.ones(len(modules), dtype=bool)
    cols = modules[["capacity_t", "storage_t", "fixed_cost", "capital_cost"]].to_numpy(float)
    groups = [None if not g else set(g.split("|")) for g in modules["groups"]]
    for _, idx in modules.groupby("site_id", sort=False).indices.items():
        for a in idx:
            for b in idx:
                if a == b or not keep[b]:
                    continue
                covers = groups[b] is None or (groups[a] is not None and groups[a] <= groups[b])
                if covers and (cols[b, :2] >= cols[a, :2]).all() and (cols[b, 2:] <= cols[a, 2:]).all() and (
                        (cols[b] != cols[a]).any() or groups[a] != groups[b]):
                    keep[a] = False
                    break
    return modules[keep].reset_index(drop=True)


def site_modules(sites: pd.DataFrame, existing: pd.DataFrame, params: ParameterSet,
                 commodities: list[str] | None = None,
                 drop: bool = True) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """Modules of every site: store type, size, the groups it may take (``|``-separated; empty: all), capacity
    (t a year), annual fixed cost (RUB), capital (RUB) and storage (t held at once).

    A new site offers every store type (:data:`planner.parameters.STORE_TYPES`) in every size
    (:func:`type_modules`), each at its capital annualised over the lifetime at the discount rate plus fixed opex;
    dominated modules are dropped (:func:`drop_dominated`). An existing centre's capital is sunk: its own module
    ``existing`` (a distribution centre, taking the distribution centre's groups) carries its documented throughput
    (:func:`existing_capacity`) at the fixed opex of what building it would cost today and no capital;
    ``existing+small`` … add a distribution-centre module's capacity at that module's (incremental) capital.
    Returns the modules, notes on existing centres whose capacity is not documented, and each existing centre's
    capacity status (``documented``, ``approximate``, ``not published: scenario value``). With ``commodities``
    (the scenario's groups), a type that takes none of them is not offered and a type's groups are those in
    scope. ``drop=False`` keeps dominated modules (to re-price a solved plan under other parameters)."""
    cap = existing_capacity(existing, params)
    dc_groups = "|".join(STORE_TYPES["dc"].groups or ())
    unit_capital = params["module_small_capital_mrub"] * 1e6 / (params["module_small_capacity_kt"] * 1000.0)
    opex_share = params["centre_fixed_opex_pct"] / 100.0
    offered = type_modules(params)
    rows, notes, status = [], [], {}
    for sid, is_existing in zip(sites["site_id"], sites["existing"], strict=True):
        if is_existing and sid in cap.index:
            c = float(cap.at[sid, "capacity_t"])
            base = (c, opex_share * c * unit_capital, float(cap.at[sid, "storage_t"]))
            rows.append((sid, "existing", "dc", dc_groups, c, base[1], 0.0, base[2]))
            status[sid] = "documented" if cap.at[sid, "documented"] else "not published: scenario value"
            if cap.at[sid, "documented"] and str(existing.set_index("centre_id").at[sid, "capacity_approximate"]
                                                  ).lower() in ("true", "1"):
                status[sid] = "approximate"
            if not cap.at[sid, "documented"]:
                notes.append(f"existing centre {sid}: capacity not published; {cap.at[sid, 'storage_t'] / 1e3:g} kt "
                             "of storage taken (existing_centre_capacity_kt), flagged")
            for module_id, key, added, capital, storage in offered:
                if key == "dc":  # an existing centre grows as what it is
                    rows.append((sid, f"existing+{module_id}", key, dc_groups, base[0] + added,
                                 base[1] + annual_fixed_cost(capital, params), capital, base[2] + storage))
            continue
        for module_id, key, added, capital, storage in offered:
            groups = STORE_TYPES[key].groups
            if groups is not None and commodities is not None:
                groups = tuple(k for k in groups if k in commodities)
                if not groups:
                    continue
            rows.append((sid, module_id, key, "|".join(groups) if groups else "", added,
                         annual_fixed_cost(capital, params), capital, storage))
    modules = pd.DataFrame(rows, columns=["site_id", "module_id", "store_type", "groups", "capacity_t", "fixed_cost",
                                          "capital_cost", "storage_t"])
    return (drop_dominated(modules) if drop else modules), notes, status


def _snap_to_own(road: nx.MultiDiGraph, frame: pd.DataFrame, region_col: str, country_col: str) -> tuple[list, list]:
    """Nearest road node of each row's own region (else of its own country, else any), and the rows that had to
    fall back (region ids)."""
    by_region: dict = {}
    by_country: dict = {}
    for n, d in road.nodes(data=True):
        by_region.setdefault(d.get("region_id"), []).append(n)
        by_country.setdefault(d.get("country"), []).append(n)
    nodes = pd.Series(index=frame.index, dtype=object)
    fallback = []
    for (rid, cid), g in frame.groupby([region_col, country_col], sort=False):
        pool = by_region.get(rid) or by_country.get(cid) or list(road.nodes)
        if not by_region.get(rid):
            fallback.append(rid)
        got, _ = nearest_nodes(road.subgraph(pool), g["lat"].to_numpy(float), g["lon"].to_numpy(float))
        nodes.loc[g.index] = got
    return nodes.tolist(), fallback


def trip_metrics(G: nx.MultiDiGraph, origins: list, targets: list, params: ParameterSet) -> tuple[pd.DataFrame, ...]:
    """Freight (RUB per tonne), km and hours from every origin to every target node, all three along the same
    path: the cheapest in freight (:func:`geo.matrix.trip_matrix`; hours door to door, drivers' rest included)."""
    trip = trip_matrix(G, origins, targets, params)
    return trip.freight, trip.km, trip.hours


BORDER_POLICY_PARAMETERS = ("border_fee_rub_per_t_eaeu", "border_fee_rub_per_t_other")
"""Parameters that are trade policy at the borders: a scenario that sets them changes trade, not the world's
reference prices (see :func:`reference_trips`)."""


def reference_trips(scenario: Scenario, dataset: Dataset, params: ParameterSet, G: nx.MultiDiGraph,
                    origins: list, targets: list, freight: pd.DataFrame,
                    hours: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Freight (RUB per tonne) and hours from ``origins`` to ``targets`` under the reference border policy: every
    crossing in its recorded state and the registry's border fees. Outside markets' reference prices are
    calibrated on these (:func:`planner.trade.market_curves`), so a scenario that closes a crossing or raises a
    fee moves trade against fixed reference prices instead of re-calibrating the world to its own policy (which
    partly cancelled a tariff shock). Where the scenario keeps the reference policy, the scenario's own
    ``freight`` and ``hours`` are returned."""
    if not scenario.borders and not any(k in scenario.parameters for k in BORDER_POLICY_PARAMETERS):
        return freight, hours
    ref = ParameterSet(dataset.loss_rates, fao_region=params.fao_region,
                       overrides={k: v for k, v in scenario.parameters.items() if k not in BORDER_POLICY_PARAMETERS},
                       loss_overrides=scenario.losses)
    trip = trip_matrix(corridor_graph(dataset, ref, None), origins, targets, ref)
    return trip.freight, trip.hours


def nearest_pairs(cost: np.ndarray, k: int) -> np.ndarray:
    """Boolean matrix of the pairs kept: each row's ``k`` cheapest finite columns and each column's ``k`` cheapest
    finite rows (ties broken by position)."""
    keep = np.zeros(cost.shape, dtype=bool)
    if cost.size == 0:
        return keep
    c = np.where(np.isfinite(cost), cost, np.inf)
    kr = min(k, c.shape[1])
    kc = min(k, c.shape[0])
    rows = np.argsort(c, axis=1, kind="stable")[:, :kr]
    np.put_along_axis(keep, rows, True, axis=1)
    cols = np.argsort(c, axis=0, kind="stable")[:kc, :]
    np.put_along_axis(keep, cols, True, axis=0)
    return keep & np.isfinite(c)


def _farm_region_of(regions: pd.DataFrame, farm_regions: list[str]) -> dict[str, str]:
    """For every scope region, the farm region that stands for it in the outside markets' calibration: itself
    where it produces, else the nearest producing region by geodesic distance (Moscow city → Moscow region)."""
    farms = regions.loc[farm_regions, ["lat", "lon"]].to_numpy(float)
    out = {}
    for rid, lat, lon in zip(regions.index, regions["lat"], regions["lon"], strict=True):
        if rid in farm_regions or not len(farms):
            out[rid] = rid
            continue
        out[rid] = farm_regions[int(np.argmin(geodesic_km(lat, lon, farms[:, 0], farms[:, 1])))]
    return out


def build_problem(scenario: Scenario, dataset: Dataset) -> PlannedProblem:
    """Assemble the optimization problem of a scenario (see the module docstring for every modelling choice)."""
    params = scenario.parameter_set(dataset)
    region_ids = scenario.region_ids(dataset)
    G = scenario_network(scenario, dataset)
    road = _road_nodes(G)
    commodities = list(scenario.commodities)
    regions = dataset.regions.set_index("region_id").loc[region_ids].copy()
    regions["population"] = regional_population(dataset).reindex(regions.index)
    scope_country = regions["country_id"].mode().iat[0]

    prod = regional_production(dataset, region_ids, commodities)
    if prod.empty:
        raise ScenarioError("scope: no regional production data for the scenario's regions and commodities")
    sup_regions = sorted(set(prod["area_id"]))
    farm_frame = regions.loc[sup_regions, ["lat", "lon", "country_id"]].reset_index()
    farm_nodes, farm_fallback = _snap_to_own(road, farm_frame, "region_id", "country_id")
    supply_node = dict(zip([f"farm:{r}" for r in sup_regions], farm_nodes, strict=True))
    value = {c: params[f"value_rub_per_t_{c}"] for c in commodities}
    storage = {c: params.loss_pct(c, "postharvest_handling_storage") / 100 for c in commodities}
    supplies = pd.DataFrame({"supply_id": "farm:" + prod["area_id"], "commodity": prod["commodity"],
                             "quantity_t": prod["quantity_kt"].to_numpy(float) * 1000.0})
    supplies["storage_loss"] = supplies["commodity"].map(storage)
    supplies["value_per_t"] = supplies["commodity"].map(value)

    cities = dataset.cities[dataset.cities["region_id"].isin(region_ids)]
    if cities.empty:
        raise ScenarioError("scope: the scenario's regions have no cities to carry demand")
    c_nodes, city_fallback = _snap_to_own(road, cities, "region_id", "country_id")
    cities = cities.assign(node=c_nodes)  # each city to the nearest road node of its own region
    share = cities.groupby(["region_id", "node"])["population"].sum()
    share = share / share.groupby(level=0).transform("sum")
    per_capita = demand_kt_per_capita(dataset, params, region_ids, scenario.demand_basis)
    per_capita_t = (per_capita["kt_per_capita"] * 1000.0).to_dict()  # (region, group) -> t per person
    growth = 1 + params["demand_growth_pct_per_year"] / 100.0
    rows = []
    region_demand: dict[tuple[str, str], float] = defaultdict(float)  # (region, group) -> t a year
    for (rid, node), s in share.items():
        pop = regions.at[rid, "population"]
        if pd.isna(pop):
            continue
        for c in commodities:
            rows.append((f"market:{node}", c, float(pop) * s * per_capita_t[(rid, c)] * growth))
            region_demand[(rid, c)] += rows[-1][2]
    # livestock feed (grain) and production uses (seed, processing, other feed): at the region's farm node (the
    # farms that plant and feed), else its largest city's
    farm_uses = production_use_kt(dataset, region_ids)["use_kt"]
    farm_uses = farm_uses[farm_uses.index.get_level_values("commodity").isin(commodities)]
    if "grain" in commodities:
        feed = feed_demand_kt(dataset, region_ids)["feed_kt"]
        feed.index = pd.MultiIndex.from_arrays([feed.index, ["grain"] * len(feed)], names=["region_id", "commodity"])
        farm_uses = pd.concat([farm_uses, feed])
    city_node = share.groupby(level=0).idxmax()
    for (rid, c), kt in farm_uses.items():
        node = supply_node.get(f"farm:{rid}") or (city_node[rid][1] if rid in city_node.index else None)
        if kt > 0 and node is not None:
            rows.append((f"market:{node}", c, float(kt) * 1000.0 * growth))
            region_demand[(rid, c)] += rows[-1][2]
    demands = pd.DataFrame(rows, columns=["demand_id", "commodity", "quantity_t"])
    demands = demands.groupby(["demand_id", "commodity"], as_index=False, sort=False)["quantity_t"].sum()
    demands["penalty_per_t"] = demands["commodity"].map(value) * params["unmet_penalty_factor"]
    demands["is_exit"] = False
    demands["price_per_t"] = np.nan
    market_node = {d: d.removeprefix("market:") for d in demands["demand_id"]}

    def resolve(town: str, i: int) -> str:
        try:
            return resolve_place(G, town, "road")
        except NetworkError as exc:
            raise ScenarioError(f"exits[{i}]: {exc}") from None

    whole_country = covers_country(region_ids, dataset, scope_country)
    outside = resolve_markets(list(scenario.exits), dataset, scope_country, resolve, whole_country)
    exit_node = {f"exit:{o.market_id}": o.node for o in outside}
    import_node = {f"import:{o.market_id}": o.node for o in outside}

    cands = candidate_sites(scenario, dataset, G)
    if cands.empty:
        raise ScenarioError("candidates: no candidate site in scope; relax min_spacing_km or give a file")
    fd_of = dataset.regions.set_index("region_id")["federal_district"]
    groups = [f"{r}|{fd_of.get(r)}" if isinstance(fd_of.get(r), str) else r for r in cands["region_id"]]
    sites = pd.DataFrame({"site_id": cands["candidate_id"], "existing": cands["existing"].astype(bool),
                          "group": groups, "region": cands["region_id"].astype(str)})
    site_node = dict(zip(cands["candidate_id"], cands["node"], strict=True))
    modules, capacity_notes, capacity_status = site_modules(sites, dataset.existing_centres, params,
                                                               commodities)

    origins = sorted(set(supply_node.values()) | set(site_node.values()) | set(import_node.values()))
    targets = sorted(set(site_node.values()) | set(market_node.values()) | set(exit_node.values()))
    freight, km, hours = trip_metrics(G, origins, targets, params)
    # each group's arcs take freight and hours along the route cheapest for that group (freight + the time cost of
    # its transit loss at its value, geo.costs); the freight-only matrices above pick the k nearest partners
    o_pos, t_pos = {n: i for i, n in enumerate(origins)}, {n: j for j, n in enumerate(targets)}
    group_trips = {c: trip_matrix(G, origins, targets, params, commodity=c) for c in commodities}
    group_fh = {c: (t.freight.to_numpy(float), t.hours.to_numpy(float)) for c, t in group_trips.items()}
    trad_h = params["traditional_handling_rub_per_t"]

    # outside markets: reference trade, prices and steps (planner.trade)
    prod_t = supplies.groupby("commodity")["quantity_t"].sum()
    dem_t = demands.groupby("commodity")["quantity_t"].sum()
    balance = {k: float(prod_t.get(k, 0.0) - dem_t.get(k, 0.0)) for k in commodities}
    ref_freight, ref_hours = reference_trips(scenario, dataset, params, G, sorted(set(supply_node.values())),
                                             sorted({o.node for o in outside}), freight, hours)
    farm_ids = list(supply_node)
    pos = {f: i for i, f in enumerate(farm_ids)}
    trader = _farm_region_of(regions, sup_regions)
    produced = supplies.set_index(["supply_id", "commodity"])["quantity_t"]
    farm_nodes = [supply_node[f] for f in farm_ids]
    trips = {o.market_id: (ref_freight.loc[farm_nodes, o.node].to_numpy(float),
                           ref_hours.loc[farm_nodes, o.node].to_numpy(float)) for o in outside}
    delivered = {}
    for k in commodities:
        prod_k = np.array([float(produced.get((f, k), 0.0)) for f in farm_ids])
        dem_k = np.zeros(len(farm_ids))
        for (rid, c), q in region_demand.items():
            if c == k:
                dem_k[pos[f"farm:{trader[rid]}"]] += q
        for o in outside:
            f, h = trips[o.market_id]
            lost = combine_shares(params[f"transit_loss_pct_per_day_{k}"] / 100.0 * h / 24, storage[k],
                                  params.loss_pct(k, "distribution") / 100)
            delivered[(o.market_id, k)] = DeliveredCosts(f * (1 + params.part_load_share(k)) + trad_h
                                                         + value[k] * lost, prod_k, dem_k)
    margin = {k: trad_h + value[k] * float(combine_shares(storage[k], params.loss_pct(k, "distribution") / 100))
              for k in commodities}
    curves = market_curves(outside, commodities, params, balance, dem_t.to_dict(), delivered, margin)
    tier_rows, exit_rows, import_rows = [], [], []
    for r in curves.itertuples():
        tx, tm = 1 + r.tariff_export_pct / 100.0, 1 + r.tariff_import_pct / 100.0
        for w, p in r.sales:
            tier_rows.append(("demand", f"exit:{r.market_id}", r.commodity, w, p / tx))
        for w, p in r.purchases:
            tier_rows.append(("supply", f"import:{r.market_id}", r.commodity, w, p * tm))
        if r.sales:
            exit_rows.append((f"exit:{r.market_id}", r.commodity, 0.0, np.nan, True, np.nan))
        if r.purchases:
            import_rows.append((f"import:{r.market_id}", r.commodity, float(sum(w for w, _ in r.purchases)), 0.0,
                                value[r.commodity]))
    storage, season_steps, storage_info = seasonal_storage(commodities, params, dem_t.to_dict())
    tiers = pd.concat([pd.DataFrame(tier_rows, columns=TIER_COLUMNS), season_steps], ignore_index=True)
    demands = pd.concat([demands, pd.DataFrame(exit_rows, columns=demands.columns)], ignore_index=True)
    supplies = pd.concat([supplies, pd.DataFrame(import_rows, columns=supplies.columns)], ignore_index=True)
    import_node = {i: n for i, n in import_node.items() if i in set(supplies["supply_id"])}
    exit_node = {e: n for e, n in exit_node.items() if e in set(demands["demand_id"])}

    net = scenario.network
    transit = {c: params[f"transit_loss_pct_per_day_{c}"] / 100.0 for c in commodities}
    post = {c: params.loss_pct(c, "postharvest_handling_storage") / 100 for c in commodities}
    dist = {c: params.loss_pct(c, "distribution") / 100 for c in commodities}
    factor = params["centre_loss_factor"]
    part_load = {c: params.part_load_share(c) for c in commodities}

    def arcs(src: dict[str, str], dst: dict[str, str], k: int | None):
        """(source id, target id, freight, hours) of the pairs kept: k-nearest both ways, or every finite pair."""
        if not src or not dst:
            return []
        s_ids, d_ids = list(src), list(dst)
        f = freight.loc[[src[i] for i in s_ids], [dst[j] for j in d_ids]].to_numpy(float)
        h = hours.loc[[src[i] for i in s_ids], [dst[j] for j in d_ids]].to_numpy(float)
        keep = nearest_pairs(f, k) if k is not None else np.isfinite(f)
        ii, jj = np.nonzero(keep)
        return [(s_ids[i], d_ids[j], float(f[i, j]), float(h[i, j])) for i, j in zip(ii, jj, strict=True)]

    def frame(rows, a, b, commodity_rows, storage: dict, distribution: dict, extra_cost: float):
        """Arcs × commodities with cost and loss; the loss split by stage (transit, storage, distribution). A leg
        that leaves a farm pays the part-load markup on its small-lot share (consolidation: a centre's despatch
        and an importer's full loads do not)."""
        rec = []
        for x, y, _f, _h in rows:
            i, j = o_pos[node_of[x]], t_pos[node_of[y]]
            first_leg = x in supply_node
            for c in commodity_rows(x, y):
                f, h = group_fh[c][0][i, j], group_fh[c][1][i, j]  # along the group's own route
                if first_leg:
                    f = f * (1.0 + part_load[c])
                t = transit[c] * h / 24
                rec.append((x, y, c, f + extra_cost, float(combine_shares(t, storage[c], distribution[c])), t,
                            storage[c], distribution[c]))
        return pd.DataFrame(rec, columns=[a, b, "commodity", "cost_per_t", "loss", "loss_transit", "loss_storage",
                                          "loss_distribution"])

    node_of = {**supply_node, **site_node, **market_node, **exit_node, **import_node}
    have = set(zip(supplies["supply_id"], supplies["commodity"], strict=True))
    wants = set(zip(demands["demand_id"], demands["commodity"], strict=True))
    sup_k = lambda s, _t: [c for c in commodities if (s, c) in have]  # noqa: E731
    dem_k = lambda _s, t: [c for c in commodities if (t, c) in wants]  # noqa: E731
    both_k = lambda s, t: [c for c in commodities if (s, c) in have and (t, c) in wants]  # noqa: E731
    none = dict.fromkeys(commodities, 0.0)
    post_centre = {c: post[c] * factor for c in commodities}
    dist_centre = {c: dist[c] * factor for c in commodities}
    k = net.k_nearest
    inbound_rows = arcs(supply_node, site_node, k) + arcs(import_node, site_node, None)
    inbound = frame(inbound_rows, "supply_id", "site_id", sup_k, post_centre, none,
                    params["centre_handling_rub_per_t"])
    outbound_rows = arcs(site_node, market_node, k) + arcs(site_node, exit_node, None)
    outbound = frame(outbound_rows, "site_id", "demand_id", dem_k, none, dist_centre, 0.0)
    direct_rows = arcs(supply_node, market_node, k) + arcs(import_node, market_node, None)
    if net.traditional_to_exits:
        direct_rows += arcs(supply_node, exit_node, None)
    direct = frame(direct_rows, "supply_id", "demand_id", both_k, post, dist, trad_h)
    inbound, outbound = centre_arcs(modules, inbound, outbound)

    obj = scenario.objective
    coverage, coverage_notes = coverage_sets(scenario, dataset, supply_node, site_node,
                                             sites[sites["site_id"].isin(set(modules["site_id"]))], hours)
    options = Options(p=obj.p, budget=None if obj.budget_mrub is None else obj.budget_mrub * 1e6,
                      force_existing=obj.force_existing, min_per_group=dict(obj.min_per_region),
                      max_per_group=dict(obj.max_per_region),
                      min_share_through_centres=obj.min_share_through_centres, objective=obj.type,
                      strong_linking=scenario.solver.linking, min_regions=obj.min_regions, coverage=coverage)
    n_sites = int(sites["site_id"].isin(set(modules["site_id"])).sum())
    if obj.p is not None and obj.p > n_sites:
        raise ScenarioError(f"objective.p: {obj.p} centres asked, but the scope has {n_sites} candidate sites (in "
                            f"{sites['region'].nunique()} regions: the corridor network reaches no more); raise "
                            "candidates.max_per_region, lower min_spacing_km or add candidates (candidates.file)")
    if obj.min_regions is not None and obj.min_regions > sites["region"].nunique():
        raise ScenarioError(f"objective.min_regions: centres in {obj.min_regions} different regions asked, but the "
                            f"candidate sites lie in {sites['region'].nunique()} regions; raise "
                            "candidates.max_per_region or widen the scope")
    known = set(dataset.regions["region_id"]) | set(dataset.regions["federal_district"].dropna())
    for rid in list(obj.min_per_region) + list(obj.max_per_region):
        if rid not in known:
            raise ScenarioError(f"objective: unknown region or federal district {rid!r} in "
                                "min_per_region/max_per_region")
    pb = NetworkProblem(commodities, supplies.reset_index(drop=True), sites, modules, demands, inbound, outbound,
                        direct, options, name=scenario.name, value_per_t=value, tiers=tiers, storage=storage)
    nodes = {**supply_node, **site_node, **market_node, **exit_node, **import_node}
    notes = [f"region {r} has no network node of its own: snapped to the nearest node of its country"
             for r in sorted(set(farm_fallback) | set(city_fallback))] + capacity_notes + coverage_notes
    refused = [k for k in commodities if k not in CENTRE_GROUPS]
    if refused:
        notes.append(f"{', '.join(refused)}: no centre module handles them (no dairy or meat module with a cited "
                     "capital per tonne is modelled; grain passes centres only through an elevator): they travel the "
                     "traditional way / не проходят через ОРЦ")
    if whole_country:
        kept = {o.market_id for o in outside}
        dropped = [e.market for e in scenario.exits if e.market is not None and e.market not in kept]
        notes.append(f"the scope covers every region of {scope_country}: no rest-of-country market"
                     + (f" (exits {dropped} dropped)" if dropped else "") + "; balancing: "
                     + (", ".join(o.market_id for o in outside if o.balancing) or "none"))
    cut_off = (curves.groupby("market_id")["P0_rub_per_t"].apply(lambda p: not np.isfinite(p).any())
               if len(curves) else {})  # `exits: []`: no outside market, no curve
    notes += [f"outside market {m} cannot be reached from the scope's farms (a closed crossing or no path): it "
              "trades nothing" for m, cut in cut_off.items() if cut]
    return PlannedProblem(pb, G, cands, nodes, params, outside, curves, notes, capacity_status, storage_info)


def centre_arcs(modules: pd.DataFrame, inbound: pd.DataFrame,
                outbound: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inbound and outbound arcs of the groups some module of the arc's site takes (a module's ``groups``, empty:
    all): grain reaches a site only where it may build an elevator, milk and meat no site (no module takes them),
    fruit never a potato store. The model would hold such arcs at zero anyway (docs/model.md, store types); dropping
    them keeps it smaller."""
    takes: dict[str, set[str] | None] = {}
    for sid, g in zip(modules["site_id"], modules["groups"], strict=True):
        if not isinstance(g, str) or not g:
            takes[sid] = None
        elif sid not in takes or takes[sid] is not None:
            takes[sid] = (takes.get(sid) or set()) | set(g.split("|"))

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        ok = [sid in takes and (takes[sid] is None or k in takes[sid])
              for sid, k in zip(frame["site_id"], frame["commodity"], strict=True)]
        return frame[np.array(ok, dtype=bool)].reset_index(drop=True) if len(frame) else frame

    return keep(inbound), keep(outbound)


def coverage_sets(scenario: Scenario, dataset: Dataset, supply_node: dict[str, str], site_node: dict[str, str],
                  sites: pd.DataFrame, hours: pd.DataFrame) -> tuple[dict[str, list[str]], list[str]]:
    """The coverage rule's data (``objective.coverage_hours``): covered region id → the sites within H hours of its
    farm node (door-to-door hours along the cheapest route, :func:`trip_metrics`), and notes on covered regions
    without a farm node (no production in scope: not covered). Raises ScenarioError naming every covered region
    with no site within H hours, with the nearest site's hours."""
    H = scenario.objective.coverage_hours
    covered = scenario.covered_regions(dataset)
    if H is None:
        return {}, []
    if not covered:
        raise ScenarioError(f"objective.coverage_min_agri_lq: no region of the scope has an agriculture location "
                            f"quotient ({scenario.scope.agri_lq_basis}) of at least "
                            f"{scenario.objective.coverage_min_agri_lq}")
    names = dataset.regions.set_index("region_id")
    site_ids = list(sites["site_id"])
    cols = [site_node[sid] for sid in site_ids]
    out, notes, bad = {}, [], []
    for r in covered:
        node = supply_node.get(f"farm:{r}")
        if node is None:
            notes.append(f"coverage: region {r} has no production of the scenario's groups: not covered")
            continue
        h = hours.loc[node, cols].to_numpy(float)
        within = [sid for sid, t in zip(site_ids, h, strict=True) if t <= H]
        if not within:
            near = float(np.nanmin(h)) if np.isfinite(h).any() else float("inf")
            bad.append(f"{r} ({names.at[r, 'name_ru']} / {names.at[r, 'name_en']}): nearest site "
                       f"{near:.1f} h" if np.isfinite(near) else f"{r}: no site reachable")
        out[r] = within
    if bad:
        raise ScenarioError(f"objective.coverage_hours: no candidate site within {H:g} h of the farm node of "
                            f"{len(bad)} covered region(s): " + "; ".join(bad)
                            + ". Raise coverage_hours, add candidates (candidates.max_per_region, "
                              "include_towns) or narrow the covered regions (coverage_min_agri_lq)")
    return out, notes


def run_scenario(scenario: Scenario, dataset: Dataset, on_log=None, on_progress=None) -> tuple[PlannedProblem,
                                                                                               NetworkResult]:
    """Build and solve a scenario; returns the planned problem and the tidy results."""
    with deadline.stage("network"):
        planned = build_problem(scenario, dataset)
    s = scenario.solver
    with deadline.stage("solve"):  # the MILP gets its time limit, never past the run's deadline
        limit = deadline.time_left(s.time_limit_s)
        result = optimize(planned.problem, SolverOptions(time_limit=limit, rel_gap=s.gap, threads=s.threads,
                                                     log=on_log, on_progress=on_progress, start=s.start))
    return planned, result
