"""One complete run of a scenario: siting, then losses, prices and the investor's view, then the summary.

``planner run``, ``planner sweep`` and (later) the API call :func:`execute_scenario`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from optimization.results import NetworkResult
from planner.data.loader import Dataset
from planner.economics import LossReport, PriceReport, estimate_loss_reduction, estimate_price_impact, investor_view
from planner.pipeline import PlannedProblem, run_scenario
from planner.scenario import Scenario
from planner.summary import summarize


@dataclass
class RunOutput:
    """Everything a run produced."""

    planned: PlannedProblem
    result: NetworkResult
    summary: dict
    losses: LossReport | None
    prices: PriceReport | None
    investor: tuple[pd.DataFrame, dict] | None


def execute_scenario(scenario: Scenario, dataset: Dataset, on_log=None, on_progress=None,
                     economics: bool = True) -> RunOutput:
    """Solve the scenario and, when a solution exists and ``economics``, estimate losses and prices against the
    traditional channel and the investor's view; the summary holds every headline figure."""
    start = time.perf_counter()
    planned, result = run_scenario(scenario, dataset, on_log=on_log, on_progress=on_progress)
    summary = summarize(scenario, planned, result)
    losses = prices = investor = None
    if economics and result.objective is not None:
        losses = estimate_loss_reduction(scenario, dataset, result, "traditional", planned=planned)
        prices = estimate_price_impact(scenario, dataset, result, "traditional", planned=planned)
        investor = investor_view(planned, result)
        s = losses.summary.set_index("commodity")
        summary["loss_tonnes_baseline"] = s["baseline_t"].to_dict()
        summary["loss_tonnes_network"] = s["network_t"].to_dict()
        summary["loss_reduction_pct"] = s["reduction_pct"].to_dict()
        summary["price_change_pct"] = prices.summary.set_index("commodity")["consumer_price_change_pct"].to_dict()
        summary["farm_price_change_pct"] = prices.summary.set_index("commodity")["farm_price_change_pct"].to_dict()
        summary["losses"] = losses.as_dict()
        summary["prices"] = {k: v for k, v in prices.as_dict().items() if k != "regions"}
        summary["investor"] = {"centres": investor[0].to_dict("records"), "totals": investor[1]}
    summary["runtime_seconds"] = round(time.perf_counter() - start, 2)
    return RunOutput(planned, result, summary, losses, prices, investor)
