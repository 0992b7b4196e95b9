"""The investor's view of a network: per centre and in total, what a logistics holding would look at.

Per open centre (RUB a year unless stated):

- throughput *T* (tonnes a year received); revenue by source: the handling fee *T* × ``centre_tariff_rub_per_t``;
  the seasonal margin on what the centre holds for the off-season (it owns that produce: the off-season
  market's realised net spread less the weight lost in store, :mod:`planner.storage`); no storage fee on those
  tonnes (a fee and a margin are never both earned on one tonne);
- operating cost = the module's fixed opex + *T* × ``centre_handling_rub_per_t``; a new module's fixed opex is
  ``centre_fixed_opex_pct`` × its capital, an existing centre's the same share of what building its capacity
  would cost today (its capital is sunk);
- operating result = revenue − operating cost;
- capital *K* (RUB): the new module's; **none for an existing centre** (sunk), only its expansion's; public
  support is the Russian instrument: the federal compensation of ``support_compensation_pct`` of *K*, at most
  ``support_cap_krub_per_t`` per tonne of storage added (Minselkhoz orders No 550/309/625), within the cap on
  all public co-financing ``public_cofinancing_max_pct`` (a scenario switch); the investor's capital =
  *K* − support;
- simple payback (years) = investor's capital / operating result (none if the result is ≤ 0);
- NPV at ``discount_rate_pct`` over ``centre_lifetime_years``: −investor's capital + result × annuity factor; also
  with every year a glut year and every year a short year (the two ends of the seasonal spread);
- NPV with the preferential investment loan (decree No 1528 of 2016, :func:`loan_saving`): the NPV + the present
  value of the interest the loan saves against market terms. Kazakhstan's instruments (a 7-point rate subsidy on
  tenge working-capital loans under the rules of order No 50 of 2017, now order No 436 of 2018, terms not
  checked; a capital subsidy of up to 50% for stores over 1,000 t reported in 2025) are not modelled: the
  Russian instrument is applied to every scope (docs/economics.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimization.results import NetworkResult
from planner.parameters import STORE_TYPES, ParameterSet
from planner.pipeline import PlannedProblem, annuity_factor, capital_recovery_factor


def public_support(capital: np.ndarray, storage_t: np.ndarray, p: ParameterSet,
                   store_types: list[str] | None = None) -> np.ndarray:
    """RUB of public money in each new capital: the federal compensation (``support_compensation_pct`` of the
    capital, at most the cap per tonne of the storage it adds of the centre's store type: ``support_cap_krub_per_t``
    for a distribution centre or a fruit store, ``support_cap_store_krub_per_t`` for a potato and vegetable store),
    within the cap on all public co-financing (``public_cofinancing_max_pct`` of the capital)."""
    keys = store_types if store_types is not None else ["dc"] * len(np.atleast_1d(capital))
    cap = np.array([p[STORE_TYPES[t].support_cap] for t in keys], dtype=float)
    comp = np.minimum(capital * p["support_compensation_pct"] / 100, storage_t * cap * 1e3)
    return np.minimum(comp, capital * p["public_cofinancing_max_pct"] / 100)


def loan_saving(own_capital: np.ndarray, p: ParameterSet) -> tuple[np.ndarray, np.ndarray]:
    """The preferential investment loan (Government decree No 1528 of 2016): the loan (RUB,
    ``preferential_loan_share_pct`` of the investor's capital) and the present value (RUB) of the interest it
    saves against a loan at ``market_loan_rate_pct``, both repaid in equal instalments over
    ``preferential_loan_years``. Discounted at the market rate, a market loan is worth nothing to the borrower, so
    the saving is L (1 − a(r_market, n) / a(r_pref, n)), with a the annuity factor; it adds to the investor's NPV."""
    loan = np.asarray(own_capital, dtype=float) * p["preferential_loan_share_pct"] / 100
    n = p["preferential_loan_years"]
    ratio = annuity_factor(p["market_loan_rate_pct"], n) / annuity_factor(p["preferential_loan_rate_pct"], n)
    return loan, loan * (1 - ratio)


def held_by_site(result: NetworkResult, sites: list[str]) -> np.ndarray:
    """Tonnes each site holds for the off-season (all groups)."""
    st = result.storage
    if st is None or st.empty:
        return np.zeros(len(sites))
    held = st.groupby("site_id")["held_t"].sum()
    return np.array([float(held.get(s, 0.0)) for s in sites])


def seasonal_margin(planned: PlannedProblem, result: NetworkResult, sites: list[str], year: str) -> np.ndarray:
    """Per site, RUB a year the operator earns on the produce it holds (it owns it): the off-season market's
    realised net spread per group (``plan``), or the same shifted to the spread of a glut (``low``) or short
    (``high``) year, less the value of the weight lost in store."""
    from planner.storage import mean_spread_pct

    st = result.storage
    if st is None or st.empty:
        return np.zeros(len(sites))
    p = planned.params
    comp = result.season_revenue or {}
    out = np.zeros(len(sites))
    row = {s: i for i, s in enumerate(sites)}
    total = st.groupby("commodity")["held_t"].sum()
    for r in st.itertuples():
        if r.site_id not in row or r.held_t <= 0:
            continue
        v = p[f"value_rub_per_t_{r.commodity}"]
        per_t = comp.get(r.commodity, 0.0) / total[r.commodity] if total[r.commodity] > 0 else 0.0
        if year != "plan":
            per_t += (p[f"seasonal_spread_{year}_pct_{r.commodity}"] - mean_spread_pct(p, r.commodity)) / 100 * v
        out[row[r.site_id]] += r.held_t * (per_t - v * p[f"storage_weight_loss_pct_{r.commodity}"] / 100)
    return out


def investor_view(planned: PlannedProblem, result: NetworkResult) -> tuple[pd.DataFrame, dict]:
    """Per-centre table and network totals (see the module docstring for every formula)."""
    p: ParameterSet = planned.params
    if result.sites.empty:
        return pd.DataFrame(), {}
    opened = result.sites[result.sites["open"]].copy()
    mods = planned.problem.modules.set_index(["site_id", "module_id"])
    capital = np.array([float(mods.at[(s, m), "capital_cost"]) for s, m in zip(opened["site_id"],
                                                                                 opened["module_id"], strict=True)])
    fixed = np.array([float(mods.at[(s, m), "fixed_cost"]) for s, m in zip(opened["site_id"],
                                                                             opened["module_id"], strict=True)])
    T = opened["throughput_t"].to_numpy(float)
    handling_fee = T * p["centre_tariff_rub_per_t"]
    margin = {y: seasonal_margin(planned, result, opened["site_id"].tolist(), y) for y in ("plan", "low", "high")}
    revenue = handling_fee + margin["plan"]
    fixed_opex = fixed - capital * capital_recovery_factor(p)
    opex = fixed_opex + T * p["centre_handling_rub_per_t"]
    result_ = revenue - opex
    storage = np.array([float(mods.at[(s, m), "storage_t"]) - (float(mods.at[(s, "existing"), "storage_t"])
                                                               if (s, "existing") in mods.index else 0.0)
                        for s, m in zip(opened["site_id"], opened["module_id"], strict=True)])
    # the store type (the support cap's key) is in the summary's centres (planner.summary.centres_table), which
    # sites.csv joins with this table
    types = [str(mods.at[(s, m), "store_type"]) if "store_type" in mods.columns else "dc"
             for s, m in zip(opened["site_id"], opened["module_id"], strict=True)]
    public = public_support(capital, storage, p, types)
    share = float(public.sum() / capital.sum()) if capital.sum() > 0 else 0.0
    own = capital - public
    loan, saving = loan_saving(own, p)
    annuity = annuity_factor(p["discount_rate_pct"], p["centre_lifetime_years"])
    names = planned.candidates.set_index("candidate_id")
    table = pd.DataFrame({
        "id": opened["site_id"].to_numpy(), "name_ru": names.loc[opened["site_id"], "name_ru"].to_numpy(),
        "name_en": names.loc[opened["site_id"], "name_en"].to_numpy(), "size": opened["module_id"].to_numpy(),
        "existing": opened["existing"].to_numpy(), "throughput_t": T,
        "held_t": held_by_site(result, opened["site_id"].tolist()),
        "revenue_handling_rub": handling_fee, "revenue_storage_fee_rub": 0.0, "revenue_seasonal_margin_rub":
            margin["plan"], "revenue_rub": revenue, "opex_rub": opex,
        "operating_result_rub": result_, "capital_rub": capital, "public_cofinancing_rub": public,
        "investor_capital_rub": own,
        "payback_years": np.where(result_ > 0, own / np.where(result_ > 0, result_, 1), np.nan),
        "npv_rub": -own + result_ * annuity,
        "loan_rub": loan, "loan_interest_saving_rub": saving, "npv_with_loan_rub": -own + result_ * annuity + saving,
        "npv_glut_year_rub": -own + (result_ - margin["plan"] + margin["low"]) * annuity,
        "npv_short_year_rub": -own + (result_ - margin["plan"] + margin["high"]) * annuity})
    new = table[~table["existing"]]
    totals = {"centres": len(table), "new_centres": len(new), "throughput_t": float(T.sum()),
              "revenue_rub": float(revenue.sum()), "operating_result_rub": float(result_.sum()),
              "capital_new_rub": float(new["capital_rub"].sum()),
              "public_cofinancing_new_rub": float(new["public_cofinancing_rub"].sum()),
              "npv_new_rub": float(new["npv_rub"].sum()),
              "npv_new_with_loan_rub": float(new["npv_with_loan_rub"].sum()),
              "loan_new_rub": float(new["loan_rub"].sum()),
              "loan_interest_saving_new_rub": float(new["loan_interest_saving_rub"].sum()),
              "preferential_loan_rate_pct": p["preferential_loan_rate_pct"],
              "market_loan_rate_pct": p["market_loan_rate_pct"],
              "npv_new_glut_years_rub": float(new["npv_glut_year_rub"].sum()),
              "npv_new_short_years_rub": float(new["npv_short_year_rub"].sum()),
              "revenue_handling_rub": float(handling_fee.sum()),
              "revenue_seasonal_margin_rub": float(margin["plan"].sum()), "revenue_storage_fee_rub": 0.0,
              "discount_rate_pct": p["discount_rate_pct"],
              "public_support_pct": 100 * share}
    return table, totals
