"""When does a centre pay? Break-even figures of one module (store type and size) storing one group, for the
investor and for the public, from the registry's defaults (docs/economics.md, break-even table).

A module of size *m* has throughput capacity :math:`T` (t a year), storage :math:`H = T /` its type's turns,
capital :math:`K` and fixed opex :math:`o K`. Run full, it holds :math:`h = \\min(12 H / \\mu_k, T)` tonnes of
group *k* a year for :math:`\\mu_k` months (the tonne-months bound of the model; a store cannot hold more than
it receives) and earns, per year,

.. math:: R(s) = T (f - c_h) + h \\left(s v_k - \\text{holding cost}_k - \\lambda_k v_k\\right) - o K

(:math:`f` the handling fee, :math:`c_h` the handling cost, :math:`s` the seasonal spread, :math:`\\lambda_k` the
weight lost in store). The investor pays :math:`K` less the public support and discounts at
``discount_rate_pct``; the public case counts the whole capital (support is a transfer), discounts at
``social_discount_rate_pct`` and values the spread the same way (a lower bound: consumers' gain from lower
spring prices is left out). Break-even: the spread :math:`s^*` at which the NPV is zero at the default
capital, and the capital per tonne of storage :math:`K^*/H` at which it is zero at the mean spread; the investor's
NPV at the mean spread is also given with the preferential loan (:func:`planner.economics.investor.loan_saving`).
These are figures of a full module; a run's own centres may hold less (the off-season market narrows the spread).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner.economics.investor import loan_saving, public_support
from planner.parameters import STORE_TYPES, STORED, ParameterSet
from planner.pipeline import SIZES, annuity_factor, type_modules
from planner.storage import holding_cost, mean_spread_pct


def _spread_at_zero(capital_paid: float, annuity: float, base: float, held: float, value: float) -> float:
    """The spread (%) at which capital_paid = annuity × (base + held × spread × value)."""
    return 100 * (capital_paid / annuity - base) / (held * value)


def break_even_table(p: ParameterSet) -> pd.DataFrame:
    """One row per store type, module size and group the type may store (see the module docstring for every
    formula; the modules are :func:`planner.pipeline.type_modules`)."""
    rows = []
    years = p["centre_lifetime_years"]
    a_inv = annuity_factor(p["discount_rate_pct"], years)
    a_soc = annuity_factor(p["social_discount_rate_pct"], years)
    opex = p["centre_fixed_opex_pct"] / 100
    for (module_id, key, T, K, H), size in zip(type_modules(p), [s for _ in STORE_TYPES for s in SIZES],
                                               strict=True):
        support = float(public_support(np.array([K]), np.array([H]), p, [key])[0])
        for k in STORE_TYPES[key].groups or STORED:
            if k not in STORED:
                continue
            v = p[f"value_rub_per_t_{k}"]
            h = min(12 * H / p[f"storage_months_{k}"], T)  # held within the tonne-months and the throughput
            per_t = -holding_cost(p, k) - p[f"storage_weight_loss_pct_{k}"] / 100 * v
            base = T * (p["centre_tariff_rub_per_t"] - p["centre_handling_rub_per_t"]) + h * per_t - opex * K

            s_mean = mean_spread_pct(p, k)
            earn = base + h * s_mean / 100 * v
            # K* at the mean spread: NPV = −K(1−σ) + a (earn(K)) with earn depending on K through the opex
            share = support / K if K > 0 else 0.0
            k_inv = a_inv * (earn + opex * K) / ((1 - share) + a_inv * opex)
            k_soc = a_soc * (earn + opex * K) / (1 + a_soc * opex)
            rows.append({
                "store_type": key, "module_id": module_id, "size": size, "commodity": k, "throughput_t": T,
                "storage_t": H, "held_t": h, "capital_krub_per_t_storage": K / H / 1e3, "support_pct": 100 * share,
                "spread_low_pct": p[f"seasonal_spread_low_pct_{k}"], "spread_mean_pct": s_mean,
                "spread_high_pct": p[f"seasonal_spread_high_pct_{k}"],
                "investor_npv_mean_mrub": (-(K - support) + a_inv * earn) / 1e6,
                "investor_npv_mean_with_loan_mrub": (-(K - support) + a_inv * earn
                                                     + float(loan_saving(np.array([K - support]), p)[1][0])) / 1e6,
                "investor_break_even_spread_pct": _spread_at_zero(K - support, a_inv, base, h, v),
                "investor_break_even_capital_krub_per_t": k_inv / H / 1e3,
                "social_npv_mean_mrub": (-K + a_soc * earn) / 1e6,
                "social_break_even_spread_pct": _spread_at_zero(K, a_soc, base, h, v),
                "social_break_even_capital_krub_per_t": k_soc / H / 1e3,
            })
    return pd.DataFrame(rows)
