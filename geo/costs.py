"""Generalised cost per tonne on the network's edges.

For a commodity group *c* on an edge *e* of mode *m*::

    cost_e,c = length_km_e × tariff_m                      (RUB per tonne-km × km)
             + hours_e × value_c × transit_loss_c / 100 / 24 (value of produce lost while moving)
             + fee_e                                        (transshipment cost, border fee; RUB per tonne)

in RUB per tonne. ``tariff_m`` is ``road_tariff_rub_per_tkm`` or ``rail_tariff_rub_per_tkm``; transfer edges
have no length and carry the transshipment cost and hours; ``value_c`` is ``value_rub_per_t_<c>`` and
``transit_loss_c`` is ``transit_loss_pct_per_day_<c>`` (zero for grain). All come from the caller's parameters
(:class:`geo.params.Params`; the planner passes its parameter registry's values).
"""

from __future__ import annotations

import numpy as np

from geo.params import Params

MODE_CODES = {"road": 0, "rail": 1, "transfer": 2}


def tariffs(params: Params) -> np.ndarray:
    """RUB per tonne-km indexed by mode code (road, rail, transfer)."""
    return np.array([params["road_tariff_rub_per_tkm"], params["rail_tariff_rub_per_tkm"], 0.0])


def time_cost_rub_per_t_hour(params: Params, commodity: str) -> float:
    """Value of produce lost per tonne per hour in transit, RUB per tonne-hour.

    A commodity group without ``value_rub_per_t_<c>`` or ``transit_loss_pct_per_day_<c>`` in ``params`` raises
    KeyError naming the group and the missing parameter.
    """
    values = []
    for name in (f"value_rub_per_t_{commodity}", f"transit_loss_pct_per_day_{commodity}"):
        try:
            values.append(params[name])
        except KeyError:
            raise KeyError(f"unknown commodity group {commodity!r}: no parameter {name!r}") from None
    value, transit_loss = values
    return value * transit_loss / 100.0 / 24.0


def edge_costs(length_km: np.ndarray, hours: np.ndarray, mode_code: np.ndarray, fee: np.ndarray,
               params: Params, commodity: str) -> np.ndarray:
    """Generalised cost per tonne of every edge (RUB per tonne), vectorised over edge arrays."""
    return length_km * tariffs(params)[mode_code] + hours * time_cost_rub_per_t_hour(params, commodity) + fee
