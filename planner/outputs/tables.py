"""The run's tables, one subject each, with Russian and English names beside every id and a unit in every
numeric column name; and the CSV writer (UTF-8 with BOM, rounded).

Money in the tables is in million RUB a year (``_mrub``) or RUB per tonne (``_rub_per_t``), quantities in
tonnes a year (``_t``), shares in % (``_pct``): the solver's RUB figures are divided by 10⁶ here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from planner.outputs.files import CSV_TABLES  # noqa: F401  (re-exported: the tables this module writes)
from planner.outputs.labels import (
    COST_NAMES,
    DIRECTION_NAMES,
    KIND_NAMES,
    SIZE_NAMES,
    STAGE_NAMES,
    commodity_names,
    pair,
    rounded,
)


@dataclass
class Names:
    """Russian and English names of every id a run's tables carry: regions, countries, sites, network nodes,
    outside markets."""

    regions: dict[str, tuple[str, str]]
    countries: dict[str, tuple[str, str]]
    places: dict[str, tuple[str, str]]

    def region(self, rid: str) -> tuple[str, str]:
        """(ru, en) of a region id, the id itself when unknown."""
        return self.regions.get(rid, (rid, rid))

    def place(self, pid: str) -> tuple[str, str]:
        """(ru, en) of a flow end: a site, a farm or market region (``farm:RU-DA``), an outside market."""
        if pid in self.places:
            return self.places[pid]
        if ":" in pid:
            kind, rest = pid.split(":", 1)
            if rest in self.places:
                return self.places[rest]
            if rest in self.regions:
                ru, en = self.regions[rest]
                return {"farm": (f"{ru} (производители)", f"{en} (farms)"),
                        "market": (f"{ru} (потребители)", f"{en} (consumers)")}.get(kind, (ru, en))
        return (pid, pid)


def names_for(planned, dataset) -> Names:
    """Collect the names a run's ids need from the dataset and the planned problem."""
    reg = dataset.regions
    regions = {r.region_id: (r.name_ru, r.name_en) for r in reg.itertuples()}
    countries = {r.country_id: (r.name_ru, r.name_en) for r in dataset.countries.itertuples()}
    places: dict[str, tuple[str, str]] = {}
    for r in planned.candidates.itertuples():
        places[r.candidate_id] = (r.name_ru, r.name_en)
    for o in planned.outside:
        places[o.market_id] = (o.name_ru, o.name_en)
        places[f"exit:{o.market_id}"] = (o.name_ru, o.name_en)
        places[f"import:{o.market_id}"] = (o.name_ru, o.name_en)
    return Names(regions, countries, places)


def _with_names(frame: pd.DataFrame, col: str, names: dict[str, tuple[str, str]] | None = None,
                fn=None, prefix: str | None = None) -> pd.DataFrame:
    """Insert ``<prefix>_ru`` and ``<prefix>_en`` right after ``col``."""
    prefix = prefix or col.removesuffix("_id")
    get = fn or (lambda k: (names or {}).get(k, (k, k)))
    pairs = [get(str(k)) for k in frame[col]]
    at = frame.columns.get_loc(col) + 1
    out = frame.copy()
    out.insert(at, f"{prefix}_ru", [p[0] for p in pairs])
    out.insert(at + 1, f"{prefix}_en", [p[1] for p in pairs])
    return out


def _commodity(frame: pd.DataFrame) -> pd.DataFrame:
    return _with_names(frame, "commodity", fn=commodity_names)


def sites_table(planned, summary: dict, investor, names: Names) -> pd.DataFrame:
    """Opened centres: identity, names, region, country, status, size, capacity, throughput, utilisation,
    investor figures (million RUB), coordinates."""
    cols = ["site_id", "name_ru", "name_en", "region_id", "region_ru", "region_en", "country_id", "country_ru",
            "country_en", "existing", "status_ru", "status_en", "store_type", "store_type_ru", "store_type_en",
            "size", "size_ru", "size_en", "capacity_status",
            "capacity_t", "throughput_t", "utilisation_pct", "held_t", "capital_mrub", "public_cofinancing_mrub",
            "investor_capital_mrub", "revenue_mrub", "opex_mrub", "operating_result_mrub", "npv_mrub",
            "npv_glut_mrub", "npv_short_mrub", "payback_years", "lat_deg", "lon_deg"]
    centres = pd.DataFrame(summary.get("centres", []))
    if centres.empty:
        return pd.DataFrame(columns=cols)
    cand = planned.candidates.set_index("candidate_id")
    out = pd.DataFrame({"site_id": centres["id"], "name_ru": centres["name_ru"], "name_en": centres["name_en"],
                        "region_id": centres["region"], "country_id": centres["country"],
                        "existing": centres["existing"].astype(bool)})
    out["region_ru"] = [names.region(r)[0] for r in out["region_id"]]
    out["region_en"] = [names.region(r)[1] for r in out["region_id"]]
    out["country_ru"] = [names.countries.get(c, (c, c))[0] for c in out["country_id"]]
    out["country_en"] = [names.countries.get(c, (c, c))[1] for c in out["country_id"]]
    out["status_ru"] = ["действующий" if e else "новый" for e in out["existing"]]
    out["status_en"] = ["existing" if e else "new" for e in out["existing"]]
    for col in ("store_type", "store_type_ru", "store_type_en"):
        out[col] = centres.get(col, "")
    out["size"] = centres["size"]
    # module ids: a size (``large``), a store type and a size (``store_large``), or an existing centre's expansion
    # (``existing+large``); the names say the size part
    sizes = [[p.rsplit("_", 1)[-1] for p in str(s).split("+")] for s in out["size"]]
    out["size_ru"] = [" + ".join(pair(SIZE_NAMES, p)[0] for p in parts) for parts in sizes]
    out["size_en"] = [" + ".join(pair(SIZE_NAMES, p)[1] for p in parts) for parts in sizes]
    out["capacity_status"] = centres["capacity_status"]
    out["capacity_t"] = centres["capacity_t"]
    out["throughput_t"] = centres["throughput_t"]
    out["utilisation_pct"] = centres["utilisation"].astype(float) * 100.0
    inv = investor[0].set_index("id") if investor is not None and not investor[0].empty else pd.DataFrame()
    money = {"capital_mrub": "capital_rub", "public_cofinancing_mrub": "public_cofinancing_rub",
             "investor_capital_mrub": "investor_capital_rub", "revenue_mrub": "revenue_rub", "opex_mrub": "opex_rub",
             "operating_result_mrub": "operating_result_rub", "npv_mrub": "npv_rub",
             "npv_glut_mrub": "npv_glut_year_rub", "npv_short_mrub": "npv_short_year_rub"}
    for new, old in money.items():
        out[new] = (out["site_id"].map(inv[old]) / 1e6) if old in inv else float("nan")
    out["held_t"] = out["site_id"].map(inv["held_t"]) if "held_t" in inv else float("nan")
    out["payback_years"] = out["site_id"].map(inv["payback_years"]) if "payback_years" in inv else float("nan")
    out.loc[out["capital_mrub"].fillna(0) <= 0, "payback_years"] = float("nan")  # no capital: no payback to show
    out["lat_deg"] = out["site_id"].map(cand["lat"])
    out["lon_deg"] = out["site_id"].map(cand["lon"])
    return rounded(out[cols])


def flows_table(result, names: Names) -> pd.DataFrame:
    """Every flow: kind, from and to with names, commodity group, tonnes a year, cost per tonne, transit loss."""
    f = result.flows
    if f.empty:
        return pd.DataFrame(columns=["kind", "kind_ru", "kind_en", "from_id", "from_ru", "from_en", "to_id",
                                     "to_ru", "to_en", "commodity", "commodity_ru", "commodity_en", "tonnes_t",
                                     "cost_rub_per_t", "lost_t"])
    out = pd.DataFrame({"kind": f["kind"], "from_id": f["from_id"].astype(str), "to_id": f["to_id"].astype(str),
                        "commodity": f["commodity"], "tonnes_t": f["tonnes"], "cost_rub_per_t": f["cost_per_t"],
                        "lost_t": f["lost_t"]})
    out = _with_names(out, "kind", fn=lambda k: pair(KIND_NAMES, k))
    out = _with_names(out, "from_id", fn=names.place)
    out = _with_names(out, "to_id", fn=names.place)
    out = _commodity(out)
    out = out[out["tonnes_t"] > 0.5].sort_values(["kind", "tonnes_t"], ascending=[True, False])
    return rounded(out.reset_index(drop=True))


def loss_tables(losses, names: Names) -> dict[str, pd.DataFrame]:
    """Losses against the traditional channel: by commodity group (with the value saved), by stage, by region."""
    if losses is None:
        return {k: pd.DataFrame() for k in ("losses", "losses_by_stage", "losses_by_region")}
    s = losses.summary.copy()
    summ = _commodity(pd.DataFrame({"commodity": s["commodity"], "baseline_t": s["baseline_t"],
                                    "network_t": s["network_t"], "saved_t": s["saved_t"],
                                    "reduction_pct": s["reduction_pct"],
                                    "saved_value_mrub": s["saved_value_rub"] / 1e6}))
    st = losses.compare("stage")
    stage = _commodity(st[["commodity", "stage", "baseline_t", "network_t", "saved_t"]])
    stage = _with_names(stage, "stage", fn=lambda k: pair(STAGE_NAMES, k))
    rg = losses.compare("region_id")
    region = _commodity(rg[["commodity", "region_id", "baseline_t", "network_t", "saved_t"]])
    region = _with_names(region, "region_id", fn=names.region)
    return {"losses": rounded(summ), "losses_by_stage": rounded(stage), "losses_by_region": rounded(region)}


def prices_table(prices, names: Names) -> pd.DataFrame:
    """Equilibrium consumer and farm-gate prices by region and group, traditional channel vs the network."""
    if prices is None or prices.regions.empty:
        return pd.DataFrame()
    p = prices.regions
    out = pd.DataFrame({
        "commodity": p["commodity"], "region_id": p["region_id"],
        "consumer_price_base_rub_per_t": p["consumer_price_base"],
        "consumer_price_network_rub_per_t": p["consumer_price_network"],
        "consumer_price_change_pct": p["consumer_price_change_pct"],
        "farm_price_base_rub_per_t": p["farm_price_base"], "farm_price_network_rub_per_t": p["farm_price_network"],
        "farm_price_change_pct": p["farm_price_change_pct"],
        "consumption_base_t": p["consumption_base_t"], "consumption_network_t": p["consumption_network_t"],
        "consumer_surplus_change_mrub": p["consumer_surplus_change_rub"] / 1e6,
        "producer_surplus_change_mrub": p["producer_surplus_change_rub"] / 1e6})
    out = _with_names(_commodity(out), "region_id", fn=names.region)
    return rounded(out)


def trade_table(summary: dict, names: Names) -> pd.DataFrame:
    """Imports and exports by outside market (ports, neighbouring countries, the rest of Russia) and group."""
    rows = []
    markets = {m["id"]: m for m in summary.get("outside_markets", [])}
    for direction, key in (("import", "imports_by_exit_t"), ("export", "exports_by_exit_t")):
        for market, by_group in summary.get(key, {}).items():
            m = markets.get(market, {})
            for commodity, tonnes in by_group.items():
                rows.append({"market_id": market, "market_ru": m.get("name_ru", market),
                             "market_en": m.get("name_en", market), "country_id": m.get("country", ""),
                             "direction_ru": pair(DIRECTION_NAMES, direction)[0],
                             "direction_en": pair(DIRECTION_NAMES, direction)[1],
                             "commodity": commodity, "tonnes_t": tonnes})
    if not rows:
        return pd.DataFrame()
    out = _with_names(_commodity(pd.DataFrame(rows)), "country_id", names.countries)
    return rounded(out)


def balance_table(summary: dict, names: Names) -> pd.DataFrame:
    """Production, demand and surplus in scope by region and group (tonnes a year; from ``summary['balance']``)."""
    rows = summary.get("balance", [])
    if not rows:
        return pd.DataFrame()
    b = pd.DataFrame(rows)
    out = pd.DataFrame({"region_id": b["region_id"], "commodity": b["commodity"], "production_t": b["production_t"],
                        "demand_t": b["demand_t"], "surplus_t": b["surplus_t"], "approximate": b["approximate"]})
    out = _commodity(_with_names(out, "region_id", fn=names.region))
    return rounded(out)


def costs_table(summary: dict) -> pd.DataFrame:
    """The objective's annual cost components, million RUB a year (revenues negative)."""
    rows = [{"component_ru": pair(COST_NAMES, k)[0], "component_en": pair(COST_NAMES, k)[1],
             "value_mrub": v / 1e6} for k, v in summary.get("cost_breakdown", {}).items()]
    return rounded(pd.DataFrame(rows)) if rows else pd.DataFrame()


def run_tables(planned, result, summary: dict, dataset, losses=None, prices=None, investor=None
               ) -> dict[str, pd.DataFrame]:
    """Every table of a run, keyed by its CSV name (:data:`CSV_TABLES`)."""
    names = names_for(planned, dataset)
    out = {"sites": sites_table(planned, summary, investor, names), "flows": flows_table(result, names)}
    out |= loss_tables(losses, names)
    out["prices"] = prices_table(prices, names)
    out["trade"] = trade_table(summary, names)
    out["balance"] = balance_table(summary, names)
    out["costs"] = costs_table(summary)
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """One table as CSV in UTF-8 with a BOM (Excel on Russian Windows reads it as such)."""
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    return path
