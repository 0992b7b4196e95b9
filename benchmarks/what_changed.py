"""Headline figures of the library scenarios, to compare two versions of the planner side by side.

``python benchmarks/what_changed.py run OUT.json`` runs the scenarios with the code on ``sys.path`` (so an older
checkout can be measured with ``PYTHONPATH=that/checkout``) and writes, per scenario: status, centres (town, size,
throughput), tonnes shipped through centres (by group) and traditionally, imports and exports by group, tonnes
lost, loss reduction, consumer-price change and the consumer price levels (demand-weighted mean of the regions,
RUB per tonne) against no centres, the investor's NPV of the new centres and the net social benefit.
``python benchmarks/what_changed.py table BEFORE.json AFTER.json`` prints the Markdown table for docs/economics.md.
Works on versions whose summaries lack the trade keys: their exports are read from the exit rows of the service
table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCENARIOS = ["ncfd_expansion", "eaeu_crossborder", "eaeu_upper_lars_closed", "eaeu_tariff_shock",
             "kazakhstan_pilots"]


def measure(root: Path) -> dict:
    """Run every scenario (economics included) and keep the figures the table compares."""
    from planner.data.loader import load_dataset
    from planner.execute import execute_scenario
    from planner.scenario import load_scenario

    ds = load_dataset()
    out = {}
    for name in SCENARIOS:
        sc = load_scenario(root / "scenarios" / f"{name}.yaml")
        run = execute_scenario(sc, ds)
        s = run.summary
        names = run.planned.candidates.set_index("candidate_id")["name_en"]
        centres = [{"town": names[c["id"]], "size": c["size"], "throughput_kt": c["throughput_t"] / 1e3,
                    "existing": bool(c["existing"])} for c in s.get("centres", [])]
        if "exports_t" in s:
            exports, imports = s["exports_t"], s["imports_t"]
        else:
            svc = run.result.service
            ex = svc[svc["is_exit"].astype(bool)].groupby("commodity")["delivered_t"].sum()
            exports, imports = ex.to_dict(), {}
        shipped = s.get("shipped_t", {})
        by_group = {k: v for k, v in shipped.items() if isinstance(v, dict)}
        through = by_group.get("through_centres", {}) or {  # older summaries: "through centres/<group>"
            k.split("/", 1)[1]: v for k, v in shipped.items() if k.startswith("through") and "/" in k}
        levels = {}
        r = getattr(run.prices, "regions", None)
        if r is not None and {"consumption_base_t", "consumer_price_base", "consumer_price_network"} <= set(r):
            # demand-weighted consumer price levels, RUB per tonne, without and with centres
            for k, g in r.groupby("commodity"):
                w = g["consumption_base_t"].clip(lower=0)
                if w.sum() > 0:
                    levels[k] = {"base": float((g["consumer_price_base"] * w).sum() / w.sum()),
                                 "network": float((g["consumer_price_network"] * w).sum() / w.sum())}
        out[name] = {
            "status": s["status"], "centres": centres,
            "through_centres_kt": (sum(through.values()) if by_group else
                                   sum(v for k, v in shipped.items() if k.startswith("through"))) / 1e3,
            "traditional_kt": (sum(by_group.get("traditional", {}).values()) if by_group else
                               sum(v for k, v in shipped.items() if k.startswith("traditional"))) / 1e3,
            "through_centres_by_group_kt": {k: v / 1e3 for k, v in through.items()},
            "consumer_price_rub_per_t": levels,
            "exports_kt": {k: v / 1e3 for k, v in exports.items()},
            "imports_kt": {k: v / 1e3 for k, v in imports.items()},
            "lost_kt": sum(s.get("loss_tonnes", {}).values()) / 1e3,
            "loss_reduction_pct": s.get("loss_reduction_pct", {}),
            "price_change_pct": s.get("price_change_pct", {}),
            "npv_new_mrub": (s.get("investor", {}).get("totals", {}).get("npv_new_rub") or 0.0) / 1e6,
            "operating_result_mrub": (s.get("investor", {}).get("totals", {}).get("operating_result_rub") or 0.0)
            / 1e6,
            "net_social_benefit_mrub": s.get("net_social_benefit_mrub"),
        }
    return out


def _groups(d: dict) -> str:
    return "; ".join(f"{k} {v:,.0f}" for k, v in sorted(d.items()) if abs(v) >= 0.5) or "0"


def _levels(d: dict) -> str:
    return "; ".join(f"{k} {v['base']:,.0f} → {v['network']:,.0f}" for k, v in sorted(d.items())) or "not measured"


def _pct(d: dict) -> str:
    return "; ".join(f"{k} {v:+.1f}%" for k, v in sorted(d.items())) or "—"


def table(before: dict, after: dict) -> str:
    """Markdown rows: one per scenario and figure, before and after."""
    lines = ["| scenario | figure | before | after |", "|---|---|---|---|"]
    for name in SCENARIOS:
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            continue
        rows = [
            ("new centres (town, size, kt)", *(", ".join(f"{c['town']} {c['size']} {c['throughput_kt']:,.0f}"
                                                         for c in x["centres"] if not c["existing"]) or "none"
                                              for x in (a, b))),
            ("existing centres' throughput, kt",
             *(f"{sum(c['throughput_kt'] for c in x['centres'] if c['existing']):,.0f}" for x in (a, b))),
            ("through centres / traditional, kt", *(f"{x['through_centres_kt']:,.0f} / {x['traditional_kt']:,.0f}"
                                                    for x in (a, b))),
            ("through centres by group, kt", *(_groups(x["through_centres_by_group_kt"])
                                               if x.get("through_centres_by_group_kt") else "not measured"
                                               for x in (a, b))),
            ("exports by group, kt", _groups(a["exports_kt"]), _groups(b["exports_kt"])),
            ("imports by group, kt", _groups(a["imports_kt"]) if a["imports_kt"] else "not modelled",
             _groups(b["imports_kt"])),
            ("lost, kt", f"{a['lost_kt']:,.0f}", f"{b['lost_kt']:,.0f}"),
            ("loss reduction vs no centres", _pct(a["loss_reduction_pct"]), _pct(b["loss_reduction_pct"])),
            ("consumer price change vs no centres", _pct(a["price_change_pct"]), _pct(b["price_change_pct"])),
            ("consumer price, no centres → with the plan, RUB/t (demand-weighted mean of the regions)",
             *(_levels(x.get("consumer_price_rub_per_t", {})) for x in (a, b))),
            ("investor NPV of new centres, M RUB", f"{a['npv_new_mrub']:,.0f}", f"{b['npv_new_mrub']:,.0f}"),
            ("operating result of all centres, M RUB a year", *(f"{x.get('operating_result_mrub', 0):,.0f}"
                                                                 for x in (a, b))),
            ("net social benefit vs today's network, M RUB a year",
             *("not computed" if x.get("net_social_benefit_mrub") is None else f"{x['net_social_benefit_mrub']:+,.0f}"
               for x in (a, b))),
        ]
        for fig, x, y in rows:
            lines.append(f"| {name} | {fig} | {x} | {y} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        root = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).resolve().parents[1]
        Path(sys.argv[2]).write_text(json.dumps(measure(root), ensure_ascii=False, indent=1, default=float))
    elif len(sys.argv) == 4 and sys.argv[1] == "table":
        print(table(json.loads(Path(sys.argv[2]).read_text()), json.loads(Path(sys.argv[3]).read_text())))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
