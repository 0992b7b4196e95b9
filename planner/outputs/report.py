"""The briefing report: ``report.html`` (self-contained, images inlined, no CDN) and ``report.pdf`` from the
same Jinja2 template (``templates/report.html.j2``; the PDF is rendered offline by xhtml2pdf with the DejaVu
Sans font that ships with matplotlib, so Cyrillic needs no system font).

The headline figures are computed once here (:func:`headline`), written into ``summary.json`` and rendered in
the report, so the two always agree (tests parse them back out of the HTML and the PDF's text).
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import jinja2
import matplotlib
import pandas as pd

from planner.outputs.charts import cost_chart, loss_chart, price_chart
from planner.outputs.labels import COLUMNS, SIZE_NAMES, clean_number, commodity_names, fmt, pair

KEY_PARAMETERS: tuple[str, ...] = (
    "discount_rate_pct", "social_discount_rate_pct", "support_compensation_pct", "centre_loss_factor",
    "road_tariff_rub_per_tkm", "rail_tariff_rub_per_tkm", "centre_handling_rub_per_t",
    "traditional_handling_rub_per_t", "centre_tariff_rub_per_t", "module_small_capital_mrub",
    "module_medium_capital_mrub", "module_large_capital_mrub", "existing_centre_capacity_kt",
    "transit_loss_pct_per_day_{c}", "value_rub_per_t_{c}", "seasonal_spread_low_pct_{c}",
    "seasonal_spread_high_pct_{c}", "demand_elasticity_{c}",
)
"""Parameters that drive the answer (``{c}`` = each group of the scenario), shown in the report's assumptions;
the full list is in a collapsed table, and every value used is in ``summary.json`` (provenance)."""

HEADLINE_DECIMALS: dict[str, int] = {
    "loss_baseline_t": 0, "loss_network_t": 0, "loss_saved_t": 0, "loss_reduction_pct": 2,
    "loss_saved_value_mrub": 0, "net_social_benefit_mrub": 0, "social_npv_mrub": 0, "investor_npv_mrub": 0,
    "capital_new_mrub": 0, "public_cofinancing_new_mrub": 0, "public_support_pct": 1, "centres_new": 0,
    "centres_existing": 0, "throughput_t": 0, "operating_result_mrub": 0, "exports_t": 0, "imports_t": 0,
    "unmet_t": 0,
}
"""Decimals each headline figure is shown with (summary.json carries them rounded the same way)."""
PRICE_DECIMALS = 3

TEMPLATE_DIR = Path(__file__).parent / "templates"
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def headline(summary: dict) -> dict:
    """The report's headline figures from the summary, rounded as shown: tonnes a year, %, million RUB.

    ``loss_*`` against the traditional channel (all groups); ``consumer_price_change_pct`` per group, against the
    traditional channel and (``…_vs_existing_pct``) against today's centres; ``net_social_benefit_mrub`` a year
    against today's centres; investor figures for the new centres."""
    out: dict = {}
    centres = summary.get("centres", [])
    out["centres_new"] = sum(1 for c in centres if not c.get("existing"))
    out["centres_existing"] = sum(1 for c in centres if c.get("existing"))
    out["throughput_t"] = sum(float(c.get("throughput_t") or 0.0) for c in centres)
    for key, src in (("exports_t", "exports_t"), ("imports_t", "imports_t"), ("unmet_t", "unmet_t")):
        out[key] = sum(float(v) for v in summary.get(src, {}).values())
    base, net = summary.get("loss_tonnes_baseline"), summary.get("loss_tonnes_network")
    if base and net:
        b, n = sum(base.values()), sum(net.values())
        out["loss_baseline_t"], out["loss_network_t"], out["loss_saved_t"] = b, n, b - n
        out["loss_reduction_pct"] = (b - n) / b * 100.0 if b > 0 else 0.0
        saved_value = [r.get("saved_value_rub", 0.0) for r in summary.get("losses", {}).get("summary", [])]
        out["loss_saved_value_mrub"] = sum(saved_value) / 1e6
    social = summary.get("social") or {}
    if social:
        out["net_social_benefit_mrub"] = social.get("net_social_benefit_mrub")
        out["social_npv_mrub"] = social.get("social_npv_mrub")
    tot = (summary.get("investor") or {}).get("totals") or {}
    if tot:
        out["investor_npv_mrub"] = tot.get("npv_new_rub", 0.0) / 1e6
        out["capital_new_mrub"] = tot.get("capital_new_rub", 0.0) / 1e6
        out["public_cofinancing_new_mrub"] = tot.get("public_cofinancing_new_rub", 0.0) / 1e6
        out["public_support_pct"] = tot.get("public_support_pct")
        out["operating_result_mrub"] = tot.get("operating_result_rub", 0.0) / 1e6
    out = {k: clean_number(v, HEADLINE_DECIMALS[k]) for k, v in out.items()}
    for key, src in (("consumer_price_change_pct", "price_change_pct"),
                     ("consumer_price_change_vs_existing_pct", "price_change_vs_existing_pct"),
                     ("farm_price_change_pct", "farm_price_change_pct")):
        if summary.get(src):
            out[key] = {c: clean_number(v, PRICE_DECIMALS) for c, v in summary[src].items()}
    return out


def _img(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def _records(frame: pd.DataFrame, cols: list[str]) -> list[dict]:
    return [] if frame.empty else frame[[c for c in cols if c in frame.columns]].to_dict("records")


def _kind(source: str) -> tuple[str, str]:
    s = source.lower()
    if s.startswith("scenario override"):
        return ("задано сценарием", "scenario override")
    if s.startswith("project assumption"):
        return ("допущение проекта", "project assumption")
    if s.startswith("approximate") or "approximate" in s:
        return ("приблизительно", "approximate")
    if s.startswith("numerical setting"):
        return ("настройка расчёта", "numerical setting")
    return ("по опубликованному источнику", "published source")


def parameter_rows(summary: dict, commodities: list[str]) -> tuple[list[dict], list[dict]]:
    """(key parameters, all parameters) as rows: name, value, unit, basis RU/EN, source."""
    params = (summary.get("provenance") or {}).get("parameters", [])
    keys = set()
    for k in KEY_PARAMETERS:
        keys |= {k.format(c=c) for c in commodities} if "{c}" in k else {k}
    rows = []
    for p in params:
        ru, en = _kind(p["source"])
        rows.append({"name": p["name"], "value": p["value"], "unit": p["unit"], "basis_ru": ru, "basis_en": en,
                     "source": p["source"], "key": p["name"] in keys or p["source"] == "scenario override"})
    return [r for r in rows if r["key"]], rows


def crossing_rows(layers: dict, dataset) -> list[dict]:
    """Tonnes a year through each border crossing by direction (import: from an outside market; export: to one;
    transit otherwise) and group, summed over the flows' routes."""
    flows = layers.get("flows")
    if flows is None or flows.empty:
        return []
    x = dataset.border_crossings.set_index("crossing_id")
    acc: dict[tuple[str, str, str], float] = {}
    for r in flows.itertuples():
        direction = ("import" if str(r.from_id).startswith("import:") else
                     "export" if str(r.to_id).startswith("exit:") else "transit")
        for cid in filter(None, str(r.crossings).split(",")):
            acc[(cid, direction, r.commodity)] = acc.get((cid, direction, r.commodity), 0.0) + float(r.tonnes_t)
    names = {"import": ("ввоз", "import"), "export": ("вывоз", "export"), "transit": ("транзит", "transit")}
    rows = []
    for (cid, direction, c), t in sorted(acc.items()):
        ru, en = commodity_names(c)
        rows.append({"crossing_id": cid, "crossing_ru": x.loc[cid, "name_ru"] if cid in x.index else cid,
                     "crossing_en": x.loc[cid, "name_en"] if cid in x.index else cid,
                     "direction_ru": names[direction][0], "direction_en": names[direction][1],
                     "commodity_ru": ru, "commodity_en": en, "tonnes_t": t})
    return rows


PER_GROUP_KEYS = ("loss_tonnes_baseline", "loss_tonnes_network", "loss_reduction_pct", "price_change_pct",
                  "farm_price_change_pct", "price_change_vs_existing_pct", "imports_t", "exports_t", "unmet_t")
"""Summary entries keyed by commodity group (each may lack the groups its stage did not see)."""


def report_commodities(summary: dict) -> list[str]:
    """The commodity groups the report names: the scenario's own (``provenance.scenario.commodities``), in its
    order, then any other group a per-group figure of the summary or its headline carries. A scope that
    produces no milk or meat (Uzbekistan, Tajikistan, Kyrgyzstan, Azerbaijan alone) has no losses for them but
    still prices them: the report must name every group it shows."""
    groups = list(((summary.get("provenance") or {}).get("scenario") or {}).get("commodities") or [])
    blocks = [summary, summary.get("headline") or {}]
    for block in blocks:
        for key in (*PER_GROUP_KEYS, "consumer_price_change_pct", "consumer_price_change_vs_existing_pct"):
            value = block.get(key)
            if isinstance(value, dict):
                groups += [c for c in value if isinstance(c, str) and c not in groups]
    return groups


def context(summary: dict, scenario_meta: dict, t: dict[str, pd.DataFrame], layers: dict, dataset,
            map_png: Path, pdf: bool) -> dict:
    """Everything the template shows."""
    commodities = report_commodities(summary)
    key_params, all_params = parameter_rows(summary, commodities)
    bal = t["balance"]
    bal_total = (bal.groupby(["commodity", "commodity_ru", "commodity_en"], sort=False)[
        ["production_t", "demand_t", "surplus_t"]].sum(min_count=1).reset_index()) if not bal.empty else bal
    trade = t["trade"]
    trade_nonzero = trade[trade["tonnes_t"].fillna(0) > 0] if not trade.empty else trade
    sites = t["sites"]
    return {
        "pdf": pdf, "s": summary, "h": summary.get("headline", {}), "meta": scenario_meta,
        "prov": summary.get("provenance") or {},
        "map_src": _img(map_png.read_bytes()) if map_png.exists() else None,
        "cost_src": _img(cost_chart(t["costs"])),
        "loss_src": _img(loss_chart(t["losses"], t["losses_by_stage"])),
        "price_src": _img(price_chart(t["prices"])),
        "balance_total": _records(bal_total, list(bal_total.columns)), "balance": _records(bal, list(bal.columns)),
        "sites": _records(sites, list(sites.columns)),
        "costs": _records(t["costs"], list(t["costs"].columns)),
        "losses": _records(t["losses"], list(t["losses"].columns)),
        "losses_by_stage": _records(t["losses_by_stage"], list(t["losses_by_stage"].columns)),
        "losses_by_region": _records(t["losses_by_region"], list(t["losses_by_region"].columns)),
        "prices": _records(t["prices"], list(t["prices"].columns)),
        "trade": _records(trade_nonzero, list(trade.columns)), "trade_rows_total": len(trade),
        "crossings": crossing_rows(layers, dataset),
        "districts": _records(t["districts"], list(t["districts"].columns)) if "districts" in t else [],
        "flows_count": len(t["flows"]),
        "key_params": key_params, "all_params": all_params,
        "commodity_names": {c: commodity_names(c) for c in commodities},
        "size_names": SIZE_NAMES,
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=jinja2.select_autoescape(),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = lambda v, d=0, sign=False, unit="": fmt(v, d, sign, unit)
    env.globals["col"] = COLUMNS
    env.globals["pair"] = pair
    env.globals["font_dir"] = FONT_DIR.as_posix()
    return env


def render_html(ctx: dict) -> str:
    """The report as HTML text (``ctx`` from :func:`context`)."""
    return _environment().get_template("report.html.j2").render(**ctx)


def write_pdf(html_text: str, path: Path) -> Path:
    """Render the PDF version (xhtml2pdf, offline) of the report's HTML; raises RuntimeError on failure."""
    from xhtml2pdf import pisa
    from xhtml2pdf.config.resources import ResourceAccessPolicy

    # local reads confined to the font folder, nothing remote (images are inlined as data: URIs)
    policy = ResourceAccessPolicy(allow_remote=False, base_dir=FONT_DIR)
    log = logging.getLogger("xhtml2pdf")
    level = log.level
    log.setLevel(logging.ERROR)  # its per-glyph notices about the <title> (never drawn) are noise
    try:
        with open(path, "wb") as fh:
            status = pisa.CreatePDF(html_text, dest=fh, resource_policy=policy)
    finally:
        log.setLevel(level)
    if status.err:
        raise RuntimeError(f"report.pdf: xhtml2pdf reported {status.err} error(s)")
    return path
