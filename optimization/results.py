"""Tidy result tables from a solved model: sites, flows, cost components, service, and a diagnosis of shortfalls."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from optimization.model import objective_coefficients, row_index, row_numbers, supply_quantities
from optimization.problem import NetworkProblem
from optimization.solve import SolveResult

TOL = 1e-6


@dataclass
class NetworkResult:
    """Everything a run reports: status, objective, bound, gap, and the tables (tonnes a year, cost units a year)."""

    status: str
    message: str
    objective: float | None
    bound: float | None
    gap: float | None
    build_seconds: float
    solve_seconds: float
    sites: pd.DataFrame = field(default_factory=pd.DataFrame)
    flows: pd.DataFrame = field(default_factory=pd.DataFrame)
    costs: pd.DataFrame = field(default_factory=pd.DataFrame)
    service: pd.DataFrame = field(default_factory=pd.DataFrame)
    unsold: pd.DataFrame = field(default_factory=pd.DataFrame)
    diagnosis: list[dict] = field(default_factory=list)
    trade: pd.DataFrame = field(default_factory=pd.DataFrame)
    storage: pd.DataFrame = field(default_factory=pd.DataFrame)
    season_revenue: dict[str, float] = field(default_factory=dict)
    lost_value: float = 0.0
    start: dict = field(default_factory=dict)

    @property
    def open_sites(self) -> list[str]:
        """Ids of the opened sites."""
        return [] if self.sites.empty else list(self.sites.loc[self.sites["open"], "site_id"])


def _vals(var) -> np.ndarray:
    """Values of an indexed variable in index order (0 where the solver gave none)."""
    return np.array([v.value or 0.0 for v in var.values()], dtype=float) if len(var) else np.zeros(0)


def extract(model: pyo.ConcreteModel, pb: NetworkProblem, solved: SolveResult, build_seconds: float) -> NetworkResult:
    """Read the solution (if any) into tables; with no solution only status, message and bound are filled."""
    res = NetworkResult(solved.status, solved.message, solved.objective, solved.bound, solved.gap, build_seconds,
                        solved.solve_seconds)
    if solved.objective is None:
        if solved.status == "infeasible":
            res.message += "".join(f"; {why}" for why in explain_infeasible(pb))
        return res
    y = _vals(model.y)
    x1, x2, x0 = _vals(model.x1), _vals(model.x2), _vals(model.x0)
    w = _vals(model.w)
    mods = pb.modules.reset_index(drop=True).assign(y=np.round(y))
    throughput = pd.Series(x1, index=pb.inbound["site_id"].to_numpy()).groupby(level=0).sum()
    chosen = mods[mods["y"] > 0.5].set_index("site_id")
    sites = pb.sites.copy()
    sites["open"] = sites["site_id"].isin(chosen.index)
    sites["module_id"] = sites["site_id"].map(chosen["module_id"])
    sites["capacity_t"] = sites["site_id"].map(chosen["capacity_t"]).fillna(0.0)
    sites["throughput_t"] = sites["site_id"].map(throughput).fillna(0.0)
    sites["utilisation"] = np.where(sites["capacity_t"] > 0, sites["throughput_t"] / sites["capacity_t"].where(
        sites["capacity_t"] > 0, 1), 0.0)
    sites["fixed_cost"] = sites["site_id"].map(chosen["fixed_cost"]).fillna(0.0)
    if "store_type" in chosen.columns:
        sites["store_type"] = sites["site_id"].map(chosen["store_type"])
    res.sites = sites

    parts = []
    for kind, table, x, src, dst in (("inbound", pb.inbound, x1, "supply_id", "site_id"),
                                     ("outbound", pb.outbound, x2, "site_id", "demand_id"),
                                     ("direct", pb.direct, x0, "supply_id", "demand_id")):
        if len(table) == 0:
            continue
        f = pd.DataFrame({"kind": kind, "from_id": table[src].to_numpy(), "to_id": table[dst].to_numpy(),
                          "commodity": table["commodity"].to_numpy(), "tonnes": x,
                          "cost_per_t": table["cost_per_t"].to_numpy(float),
                          "lost_t": x * table["loss"].to_numpy(float)})
        parts.append(f[f["tonnes"] > TOL])
    res.flows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    coef = objective_coefficients(pb)["parts"]
    xs = {"x1": x1, "x2": x2, "x0": x0}

    def dot(part: str) -> float:
        return float(sum(np.dot(coef[part][n], xs[n]) for n in xs))

    v = _vals(model.v)
    res.lost_value = dot("loss_value") + float(np.dot(coef["loss_value"]["w"], w))
    u = {d: pyo.value(model.u[d], exception=False) or 0.0 for d in model.U}
    penalty = pb.demands["penalty_per_t"].to_numpy(float)
    tiers = pb.tiers if pb.tiers is not None else pd.DataFrame(columns=["row_kind", "row_id", "commodity",
                                                                         "width_t", "price_per_t"])
    money = v * tiers["price_per_t"].to_numpy(float) if len(tiers) else np.zeros(0)
    kind = tiers["row_kind"].to_numpy() if len(tiers) else np.zeros(0, dtype=object)
    bought, season = kind == "supply", kind == "season"
    comp = {"fixed (capital + operating)": float(np.dot(pb.modules["fixed_cost"].to_numpy(float), y)),
            "transport and handling": dot("transport"),
            "imports (purchases)": float(money[bought].sum()),
            "unmet demand penalty": float(sum(penalty[d] * val for d, val in u.items())),
            "export revenue (negative cost)": -dot("exit_revenue") - float(money[kind == "demand"].sum())}
    if season.any():
        comp["seasonal margin (negative cost)"] = -float(money[season].sum())
        res.season_revenue = {k: float(m_) for k, m_ in
                              pd.Series(money[season], index=tiers["commodity"].to_numpy()[season])
                              .groupby(level=0).sum().items()}
    res.costs = pd.DataFrame({"component": list(comp), "value": list(comp.values())})
    if len(model.H):
        res.storage = pd.DataFrame([(j_, k_, float(model.h[j_, k_].value or 0.0)) for j_, k_ in model.H],
                                   columns=["site", "commodity", "held_t"])
        res.storage["site_id"] = [pb.sites["site_id"].iat[j_] for j_ in res.storage["site"]]
        res.storage = res.storage.drop(columns="site")
    tiers = tiers[tiers["row_kind"] != "season"] if len(tiers) else tiers
    v = v[~season] if len(season) else v
    money = money[~season] if len(season) else money
    if len(tiers):
        res.trade = (tiers.assign(tonnes=v, value=money)
                     .groupby(["row_kind", "row_id", "commodity"], as_index=False, sort=False)
                     .agg(tonnes=("tonnes", "sum"), value=("value", "sum"), capacity_t=("width_t", "sum")))
        res.trade["direction"] = res.trade["row_kind"].map({"supply": "import", "demand": "export"})

    dem = pb.demands.reset_index(drop=True)
    arrive = np.zeros(len(dem))
    via = np.zeros(len(dem))
    drow = row_index(dem, "demand_id")
    for table, x, is_centre in ((pb.outbound, x2, True), (pb.direct, x0, False)):
        if not len(table):
            continue
        rows = row_numbers(drow, table, "demand_id")
        got = x * (1 - table["loss"].to_numpy(float))
        np.add.at(arrive, rows, got)
        if is_centre:
            np.add.at(via, rows, got)
    unmet = np.where(dem["is_exit"].fillna(False), 0.0, np.maximum(dem["quantity_t"].to_numpy(float) - arrive, 0))
    res.service = dem[["demand_id", "commodity", "quantity_t", "is_exit"]].assign(
        delivered_t=arrive, via_centres_t=via, unmet_t=unmet)
    res.unsold = pb.supplies[["supply_id", "commodity", "quantity_t"]].assign(unsold_t=w)
    res.diagnosis = diagnose(pb, res)
    return res


def explain_infeasible(pb: NetworkProblem) -> list[str]:
    """Why the site-count rules may contradict each other, region by region: the coverage rule against ``p``
    (a lower bound on the centres it needs: covered regions that no open existing centre reaches and whose sites
    within reach are pairwise disjoint each need a centre of their own) and the distinct-regions rule against
    ``p`` and the per-group maxima. Empty when neither rule is set."""
    opt = pb.options
    out: list[str] = []
    forced = set(pb.sites.loc[pb.sites["existing"].fillna(False).astype(bool), "site_id"]) if opt.force_existing \
        else set()
    if opt.coverage:
        open_need = {a: set(ids) for a, ids in opt.coverage.items() if not set(ids) & forced}
        packed: list[str] = []
        used: set[str] = set()
        for a in sorted(open_need, key=lambda a: (len(open_need[a]), a)):
            if not open_need[a] & used:
                packed.append(a)
                used |= open_need[a]
        need = len(forced) + len(packed)
        text = (f"coverage rule: {len(opt.coverage)} regions each need an open centre within reach; "
                f"{len(open_need)} of them are reached by no forced existing centre")
        if opt.p is not None and need > opt.p:
            text += (f", and {len(packed)} of those share no site within reach ({', '.join(packed[:15])}"
                     f"{' …' if len(packed) > 15 else ''}): at least {need} centres with the {len(forced)} "
                     f"existing ones, but p is {opt.p}")
        out.append(text)
    if opt.min_regions:
        text = f"distinct regions: centres in at least {opt.min_regions} regions"
        capped = [g for g, n in opt.max_per_group.items() if n == 0]
        if capped:
            text += f"; regions or districts capped at 0 centres: {capped[:10]}"
        out.append(text)
    return out


UNMET_CAUSES = {
    "no_route": "no arc reaches it (no road or rail path, or every path crosses a closed border)",
    "no_supply": "no production of this commodity in scope and no outside supplier of it",
    "centres_closed": "only centres can reach it and none of them is open",
    "centres_full": "the centres that reach it are at capacity",
    "supply_exhausted": "every source that reaches it is used up: production shipped and outside suppliers at "
                        "their limits",
    "costlier_than_penalty": "supplying it costs more than the unmet-demand penalty",
}
"""Codes for why demand went unmet, with the message printed beside each."""


def diagnose(pb: NetworkProblem, res: NetworkResult) -> list[dict]:
    """Why demand went unmet, per market and group: a cause code from :data:`UNMET_CAUSES` with its message."""
    notes: list[dict] = []
    short = res.service[res.service["unmet_t"] > TOL]
    if short.empty:
        return notes
    open_sites = set(res.open_sites)
    util = res.sites.set_index("site_id")["utilisation"]
    cap = pd.Series(supply_quantities(pb), index=pd.MultiIndex.from_frame(pb.supplies[["supply_id", "commodity"]]))
    shipped = _shipped_by_supply(res)
    for r in short.itertuples():
        direct = pb.direct[(pb.direct["demand_id"] == r.demand_id) & (pb.direct["commodity"] == r.commodity)]
        outb = pb.outbound[(pb.outbound["demand_id"] == r.demand_id) & (pb.outbound["commodity"] == r.commodity)]
        supply = cap.xs(r.commodity, level=1).sum() if r.commodity in cap.index.get_level_values(1) else 0.0
        sources = set(direct["supply_id"])
        if not outb.empty:
            via = pb.inbound[pb.inbound["site_id"].isin(outb["site_id"]) & (pb.inbound["commodity"] == r.commodity)]
            sources |= set(via["supply_id"])
        spare = sum(max(float(cap.get((s_, r.commodity), 0.0)) - shipped.get((s_, r.commodity), 0.0), 0.0)
                    for s_ in sources)
        if direct.empty and outb.empty:
            code = "no_route"
        elif supply <= TOL:
            code = "no_supply"
        elif not (set(outb["site_id"]) & open_sites) and direct.empty:
            code = "centres_closed"
        elif all(util.get(s_, 0) >= 1 - 1e-6 for s_ in set(outb["site_id"]) & open_sites) and direct.empty:
            code = "centres_full"
        elif spare <= TOL * max(1.0, r.quantity_t):
            code = "supply_exhausted"
        else:
            code = "costlier_than_penalty"
        notes.append({"demand_id": r.demand_id, "commodity": r.commodity, "unmet_t": float(r.unmet_t),
                      "demand_t": float(r.quantity_t), "cause": code,
                      "message": f"{r.demand_id} / {r.commodity}: {r.unmet_t:,.0f} t unmet of {r.quantity_t:,.0f} t"
                                 f" — {UNMET_CAUSES[code]}"})
    return notes


def _shipped_by_supply(res: NetworkResult) -> dict[tuple[str, str], float]:
    """Tonnes shipped out of each (supply row, commodity), on inbound and direct arcs."""
    f = res.flows
    if f.empty:
        return {}
    out = f[f["kind"] != "outbound"].groupby(["from_id", "commodity"])["tonnes"].sum()
    return {k: float(v) for k, v in out.items()}
