"""Imported once by the estimates' fork server (:mod:`api.estimates`): the libraries and the embedded dataset,
so that each estimate process forked from it starts without loading them again."""

from planner.data.loader import load_dataset
from planner.economics import estimate_loss_reduction, estimate_price_impact  # noqa: F401
from planner.pipeline import build_problem  # noqa: F401

load_dataset()
