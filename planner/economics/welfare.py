"""Net social benefit of the new centres against today's network (the existing centres included), beside the
investor's NPV, and the support that would close the gap between the two.

For the scope, per year (RUB):

.. math:: NSB = \\Delta CS + \\Delta PS + \\Delta T + \\Delta M + \\Delta S
          - (\\text{annualised capital} + \\text{fixed opex})

- :math:`\\Delta CS`, :math:`\\Delta PS`: the change of the scope's consumer and producer surplus in the spatial
  price equilibrium (:mod:`planner.economics.prices`, the network against the existing centres);
- :math:`\\Delta T`: the change of the scope's import-duty revenue (a transfer inside the country, not a cost);
- :math:`\\Delta M`: the change of the margin the centres keep — the share of their saving that
  ``price_pass_through`` withholds from prices is someone's income;
- :math:`\\Delta S`: the change of the value of seasonal storage — the off-season market's revenue (the area under
  its falling net spread over the tonnes held, :mod:`planner.storage`) less the reference value of the weight lost
  in store, the network's against the baseline's (routed with only the existing centres); the annual price model
  cannot see the season, so this term carries it (consumers' gain from lower spring prices is left out: a lower
  bound);
- the value of losses avoided is already inside the surplus (the trade costs carry it): it is not added again;
- the new centres' (and expansions') capital is annualised at ``social_discount_rate_pct`` over
  ``centre_lifetime_years``; their fixed opex is the module's (``centre_fixed_opex_pct`` of capital), and an
  existing centre's own opex is in both the network and the baseline.

NPV at the social rate = −capital + (NSB before capital) × annuity. The support that closes the gap is what the
investor's NPV lacks where the social NPV is positive: max(0, −investor NPV), in RUB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimization.results import NetworkResult
from planner.economics.prices import PriceReport
from planner.pipeline import PlannedProblem, annuity_factor


def _weight_lost(p, commodity: str, held_t: float) -> float:
    """RUB: the reference value of the weight ``held_t`` tonnes of ``commodity`` lose in store."""
    return held_t * p[f"value_rub_per_t_{commodity}"] * p[f"storage_weight_loss_pct_{commodity}"] / 100


def seasonal_value(planned: PlannedProblem, result: NetworkResult) -> float:
    """RUB a year: the off-season market's revenue less the reference value of the weight lost in store."""
    value = sum((result.season_revenue or {}).values())
    st = result.storage
    if st is not None and not st.empty:
        value -= sum(_weight_lost(planned.params, r.commodity, r.held_t) for r in st.itertuples())
    return value


def seasonal_value_by_site(planned: PlannedProblem, result: NetworkResult | None) -> pd.Series:
    """:func:`seasonal_value` by site, RUB a year: each group's off-season revenue shared over the sites in
    proportion to the tonnes they hold, less the reference value of the weight each loses in store."""
    st = result.storage if result is not None else None
    if st is None or st.empty:
        return pd.Series(dtype=float)
    held = st[st["held_t"] > 0]
    out: dict[str, float] = {}
    totals = held.groupby("commodity")["held_t"].sum()
    for r in held.itertuples():
        rev = (result.season_revenue or {}).get(r.commodity, 0.0) * r.held_t / totals[r.commodity]
        out[r.site_id] = out.get(r.site_id, 0.0) + rev - _weight_lost(planned.params, r.commodity, r.held_t)
    return pd.Series(out, dtype=float)


def site_costs(planned: PlannedProblem, result: NetworkResult) -> pd.DataFrame:
    """By site: ``capital_rub``, the capital of its opened module(s) (RUB), and ``opex_rub``, the change of fixed
    opex (RUB a year: ``centre_fixed_opex_pct`` of that capital; an existing centre that is not kept, minus its own
    opex)."""
    p = planned.params
    mods = planned.problem.modules.set_index(["site_id", "module_id"])
    opened = result.sites[result.sites["open"]] if not result.sites.empty else result.sites
    rows: dict[str, list[float]] = {}
    for sid, mid in zip(opened.get("site_id", []), opened.get("module_id", []), strict=True):
        k = float(mods.at[(sid, mid), "capital_cost"])
        r = rows.setdefault(sid, [0.0, 0.0])
        r[0] += k
        r[1] += k * p["centre_fixed_opex_pct"] / 100.0
    kept = set(opened.get("site_id", []))
    for sid, e in zip(planned.problem.sites["site_id"], planned.problem.sites["existing"], strict=True):
        if e and (sid, "existing") in mods.index and sid not in kept:
            rows.setdefault(sid, [0.0, 0.0])[1] -= float(mods.at[(sid, "existing"), "fixed_cost"])
    return pd.DataFrame.from_dict(rows, orient="index", columns=["capital_rub", "opex_rub"], dtype=float)


def net_social_benefit(planned: PlannedProblem, result: NetworkResult, prices: PriceReport,
                       investor_totals: dict | None = None, baseline: NetworkResult | None = None) -> dict:
    """The scope's net social benefit of the network against the existing centres (see the module docstring).
    ``prices`` must compare the network with the existing centres (baseline ``existing``)."""
    p = planned.params
    s = prices.summary
    seasonal = seasonal_value(planned, result) - (seasonal_value(planned, baseline) if baseline is not None else 0.0)
    benefit = float(s["consumer_surplus_change_rub"].sum() + s["producer_surplus_change_rub"].sum()
                    + s["import_duty_change_rub"].sum() + s["centre_margin_change_rub"].sum()) + seasonal
    costs = site_costs(planned, result)
    capital, opex = float(costs["capital_rub"].sum()), float(costs["opex_rub"].sum())
    years = p["centre_lifetime_years"]
    annuity = annuity_factor(p["social_discount_rate_pct"], years)
    annual_capital = capital / annuity if annuity > 0 else 0.0
    nsb = benefit - opex - annual_capital
    npv = -capital + (benefit - opex) * annuity
    out = {"net_social_benefit_mrub": nsb / 1e6, "social_npv_mrub": npv / 1e6,
           "surplus_change_mrub": float(s["consumer_surplus_change_rub"].sum()
                                        + s["producer_surplus_change_rub"].sum()) / 1e6,
           "consumer_surplus_change_mrub": float(s["consumer_surplus_change_rub"].sum()) / 1e6,
           "producer_surplus_change_mrub": float(s["producer_surplus_change_rub"].sum()) / 1e6,
           "import_duty_change_mrub": float(s["import_duty_change_rub"].sum()) / 1e6,
           "centre_margin_change_mrub": float(s["centre_margin_change_rub"].sum()) / 1e6,
           "seasonal_value_change_mrub": seasonal / 1e6,
           "new_capital_mrub": capital / 1e6, "annualised_capital_mrub": annual_capital / 1e6,
           "fixed_opex_change_mrub": opex / 1e6, "social_discount_rate_pct": p["social_discount_rate_pct"],
           "baseline": "existing centres"}
    if investor_totals:
        inv = investor_totals.get("npv_new_rub")
        out["investor_npv_mrub"] = None if inv is None else inv / 1e6
        out["support_to_close_gap_mrub"] = (float(np.maximum(0.0, -inv)) / 1e6
                                            if inv is not None and npv > 0 else 0.0)
    return out
