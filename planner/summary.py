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

from geo.export import flow_paths
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


def summarize(scenario: Scenario, planned: PlannedProblem, result: NetworkResult, dataset=None) -> dict:
    """JSON-ready summary of a solved scenario. With the ``dataset`` it also splits the trade by border crossing
    and port (:func:`trade_by_crossing`; every run does)."""
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
    if dataset is not None:
        out.update(trade_by_crossing(planned, result.flows, dataset, scenario.region_ids(dataset)))
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


def split_by_crossing(flows: pd.DataFrame, crossings: pd.DataFrame, scope_countries: set[str]) -> dict:
    """Where each trade flow enters or leaves the scope (the one split the summary and the GIS ``trade`` layer
    share, :func:`planner.outputs.gis.trade_layer`).

    ``flows``: routed flows with ``from_id``, ``to_id`` (an import starts at ``import:<market>``, an export ends at
    ``exit:<market>``), ``commodity``, ``tonnes_t``, ``lost_t`` and ``crossings`` (the border crossings its path
    passes, comma-separated ids, in path order). ``crossings``: the dataset's ``border_crossings`` (``crossing_id``,
    ``country_a``, ``country_b``). A trade flow counts once, at the crossing of the scope's border nearest its
    market (the first such crossing of an import's path, the last of an export's: a flow to Armenia through
    Georgia counts at Upper Lars); an export counts what the market receives (tonnes less transit losses), as the
    outside markets count trade. A trade flow that passes no crossing of the scope's border (a port, the rest of
    Russia, a market whose node lies inside the scope) has no gate.

    Returns, in tonnes a year: ``gates`` (the gate id, or None, of each row of ``flows``; the direction
    ``imports``/``exports``/None and the market id beside it), ``imports`` and ``exports`` (crossing id → group →
    tonnes), ``other_passing_t`` (crossing id → what else passes it: flows between the scope's own places and a
    trade flow's further crossings), ``via`` (crossing id → the markets its trade comes from or goes to) and
    ``market_gates`` (market id → the crossings its trade passes)."""
    x = crossings.set_index("crossing_id")
    out: dict = {"gates": [], "imports": {}, "exports": {}, "other_passing_t": {}, "via": {}, "market_gates": {}}
    for f in flows.itertuples():
        ids = [c for c in str(f.crossings or "").split(",") if c in x.index]
        frm, to = str(f.from_id), str(f.to_id)
        d = "imports" if frm.startswith("import:") else "exports" if to.startswith("exit:") else None
        market = (frm if d == "imports" else to).split(":", 1)[1] if d else None
        border = [c for c in ids if (x.loc[c, "country_a"] in scope_countries) != (x.loc[c, "country_b"]
                                                                                    in scope_countries)]
        gate = (border[0] if d == "imports" else border[-1]) if d and border else None
        out["gates"].append((d, market, gate))
        for cid in ids:
            if cid != gate:
                out["other_passing_t"][cid] = out["other_passing_t"].get(cid, 0.0) + float(f.tonnes_t)
        if gate is None:
            continue
        tonnes = float(f.tonnes_t) - (float(f.lost_t or 0.0) if d == "exports" else 0.0)
        by_group = out[d].setdefault(gate, {})
        by_group[f.commodity] = by_group.get(f.commodity, 0.0) + tonnes
        out["via"].setdefault(gate, set()).add(market)
        out["market_gates"].setdefault(market, set()).add(gate)
    return out


def trade_by_crossing(planned: PlannedProblem, flows: pd.DataFrame, dataset, scope_regions: list[str]) -> dict:
    """Imports and exports by the place they enter or leave the scope, tonnes a year, from ``flows`` (a solved
    plan's flows table: ``from_id``, ``to_id``, ``commodity``, ``tonnes``, ``lost_t``; ids as in
    ``planned.nodes``):
    ``imports_by_crossing_t`` and ``exports_by_crossing_t`` (crossing or port → group → tonnes). A trade flow that
    passes a border crossing of the scope counts there (:func:`split_by_crossing`, routed along the model's own
    paths, :func:`geo.export.flow_paths`); one that passes none counts at its outside market (a port, the rest of
    Russia, a market whose node lies inside the scope), so each group's rows add up to ``imports_t`` and
    ``exports_t``. ``trade_points`` names each key: ``id``, ``kind`` (crossing, port, border, rest_of_russia),
    ``name_ru``, ``name_en``."""
    f = flows
    empty = {"imports_by_crossing_t": {}, "exports_by_crossing_t": {}, "trade_points": []}
    if f is None or f.empty:
        return empty
    frm, to = f["from_id"].astype(str), f["to_id"].astype(str)
    f = f[(frm.str.startswith("import:") | to.str.startswith("exit:")) & (f["tonnes"] > 1e-6)]
    if f.empty:
        return empty
    trips = [(planned.nodes.get(str(a)), planned.nodes.get(str(b)), c)
             for a, b, c in zip(f["from_id"], f["to_id"], f["commodity"], strict=True)]
    paths = flow_paths(planned.graph, [t for t in trips if t[0] is not None and t[1] is not None], planned.params)
    routed = pd.DataFrame({"from_id": f["from_id"].astype(str).to_numpy(), "to_id": f["to_id"].astype(str).to_numpy(),
                           "commodity": f["commodity"].to_numpy(), "tonnes_t": f["tonnes"].to_numpy(float),
                           "lost_t": f["lost_t"].to_numpy(float),
                           "crossings": [",".join(paths.get(t, ((), ()))[1]) for t in trips]})
    scope_countries = set(dataset.regions.loc[dataset.regions["region_id"].isin(scope_regions), "country_id"])
    split = split_by_crossing(routed, dataset.border_crossings, scope_countries)
    out = {"import": split["imports"], "export": split["exports"]}
    for r, (d, market, gate) in zip(routed.itertuples(), split["gates"], strict=True):
        if gate is None and d is not None:  # no crossing: the outside market itself (a port, the rest of Russia)
            tonnes = float(r.tonnes_t) - (float(r.lost_t) if d == "exports" else 0.0)
            by_group = out[d[:-1]].setdefault(market, {})
            by_group[r.commodity] = by_group.get(r.commodity, 0.0) + tonnes
    x = dataset.border_crossings.set_index("crossing_id")
    kinds = {o.market_id: o for o in planned.outside}
    points = []
    for pid in sorted(set(out["import"]) | set(out["export"])):
        if pid in x.index:
            points.append({"id": pid, "kind": "crossing", "name_ru": str(x.at[pid, "name_ru"]),
                           "name_en": str(x.at[pid, "name_en"])})
        else:
            o = kinds.get(pid)
            points.append({"id": pid, "kind": o.kind if o else "border", "name_ru": o.name_ru if o else pid,
                           "name_en": o.name_en if o else pid})
    return {"imports_by_crossing_t": out["import"], "exports_by_crossing_t": out["export"], "trade_points": points}


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
