"""NPV and net social benefit of a run's plan at both ends of every cited range, one range at a time.

Every economic default in the registry with a cited range (:attr:`planner.parameters.Parameter.low` /
``high``) is the central value of that range. This module re-evaluates **the run's plan, held fixed** (the same
centres, modules and flows) with one range at its low end, then at its high end, the others at their defaults:
the investor's NPV of the new centres (with and without the preferential loan) and the net social benefit
against today's network. Then every range at once at the end that favours the investor (its NPV first, then the
NPV with the loan, then the net social benefit): the favourable end of every range together is **not a business
case** (``business_case: false``), only a bound.

Ranges (:func:`range_entries`): each registry parameter with a cited low/high (but the routing ones,
:data:`ROUTING_PARAMETERS`); the distribution centre's three
module capitals move together (one cited range per tonne of storage, 94-214k RUB); and per stored group the
seasonal spread at all glut years (low) and all short years (high).

What is re-evaluated, and what is not (the cheap path; the result is the same):

- the modules' capital and fixed cost are rebuilt from the changed registry (:func:`planner.pipeline.site_modules`);
- the seasonal margin follows a changed spread or holding cost as a shift of the net spread per tonne held (the
  plan's tonnes held are kept);
- the price model reads none of the ranged parameters (:data:`PRICE_MODEL_PARAMETERS`, checked by
  :func:`evaluate_ranges`), so the run's price report is reused; a ranged parameter the price model reads would be
  re-priced through ``reprice`` (and its time is in ``reprice_seconds``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from optimization.results import NetworkResult
from planner.economics.investor import investor_view
from planner.economics.prices import PriceReport
from planner.economics.welfare import net_social_benefit
from planner.parameters import DC_CAPITAL_KRUB_PER_T, DC_STORAGE_KT, PARAMETERS, STORED, ParameterSet
from planner.pipeline import SIZES, PlannedProblem, site_modules
from planner.storage import mean_spread_pct, net_spread

PRICE_MODEL_PARAMETERS = ("value_rub_per_t_", "transit_loss_pct_per_day_", "centre_loss_factor",
                          "traditional_handling_rub_per_t", "centre_handling_rub_per_t", "demand_elasticity_",
                          "supply_elasticity_", "price_pass_through", "outside_", "road_", "rail_",
                          "transshipment_", "border_fee_")
"""Prefixes of the registry parameters the price model (:mod:`planner.economics.prices`) reads."""
ROUTING_PARAMETERS = ("part_load_markup_pct", "small_lot_share_pct_")
"""Prefixes of ranged parameters that change what every route costs (consolidation): a plan held fixed says nothing
about them, so they are not ranged here; the sensitivity table of ``docs/model.md`` re-solves the plan at their
ends (``benchmarks/sensitivity.py``)."""

NAMES_RU = {
    "dc_capital": "Капитальные затраты многотемпературного ОРЦ",
    "store_capital_krub_per_t": "Капитальные затраты картофеле- и овощехранилища",
    "ca_store_capital_krub_per_t": "Капитальные затраты фруктохранилища с РГС",
    "elevator_capital_krub_per_t": "Капитальные затраты элеватора",
    "social_discount_rate_pct": "Общественная ставка дисконтирования",
    "support_compensation_pct": "Доля возмещения капитальных затрат",
    "support_cap_store_krub_per_t": "Предельная ставка возмещения для овощехранилища",
    "preferential_loan_rate_pct": "Ставка льготного инвестиционного кредита",
    "preferential_loan_years": "Срок льготного инвестиционного кредита",
    "storage_weight_loss_pct_vegetables": "Естественная убыль овощей при хранении",
    "seasonal_spread_potatoes": "Сезонная разница цен: картофель",
    "seasonal_spread_vegetables": "Сезонная разница цен: овощи",
    "seasonal_spread_fruit_berries": "Сезонная разница цен: фрукты и ягоды",
}
NAMES_EN = {
    "dc_capital": "Capital of a multi-temperature distribution centre",
    "seasonal_spread_potatoes": "Seasonal spread: potatoes (all glut years / all short years)",
    "seasonal_spread_vegetables": "Seasonal spread: vegetables (all glut years / all short years)",
    "seasonal_spread_fruit_berries": "Seasonal spread: fruit and berries (all glut years / all short years)",
}


@dataclass(frozen=True)
class RangeEntry:
    """One cited range: id, unit, default, low and high (in ``unit``), and the registry values at each end."""

    key: str
    unit: str
    default: float
    low: float
    high: float
    at_low: dict[str, float]
    at_high: dict[str, float]


def range_entries(params: ParameterSet, commodities: list[str] | None = None) -> list[RangeEntry]:
    """The ranges a run is evaluated across (see the module docstring), values taken from ``params``."""
    out = []
    dc = [f"module_{s}_capital_mrub" for s in SIZES]
    lo, _, hi = DC_CAPITAL_KRUB_PER_T
    out.append(RangeEntry("dc_capital", "thousand RUB per tonne of storage",
                          params[dc[0]] / DC_STORAGE_KT[SIZES[0]], lo, hi,
                          {n: lo * DC_STORAGE_KT[s] for n, s in zip(dc, SIZES, strict=True)},
                          {n: hi * DC_STORAGE_KT[s] for n, s in zip(dc, SIZES, strict=True)}))
    for p in PARAMETERS:
        if p.low is None or p.high is None or p.name in dc or p.name.startswith(ROUTING_PARAMETERS):
            continue
        out.append(RangeEntry(p.name, p.unit, params[p.name], p.low, p.high, {p.name: p.low}, {p.name: p.high}))
    for k in STORED:
        if commodities is not None and k not in commodities:
            continue
        lo, hi = params[f"seasonal_spread_low_pct_{k}"], params[f"seasonal_spread_high_pct_{k}"]
        names = (f"seasonal_spread_low_pct_{k}", f"seasonal_spread_high_pct_{k}")
        out.append(RangeEntry(f"seasonal_spread_{k}", "% of the harvest price", mean_spread_pct(params, k), lo, hi,
                              dict.fromkeys(names, lo), dict.fromkeys(names, hi)))
    return out


def _shifted(result: NetworkResult | None, old: ParameterSet, new: ParameterSet) -> NetworkResult | None:
    """The result with its off-season revenue moved by the change of the net spread per tonne held (plan fixed)."""
    if result is None or result.storage is None or result.storage.empty:
        return result
    held = result.storage.groupby("commodity")["held_t"].sum()
    revenue = dict(result.season_revenue or {})
    for k, h in held.items():
        delta = net_spread(new, k, mean_spread_pct(new, k)) - net_spread(old, k, mean_spread_pct(old, k))
        revenue[k] = revenue.get(k, 0.0) + float(h) * delta
    return replace(result, season_revenue=revenue)


def evaluate(planned: PlannedProblem, result: NetworkResult, prices_now: PriceReport, baseline: NetworkResult | None,
             existing: pd.DataFrame, params: ParameterSet) -> dict[str, float]:
    """NPV of the new centres (M RUB; with the preferential loan too) and net social benefit (M RUB a year) of the
    run's plan under ``params``."""
    mods, _, _ = site_modules(planned.problem.sites, existing, params, list(planned.problem.commodities),
                              drop=False)
    p2 = replace(planned, params=params, problem=replace(planned.problem, modules=mods))
    r2, b2 = _shifted(result, planned.params, params), _shifted(baseline, planned.params, params)
    _, totals = investor_view(p2, r2)
    social = net_social_benefit(p2, r2, prices_now, totals, b2)
    return {"npv_new_mrub": totals.get("npv_new_rub", 0.0) / 1e6,
            "npv_new_with_loan_mrub": totals.get("npv_new_with_loan_rub", 0.0) / 1e6,
            "nsb_mrub": social["net_social_benefit_mrub"]}


def _reads_prices(entry: RangeEntry) -> bool:
    return any(n.startswith(PRICE_MODEL_PARAMETERS) for n in entry.at_low)


def evaluate_ranges(planned: PlannedProblem, result: NetworkResult, prices_now: PriceReport,
                    baseline: NetworkResult | None, existing: pd.DataFrame,
                    reprice: Callable[[ParameterSet], PriceReport] | None = None) -> dict:
    """The ``ranges`` block of ``summary.json``: the plan at the defaults (``central``), at each end of each range
    (``entries``), and at the favourable end of all at once (``favourable_all``, ``business_case: false``).
    ``prices_now`` compares the network with the existing centres; ``baseline`` is the existing centres routed
    alone. A range the price model reads is re-priced by ``reprice`` (a ValueError without it)."""
    t0 = time.perf_counter()
    p = planned.params
    spent_pricing = 0.0

    def run(values: dict[str, float], entry: RangeEntry | None = None) -> dict[str, float]:
        nonlocal spent_pricing
        q = p.with_values(values)
        pr = prices_now
        if entry is not None and _reads_prices(entry):
            if reprice is None:
                raise ValueError(f"ranges: {entry.key} is read by the price model; pass reprice to re-run it")
            t = time.perf_counter()
            pr = reprice(q)
            spent_pricing += time.perf_counter() - t
        return evaluate(planned, result, pr, baseline, existing, q)

    central = run({})
    rows, favourable = [], {}
    for e in range_entries(p, list(planned.problem.commodities)):
        lo, hi = run(e.at_low, e), run(e.at_high, e)
        rows.append({"key": e.key, "unit": e.unit, "default": e.default, "low": e.low, "high": e.high,
                     "npv_new_mrub_low": lo["npv_new_mrub"], "npv_new_mrub_high": hi["npv_new_mrub"],
                     "npv_new_with_loan_mrub_low": lo["npv_new_with_loan_mrub"],
                     "npv_new_with_loan_mrub_high": hi["npv_new_with_loan_mrub"],
                     "nsb_mrub_low": lo["nsb_mrub"], "nsb_mrub_high": hi["nsb_mrub"],
                     "reprices": _reads_prices(e)})

        def rank(r: dict[str, float]) -> tuple[float, float, float]:
            return (round(r["npv_new_mrub"], 9), round(r["npv_new_with_loan_mrub"], 9), round(r["nsb_mrub"], 9))

        if rank(hi) != rank(lo):  # a range that moves nothing keeps its default
            favourable.update(e.at_high if rank(hi) > rank(lo) else e.at_low)
    fav = run(favourable)
    return {"plan_fixed": True, "central": central, "entries": rows,
            "favourable_all": {**fav, "values": favourable, "business_case": False},
            "reprice_seconds": round(spent_pricing, 3), "seconds": round(time.perf_counter() - t0, 3)}


RANGES_COLUMNS = {
    "key": "Параметр / Parameter (key)",
    "name_ru": "Наименование",
    "name_en": "Name",
    "unit": "Единица / Unit",
    "low": "Нижняя граница / Low end",
    "default": "По умолчанию / Default (central)",
    "high": "Верхняя граница / High end",
    "npv_new_mrub_low": "ЧДД новых центров, нижняя граница / NPV of new centres at the low end, M RUB",
    "npv_new_mrub_high": "ЧДД новых центров, верхняя граница / NPV of new centres at the high end, M RUB",
    "npv_new_with_loan_mrub_low": "ЧДД с льготным кредитом, нижняя граница / NPV with the preferential loan at the "
                                  "low end, M RUB",
    "npv_new_with_loan_mrub_high": "ЧДД с льготным кредитом, верхняя граница / NPV with the preferential loan at "
                                   "the high end, M RUB",
    "nsb_mrub_low": "Чистая общественная выгода, нижняя граница / Net social benefit at the low end, M RUB a year",
    "nsb_mrub_high": "Чистая общественная выгода, верхняя граница / Net social benefit at the high end, M RUB a year",
}
"""Column key → CSV header (Russian / English, with units)."""


def ranges_table(block: dict) -> pd.DataFrame:
    """The ``ranges`` block as a table: one row per range, then the defaults (``central``) and the favourable end
    of every range at once (``favourable_all``, not a business case), with Russian and English names."""
    from planner.parameters import PARAMETER_BY_NAME

    rows = []
    for r in block["entries"]:
        p = PARAMETER_BY_NAME.get(r["key"])
        rows.append({**{k: r[k] for k in RANGES_COLUMNS if k in r},
                     "name_ru": NAMES_RU.get(r["key"], r["key"]),
                     "name_en": NAMES_EN.get(r["key"], p.description if p else r["key"])})
    for key, ru, en, d in (("central", "Все параметры по умолчанию", "Every parameter at its default",
                            block["central"]),
                           ("favourable_all", "Все диапазоны на благоприятной границе (не бизнес-кейс)",
                            "Every range at its favourable end (not a business case)", block["favourable_all"])):
        rows.append({"key": key, "name_ru": ru, "name_en": en, "unit": "", **{
            f"{m}_{end}": d[m] for m in ("npv_new_mrub", "npv_new_with_loan_mrub", "nsb_mrub") for end in ("low",
                                                                                                          "high")}})
    return pd.DataFrame(rows, columns=list(RANGES_COLUMNS))


def write_ranges_csv(block: dict, path: str | Path) -> Path:
    """Write the ``ranges`` block (:func:`ranges_table`) as CSV in UTF-8 with BOM, headers in Russian and English
    with units; returns the path."""
    path = Path(path)
    table = ranges_table(block).rename(columns=RANGES_COLUMNS)
    table.to_csv(path, index=False, encoding="utf-8-sig")
    return path
