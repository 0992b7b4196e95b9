"""Sensitivity of the siting answer to every arbitrary knob: halve and double each, solve to a zero gap, and
compare the objective and the chosen sites (by town) with the default run.

Usage: ``.venv/bin/python benchmarks/sensitivity.py [SCENARIO ...] [--doc docs/model.md]``. With ``--doc`` the
table replaces the section between the markers ``<!-- sensitivity:start -->`` and ``<!-- sensitivity:end -->``.
A knob passes when the objective moves by less than 1% and the sites stay the same (or the two plans' objectives
lie within 0.1% of each other). Project assumptions the answers lean on (``centre_loss_factor``,
``price_pass_through``) are listed too, with the headline figures they move.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docsection import replace_section  # noqa: E402

from optimization.run import optimize  # noqa: E402
from optimization.solve import SolverOptions  # noqa: E402
from planner.data.loader import load_dataset  # noqa: E402
from planner.pipeline import build_problem  # noqa: E402
from planner.scenario import load_scenario, parse_scenario  # noqa: E402

KNOBS = [  # (label, where, name, default when the scenario does not set it)
    ("network.k_nearest", "network", "k_nearest", None),
    ("unmet_penalty_factor", "parameters", "unmet_penalty_factor", 10.0),
    ("outside_step_pct", "parameters", "outside_step_pct", 2.5),
    ("outside_purchase_price_cap", "parameters", "outside_purchase_price_cap", 3.0),
    ("outside_unrecorded_trade_kt", "parameters", "outside_unrecorded_trade_kt", 10.0),
    ("candidates.max_per_region", "candidates", "max_per_region", None),
    ("candidates.min_spacing_km", "candidates", "min_spacing_km", None),
    ("outside_elasticity_partner", "parameters", "outside_elasticity_partner", 2.0),
    ("outside_elasticity_rest_of_russia", "parameters", "outside_elasticity_rest_of_russia", 5.0),
    ("centre_loss_factor", "parameters", "centre_loss_factor", 0.5),
]


def solve(raw: dict, dataset) -> dict:
    """Build and solve one variant at a zero gap; its objective, arcs, sites (by town) and trade."""
    sc = parse_scenario(raw)
    planned = build_problem(sc, dataset)
    res = optimize(planned.problem, SolverOptions(rel_gap=0.0, time_limit=600))
    names = planned.candidates.set_index("candidate_id")["name_en"]
    pb = planned.problem
    sites = sorted(f"{names[s]}" + ("" if not pb.sites.set_index("site_id").at[s, "existing"] else "*")
                   for s in res.open_sites)
    return {"objective": res.objective, "status": res.status,
            "arcs": len(pb.inbound) + len(pb.outbound) + len(pb.direct), "sites": sites,
            "exports_t": float(res.trade.loc[res.trade["direction"] == "export", "tonnes"].sum())
            if not res.trade.empty else 0.0}


def run(path: Path, dataset) -> list[dict]:
    """Every knob halved and doubled on one scenario (see the module docstring)."""
    base_sc = load_scenario(path)
    raw = base_sc.model_dump(mode="json", exclude_none=True)
    base = solve(raw, dataset)
    rows = [{"scenario": base_sc.name, "knob": "(defaults)", "value": "", **base, "change_pct": 0.0, "ok": True}]
    for label, where, name, default in KNOBS:
        current = raw.get(where, {}).get(name, default)
        if current is None:
            current = getattr(getattr(base_sc, where), name)
        for factor in (0.5, 2.0):
            v = current * factor
            if isinstance(current, int) and not isinstance(current, bool):
                v = max(1, int(round(v)))
            variant = copy.deepcopy(raw)
            variant.setdefault(where, {})[name] = v
            t0 = time.perf_counter()
            got = solve(variant, dataset)
            change = 100 * (got["objective"] - base["objective"]) / abs(base["objective"])
            ok = abs(change) < 1.0 and (got["sites"] == base["sites"] or abs(change) < 0.1)
            rows.append({"scenario": base_sc.name, "knob": label, "value": v, **got, "change_pct": change,
                         "ok": ok, "seconds": time.perf_counter() - t0})
            print(f"{base_sc.name:24s} {label:36s} {v!s:>8s} arcs {got['arcs']:6d} obj {change:+7.3f}% "
                  f"{'ok' if ok else 'MOVES'} {', '.join(got['sites'])}", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    out = ["| scenario | knob | value | arcs kept | objective, M RUB/yr | change | sites (town; * existing) | "
           "holds |", "|---|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        out.append(f"| {r['scenario']} | {r['knob']} | {r['value']} | {r['arcs']:,} | {r['objective'] / 1e6:,.1f} | "
                   f"{r['change_pct']:+.3f}% | {', '.join(r['sites'])} | {'yes' if r['ok'] else '**no**'} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", type=Path,
                    default=[ROOT / "scenarios" / "ncfd_expansion.yaml",
                             ROOT / "scenarios" / "south_russia_corridors.yaml",
                             ROOT / "scenarios" / "eaeu_crossborder.yaml"])
    ap.add_argument("--doc", type=Path, help="write the table into this Markdown file between the markers")
    args = ap.parse_args()
    dataset = load_dataset()
    rows = [r for p in args.scenarios for r in run(p, dataset)]
    md = table(rows)
    print(md)
    if args.doc:
        replace_section(args.doc, "<!-- sensitivity:start -->", "<!-- sensitivity:end -->", md,
                        "Sensitivity to the arbitrary knobs")


if __name__ == "__main__":
    main()
