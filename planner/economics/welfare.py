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

from optimization.results import NetworkResult
from planner.economics.prices import PriceReport
from planner.pipeline import PlannedProblem, annuity_factor


def seasonal_value(planned: PlannedProblem, result: NetworkResult) -> float:
    """RUB a year: the off-season market's revenue less the reference value of the weight lost in store."""
    p = planned.params
    value = sum((result.season_revenue or {}).values())
    st = result.storage
    if st is not None and not st.empty:
        for r in st.itertuples():
            value -= r.held_t * p[f"value_rub_per_t_{r.commodity}"] * p[f"storage_weight_loss_pct_{r.commodity}"] / 100
    return value


def net_social_benefit(planned: PlannedProblem, result: NetworkResult, prices: PriceReport,
                       investor_totals: dict | None = None, baseline: NetworkResult | None = None) -> dict:
    """The scope's net social benefit of the network against the existing centres (see the module docstring).
    ``prices`` must compare the network with the existing centres (baseline ``existing``)."""
    p = planned.params
    s = prices.summary
    seasonal = seasonal_value(planned, result) - (seasonal_value(planned, baseline) if baseline is not None else 0.0)
    benefit = float(s["consumer_surplus_change_rub"].sum() + s["producer_surplus_change_rub"].sum()
                    + s["import_duty_change_rub"].sum() + s["centre_margin_change_rub"].sum()) + seasonal
    mods = planned.problem.modules.set_index(["site_id", "module_id"])
    opened = result.sites[result.sites["open"]] if not result.sites.empty else result.sites
    capital = opex = 0.0
    for sid, mid in zip(opened.get("site_id", []), opened.get("module_id", []), strict=True):
        k = float(mods.at[(sid, mid), "capital_cost"])
        capital += k
        opex += k * p["centre_fixed_opex_pct"] / 100.0
    existing_not_kept = [sid for sid, e in zip(planned.problem.sites["site_id"], planned.problem.sites["existing"],
                                                strict=True)
                         if e and (sid, "existing") in mods.index and sid not in set(opened.get("site_id", []))]
    opex -= sum(float(mods.at[(sid, "existing"), "fixed_cost"]) for sid in existing_not_kept)
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
