"""Loss model: tonnes lost by commodity group, region and supply-chain stage, with a network against a baseline.

Stages (each a share of what enters it, from the parameter registry's loss table and transit parameters):

- ``farm_storage`` — produce left unsold in farm storage loses the FAO post-harvest handling-and-storage share;
- ``transport`` — ``transit_loss_pct_per_day_<group>`` × hours on the road or rail / 24;
- ``wholesale_storage`` — FAO post-harvest handling-and-storage share, on the traditional farm → market channel
  in full, through a centre × ``centre_loss_factor`` (cold storage, sorting, quicker sale);
- ``retail_distribution`` — FAO distribution share, in full on the traditional channel, × ``centre_loss_factor``
  after a centre.

On an arc the stages compound in that order: of ``x`` tonnes shipped, ``x·t`` are lost in transport, then
``x(1−t)·s`` in storage, then ``x(1−t)(1−s)·d`` in distribution. Given a set of centres, flows are routed by the
network model with those sites fixed open (an LP apart from the size choice), not by a new siting optimization.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from optimization.problem import NetworkProblem, Options
from optimization.results import NetworkResult
from optimization.run import optimize
from optimization.solve import SolverOptions
from planner import deadline
from planner.data.loader import Dataset
from planner.pipeline import PlannedProblem, build_problem
from planner.scenario import Scenario, ScenarioError
from planner.summary import trade_by_crossing, trade_summary

STAGES = ("farm_storage", "transport", "wholesale_storage", "retail_distribution")


OpenSites = Iterable[str] | Mapping[str, str | None]
"""Sites to open: ids (each site's size left free), or a mapping of id to the module it opens with (``None``: free)."""


def _as_modules(open_sites: OpenSites) -> dict[str, str | None]:
    return dict(open_sites) if isinstance(open_sites, Mapping) else dict.fromkeys(open_sites)


def with_sites(pb: NetworkProblem, open_sites: OpenSites) -> NetworkProblem:
    """The same problem with exactly ``open_sites`` open (others removed with their arcs). Given as ids, a site's
    size stays free; given as a mapping to module ids, each site keeps only that module (a solved plan's sizes, or
    an existing centre at its documented capacity, module ``existing``)."""
    chosen = _as_modules(open_sites)
    unknown = sorted(set(chosen) - set(pb.sites["site_id"]))
    if unknown:
        raise ScenarioError(f"centres: unknown site id(s) {unknown}; known: {sorted(pb.sites['site_id'])[:20]} ...")
    mods = pb.modules[pb.modules["site_id"].isin(chosen)]
    fixed = [(sid, m) for sid, m in chosen.items() if m is not None]
    if fixed:
        pairs = set(zip(mods["site_id"], mods["module_id"], strict=True))
        missing = [f"{sid}:{m}" for sid, m in fixed if (sid, m) not in pairs]
        if missing:
            raise ScenarioError(f"centres: no such module at the site: {missing}")
        free = {sid for sid, m in chosen.items() if m is None}
        keep = [sid in free or chosen[sid] == m for sid, m in zip(mods["site_id"], mods["module_id"], strict=True)]
        mods = mods[keep]
    sites = pb.sites[pb.sites["site_id"].isin(chosen)].assign(existing=True).reset_index(drop=True)
    return replace(pb, sites=sites, modules=mods.reset_index(drop=True),
                   inbound=pb.inbound[pb.inbound["site_id"].isin(chosen)].reset_index(drop=True),
                   outbound=pb.outbound[pb.outbound["site_id"].isin(chosen)].reset_index(drop=True),
                   options=Options(force_existing=True))


def route_with_sites(planned: PlannedProblem, open_sites: OpenSites, scenario: Scenario) -> NetworkResult:
    """Flows routed with exactly ``open_sites`` open (:func:`with_sites`), at the scenario's time limit (never past
    the run's deadline, :mod:`planner.deadline`) and gap.

    Solved once per set of sites for a planned problem: the loss estimate, the price model's centre shares and the
    net social benefit route the same site sets, so the result is kept on ``planned.routed``."""
    chosen = _as_modules(open_sites)
    key = frozenset(chosen.items())
    if key not in planned.routed:
        planned.routed[key] = optimize(with_sites(planned.problem, chosen), SolverOptions(
            time_limit=deadline.time_left(scenario.solver.time_limit_s), rel_gap=scenario.solver.gap))
    return planned.routed[key]


def existing_network(planned: PlannedProblem) -> dict[str, str | None]:
    """Today's network: every existing centre at its documented capacity (its module ``existing``, no expansion;
    size free only where a site has no such module)."""
    sites, mods = planned.problem.sites, planned.problem.modules
    has = set(mods.loc[mods["module_id"] == "existing", "site_id"])
    return {sid: ("existing" if sid in has else None) for sid in sites.loc[sites["existing"], "site_id"]}


def resolve_centres(planned: PlannedProblem, centres: Iterable[str] | NetworkResult | None,
                    baseline: str) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """The open sites of the network and of the baseline, each as site id → module (``None``: size free).

    The network: a solved result's open sites with the modules it chose; ids (sizes free, an existing centre at its
    documented capacity); or None (today's network). The baseline: ``traditional`` (none) or ``existing`` (today's
    network, :func:`existing_network` — never expanded for free). Unknown ids are named."""
    if baseline not in ("traditional", "existing"):
        raise ScenarioError(f"baseline: expected 'traditional' or 'existing', got {baseline!r}")
    today = existing_network(planned)
    if isinstance(centres, NetworkResult):
        opened = centres.sites[centres.sites["open"]] if not centres.sites.empty else centres.sites
        open_sites = dict(zip(opened.get("site_id", []), opened.get("module_id", []), strict=True))
        for sid in centres.open_sites:
            open_sites.setdefault(sid, None)
    elif centres is None:
        open_sites = dict(today)
    else:
        open_sites = {sid: today.get(sid) for sid in centres}
    unknown = sorted(set(open_sites) - set(planned.problem.sites["site_id"]))
    if unknown:
        raise ScenarioError(f"centres: unknown site id(s) {unknown}; known: "
                            f"{sorted(planned.problem.sites['site_id'])[:20]} ...")
    return open_sites, ({} if baseline == "traditional" else today)


def stage_losses(planned: PlannedProblem, result: NetworkResult, region_of: dict[str, str]) -> pd.DataFrame:
    """Tonnes lost per commodity, region and stage in a solved network (region: where the loss happens)."""
    pb = planned.problem
    rows = []
    if not result.flows.empty:
        tables = {"inbound": (pb.inbound, "supply_id", "site_id"), "outbound": (pb.outbound, "site_id", "demand_id"),
                  "direct": (pb.direct, "supply_id", "demand_id")}
        for kind, (table, src, dst) in tables.items():
            f = result.flows[result.flows["kind"] == kind]
            if f.empty:
                continue
            t = table.set_index([src, dst, "commodity"])[["loss_transit", "loss_storage", "loss_distribution"]]
            shares = t.loc[list(zip(f["from_id"], f["to_id"], f["commodity"], strict=True))].to_numpy()
            x = f["tonnes"].to_numpy()
            tr, st, di = shares[:, 0], shares[:, 1], shares[:, 2]
            lost = {"transport": x * tr, "wholesale_storage": x * (1 - tr) * st,
                    "retail_distribution": x * (1 - tr) * (1 - st) * di}
            region = f["from_id"].map(region_of).fillna("other").to_numpy()
            for stage, v in lost.items():
                rows.append(pd.DataFrame({"commodity": f["commodity"].to_numpy(), "region_id": region,
                                          "stage": stage, "tonnes": v}))
    u = result.unsold
    if not u.empty:
        storage = pb.supplies.set_index(["supply_id", "commodity"])["storage_loss"]
        share = storage.loc[list(zip(u["supply_id"], u["commodity"], strict=True))].to_numpy()
        rows.append(pd.DataFrame({"commodity": u["commodity"].to_numpy(),
                                  "region_id": u["supply_id"].map(region_of).fillna("other").to_numpy(),
                                  "stage": "farm_storage", "tonnes": u["unsold_t"].to_numpy() * share}))
    if not rows:
        return pd.DataFrame(columns=["commodity", "region_id", "stage", "tonnes"])
    out = pd.concat(rows, ignore_index=True)
    return out.groupby(["commodity", "region_id", "stage"], as_index=False)["tonnes"].sum()


@dataclass
class LossReport:
    """Losses of a network against a baseline: per commodity/region/stage tables and a per-commodity summary."""

    baseline: str
    centres: list[str]
    network: pd.DataFrame
    reference: pd.DataFrame
    summary: pd.DataFrame
    network_status: str
    baseline_status: str
    trade_network: dict = field(default_factory=dict)
    trade_baseline: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready form (tonnes a year, RUB a year). ``imports_t``, ``exports_t``, ``unmet_t`` (by group),
        ``imports_by_exit_t``, ``exports_by_exit_t`` (by outside market and group), ``imports_by_crossing_t``,
        ``exports_by_crossing_t`` (by border crossing or port and group) and ``unmet_causes`` are those of
        the network's routing, as in a run's ``summary.json``; ``trade_baseline`` holds the baseline's."""
        out = {"baseline": self.baseline, "centres": self.centres, "network_status": self.network_status,
               "baseline_status": self.baseline_status, "summary": self.summary.to_dict("records"),
               "by_stage": self.compare("stage").to_dict("records"),
               "by_region": self.compare("region_id").to_dict("records")}
        out.update(self.trade_network)
        out["trade_baseline"] = self.trade_baseline
        return out

    def compare(self, by: str) -> pd.DataFrame:
        """Baseline and network tonnes lost, grouped by commodity and ``by`` (stage or region_id)."""
        a = self.reference.groupby(["commodity", by])["tonnes"].sum().rename("baseline_t")
        b = self.network.groupby(["commodity", by])["tonnes"].sum().rename("network_t")
        out = pd.concat([a, b], axis=1).fillna(0.0).reset_index()
        out["saved_t"] = out["baseline_t"] - out["network_t"]
        return out


def _region_map(planned: PlannedProblem, dataset: Dataset) -> dict[str, str]:
    region = {s: s.removeprefix("farm:") for s in planned.problem.supplies["supply_id"]}
    region.update(dict(zip(planned.candidates["candidate_id"], planned.candidates["region_id"], strict=True)))
    return region


def estimate_loss_reduction(scenario: Scenario, dataset: Dataset, centres: Iterable[str] | NetworkResult | None = None,
                            baseline: str = "traditional", solver: SolverOptions | None = None,
                            planned: PlannedProblem | None = None) -> LossReport:
    """Tonnes lost with a network of centres against a baseline (``traditional``: no centres; ``existing``: only
    the existing centres). ``centres`` is a list of candidate ids, a solved :class:`NetworkResult`, or None (the
    scenario's existing centres). ``planned`` is the run's problem when the caller has it (not rebuilt)."""
    planned = planned or build_problem(scenario, dataset)
    pb = planned.problem
    open_ids, ref_ids = resolve_centres(planned, centres, baseline)
    if solver is None:
        net, ref = route_with_sites(planned, open_ids, scenario), route_with_sites(planned, ref_ids, scenario)
    else:
        net, ref = optimize(with_sites(pb, open_ids), solver), optimize(with_sites(pb, ref_ids), solver)
    for label, r in (("network", net), ("baseline", ref)):
        if r.objective is None:
            raise ScenarioError(f"{label} routing found no solution: {r.message}")
    region = _region_map(planned, dataset)
    a = stage_losses(planned, ref, region)
    b = stage_losses(planned, net, region)
    value = pb.value_per_t
    summ = pd.concat([a.groupby("commodity")["tonnes"].sum().rename("baseline_t"),
                      b.groupby("commodity")["tonnes"].sum().rename("network_t")], axis=1).fillna(0.0)
    summ["saved_t"] = summ["baseline_t"] - summ["network_t"]
    summ["reduction_pct"] = np.where(summ["baseline_t"] > 0, 100 * summ["saved_t"] / summ["baseline_t"], 0.0)
    summ["saved_value_rub"] = summ["saved_t"] * summ.index.map(value).to_numpy(float)
    summ = summ.reset_index().rename(columns={"index": "commodity"})
    scope = scenario.region_ids(dataset)
    return LossReport(baseline, list(open_ids), b, a, summ, net.status, ref.status,
                      trade_summary(planned, net) | trade_by_crossing(planned, net.flows, dataset, scope),
                      trade_summary(planned, ref) | trade_by_crossing(planned, ref.flows, dataset, scope))
