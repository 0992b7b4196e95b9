"""Seasonal storage at the centres: the value of holding produce from the harvest to the spring.

For a stored group *k* (``potatoes``, ``vegetables``, ``fruit_berries``), per tonne held for ``storage_months_<k>``
:math:`\\mu_k` months:

- the harvest-to-spring price rise is a distribution of years, a glut year (``seasonal_spread_low_pct_<k>``) and a
  short year (``seasonal_spread_high_pct_<k>``), weighed equally: the plan is made on its mean :math:`\\bar s_k`;
- the cost of holding is the financing of the stock, :math:`v_k \\cdot r \\cdot \\mu_k / 12`
  (``storage_financing_rate_pct``), and the variable cost :math:`c \\mu_k`
  (``storage_variable_cost_rub_per_t_month``); the weight lost in store (``storage_weight_loss_pct_<k>``) is
  charged by the centre balance like any loss;
- more storage narrows the spread it earns: the off-season market takes at most the scope's demand for the
  months stored, :math:`Q_k = D_k \\mu_k / 12`, and the net spread falls linearly from
  :math:`\\bar s_k v_k - \\text{cost}` at the first tonne to zero at :math:`Q_k` (where storage covers the whole
  off-season, the spread only pays for storing). The curve is cut into ``seasonal_steps`` steps.

A storage fee and a seasonal margin are never both earned on the same tonne: the model values a stored tonne
by its spread; the investor's view books the margin (the operator owns what it stores) and the handling fee,
no storage fee, on those tonnes.
"""

from __future__ import annotations

import pandas as pd

from optimization.problem import STORAGE_COLUMNS, TIER_COLUMNS
from planner.parameters import STORED, ParameterSet


def holding_cost(params: ParameterSet, commodity: str) -> float:
    """RUB per tonne held for the season: financing of the stock and the variable storage cost."""
    months = params[f"storage_months_{commodity}"]
    return (params[f"value_rub_per_t_{commodity}"] * params["storage_financing_rate_pct"] / 100.0 * months / 12.0
            + params["storage_variable_cost_rub_per_t_month"] * months)


def mean_spread_pct(params: ParameterSet, commodity: str) -> float:
    """The plan's spread: the mean of the glut year and the short year, % of the harvest price."""
    return (params[f"seasonal_spread_low_pct_{commodity}"] + params[f"seasonal_spread_high_pct_{commodity}"]) / 2


def net_spread(params: ParameterSet, commodity: str, spread_pct: float) -> float:
    """RUB earned per tonne held, at a given spread, net of the holding cost (before the weight lost)."""
    return spread_pct / 100.0 * params[f"value_rub_per_t_{commodity}"] - holding_cost(params, commodity)


def seasonal_storage(commodities: list[str], params: ParameterSet,
                     demand_t: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The model's storage table, the off-season market's steps (tiers with row_kind ``season``) and a table of
    what they rest on (per group: months, loss, spreads, holding cost, off-season market in t)."""
    store, steps, info = [], [], []
    n = int(params["seasonal_steps"])
    for k in commodities:
        if k not in STORED:
            continue
        months = params[f"storage_months_{k}"]
        first = net_spread(params, k, mean_spread_pct(params, k))
        cap = demand_t.get(k, 0.0) * months / 12.0
        info.append({"commodity": k, "months": months, "loss_pct": params[f"storage_weight_loss_pct_{k}"],
                     "spread_low_pct": params[f"seasonal_spread_low_pct_{k}"],
                     "spread_high_pct": params[f"seasonal_spread_high_pct_{k}"],
                     "spread_mean_pct": mean_spread_pct(params, k), "holding_cost_rub_per_t": holding_cost(params, k),
                     "first_tonne_net_rub_per_t": first, "off_season_market_t": cap})
        if first <= 0 or cap <= 0:
            continue
        store.append((k, months, params[f"storage_weight_loss_pct_{k}"] / 100.0))
        for i in range(n):
            steps.append(("season", "season", k, cap / n, first * (1 - (i + 0.5) / n)))
    return (pd.DataFrame(store, columns=STORAGE_COLUMNS), pd.DataFrame(steps, columns=TIER_COLUMNS),
            pd.DataFrame(info))
