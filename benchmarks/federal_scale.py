"""Benchmark: the federal scenario at scale (issue #18, "Scale").

Each variant runs end to end in a fresh process, as ``planner run`` does (network, model, start, solve,
economics, every output file), and reports:

- wall-clock seconds end to end and by stage (``summary["stage_seconds"]``, plus writing the outputs);
- the time at which the solve first reached a relative gap of 5%, 2% and 1% (HiGHS's improving-solution and
  interrupt callbacks; seconds from the start of the process, so they include the network, model and start);
- peak memory (resident set, MB) of the process;
- the model's size: candidate sites, modules, arcs by kind, and HiGHS's rows, columns and non-zeros;
- the plan: centres opened, regions covered, objective and final gap.

Variants: ``default`` (the scenario as shipped) and ``doubled`` (candidates per region and ``k_nearest``
doubled), to show the plan does not lean on thin pruning: the sites both choose, and the objectives.

Run::

    .venv/bin/python benchmarks/federal_scale.py [--variants default,doubled] [--time-limit S]
        [--doc docs/benchmarks.md]

With ``--doc`` the table replaces the section between ``<!-- federal-scale:start -->`` and
``<!-- federal-scale:end -->``. The machine is shared: the load average is recorded beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from docsection import replace_section

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "federal_network.yaml"
GAPS = (0.05, 0.02, 0.01)
VARIANTS = {
    "default": {},
    "doubled": {"candidates": {"max_per_region": 2}, "network": {"k_nearest": 2}},  # multipliers
}


def _variant_scenario(name: str, time_limit: float | None):
    """The federal scenario with the variant's multipliers applied (and the time limit, when given)."""
    import yaml

    from planner.scenario import parse_scenario

    raw = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    for section, knobs in VARIANTS[name].items():
        for knob, factor in knobs.items():
            raw.setdefault(section, {})[knob] = int(raw[section][knob] * factor)
    raw["name"] = f"{raw['name']}_{name}"
    if time_limit is not None:
        raw.setdefault("solver", {})["time_limit_s"] = time_limit
    return parse_scenario(raw), raw


def child(name: str, time_limit: float | None, out: Path, keep: Path | None = None) -> None:
    """Run one variant in this process and write its figures as JSON to ``out``; with ``keep``, the run's output
    files stay in ``keep/<variant>``."""
    t0 = time.perf_counter()
    from planner.data.loader import load_dataset
    from planner.execute import execute_scenario
    from planner.outputs import write_outputs

    sc, raw = _variant_scenario(name, time_limit)
    trace: list[tuple[float, float]] = []
    first: dict[str, float | None] = {f"{g:.0%}": None for g in GAPS}
    size: dict[str, int] = {}

    def on_progress(p: dict) -> None:
        gap = p.get("gap")
        if gap is None or not p.get("objective"):
            return
        now = time.perf_counter() - t0
        trace.append((round(now, 1), float(gap)))
        for g in GAPS:
            key = f"{g:.0%}"
            if first[key] is None and gap <= g + 1e-12:
                first[key] = round(now, 1)

    def on_log(line: str) -> None:
        m = re.search(r"(\d+) rows?; (\d+) cols?; (\d+) nonzeros", line) or \
            re.search(r"(\d+) rows, (\d+) cols, (\d+) nonzeros", line)
        if m and not size:
            size.update(rows=int(m[1]), cols=int(m[2]), nonzeros=int(m[3]))

    ds = load_dataset()
    out_run = execute_scenario(sc, ds, on_log=on_log, on_progress=on_progress)
    t_out = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        target = keep / name if keep is not None else Path(folder) / "run"
        write_outputs(target, out_run.planned, out_run.result, out_run.summary, ds, sc.region_ids(ds),
                      out_run.losses, out_run.prices, out_run.investor, force=True)
    s = out_run.summary
    stages = dict(s.get("stage_seconds", {}), outputs=round(time.perf_counter() - t_out, 1))
    centres = [c for c in s.get("centres", [])]
    doc = {
        "variant": name, "k_nearest": raw["network"]["k_nearest"],
        "max_per_region": raw["candidates"]["max_per_region"],
        "seconds_end_to_end": round(time.perf_counter() - t0, 1), "stage_seconds": stages,
        "solve_seconds": s.get("solve_seconds"), "time_to_gap_s": first, "gap": s.get("gap"),
        "objective": s.get("objective"), "status": s.get("status"),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "problem_size": s.get("problem_size"), "highs_size": size,
        "centres": len(centres), "regions": len({c.get("region") for c in centres}),
        "sites": sorted(str(c.get("name_en")) for c in centres), "trace": trace[-60:],
    }
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")


def _table(results: list[dict]) -> str:
    load = os.getloadavg()
    lines = [f"Run {date.today().isoformat()} on {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, load average at the end {load[0]:.1f}; `benchmarks/federal_scale.py`, each "
             "variant in a fresh process, end to end as `planner run` (network, model, start, solve, economics, "
             "every output file). Times to a gap are from the start of the process.", "",
             "| variant | candidates/region, k | sites, modules, arcs | HiGHS rows × cols (nnz) | to 5% | to 2% "
             "| to 1% | final gap | solve, s | end to end, s | peak RSS, MB | centres (regions) | objective, M RUB |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in results:
        ps = r.get("problem_size") or {}
        hs = r.get("highs_size") or {}
        arcs = sum(ps.get(k, 0) for k in ("inbound", "outbound", "direct"))
        tg = r["time_to_gap_s"]
        gap = r.get("gap")
        obj = r.get("objective")
        lines.append(
            f"| {r['variant']} | {r['max_per_region']}, {r['k_nearest']} | {ps.get('sites', 0):,}, "
            f"{ps.get('modules', 0):,}, {arcs:,} | {hs.get('rows', 0):,} × {hs.get('cols', 0):,} "
            f"({hs.get('nonzeros', 0):,}) | " + " | ".join("—" if tg[k] is None else f"{tg[k]:.0f}" for k in tg)
            + f" | {'—' if gap is None else f'{gap:.2%}'} | {r.get('solve_seconds') or 0:.0f} | "
            f"{r['seconds_end_to_end']:.0f} | {r['peak_rss_mb']:,} | {r['centres']} ({r['regions']}) | "
            f"{'—' if obj is None else f'{obj / 1e6:,.1f}'} |")
    lines += ["", "Seconds by stage (end to end):", "",
              "| variant | " + " | ".join(results[0]["stage_seconds"]) + " |",
              "|---|" + "---:|" * len(results[0]["stage_seconds"])]
    for r in results:
        lines.append(f"| {r['variant']} | " + " | ".join(f"{v:.0f}" for v in r["stage_seconds"].values()) + " |")
    if len(results) > 1:
        a, b = results[0], results[1]
        same = sorted(set(a["sites"]) & set(b["sites"]))
        only_a = sorted(set(a["sites"]) - set(b["sites"]))
        only_b = sorted(set(b["sites"]) - set(a["sites"]))
        rel = ((b["objective"] - a["objective"]) / abs(a["objective"])
               if a.get("objective") and b.get("objective") else None)
        lines += ["", f"{b['variant']} against {a['variant']}: {len(same)} sites in common; only in "
                  f"{a['variant']}: {', '.join(only_a) or '—'}; only in {b['variant']}: {', '.join(only_b) or '—'}; "
                  f"objective change {'—' if rel is None else f'{rel:+.3%}'}."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default="default,doubled")
    ap.add_argument("--time-limit", type=float, default=None, help="override the scenario's solver time limit, s")
    ap.add_argument("--doc", type=Path, help="write the table into this Markdown file between the markers")
    ap.add_argument("--keep", type=Path, help="keep each variant's output files in KEEP/<variant>")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.time_limit, args.out, args.keep)
        return
    results = []
    for name in args.variants.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            cmd = [sys.executable, __file__, "--child", name, "--out", str(out)]
            if args.time_limit is not None:
                cmd += ["--time-limit", str(args.time_limit)]
            if args.keep is not None:
                cmd += ["--keep", str(args.keep.resolve())]
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            subprocess.run(cmd, check=True, env=env, cwd=ROOT)
            results.append(json.loads(out.read_text(encoding="utf-8")))
        print(json.dumps({k: v for k, v in results[-1].items() if k not in ("trace", "sites")}, indent=1))
    table = _table(results)
    print(table)
    if args.doc:
        replace_section(args.doc, "<!-- federal-scale:start -->", "<!-- federal-scale:end -->", table,
                        "The federal scenario at scale / Федеральный сценарий: масштаб")


if __name__ == "__main__":
    main()
