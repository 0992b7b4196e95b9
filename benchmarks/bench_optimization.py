"""Benchmark: the optimization core on OR-Library instances and a synthetic national-scale instance.

For every instance the Pyomo path (``optimization.run.optimize``: build, warm start, translate, solve, extract)
and the same formulation built directly with highspy's array API (``benchmarks/highspy_baseline.py``) run side
by side; figures are end-to-end seconds and their ratio (the machine is shared and noisy). Results go to
``docs/benchmarks.md``.

Run::

    .venv/bin/python benchmarks/bench_optimization.py orlib [--time-limit 600] [--sets cflp,capabc,uflp,pmed]
    .venv/bin/python benchmarks/bench_optimization.py national [--sites 1000 --markets 3000 --commodities 6]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from geo.orlib import pmedian_distances
from optimization.orlib import read_cflp, read_optima, read_pmedian
from optimization.problem import NetworkProblem, Options
from optimization.run import optimize
from optimization.solve import SolverOptions

ROOT = Path(__file__).resolve().parents[1]
ORLIB = ROOT.parent / "shared" / "data" / "orlib"
DOC = ROOT / "docs" / "benchmarks.md"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from docsection import replace_section  # noqa: E402
from highspy_baseline import build_and_solve  # noqa: E402


def _instances(sets: list[str]) -> list[tuple[str, str, dict, float]]:
    out = []
    cflp = read_optima(ORLIB / "cflp" / "opt.txt")
    if "cflp" in sets:
        out += [(n, str(ORLIB / "cflp" / f"{n}.txt"), {}, v) for n, v in cflp.items()]
    if "capabc" in sets:
        for n, v in read_optima(ORLIB / "cflp" / "opt_capabc.txt").items():
            out.append((n, str(ORLIB / "cflp" / f"{n[:4]}.txt"), {"capacity": float(n[4:])}, v))
    if "uflp" in sets:
        for n, v in read_optima(ORLIB / "uflp" / "opt.txt").items():
            folder = "uflp" if n in ("capa", "capb", "capc") else "cflp"
            out.append((f"{n}-u", str(ORLIB / folder / f"{n}.txt"), {"uncapacitated": True}, v))
    if "pmed" in sets:
        for n, v in read_optima(ORLIB / "pmedian" / "opt.txt").items():
            if n != "pmed0":
                out.append((n, str(ORLIB / "pmedian" / f"{n}.txt"), {"pmedian": True}, v))
    return out


def run_orlib(sets: list[str], time_limit: float, only: set[str] | None, baseline: bool = True) -> list[dict]:
    """Each instance through ``optimize`` and (unless ``baseline`` is off) the highspy array build."""
    rows = []
    for name, path, kw, known in _instances(sets):
        if only and name not in only:
            continue
        pb = read_pmedian(path, pmedian_distances(path)) if kw.pop("pmedian", False) else read_cflp(path, **kw)
        t = time.perf_counter()
        res = optimize(pb, SolverOptions(rel_gap=0.0, time_limit=time_limit))
        pyomo_s = time.perf_counter() - t
        base = (build_and_solve(pb, rel_gap=0.0, time_limit=time_limit) if baseline else
                {"build_seconds": float("nan"), "solve_seconds": float("nan"), "objective": None, "nonzeros": None})
        base_s = base["build_seconds"] + base["solve_seconds"]
        row = dict(instance=name, known_optimum=known, objective=res.objective, status=res.status,
                   gap=res.gap, reached=res.objective is not None and abs(res.objective - known) <= 1e-6 * known,
                   pyomo_build_s=round(res.build_seconds, 3), pyomo_solve_s=round(res.solve_seconds, 3),
                   pyomo_total_s=round(pyomo_s, 3), highspy_total_s=round(base_s, 3),
                   highspy_objective=base["objective"], ratio=round(pyomo_s / base_s, 2) if base_s > 0 else None,
                   overhead_ms=round((pyomo_s - base_s) * 1000, 1) if baseline else None,
                   nonzeros=base["nonzeros"])
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def national_instance(n_sites: int, n_markets: int, n_commodities: int, seed: int = 11) -> NetworkProblem:
    """Synthetic national-scale problem (fixed seed): sites, markets and n_markets/6 farms placed uniformly on a
    2,000 × 1,500 km plane; every farm and market linked to its 20 nearest sites; cost = 3 RUB per t-km ×
    1.25 circuity + handling; three size modules per site whose total capacity is 1.5× total demand; fixed
    costs of the order of the transport they save; direct farm → market arcs to the 5 nearest markets."""
    rng = np.random.default_rng(seed)
    ks = [f"k{i}" for i in range(n_commodities)]
    n_farms = max(n_markets // 6, 10)
    S = rng.uniform([0, 0], [2000, 1500], size=(n_sites, 2))
    M = rng.uniform([0, 0], [2000, 1500], size=(n_markets, 2))
    F = rng.uniform([0, 0], [2000, 1500], size=(n_farms, 2))
    demand = rng.lognormal(6, 1, size=(n_markets, n_commodities))
    total = demand.sum()
    supply = rng.dirichlet(np.ones(n_farms), size=n_commodities).T * demand.sum(axis=0) * 1.2

    def nearest(A, B, k):
        d = np.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1))
        idx = np.argpartition(d, k, axis=1)[:, :k]
        return idx, np.take_along_axis(d, idx, 1)

    sites = pd.DataFrame({"site_id": [f"s{i}" for i in range(n_sites)], "existing": False, "group": "all"})
    per_site = 1.5 * total / n_sites
    mods = []
    for i in range(n_sites):
        for name, mult, fc in (("small", 0.5, 0.6), ("medium", 1.0, 1.0), ("large", 2.0, 1.7)):
            cap = per_site * mult / (3.5 / 3)
            mods.append((f"s{i}", name, cap, fc * per_site * 400.0, fc * per_site * 4000.0))
    modules = pd.DataFrame(mods, columns=["site_id", "module_id", "capacity_t", "fixed_cost", "capital_cost"])
    supplies = pd.DataFrame([(f"f{i}", k, supply[i, c], 0.05, 30000.0) for i in range(n_farms)
                             for c, k in enumerate(ks)],
                            columns=["supply_id", "commodity", "quantity_t", "storage_loss", "value_per_t"])
    demands = pd.DataFrame([(f"m{j}", k, demand[j, c], 60000.0, False, np.nan) for j in range(n_markets)
                            for c, k in enumerate(ks)],
                           columns=["demand_id", "commodity", "quantity_t", "penalty_per_t", "is_exit", "price_per_t"])
    fi, fd = nearest(F, S, 20)
    mi, md = nearest(M, S, 20)
    inbound = pd.DataFrame([(f"f{i}", f"s{j}", k, 3.75 * d + 500, 0.03) for i in range(n_farms)
                            for j, d in zip(fi[i], fd[i], strict=True) for k in ks],
                           columns=["supply_id", "site_id", "commodity", "cost_per_t", "loss"])
    outbound = pd.DataFrame([(f"s{j}", f"m{i}", k, 3.75 * d, 0.03) for i in range(n_markets)
                             for j, d in zip(mi[i], md[i], strict=True) for k in ks],
                            columns=["site_id", "demand_id", "commodity", "cost_per_t", "loss"])
    di, dd = nearest(F, M, 5)
    direct = pd.DataFrame([(f"f{i}", f"m{j}", k, 3.75 * d + 3000, 0.15) for i in range(n_farms)
                           for j, d in zip(di[i], dd[i], strict=True) for k in ks],
                          columns=["supply_id", "demand_id", "commodity", "cost_per_t", "loss"])
    return NetworkProblem(ks, supplies, sites, modules, demands, inbound, outbound, direct, Options(),
                          name=f"national_{n_sites}x{n_markets}x{n_commodities}",
                          value_per_t={k: 30000.0 for k in ks})


def run_national(n_sites: int, n_markets: int, n_commodities: int, time_limit: float, linking: str,
                 extra: dict | None = None, start: str = "auto", seed: int = 11) -> dict:
    """Generate, build, warm-start and solve the national instance to a 1% gap; the first time each gap level
    (5%, 2%, 1%) was reached is read off the progress callback (seconds from the start of the solve)."""
    t = time.perf_counter()
    pb = national_instance(n_sites, n_markets, n_commodities, seed=seed)
    pb.options.strong_linking = linking
    gen = time.perf_counter() - t
    reached: dict[str, float] = {}
    t = time.perf_counter()

    def progress(event: dict) -> None:
        gap = event.get("gap")
        for level in (0.05, 0.02, 0.01):
            if gap is not None and gap <= level and f"{level:.0%}" not in reached:
                reached[f"{level:.0%}"] = round(time.perf_counter() - t, 1)

    res = optimize(pb, SolverOptions(rel_gap=0.01, time_limit=time_limit, threads=2, extra=extra or {},
                                     on_progress=progress, start=start))
    total = time.perf_counter() - t
    for level in (0.05, 0.02, 0.01):
        if res.gap is not None and res.gap <= level and f"{level:.0%}" not in reached:
            reached[f"{level:.0%}"] = round(total, 1)  # reached by the end, with no progress event on the way
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = dict(instance=pb.name, seed=seed, strong_linking=linking, highs_options=extra or {}, time_limit_s=time_limit,
               size=pb.size(), generate_s=round(gen, 1), build_s=round(res.build_seconds, 1),
               solve_s=round(res.solve_seconds, 1), end_to_end_s=round(total, 1), status=res.status,
               objective=res.objective, bound=res.bound, gap=res.gap, gap_reached_at_s=reached,
               open_sites=len(res.open_sites), peak_rss_mb=round(peak_mb), start=res.start)
    print(json.dumps(row), flush=True)
    return row


def run_spopt(names: list[str], time_limit: float) -> list[dict]:
    """Our p-median (optimize on pmedian_problem) against spopt's PMedian (PuLP → HiGHS) on the same matrix."""
    import pulp
    from spopt.locate import PMedian

    from geo.matrix import od_matrix
    from geo.orlib import read_pmedian_graph
    from optimization.orlib import pmedian_problem

    known = read_optima(ORLIB / "pmedian" / "opt.txt")
    rows = []
    for name in names:
        G, p = read_pmedian_graph(ORLIB / "pmedian" / f"{name}.txt")
        nodes = sorted(G.nodes)
        dist = od_matrix(G, nodes, nodes, metric="distance").values.to_numpy()
        t = time.perf_counter()
        ours = optimize(pmedian_problem(dist, p, name, nodes), SolverOptions(rel_gap=0.0, time_limit=time_limit))
        ours_s = time.perf_counter() - t
        t = time.perf_counter()
        model = PMedian.from_cost_matrix(dist, np.ones(len(nodes)), p_facilities=p, name=name)
        model = model.solve(pulp.HiGHS(msg=False, timeLimit=time_limit), results=False)
        spopt_s = time.perf_counter() - t
        row = dict(instance=name, optimum=known[name], ours=ours.objective, ours_status=ours.status,
                   spopt=float(pulp.value(model.problem.objective)), ours_s=round(ours_s, 2),
                   spopt_s=round(spopt_s, 2), ratio=round(ours_s / spopt_s, 2))
        print(json.dumps(row), flush=True)
        rows.append(row)
    lines = [f"Run {time.strftime('%Y-%m-%d')}: the same shortest-path matrix (geo layer) given to "
             "`optimization.run.optimize` (our general model as a p-median special case) and to spopt 0.7 "
             "`PMedian.from_cost_matrix` solved by PuLP's HiGHS interface; end-to-end seconds after the matrix.",
             "", "| instance | optimum | ours | spopt | ours s | spopt s | ours / spopt |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['instance']} | {r['optimum']:g} | {r['ours']:g} ({r['ours_status']}) | {r['spopt']:g} | "
                     f"{r['ours_s']} | {r['spopt_s']} | {r['ratio']} |")
    _replace_section("spopt", "p-median: ours vs spopt", "\n".join(lines))
    return rows


def run_linking(names: list[str], time_limit: float) -> list[dict]:
    """The same instances with strong (disaggregated) and aggregated linking: optimum, bound, gap and time."""
    rows = []
    for name in names:
        for mode in ("all", "none"):
            path, kw, known = next((p, k, v) for n, p, k, v in _instances(["cflp", "uflp", "pmed", "capabc"])
                                   if n == name)
            kw = dict(kw)
            pb = read_pmedian(path, pmedian_distances(path)) if kw.pop("pmedian", False) else read_cflp(path, **kw)
            pb.options.strong_linking = mode
            t = time.perf_counter()
            res = optimize(pb, SolverOptions(rel_gap=0.0, time_limit=time_limit))
            row = dict(instance=name, linking=mode, known=known, objective=res.objective, status=res.status,
                       gap=res.gap, seconds=round(time.perf_counter() - t, 2))
            print(json.dumps(row), flush=True)
            rows.append(row)
    lines = [f"Run {time.strftime('%Y-%m-%d')}, solver gap 0, time limit {time_limit:g} s. `all` = the strong "
             "rows x ≤ U·y on every arc (plus the aggregated capacity rows); `none` = aggregated capacity rows only.",
             "", "| instance | linking | status | objective | known optimum | gap | seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        gap = "—" if r["gap"] is None else f"{r['gap']:.2e}"
        obj = "—" if r["objective"] is None else f"{r['objective']:,.1f}"
        lines.append(f"| {r['instance']} | {r['linking']} | {r['status']} | {obj} | {r['known']:,.1f} | {gap} | "
                     f"{r['seconds']} |")
    _replace_section("linking", "Strong vs aggregated linking", "\n".join(lines))
    return rows


def _replace_section(tag: str, title: str, block: str) -> None:
    replace_section(DOC, f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->", block, title)


def write_orlib_doc(rows: list[dict], time_limit: float, tag: str) -> None:
    lines = [f"Run {time.strftime('%Y-%m-%d')} on {platform.machine()} (2 cores, shared), solver gap 0, time limit "
             f"{time_limit:g} s per instance and per path. `pyomo` = `optimization.run.optimize` end to end "
             "(build, greedy warm start, translation, HiGHS, extraction); `highspy` = the same rows built with "
             "highspy arrays (`benchmarks/highspy_baseline.py`).", "",
             "| instance | optimum | status | reached | gap | pyomo s (build) | highspy s | ratio | overhead ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gap = "—" if r["gap"] is None else f"{r['gap']:.2e}"
        reached = "yes" if r["reached"] else "no"
        base = r["highspy_total_s"]
        no_base = base is None or base != base
        lines.append(f"| {r['instance']} | {r['known_optimum']:,.3f} | {r['status']} | {reached} | {gap} "
                     f"| {r['pyomo_total_s']} ({r['pyomo_build_s']}) | {'—' if no_base else base} "
                     f"| {'—' if no_base else r['ratio']} | {'—' if no_base else r['overhead_ms']} |")
    big = [r for r in rows if r["highspy_total_s"] >= 1.0]
    small = [r for r in rows if r["highspy_total_s"] < 1.0]
    if big:
        lines += ["", f"Where highspy takes ≥ 1 s ({len(big)} instances): median ratio "
                  f"{np.median([r['ratio'] for r in big]):.2f}, max {max(r['ratio'] for r in big):.2f} (goal ≤ 1.5)."]
    if small:
        lines += ["", f"Below 1 s ({len(small)} instances): median fixed overhead "
                  f"{np.median([r['overhead_ms'] for r in small]):.0f} ms."]
    reached = sum(r["reached"] for r in rows)
    lines += ["", f"Known optimum reached on {reached} of {len(rows)} instances."]
    _replace_section(tag, f"OR-Library ({tag})", "\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("orlib")
    o.add_argument("--sets", default="cflp,uflp,pmed")
    o.add_argument("--time-limit", type=float, default=600.0)
    o.add_argument("--only", default="")
    o.add_argument("--tag", default=None)
    o.add_argument("--from-log", default=None, help="render the doc section from the JSON lines of an earlier run")
    o.add_argument("--no-baseline", action="store_true", help="skip the highspy side-by-side run")
    lk = sub.add_parser("linking")
    lk.add_argument("--instances", default="cap41,cap71,cap101,cap131,cap131-u,capb-u,pmed1,pmed5")
    lk.add_argument("--time-limit", type=float, default=120.0)
    sp = sub.add_parser("spopt")
    sp.add_argument("--instances", default="pmed1,pmed2,pmed3,pmed4,pmed5,pmed6,pmed7,pmed8,pmed9,pmed10")
    sp.add_argument("--time-limit", type=float, default=300.0)
    n = sub.add_parser("national")
    n.add_argument("--sites", type=int, default=1000)
    n.add_argument("--markets", type=int, default=3000)
    n.add_argument("--commodities", type=int, default=6)
    n.add_argument("--time-limit", type=float, default=600.0)
    n.add_argument("--linking", default="none", choices=["all", "outbound", "pairs", "none"])
    n.add_argument("--start", default="auto", choices=["auto", "greedy", "dive", "none"])
    n.add_argument("--seed", type=int, default=11, help="generator seed (11 is the documented instance)")
    n.add_argument("--no-doc", action="store_true", help="print the JSON line only, leave docs/benchmarks.md alone")
    n.add_argument("--highs", default="{}", help='further HiGHS options as JSON, e.g. \'{"mip_lp_solver": "ipx"}\'')
    args = ap.parse_args()
    if args.cmd == "linking":
        run_linking(args.instances.split(","), args.time_limit)
        return
    if args.cmd == "spopt":
        run_spopt(args.instances.split(","), args.time_limit)
        return
    if args.cmd == "orlib":
        sets = args.sets.split(",")
        if args.from_log:
            rows = [json.loads(line) for line in Path(args.from_log).read_text().splitlines()
                    if line.startswith("{")]
        else:
            rows = run_orlib(sets, args.time_limit, set(filter(None, args.only.split(","))) or None,
                             baseline=not args.no_baseline)
        write_orlib_doc(rows, args.time_limit, args.tag or "orlib-" + "-".join(sets))
    else:
        row = run_national(args.sites, args.markets, args.commodities, args.time_limit, args.linking,
                           json.loads(args.highs), args.start, args.seed)
        if args.no_doc:
            return
        block = (f"Run {time.strftime('%Y-%m-%d')}; generator `national_instance` in "
                 f"`benchmarks/bench_optimization.py` (seed {args.seed}), solver gap 1%, 2 threads.\n\n"
                 f"```json\n{json.dumps(row, indent=2)}\n```")
        _replace_section("national", "Synthetic national-scale instance", block)


if __name__ == "__main__":
    main()
