"""Loss reduction and consumer-price change against the share of produce handled by centres: a curve of plans.

For each target share α (0–1) the siting model is solved anew with ``objective.min_share_through_centres = α``
(tonnes shipped through centres ≥ α × all tonnes shipped, farm and import flows alike; docs/model.md), so each
point is its own plan — its own sites, sizes and routing — not an interpolation between two. The point's losses
and prices are then estimated against the traditional channel (no centres) exactly as a run estimates them, on
the plan's own routing: the loss model counts the tonnes lost on the plan's flows, and the price model lets
``price_pass_through`` of the centres' saving through on the share of each group's tonnes the plan sends through
centres (docs/economics.md). A target the network cannot reach (too little capacity among the candidates, or no
solution within the time limit) is kept as a row with its solver status and no figures; it is never dropped.
A target the model meets only by leaving demand unmet or produce unsold (it ships less, so that the tonnes its
centres can hold make up the share) is not a network that reaches the share: such rows are kept with their
figures and ``reachable = False``, and the chart marks them apart from the curve.

The scenario's existing centres (its pilots) mark the curve: their share is that of the routing with exactly
those centres open and no share imposed (``point = "existing"``).

Output columns (one row per point and commodity group, plus ``commodity = "all"``):
``point`` (curve / existing), ``share_target_pct`` (α, %), ``status`` (solver status; ``infeasible``/``time_limit``
rows carry no figures), ``share_achieved_pct`` (tonnes through centres ÷ all tonnes shipped, %, all groups),
``group_share_pct`` (the same for the group), ``centres_open``, ``new_centres``, ``capital_new_mrub`` (million RUB
of capital of the new modules), ``loss_baseline_t`` / ``loss_network_t`` (tonnes a year lost after harvest, all
stages), ``loss_reduction_pct``, ``transport_storage_loss_reduction_pct`` (the farm-storage, transport and
wholesale-storage stages only: the ministry's «потери при транспортировке и хранении»),
``consumer_price_change_pct`` (demand-weighted), ``farm_price_change_pct`` (supply-weighted), ``unmet_t`` (domestic
demand left unmet, t a year), ``unsold_t`` (produce left on the farm), ``exports_t``, ``imports_t``, ``reachable``,
``solve_s``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from optimization.results import NetworkResult
from optimization.run import optimize
from optimization.solve import SolverOptions
from planner.data.loader import Dataset
from planner.economics.losses import (
    estimate_loss_reduction,
    existing_network,
    resolve_centres,
    route_with_sites,
)
from planner.economics.prices import estimate_price_impact
from planner.pipeline import PlannedProblem, build_problem
from planner.scenario import Scenario, ScenarioError
from planner.summary import trade_summary

TRANSPORT_STORAGE_STAGES = ("farm_storage", "transport", "wholesale_storage")
"""Loss stages that make up "transport and storage losses" (the Kazakh ministry's forecast); retail
distribution is the fourth stage of the loss model."""

COLUMNS = ["point", "share_target_pct", "status", "share_achieved_pct", "commodity", "group_share_pct",
           "centres_open", "new_centres", "capital_new_mrub", "loss_baseline_t", "loss_network_t",
           "loss_reduction_pct", "transport_storage_loss_reduction_pct", "consumer_price_change_pct",
           "farm_price_change_pct", "unmet_t", "unsold_t", "exports_t", "imports_t", "reachable", "solve_s"]

REACH_TOLERANCE = 0.005
"""A point reaches its share when its unmet demand and its unsold produce exceed those of the plan without a share
target by at most this fraction of domestic demand (0.5%)."""

HEADERS = {
    "point": "point / точка",
    "share_target_pct": "target share through centres, % / целевая доля через ОРЦ, %",
    "status": "solver status / статус решения",
    "share_achieved_pct": "share through centres, % / доля через ОРЦ, %",
    "commodity": "commodity group / группа продукции",
    "group_share_pct": "group's share through centres, % / доля группы через ОРЦ, %",
    "centres_open": "centres open / открыто ОРЦ",
    "new_centres": "new centres / новых ОРЦ",
    "capital_new_mrub": "capital of new centres, million RUB / капвложения в новые ОРЦ, млн руб.",
    "loss_baseline_t": "losses without centres, t a year / потери без ОРЦ, т в год",
    "loss_network_t": "losses with the network, t a year / потери с сетью, т в год",
    "loss_reduction_pct": "loss reduction, % / снижение потерь, %",
    "transport_storage_loss_reduction_pct": ("transport and storage loss reduction, % / снижение потерь при "
                                             "транспортировке и хранении, %"),
    "consumer_price_change_pct": "consumer price change, % / изменение потребительских цен, %",
    "farm_price_change_pct": "farm-gate price change, % / изменение цен производителей, %",
    "unmet_t": "domestic demand unmet, t a year / неудовлетворённый спрос, т в год",
    "unsold_t": "produce left unsold, t a year / нереализованная продукция, т в год",
    "exports_t": "exports, t a year / экспорт, т в год",
    "imports_t": "imports, t a year / импорт, т в год",
    "reachable": "share reached without rationing / доля достигнута без дефицита",
    "solve_s": "solve time, s / время решения, с",
}
"""CSV headers with units, English and Russian."""

FORECAST_PRICE_PCT = -13.0
"""Kazakhstan's forecast of the ОРЦ network's effect on food prices, % (the ministry's figure as stated in issue
#15; its primary statement was not found in the stored pages — a reference line, not an input)."""
FORECAST_LOSS_PCT = -20.0
"""Kazakhstan's forecast of the network's effect on transport and storage losses, % (as FORECAST_PRICE_PCT)."""


def _share_of(result: NetworkResult) -> tuple[float, dict[str, float]]:
    """Tonnes through centres ÷ all tonnes shipped (inbound + direct), overall and per group, as fractions — the
    quantity ``min_share_through_centres`` bounds."""
    f = result.flows
    if f is None or f.empty:
        return 0.0, {}
    f = f[f["kind"] != "outbound"]
    total = f.groupby("commodity")["tonnes"].sum()
    via = f[f["kind"] == "inbound"].groupby("commodity")["tonnes"].sum()
    groups = {k: float(via.get(k, 0.0) / total[k]) for k in total.index if total[k] > 0}
    overall = float(via.sum() / total.sum()) if total.sum() > 0 else 0.0
    return overall, groups


def _point_rows(point: str, target: float | None, scenario: Scenario, dataset: Dataset, planned: PlannedProblem,
                result: NetworkResult, solve_s: float) -> list[dict]:
    """The rows of one solved point: losses and prices of the plan against the traditional channel."""
    open_ids = result.open_sites
    own = replace(planned, routed={frozenset(): route_with_sites(planned, [], scenario),
                                   frozenset(resolve_centres(planned, result, "traditional")[0].items()): result})
    losses = estimate_loss_reduction(scenario, dataset, result, "traditional", planned=own)
    prices = estimate_price_impact(scenario, dataset, result, "traditional", planned=own)
    overall, groups = _share_of(result)
    trade = trade_summary(planned, result)
    unsold = (result.unsold.groupby("commodity")["unsold_t"].sum() if result.unsold is not None
              and not result.unsold.empty else pd.Series(dtype=float))
    unsold = unsold[[not str(i).startswith("import:") for i in unsold.index]] if len(unsold) else unsold
    sites = result.sites[result.sites["open"]] if not result.sites.empty else result.sites
    existing = set(planned.problem.sites.loc[planned.problem.sites["existing"], "site_id"])
    mods = planned.problem.modules.set_index(["site_id", "module_id"])["capital_cost"]
    capital = float(sum(mods.get((sid, mid), 0.0) for sid, mid in zip(sites["site_id"], sites["module_id"],
                                                                        strict=True))) / 1e6
    stage = losses.compare("stage")
    ts = stage[stage["stage"].isin(TRANSPORT_STORAGE_STAGES)].groupby("commodity")[["baseline_t", "network_t"]].sum()
    loss = losses.summary.set_index("commodity")
    price = prices.summary.set_index("commodity")
    regions = prices.regions
    common = dict(point=point, share_target_pct=None if target is None else 100.0 * target, status=result.status,
                  share_achieved_pct=100.0 * overall, centres_open=len(open_ids),
                  new_centres=len([s for s in open_ids if s not in existing]), capital_new_mrub=capital,
                  solve_s=round(solve_s, 2))
    rows = []

    def pct(new: float, base: float) -> float:
        return 100.0 * (base - new) / base if base > 0 else float("nan")

    for k in scenario.commodities:
        ts_k = pct(float(ts.at[k, "network_t"]), float(ts.at[k, "baseline_t"])) if k in ts.index else float("nan")
        rows.append({**common, "commodity": k, "group_share_pct": 100.0 * groups.get(k, 0.0),
                     "loss_baseline_t": float(loss.at[k, "baseline_t"]),
                     "loss_network_t": float(loss.at[k, "network_t"]),
                     "loss_reduction_pct": float(loss.at[k, "reduction_pct"]),
                     "transport_storage_loss_reduction_pct": ts_k,
                     "consumer_price_change_pct": float(price.at[k, "consumer_price_change_pct"]),
                     "farm_price_change_pct": float(price.at[k, "farm_price_change_pct"]),
                     "unmet_t": trade["unmet_t"].get(k, 0.0), "unsold_t": float(unsold.get(k, 0.0)),
                     "exports_t": trade["exports_t"].get(k, 0.0), "imports_t": trade["imports_t"].get(k, 0.0)})
    # all groups: tonnes summed; prices weighted by baseline consumption (consumer) and supply (farm-gate) value
    r = regions.assign(value_base=regions["consumer_price_base"] * regions["consumption_base_t"])
    cons = float((r["consumer_price_change_pct"] * r["value_base"]).sum() / r["value_base"].sum())
    farm_w = r["farm_price_base"] * r["consumption_base_t"]
    farm = float((r["farm_price_change_pct"] * farm_w).sum() / farm_w.sum())
    base_all, net_all = float(loss["baseline_t"].sum()), float(loss["network_t"].sum())
    rows.append({**common, "commodity": "all", "group_share_pct": 100.0 * overall, "loss_baseline_t": base_all,
                 "loss_network_t": net_all, "loss_reduction_pct": pct(net_all, base_all),
                 "transport_storage_loss_reduction_pct": pct(float(ts["network_t"].sum()),
                                                             float(ts["baseline_t"].sum())),
                 "consumer_price_change_pct": cons, "farm_price_change_pct": farm,
                 "unmet_t": sum(trade["unmet_t"].values()), "unsold_t": float(unsold.sum()),
                 "exports_t": sum(trade["exports_t"].values()), "imports_t": sum(trade["imports_t"].values())})
    return rows


def share_curve(scenario: Scenario, dataset: Dataset, shares: Sequence[float], planned: PlannedProblem | None = None,
                time_limit_s: float | None = None,
                on_point: Callable[[float, str], None] | None = None) -> pd.DataFrame:
    """Solve one plan per target share in ``shares`` (fractions 0–1) and return the curve (columns: COLUMNS).

    ``planned`` is the scenario's built problem when the caller has it (not rebuilt; its options are not changed).
    ``time_limit_s`` caps each solve (default: the scenario's ``solver.time_limit_s``); a point without a solution
    keeps its status and NaN figures. The existing centres' own point is added when the scenario has any.
    ``on_point(share, status)`` is called after each solve (progress)."""
    bad = [s for s in shares if not (isinstance(s, int | float) and 0.0 <= s <= 1.0)]
    if bad or not shares:
        raise ScenarioError(f"outputs.share_curve: shares must be fractions within 0-1, got {list(shares)}")
    planned = planned or build_problem(scenario, dataset)
    limit = time_limit_s if time_limit_s is not None else scenario.solver.time_limit_s
    solver = SolverOptions(time_limit=limit, rel_gap=scenario.solver.gap, threads=scenario.solver.threads,
                           start=scenario.solver.start)
    rows: list[dict] = []
    for a in sorted(set(float(s) for s in shares)):
        pb = replace(planned.problem, options=replace(planned.problem.options, min_share_through_centres=a))
        t0 = time.perf_counter()
        res = optimize(pb, solver)
        took = time.perf_counter() - t0
        if on_point is not None:
            on_point(a, res.status)
        if res.objective is None:
            rows.append({**dict.fromkeys(COLUMNS, float("nan")), "point": "curve", "share_target_pct": 100.0 * a,
                         "status": res.status, "commodity": "all", "solve_s": round(took, 2)})
            continue
        rows += _point_rows("curve", a, scenario, dataset, planned, res, took)
    existing = existing_network(planned)
    if existing:
        t0 = time.perf_counter()
        res = route_with_sites(planned, existing, scenario)
        if res.objective is not None:
            rows += _point_rows("existing", None, scenario, dataset, planned, res, time.perf_counter() - t0)
    curve = pd.DataFrame(rows, columns=COLUMNS)
    return _mark_reachable(curve, planned, scenario, solver)


def _mark_reachable(curve: pd.DataFrame, planned: PlannedProblem, scenario: Scenario,
                    solver: SolverOptions) -> pd.DataFrame:
    """``reachable``: the point's unmet demand and unsold produce (all groups) exceed those of the plan without a
    share target by at most :data:`REACH_TOLERANCE` of domestic demand; points without a solution are not."""
    pb = planned.problem
    demand = float(pb.demands.loc[~pb.demands["is_exit"].astype(bool), "quantity_t"].sum())
    free = curve[(curve["point"] == "curve") & (curve["share_target_pct"] == 0.0) & (curve["commodity"] == "all")]
    if free.empty or free["unmet_t"].isna().all():
        res = optimize(replace(pb, options=replace(pb.options, min_share_through_centres=None)), solver)
        ref_unmet = sum(trade_summary(planned, res)["unmet_t"].values()) if res.objective is not None else 0.0
        ref_unsold = float(res.unsold["unsold_t"].sum()) if res.objective is not None and not res.unsold.empty else 0.0
    else:
        ref_unmet, ref_unsold = float(free["unmet_t"].iat[0]), float(free["unsold_t"].iat[0])
    alls = curve[curve["commodity"] == "all"].set_index(["point", "share_target_pct"], drop=False)
    ok = ((alls["unmet_t"] - ref_unmet <= REACH_TOLERANCE * demand)
          & (alls["unsold_t"] - ref_unsold <= REACH_TOLERANCE * demand) & alls["unmet_t"].notna())
    key = list(zip(curve["point"], curve["share_target_pct"], strict=True))
    curve["reachable"] = [bool(ok.get(k, False)) for k in key]
    return curve


def write_share_curve_csv(curve: pd.DataFrame, path: Path) -> Path:
    """The curve as CSV, UTF-8 with BOM, headers in English and Russian with units."""
    out = curve.rename(columns=HEADERS)
    out.to_csv(path, index=False, encoding="utf-8-sig", float_format="%.3f")
    return path


def draw_share_curve(curve: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Chart of loss reduction and consumer-price change (all groups, % against the traditional channel) against
    the share handled by centres, with the existing centres' share marked, infeasible targets marked at the top
    and the Kazakh ministry's forecast (−13% food prices, −20% transport and storage losses) as reference lines.
    Only points that reach their share without rationing are joined into the curve."""
    from matplotlib.figure import Figure

    c = curve[(curve["commodity"] == "all") & (curve["point"] == "curve")].sort_values("share_target_pct")
    ok = c[c["reachable"].astype(bool)]
    pilots = curve[(curve["commodity"] == "all") & (curve["point"] == "existing")]
    fig = Figure(figsize=(10, 6))
    ax = fig.add_subplot(1, 1, 1)
    lines = (("transport_storage_loss_reduction_pct", -1, "o-", "tab:blue",
              "transport and storage losses / потери при транспортировке и хранении"),
             ("loss_reduction_pct", -1, "s--", "tab:cyan", "all post-harvest losses / все послеуборочные потери"),
             ("consumer_price_change_pct", 1, "^-", "tab:red", "consumer prices / потребительские цены"))
    for col, sign, style, colour, label in lines:
        ax.plot(ok["share_achieved_pct"], sign * ok[col], style, color=colour, label=label)
        if len(pilots):
            ax.plot(pilots["share_achieved_pct"], sign * pilots[col], "*", color=colour, ms=13, mec="black")
    values = [-ok["transport_storage_loss_reduction_pct"], -ok["loss_reduction_pct"], ok["consumer_price_change_pct"]]
    low = min([FORECAST_LOSS_PCT - 3.0, *(float(v.min()) - 2.0 for v in values if len(v))])
    ax.set_ylim(low, 4.0)
    ax.set_xlim(0, 100)
    ax.axhline(FORECAST_LOSS_PCT, color="tab:blue", ls=":", lw=1.2)
    ax.text(99, FORECAST_LOSS_PCT, "forecast −20% transport and storage losses / прогноз −20% потерь",
            ha="right", va="bottom", fontsize=8, color="tab:blue")
    ax.axhline(FORECAST_PRICE_PCT, color="tab:red", ls=":", lw=1.2)
    ax.text(99, FORECAST_PRICE_PCT, "forecast −13% food prices / прогноз −13% цен на продовольствие",
            ha="right", va="bottom", fontsize=8, color="tab:red")
    ax.axhline(0, color="grey", lw=0.6)
    if len(pilots):
        s = float(pilots["share_achieved_pct"].iat[0])
        ax.axvline(s, color="black", ls="--", lw=1)
        ax.text(s, 3.6, f" existing centres (★) / действующие ОРЦ: {s:.0f}%", va="top", fontsize=8)
    bad = c[~c["reachable"].astype(bool)]
    for t, unmet in zip(bad["share_target_pct"], bad["unmet_t"], strict=True):
        why = "no plan / нет решения" if pd.isna(unmet) else "not reached / недостижимо"
        ax.plot([t], [1.5], "x", color="black")
        ax.text(t, 1.0, f"{t:.0f}%: {why}", rotation=90, va="top", ha="center", fontsize=7)
    ax.set_xlabel("share of shipped produce handled by centres, % / доля отгрузок через ОРЦ, %")
    ax.set_ylabel("change against the traditional channel, %\nизменение к традиционному каналу, %")
    ax.set_title(title or "Losses and prices against the share through centres / Потери и цены от доли через ОРЦ",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_share_curve(curve: pd.DataFrame, folder: Path, title: str = "") -> list[Path]:
    """Write ``share_curve.csv`` and ``share_curve.png`` into ``folder`` (created if missing); returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    head = f"{title}\n" if title else ""
    return [write_share_curve_csv(curve, folder / "share_curve.csv"),
            draw_share_curve(curve, folder / "share_curve.png",
                             f"{head}Losses and prices against the share through centres / Потери и цены от доли "
                             "через ОРЦ")]


def curve_records(curve: pd.DataFrame) -> list[dict]:
    """JSON-ready rows (NaN → None) for summary.json."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in curve.to_dict("records")]
