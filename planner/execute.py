"""One complete run of a scenario: siting, then losses, prices and the investor's view, then the summary.

``planner run``, ``planner sweep`` and (later) the API call :func:`execute_scenario`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pandas as pd

from optimization.results import NetworkResult
from planner import deadline
from planner.data.loader import Dataset
from planner.economics import LossReport, PriceReport, estimate_loss_reduction, estimate_price_impact, investor_view
from planner.economics.districts import district_table, interdistrict_flows, scope_districts, surplus_by_region
from planner.economics.losses import existing_network, route_with_sites
from planner.economics.ranges import evaluate_ranges
from planner.economics.share_curve import curve_records, share_curve, write_share_curve
from planner.economics.welfare import net_social_benefit
from planner.pipeline import PlannedProblem, run_scenario
from planner.scenario import Scenario
from planner.summary import balance_records, centres_that_pay, provenance, summarize


@dataclass
class RunOutput:
    """Everything a run produced."""

    planned: PlannedProblem
    result: NetworkResult
    summary: dict
    losses: LossReport | None
    prices: PriceReport | None
    investor: tuple[pd.DataFrame, dict] | None
    share_curve: pd.DataFrame | None = None
    """Losses and prices against the share handled by centres, when the scenario asks (``outputs.share_curve``)."""


@contextmanager
def _stage(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall-clock seconds spent in the block to ``seconds[name]``; the run's deadline is checked as the
    stage starts, and a solve inside it is bounded by what is left (:mod:`planner.deadline`)."""
    t = time.perf_counter()
    try:
        with deadline.stage(name):
            yield
    finally:
        seconds[name] = round(seconds.get(name, 0.0) + time.perf_counter() - t, 2)


def execute_scenario(scenario: Scenario, dataset: Dataset, on_log=None, on_progress=None,
                     economics: bool = True, output: Path | None = None,
                     run_deadline: deadline.Deadline | None = None) -> RunOutput:
    """Run the scenario under one wall-clock deadline for every stage: ``run_deadline``, else the one in force
    (:func:`planner.deadline.active`), else its solver time limit plus ``PLANNER_RUN_ALLOWANCE_S`` from now;
    past it :class:`planner.deadline.DeadlineExceeded` names the stage. See :func:`_execute`."""
    d = run_deadline or deadline.current() or deadline.run_deadline(scenario.solver.time_limit_s)
    with deadline.active(d):
        return _execute(scenario, dataset, on_log, on_progress, economics, output)


def _execute(scenario: Scenario, dataset: Dataset, on_log, on_progress, economics: bool,
             output: Path | None) -> RunOutput:
    """Solve the scenario and, when a solution exists and ``economics``, estimate losses and prices against the
    traditional channel and the investor's view, the inter-district flows (``interdistrict_flows``, against today's
    network, else none: ``interdistrict_baseline``) and producer surplus by region beside its agricultural shares
    (``distribution_by_region``, against today's network); when the scope spans several federal districts, the
    per-district losses, prices and net benefit (``districts``, against the same baseline as the inter-district
    flows); the summary holds every headline figure and the wall-clock seconds of each stage (``stage_seconds``:
    siting — network, model and solve —, losses, prices, investor, net_social_benefit, ranges, districts,
    share_curve). When the
    scenario asks for the share curve (``outputs.share_curve``), it is computed too (``summary["share_curve"]``)
    and, with an ``output`` folder, written there as share_curve.csv and share_curve.png."""
    start = time.perf_counter()
    started = datetime.now().astimezone()
    stages: dict[str, float] = {}
    with _stage(stages, "siting"):
        planned, result = run_scenario(scenario, dataset, on_log=on_log, on_progress=on_progress)
        summary = summarize(scenario, planned, result, dataset)
    losses = prices = investor = None
    if economics and result.objective is not None:
        with _stage(stages, "losses"):
            losses = estimate_loss_reduction(scenario, dataset, result, "traditional", planned=planned)
        with _stage(stages, "prices"):
            prices = estimate_price_impact(scenario, dataset, result, "traditional", planned=planned)
        with _stage(stages, "investor"):
            investor = investor_view(planned, result)
        with _stage(stages, "net_social_benefit"):
            ref = existing_network(planned)
            prices_now = (estimate_price_impact(scenario, dataset, result, "existing", planned=planned)
                          if ref else prices)
            base_run = route_with_sites(planned, ref, scenario) if ref else None
            social = net_social_benefit(planned, result, prices_now, investor[1],
                                        base_run if base_run is not None and base_run.objective is not None else None)
        summary["net_social_benefit_mrub"] = social["net_social_benefit_mrub"]
        summary["social"] = social
        with _stage(stages, "ranges"):
            summary["ranges"] = evaluate_ranges(
                planned, result, prices_now, base_run if base_run is not None and base_run.objective is not None
                else None, dataset.existing_centres,
                reprice=lambda q: estimate_price_impact(scenario, dataset, result,
                                                        "existing" if ref else "traditional",
                                                        planned=replace(planned, params=q)))
        summary["price_change_vs_existing_pct"] = prices_now.summary.set_index("commodity")[
            "consumer_price_change_pct"].to_dict()
        s = losses.summary.set_index("commodity")
        summary["loss_tonnes_baseline"] = s["baseline_t"].to_dict()
        summary["loss_tonnes_network"] = s["network_t"].to_dict()
        summary["loss_reduction_pct"] = s["reduction_pct"].to_dict()
        summary["price_change_pct"] = prices.summary.set_index("commodity")["consumer_price_change_pct"].to_dict()
        summary["farm_price_change_pct"] = prices.summary.set_index("commodity")["farm_price_change_pct"].to_dict()
        summary["losses"] = losses.as_dict()
        summary["prices"] = {k: v for k, v in prices.as_dict().items() if k != "regions"}
        # how far today's network (the existing centres) lies from the reference prices (docs/economics.md)
        summary["prices"]["calibration_existing"] = prices_now.calibration.to_dict("records")
        summary["investor"] = {"centres": investor[0].to_dict("records"), "totals": investor[1]}
        summary["centres_that_pay"] = centres_that_pay(investor[0])
        with _stage(stages, "districts"):
            flow_base = (base_run if base_run is not None and base_run.objective is not None
                         else route_with_sites(planned, {}, scenario))
            summary["interdistrict_baseline"] = "existing" if flow_base is base_run else "traditional"
            summary["interdistrict_flows"] = interdistrict_flows(planned, dataset, result, flow_base).to_dict(
                "records")
            summary["distribution_by_region"] = surplus_by_region(prices_now.regions, dataset).to_dict("records")
            if len(scope_districts(scenario.region_ids(dataset), dataset)) > 1:  # the scope spans districts
                summary["districts"] = district_table(planned, dataset, result, flow_base, prices_now.regions,
                                                      social).to_dict("records")
    curve = None
    if economics and result.objective is not None and scenario.outputs.share_curve:
        with _stage(stages, "share_curve"):
            curve = share_curve(scenario, dataset, scenario.outputs.share_curve, planned=planned,
                                time_limit_s=scenario.outputs.share_curve_time_limit_s)
        summary["share_curve"] = curve_records(curve)
        if output is not None:
            write_share_curve(curve, Path(output), scenario.title_en or scenario.name)
    summary["stage_seconds"] = stages
    summary["runtime_seconds"] = round(time.perf_counter() - start, 2)
    summary["balance"] = balance_records(scenario, dataset, planned.params)
    summary["provenance"] = provenance(scenario, dataset, planned.params, started)
    return RunOutput(planned, result, summary, losses, prices, investor, curve)
