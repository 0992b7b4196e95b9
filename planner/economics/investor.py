"""The investor's view of a network: per centre and in total, what a logistics holding would look at.

Per open centre (RUB a year unless stated):

- throughput *T* (tonnes a year received), revenue = *T* × ``centre_tariff_rub_per_t``;
- operating cost = ``centre_fixed_opex_pct`` × capital + *T* × ``centre_handling_rub_per_t``;
- operating result = revenue − operating cost;
- capital *K* (RUB) of the chosen size module; public co-financing = ``public_cofinancing_pct`` × *K*, capped at
  ``public_cofinancing_max_pct``; the investor's capital = *K* − co-financing;
- simple payback (years) = investor's capital / operating result (none if the result is ≤ 0);
- NPV at ``discount_rate_pct`` over ``centre_lifetime_years``: −investor's capital + result × annuity factor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimization.results import NetworkResult
from planner.parameters import ParameterSet
from planner.pipeline import PlannedProblem


def investor_view(planned: PlannedProblem, result: NetworkResult) -> tuple[pd.DataFrame, dict]:
    """Per-centre table and network totals (see the module docstring for every formula)."""
    p: ParameterSet = planned.params
    if result.sites.empty:
        return pd.DataFrame(), {}
    opened = result.sites[result.sites["open"]].copy()
    mods = planned.problem.modules.set_index(["site_id", "module_id"])
    capital = np.array([float(mods.at[(s, m), "capital_cost"]) for s, m in zip(opened["site_id"],
                                                                                 opened["module_id"], strict=True)])
    T = opened["throughput_t"].to_numpy(float)
    revenue = T * p["centre_tariff_rub_per_t"]
    opex = capital * p["centre_fixed_opex_pct"] / 100 + T * p["centre_handling_rub_per_t"]
    result_ = revenue - opex
    share = min(p["public_cofinancing_pct"], p["public_cofinancing_max_pct"]) / 100
    public = capital * share
    own = capital - public
    r, n = p["discount_rate_pct"] / 100, p["centre_lifetime_years"]
    annuity = n if r == 0 else (1 - (1 + r) ** -n) / r
    names = planned.candidates.set_index("candidate_id")
    table = pd.DataFrame({
        "id": opened["site_id"].to_numpy(), "name_ru": names.loc[opened["site_id"], "name_ru"].to_numpy(),
        "name_en": names.loc[opened["site_id"], "name_en"].to_numpy(), "size": opened["module_id"].to_numpy(),
        "existing": opened["existing"].to_numpy(), "throughput_t": T, "revenue_rub": revenue, "opex_rub": opex,
        "operating_result_rub": result_, "capital_rub": capital, "public_cofinancing_rub": public,
        "investor_capital_rub": own,
        "payback_years": np.where(result_ > 0, own / np.where(result_ > 0, result_, 1), np.nan),
        "npv_rub": -own + result_ * annuity})
    new = table[~table["existing"]]
    totals = {"centres": len(table), "new_centres": len(new), "throughput_t": float(T.sum()),
              "revenue_rub": float(revenue.sum()), "operating_result_rub": float(result_.sum()),
              "capital_new_rub": float(new["capital_rub"].sum()),
              "public_cofinancing_new_rub": float(new["public_cofinancing_rub"].sum()),
              "npv_new_rub": float(new["npv_rub"].sum()), "discount_rate_pct": p["discount_rate_pct"],
              "public_cofinancing_pct": 100 * share}
    return table, totals
