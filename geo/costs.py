"""Generalised cost per tonne on the network's edges.

For a commodity group *c* on an edge *e* of mode *m*::

    cost_e,c = length_km_e × tariff_m                      (RUB per tonne-km × km)
             + hours_e × value_c × transit_loss_c / 100 / 24 (value of produce lost while moving)
             + fee_e                                        (transshipment cost, border fee; RUB per tonne)

in RUB per tonne. ``tariff_m`` is ``road_tariff_rub_per_tkm`` or ``rail_tariff_rub_per_tkm``; transfer edges
have no length and carry the transshipment cost and hours; ``value_c`` is ``value_rub_per_t_<c>`` and
``transit_loss_c`` is ``transit_loss_pct_per_day_<c>`` (zero for grain). All come from the parameter registry.
"""

from __future__ import annotations

import numpy as np

from planner.parameters import ParameterSet
from planner.settings import COMMODITY_BY_KEY

MODE_CODES = {"road": 0, "rail": 1, "transfer": 2}


def tariffs(params: ParameterSet) -> np.ndarray:
    """RUB per tonne-km indexed by mode code (road, rail, transfer)."""
    return np.array([params["road_tariff_rub_per_tkm"], params["rail_tariff_rub_per_tkm"], 0.0])


def time_cost_rub_per_t_hour(params: ParameterSet, commodity: str) -> float:
    """Value of produce lost per tonne per hour in transit, RUB per tonne-hour."""
    if commodity not in COMMODITY_BY_KEY:
        raise KeyError(f"unknown commodity group {commodity!r}; known: {list(COMMODITY_BY_KEY)}")
    return params[f"value_rub_per_t_{commodity}"] * params[f"transit_loss_pct_per_day_{commodity}"] / 100.0 / 24.0


def edge_costs(length_km: np.ndarray, hours: np.ndarray, mode_code: np.ndarray, fee: np.ndarray,
               params: ParameterSet, commodity: str) -> np.ndarray:
    """Generalised cost per tonne of every edge (RUB per tonne), vectorised over edge arrays."""
    return length_km * tariffs(params)[mode_code] + hours * time_cost_rub_per_t_hour(params, commodity) + fee
