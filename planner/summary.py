"""The run summary: opened centres with names and sizes, cost components, flows by channel, losses, shortfalls.

One dictionary that the CLI prints and (later) the API serves; every figure in tonnes a year or RUB a year.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime
from importlib import metadata
from pathlib import Path

import pandas as pd

from optimization.results import NetworkResult
from planner.balance import regional_balance
from planner.parameters import STORE_TYPES
from planner.pipeline import PlannedProblem
from planner.scenario import Scenario
from planner.settings import EMBEDDED_DATA_DIR

PROVENANCE_PACKAGES: tuple[str, ...] = ("orc-planner", "pyomo", "highspy", "pandas", "geopandas", "networkx")
"""Packages whose versions a run's provenance records (the planner itself first)."""


def clean_json(obj):
    """The same structure with NaN and ±inf replaced by None (JSON and PostgreSQL's json type refuse them)."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    return obj


def centres_table(planned: PlannedProblem, result: NetworkResult) -> pd.DataFrame:
    """Opened centres: id, names (ru, en), region, country, existing, size (the module id: ``small`` … for a
    distribution centre, ``store_small`` … for a potato and vegetable store), store type (key, ru, en), capacity
    and throughput (t), utilisation."""
    if result.sites.empty:
        return pd.DataFrame()
    cands = planned.candidates.set_index("candidate_id")
    opened = result.sites[result.sites["open"]].set_index("site_id")
    types = (opened["store_type"].fillna("dc").astype(str).tolist() if "store_type" in opened.columns
             else ["dc"] * len(opened))
    out = pd.DataFrame({
        "id": opened.index,
        "name_ru": cands.loc[opened.index, "name_ru"].to_numpy(),
        "name_en": cands.loc[opened.index, "name_en"].to_numpy(),
        "region": cands.loc[opened.index, "region_id"].to_numpy(),
        "country": cands.loc[opened.index, "country"].to_numpy(),
        "existing": opened["existing"].to_numpy(),
        "size": opened["module_id"].to_numpy(),
        "store_type": types,
        "store_type_ru": [STORE_TYPES[t].name_ru for t in types],
        "store_type_en": [STORE_TYPES[t].name_en for t in types],
        "capacity_t": opened["capacity_t"].to_numpy(),
        "throughput_t": opened["throughput_t"].to_numpy(),
        "utilisation": opened["utilisation"].to_numpy(),
        "capacity_status": [planned.capacity_status.get(i, "new") for i in opened.index],
    })
    return out.reset_index(drop=True)


def summarize(scenario: Scenario, planned: PlannedProblem, result: NetworkResult) -> dict:
    """JSON-ready summary of a solved scenario."""
    out: dict = {"scenario": scenario.name, "status": result.status, "message": result.message,
                 "objective": result.objective, "bound": result.bound, "gap": result.gap,
                 "build_seconds": round(result.build_seconds, 3), "solve_seconds": round(result.solve_seconds, 3),
                 "problem_size": planned.problem.size(), "warm_start": result.start}
    if result.objective is None:
        return out
    out["centres"] = centres_table(planned, result).to_dict("records")
    out["cost_breakdown"] = dict(zip(result.costs["component"], result.costs["value"], strict=True))
    f = result.flows
    channel = f[f["kind"] != "outbound"].assign(channel=lambda d: d["kind"].map({"inbound": "through centres",
                                                                                   "direct": "traditional"}))
    shipped = channel.groupby(["channel", "commodity"])["tonnes"].sum()
    out["shipped_t"] = {f"{c}/{k}": t for (c, k), t in shipped.items()}
    lost = f.groupby("commodity")["lost_t"].sum()
    unsold = result.unsold.assign(lost=lambda d: d["unsold_t"] * planned.problem.supplies["storage_loss"])
    lost = lost.add(unsold.groupby("commodity")["lost"].sum(), fill_value=0.0)
    out["loss_tonnes"] = lost.to_dict()
    out.update(trade_summary(planned, result))
    out["lost_value_rub"] = result.lost_value
    out["diagnosis"] = [d["message"] for d in result.diagnosis]
    out["notes"] = list(planned.notes)
    return out


def centres_that_pay(investor_table: pd.DataFrame) -> dict:
    """How many of a plan's new centres pay in the investor's sense (NPV ≥ 0 at the discount rate, after the
    public co-financing; and with the preferential loan), and which: counts, ids, and the NPV of each (million
    RUB), from the investor view's table (:func:`planner.economics.investor.investor_view`)."""
    if investor_table is None or investor_table.empty:
        return {"new_centres": 0, "paying": 0, "paying_with_loan": 0, "paying_ids": [], "npv_new_mrub": {}}
    new = investor_table[~investor_table["existing"].astype(bool)]
    pays = new[new["npv_rub"] >= 0]
    pays_loan = new[new["npv_with_loan_rub"] >= 0]
    return {"new_centres": int(len(new)), "paying": int(len(pays)), "paying_with_loan": int(len(pays_loan)),
            "paying_ids": pays["id"].tolist(), "paying_with_loan_ids": pays_loan["id"].tolist(),
            "npv_new_mrub": {str(i): float(v) / 1e6 for i, v in zip(new["id"], new["npv_rub"], strict=True)}}


def trade_summary(planned: PlannedProblem, result: NetworkResult) -> dict:
    """Imports, exports and unmet demand by commodity group (tonnes a year), trade by outside market and group,
    and the cause of any unmet demand (a code from ``optimization.results.UNMET_CAUSES`` with its message)."""
    groups = list(planned.problem.commodities)
    t = result.trade
    by_market: dict[str, dict[str, dict[str, float]]] = {"import": {}, "export": {}}
    totals = {"import": dict.fromkeys(groups, 0.0), "export": dict.fromkeys(groups, 0.0)}
    if t is not None and not t.empty:
        for r in t.itertuples():
            market = str(r.row_id).split(":", 1)[1]
            by_market[r.direction].setdefault(market, {})[r.commodity] = float(r.tonnes)
            totals[r.direction][r.commodity] += float(r.tonnes)
    svc = result.service[~result.service["is_exit"].astype(bool)]
    unmet = svc.groupby("commodity")["unmet_t"].sum()
    return {"imports_t": totals["import"], "exports_t": totals["export"],
            "unmet_t": {k: float(unmet.get(k, 0.0)) for k in groups},
            "imports_by_exit_t": by_market["import"], "exports_by_exit_t": by_market["export"],
            "unmet_causes": [{k: d[k] for k in ("demand_id", "commodity", "unmet_t", "cause", "message")}
                             for d in result.diagnosis],
            "outside_markets": [{"id": o.market_id, "name_ru": o.name_ru, "name_en": o.name_en,
                                 "country": o.country_id, "kind": o.kind,
                                 "tariff_export_pct": o.tariff_export_pct, "tariff_import_pct": o.tariff_import_pct}
                                for o in planned.outside]}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def scenario_hash(scenario: Scenario) -> str:
    """SHA-256 of the scenario as run: its fields after ``extends`` is resolved, as canonical JSON (sorted keys),
    so the same scenario hashes the same whether it came from a file, an API body or a sweep."""
    body = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def data_versions(dataset) -> dict[str, dict]:
    """Per table of the dataset: the file it came from (embedded or the user's), its rows and the SHA-256 of the
    file's bytes (of the table's CSV text where the file cannot be read)."""
    out = {}
    for name, frame in sorted(dataset.tables.items()):
        file = dataset.files.get(name, "")
        path = Path(file) if Path(file).is_absolute() else EMBEDDED_DATA_DIR / file
        if file and path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            origin = "embedded" if path.parent == EMBEDDED_DATA_DIR else "user"
        else:
            digest = hashlib.sha256(frame.to_csv(index=False).encode("utf-8")).hexdigest()
            origin = "in memory"
        out[name] = {"file": Path(file).name if origin == "embedded" else file, "origin": origin,
                     "rows": int(len(frame)), "sha256": digest}
    return out


def provenance(scenario: Scenario, dataset, params, started: datetime) -> dict:
    """What a reader needs to reproduce the run: software versions, the start time (ISO 8601 with time zone),
    the scenario and data hashes, each table's version, and every parameter value actually used (with its unit
    and source: registry default, or scenario override)."""
    versions = data_versions(dataset)
    data_digest = hashlib.sha256("".join(f"{k}:{v['sha256']};" for k, v in versions.items()).encode()).hexdigest()
    table = params.table()
    return {
        "software": {"package": "orc-planner", "version": _version("orc-planner"),
                     "python": platform.python_version(),
                     "libraries": {p: _version(p) for p in PROVENANCE_PACKAGES[1:]}},
        "run_started": started.isoformat(timespec="seconds"),
        "scenario_name": scenario.name,
        "scenario": {"title_ru": scenario.title_ru, "title_en": scenario.title_en,
                     "demand_basis": scenario.demand_basis, "commodities": list(scenario.commodities),
                     "scope": scenario.scope.model_dump(mode="json"),
                     "borders": {k: v.model_dump(mode="json") for k, v in scenario.borders.items()}},
        "scenario_sha256": scenario_hash(scenario),
        "data_sha256": data_digest,
        "data_tables": versions,
        "fao_loss_region": params.fao_region,
        "parameters": [{"name": r.name, "value": float(r.value), "unit": r.unit, "source": r.source}
                       for r in table.itertuples()],
        "loss_shares_pct": [{"commodity": r.commodity, "stage": r.stage, "loss_pct": float(r.loss_pct),
                             "source": r.source}
                            for r in params.loss_table().itertuples() if r.commodity in scenario.commodities],
    }


def balance_records(scenario: Scenario, dataset, params) -> list[dict]:
    """The scope's supply-demand balance by region and group in tonnes a year (production, demand on the
    scenario's ``demand_basis``, surplus; ``approximate`` where either input is flagged)."""
    b = regional_balance(dataset, scenario.region_ids(dataset), list(scenario.commodities), params,
                         scenario.demand_basis)
    approx = b["approximate"].astype(bool) | b.get("demand_approximate", False)
    return [{"region_id": r.region_id, "commodity": r.commodity,
             "production_t": None if pd.isna(r.production_kt) else float(r.production_kt) * 1000.0,
             "demand_t": float(r.demand_kt) * 1000.0,
             "surplus_t": None if pd.isna(r.surplus_kt) else float(r.surplus_kt) * 1000.0,
             "approximate": bool(a)} for r, a in zip(b.itertuples(), approx, strict=True)]
