"""One complete run of a scenario: siting, then losses, prices and the investor's view, then the summary.

``planner run``, ``planner sweep`` and (later) the API call :func:`execute_scenario`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from optimization.results import NetworkResult
from planner.data.loader import Dataset
from planner.economics import LossReport, PriceReport, estimate_loss_reduction, estimate_price_impact, investor_view
from planner.economics.losses import route_with_sites
from planner.economics.welfare import net_social_benefit
from planner.pipeline import PlannedProblem, run_scenario
from planner.scenario import Scenario
from planner.summary import balance_records, provenance, summarize


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
    started = datetime.now().astimezone()
    planned, result = run_scenario(scenario, dataset, on_log=on_log, on_progress=on_progress)
    summary = summarize(scenario, planned, result)
    losses = prices = investor = None
    if economics and result.objective is not None:
        losses = estimate_loss_reduction(scenario, dataset, result, "traditional", planned=planned)
        prices = estimate_price_impact(scenario, dataset, result, "traditional", planned=planned)
        investor = investor_view(planned, result)
        ref = [c for c in planned.candidates.loc[planned.candidates["existing"].astype(bool), "candidate_id"]]
        prices_now = (estimate_price_impact(scenario, dataset, result, "existing", planned=planned)
                      if ref else prices)
        base_run = route_with_sites(planned, ref, scenario) if ref else None
        social = net_social_benefit(planned, result, prices_now, investor[1],
                                    base_run if base_run is not None and base_run.objective is not None else None)
        summary["net_social_benefit_mrub"] = social["net_social_benefit_mrub"]
        summary["social"] = social
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
        summary["investor"] = {"centres": investor[0].to_dict("records"), "totals": investor[1]}
    summary["runtime_seconds"] = round(time.perf_counter() - start, 2)
    summary["balance"] = balance_records(scenario, dataset, planned.params)
    summary["provenance"] = provenance(scenario, dataset, planned.params, started)
    return RunOutput(planned, result, summary, losses, prices, investor)
