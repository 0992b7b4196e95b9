"""Sensitivity of the siting answer to every arbitrary knob: halve and double each, solve to a zero gap, and
compare the objective and the chosen sites (by town) with the default run.

Usage (the whole table, every regional library scenario, one after another)::

    PYTHONPATH=. .venv/bin/python benchmarks/sensitivity.py --doc docs/model.md

or name scenarios (``benchmarks/sensitivity.py scenarios/kazakhstan_pilots.yaml``); ``--json FILE`` keeps the rows,
``--from-json FILE ...`` rebuilds the table from kept rows without solving. With ``--doc`` the table replaces the
section between the markers ``<!-- sensitivity:start -->`` and ``<!-- sensitivity:end -->``.

A knob is *arbitrary* (a modelling setting: a k, a count or spacing of candidates, a distance cut-off, the unmet
penalty, the outside markets' step) or *economics* (a project assumption the answer leans on: the outside markets'
elasticities, price cap and unrecorded floor, the centres' loss factor, consolidation's part-load markup and
small-lot shares, the price pass-through). An arbitrary knob holds when the objective moves by less than 1% and the
sites stay the same (or the two plans' objectives lie within 0.1% of each other); an economics knob is shown so a
reader sees how much hangs on it, with its source and range in the registry (planner/parameters.py).
``price_pass_through`` does not enter the siting model: its rows keep the default plan and give the headline
consumer-price change (against no centres, demand-weighted, by group) and the net social benefit (against the
existing centres) at half and double (capped at 1, perfect competition).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docsection import replace_section  # noqa: E402

from optimization.run import optimize  # noqa: E402
from optimization.solve import SolverOptions  # noqa: E402
from planner.data.loader import load_dataset  # noqa: E402
from planner.parameters import PARAMETER_BY_NAME  # noqa: E402
from planner.pipeline import build_problem  # noqa: E402
from planner.scenario import load_scenario, parse_scenario  # noqa: E402

#: scenarios/*.yaml left out of the table: the national ones (CI has 90 minutes on 2 cores)
FEDERAL = ("federal_network", "federal_network_pays")
ARBITRARY, ECONOMICS = "arbitrary", "economics"
KNOBS = [  # (label, where, name, kind): halved and doubled
    ("network.k_nearest", "network", "k_nearest", ARBITRARY),
    ("candidates.max_per_region", "candidates", "max_per_region", ARBITRARY),
    ("candidates.min_spacing_km", "candidates", "min_spacing_km", ARBITRARY),
    ("candidates.max_snap_km", "candidates", "max_snap_km", ARBITRARY),
    ("candidates.nearby_km", "candidates", "nearby_km", ARBITRARY),  # only where the scenario sets it
    ("unmet_penalty_factor", "parameters", "unmet_penalty_factor", ARBITRARY),
    ("outside_step_pct", "parameters", "outside_step_pct", ARBITRARY),
    ("outside_purchase_price_cap", "parameters", "outside_purchase_price_cap", ECONOMICS),
    ("outside_unrecorded_trade_kt", "parameters", "outside_unrecorded_trade_kt", ECONOMICS),
    ("outside_elasticity_partner", "parameters", "outside_elasticity_partner", ECONOMICS),
    ("outside_elasticity_rest_of_russia", "parameters", "outside_elasticity_rest_of_russia", ECONOMICS),
    ("centre_loss_factor", "parameters", "centre_loss_factor", ECONOMICS),
    ("part_load_markup_pct", "parameters", "part_load_markup_pct", ECONOMICS),
]
SMALL_LOT = [n for n in PARAMETER_BY_NAME if n.startswith("small_lot_share_pct_")]


def regional_scenarios() -> list[Path]:
    """Every library scenario but the national ones, in a fixed order (fastest first)."""
    order = ["kazakhstan_pilots", "kazakhstan_network24", "ncfd_baseline", "ncfd_expansion",
             "south_russia_corridors", "eaeu_crossborder", "eaeu_upper_lars_closed", "eaeu_tariff_shock"]
    found = {p.stem: p for p in sorted((ROOT / "scenarios").glob("*.yaml")) if p.stem not in FEDERAL}
    return [found.pop(n) for n in order if n in found] + list(found.values())


def solve(raw: dict, dataset, time_limit: float, gap: float, keep: bool = False) -> dict:
    """Build and solve one variant (``gap``: relative MIP gap, 0 = proven optimum; ``time_limit`` seconds); its
    objective, proven gap, arcs, sites (by town; * existing) and, with ``keep``, the scenario, problem and result."""
    sc = parse_scenario(raw)
    t0 = time.perf_counter()
    planned = build_problem(sc, dataset)
    res = optimize(planned.problem, SolverOptions(rel_gap=gap, time_limit=time_limit))
    names = planned.candidates.set_index("candidate_id")["name_en"]
    pb = planned.problem
    existing = pb.sites.set_index("site_id")["existing"]
    sites = sorted(f"{names[s]}" + ("*" if existing.at[s] else "") for s in res.open_sites)
    out = {"objective": res.objective, "status": res.status, "gap": res.gap,
           "arcs": len(pb.inbound) + len(pb.outbound) + len(pb.direct), "sites": sites,
           "seconds": time.perf_counter() - t0}
    if keep:
        out["_kept"] = (sc, planned, res)
    return out


def values_of(label: str, where: str, name: str, raw: dict, sc) -> list:
    """The two variant values of a knob: half and double its value in the scenario (or the registry's)."""
    if where == "parameters":
        current = raw.get("parameters", {}).get(name, PARAMETER_BY_NAME[name].default)
        return [current * 0.5, current * 2.0]
    current = getattr(getattr(sc, where), name)
    if name == "nearby_km" and not current:
        return []  # candidates off the network are not asked for: nothing to halve
    if isinstance(current, int) and not isinstance(current, bool):
        return [max(1, int(round(current * 0.5))), int(current * 2)]
    return [current * 0.5, current * 2.0]


def pass_through_rows(kept, dataset, base: dict) -> list[dict]:
    """Price-model rows for ``price_pass_through`` (default, half, double capped at 1) on the default plan."""
    from planner.economics.investor import investor_view
    from planner.economics.losses import existing_network, route_with_sites
    from planner.economics.prices import estimate_price_impact
    from planner.economics.welfare import net_social_benefit

    sc, planned, res = kept
    ref = existing_network(planned)
    base_run = route_with_sites(planned, ref, sc) if ref else None
    base_run = base_run if base_run is not None and base_run.objective is not None else None
    totals = investor_view(planned, res)[1]
    theta0 = planned.params["price_pass_through"]
    rows = []
    for theta in (theta0, theta0 * 0.5, min(1.0, theta0 * 2.0)):
        q = replace(planned, params=planned.params.with_values({"price_pass_through": theta}))
        headline = estimate_price_impact(sc, dataset, res, "traditional", planned=q)
        now = estimate_price_impact(sc, dataset, res, "existing", planned=q) if ref else headline
        nsb = net_social_benefit(q, res, now, totals, base_run)["net_social_benefit_mrub"]
        change = headline.summary.set_index("commodity")["consumer_price_change_pct"]
        rows.append({"theta": theta, "nsb_mrub": nsb, "prices": {k: float(v) for k, v in change.items()}})
    out = []
    for r in rows[1:]:
        note = ("consumer prices vs no centres " + ", ".join(f"{k} {v:+.2f}%" for k, v in r["prices"].items())
                + f" (default {', '.join(f'{v:+.2f}%' for v in rows[0]['prices'].values())}); net social benefit "
                f"{r['nsb_mrub']:,.0f} M RUB/yr (default {rows[0]['nsb_mrub']:,.0f})")
        out.append({**{k: v for k, v in base.items() if not k.startswith("_")}, "knob": "price_pass_through",
                    "kind": ECONOMICS, "value": round(r["theta"], 4), "change_pct": 0.0, "ok": None, "note": note,
                    "seconds": 0.0})
    return out


def verdict(change: float, same_sites: bool) -> bool:
    """The criterion: |objective change| < 1% and the same towns, or plans within 0.1% of each other."""
    return abs(change) < 1.0 and (same_sites or abs(change) < 0.1)


def run(path: Path, dataset, time_limit: float = 600.0, gap: float = 0.0, only: set[str] | None = None,
        log=print, overrides: dict | None = None) -> list[dict]:
    """Every knob halved and doubled on one scenario (see the module docstring); ``only``: the knob labels to
    vary (None: all, with the small-lot and pass-through rows); ``overrides``: scenario sections to change first
    ({"network": {"k_nearest": 24}}), for trying another default."""
    raw = load_scenario(path).model_dump(mode="json", exclude_none=True)
    for where, values in (overrides or {}).items():
        raw.setdefault(where, {}).update(values)
    base_sc = parse_scenario(raw)
    base = solve(raw, dataset, time_limit, gap, keep=True)
    kept = base.pop("_kept")
    name = base_sc.name
    log(f"{name:24s} (defaults) arcs {base['arcs']:6d} {base['seconds']:6.1f} s gap {base['gap']} {base['status']} "
        f"{', '.join(base['sites'])}")
    rows = [{"scenario": name, "knob": "(defaults)", "kind": "", "value": "", **base, "change_pct": 0.0,
             "ok": True, "note": ""}]

    def variant_row(label: str, kind: str, value, edit) -> None:
        variant = copy.deepcopy(raw)
        edit(variant)
        try:
            got = solve(variant, dataset, time_limit, gap)
        except (ValueError, LookupError) as e:  # the variant is refused (e.g. an existing centre out of snap reach)
            rows.append({"scenario": name, "knob": label, "kind": kind, "value": value, "objective": None,
                         "status": "refused", "gap": None, "arcs": 0, "sites": [], "seconds": 0.0,
                         "change_pct": None, "ok": None, "note": f"refused: {e}"})
            log(f"{name:24s} {label:34s} {value!s:>8s} refused: {e}")
            return
        change = 100 * (got["objective"] - base["objective"]) / abs(base["objective"])
        ok = verdict(change, got["sites"] == base["sites"])
        rows.append({"scenario": name, "knob": label, "kind": kind, "value": value, **got, "change_pct": change,
                     "ok": ok, "note": ""})
        log(f"{name:24s} {label:34s} {value!s:>8s} arcs {got['arcs']:6d} {got['seconds']:6.1f} s obj "
            f"{change:+7.3f}% {'holds' if ok else 'MOVES'} {', '.join(got['sites'])}")

    for label, where, key, kind in KNOBS:
        if only is not None and label not in only:
            continue
        for v in values_of(label, where, key, raw, base_sc):
            variant_row(label, kind, v, lambda r, w=where, k=key, x=v: r.setdefault(w, {}).__setitem__(k, x))
    if only is None or "small_lot_share_pct_*" in only:
        for end in ("low", "high"):
            vals = {n: getattr(PARAMETER_BY_NAME[n], end) for n in SMALL_LOT}
            variant_row("small_lot_share_pct_*", ECONOMICS, f"all {end}",
                        lambda r, x=vals: r.setdefault("parameters", {}).update(x))
    if only is None or "price_pass_through" in only:
        t0 = time.perf_counter()
        got = pass_through_rows((kept[0], kept[1], kept[2]), dataset, rows[0])
        for r in got:
            r["scenario"] = name
            log(f"{name:24s} price_pass_through {r['value']:>8} {r['note']}")
        rows.extend(got)
        log(f"{name:24s} price model {time.perf_counter() - t0:.1f} s")
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    out = ["| scenario | knob | kind | value | arcs kept | objective, M RUB/yr | change | sites (town; * existing) | "
           "holds |", "|---|---|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        if r["objective"] is None:
            out.append(f"| {r['scenario']} | {r['knob']} | {r['kind']} | {r['value']} | – | – | – | {r['note']} | "
                       "not applicable |")
            continue
        sites = r["note"] if r["knob"] == "price_pass_through" else (
            "same" if r["knob"] != "(defaults)" and r["sites"] == _base(rows, r)["sites"] else ", ".join(r["sites"]))
        holds = ("" if r["ok"] is None else "yes" if r["ok"] else
                 ("**no**" if r["kind"] == ARBITRARY else "moves (economics)"))
        out.append(f"| {r['scenario']} | {r['knob']} | {r['kind']} | {r['value']} | {r['arcs']:,} | "
                   f"{r['objective'] / 1e6:,.1f} | {r['change_pct']:+.3f}% | {sites} | {holds} |")
    return "\n".join(out)


def _base(rows: list[dict], r: dict) -> dict:
    return next(b for b in rows if b["scenario"] == r["scenario"] and b["knob"] == "(defaults)")


def summary(rows: list[dict]) -> str:
    """One line per scenario: does every arbitrary knob hold, and which economics knobs move the answer."""
    out = ["| scenario | solve at defaults, s | arbitrary knobs | economics knobs that move the objective ≥ 1% "
           "or the sites |", "|---|---:|---|---|"]
    for name in dict.fromkeys(r["scenario"] for r in rows):
        mine = [r for r in rows if r["scenario"] == name]
        bad = sorted({f"{r['knob']} {r['value']} ({r['change_pct']:+.2f}%)" for r in mine
                      if r["kind"] == ARBITRARY and r["ok"] is False})
        econ = sorted({r["knob"] for r in mine if r["kind"] == ECONOMICS and r["ok"] is False})
        out.append(f"| {name} | {mine[0]['seconds']:.1f} | {'all hold' if not bad else '**fail**: ' + '; '.join(bad)}"
                   f" | {', '.join(econ) or 'none'} |")
    return "\n".join(out)


def merge(parts: list[list[dict]]) -> list[dict]:
    """Rows of several runs as one table: each scenario's first defaults row, then its varied rows in the order
    of the parts, scenarios in the order of :func:`regional_scenarios` (others after)."""
    order = {p.stem: i for i, p in enumerate(regional_scenarios())}
    rows = [r for part in parts for r in part]
    names = sorted(dict.fromkeys(r["scenario"] for r in rows), key=lambda n: order.get(n, len(order)))
    out = []
    for n in names:
        mine = [r for r in rows if r["scenario"] == n]
        out.append(next(r for r in mine if r["knob"] == "(defaults)"))
        out.extend(r for r in mine if r["knob"] != "(defaults)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", type=Path, help="scenario files (default: every regional one)")
    ap.add_argument("--doc", type=Path, help="write the table into this Markdown file between the markers")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    ap.add_argument("--from-json", type=Path, nargs="+", help="rebuild the table from kept rows (no solving)")
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds per solve (default 600)")
    ap.add_argument("--gap", type=float, default=0.0, help="relative MIP gap (default 0: proven optimum)")
    ap.add_argument("--knobs", nargs="+", help="only these knob labels")
    args = ap.parse_args()
    if args.from_json:
        rows = merge([json.loads(f.read_text(encoding="utf-8")) for f in args.from_json])
    else:
        dataset = load_dataset()
        rows = []
        for p in args.scenarios or regional_scenarios():
            t0 = time.perf_counter()
            rows += run(p, dataset, args.time_limit, args.gap, set(args.knobs) if args.knobs else None,
                        log=lambda s: print(s, file=sys.stderr, flush=True))
            print(f"{p.stem}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    md = summary(rows) + "\n\n" + table(rows)
    print(md)
    if args.doc:
        replace_section(args.doc, "<!-- sensitivity:start -->", "<!-- sensitivity:end -->", md,
                        "Sensitivity to the arbitrary knobs")


if __name__ == "__main__":
    main()
