"""Economics: loss reduction, price impact (spatial price equilibrium) and the investor's view of a network.

The CLI and the API call the same two estimators, of the same shape:
``estimate_loss_reduction(scenario, dataset, centres, baseline)`` and
``estimate_price_impact(scenario, dataset, centres, baseline)`` — ``centres`` a list of candidate ids, a solved
network result, or None (the existing centres); ``baseline`` ``"traditional"`` (no centres) or ``"existing"``.
"""

from planner.economics.investor import investor_view
from planner.economics.losses import LossReport, estimate_loss_reduction
from planner.economics.prices import PriceReport, estimate_price_impact

__all__ = ["LossReport", "PriceReport", "estimate_loss_reduction", "estimate_price_impact", "investor_view"]
