"""One entry point from a problem to results: build the model, warm-start it, solve it, extract the tables.

Both ``planner run`` (scenarios) and ``planner solve-orlib`` (OR-Library instances) call :func:`optimize`.
"""

from __future__ import annotations

import gc
import time
from dataclasses import replace

from pyomo.common.gc_manager import PauseGC

from optimization.dive import dive_sites, worth_diving
from optimization.heuristic import greedy_sites, warm_start_values
from optimization.model import build_model
from optimization.problem import NetworkProblem
from optimization.results import NetworkResult, extract
from optimization.solve import STARTS, SolverOptions, remaining_limit, solve_model

DIVE_SHARE = 0.3
DIVE_SECONDS_WITHOUT_LIMIT = 300.0


def optimize(pb: NetworkProblem, options: SolverOptions | None = None) -> NetworkResult:
    """Build, warm-start (``options.start``: greedy add/drop, or the LP dive on the merged problem for large
    multi-commodity models), solve with HiGHS and return tidy results with timings (seconds). The dive's time
    (at most 30% of the time limit) counts against the limit. When the dive and the greedy choose differently,
    both choices are priced in the original model (where start completion applies) and HiGHS gets the cheaper:
    the merged problem can misjudge (national seed 13: 8.7% below the original model's cost). What the start
    did is in ``result.start``."""
    options = options or SolverOptions()
    if options.start not in STARTS:
        raise ValueError(f"SolverOptions.start: one of {', '.join(STARTS)}, got {options.start!r}")
    with PauseGC():
        return _optimize(pb, options)


def _optimize(pb: NetworkProblem, options: SolverOptions) -> NetworkResult:
    """The body of :func:`optimize`, run with garbage collection paused: with a large Pyomo model alive, each
    full collection walks millions of objects (it doubled the greedy's time on a 250,000-column p-median)."""
    t = time.perf_counter()
    model = build_model(pb)
    build_seconds = time.perf_counter() - t
    start: dict = {"method": "none"}
    if options.start != "none" and options.warm_start is None and len(pb.modules):
        t = time.perf_counter()
        chosen = greedy = greedy_sites(pb)
        start = {"method": "greedy", "greedy_seconds": round(time.perf_counter() - t, 2)}
        if options.start == "dive" or (options.start == "auto" and worth_diving(pb)):
            limit = options.time_limit
            seconds = DIVE_SECONDS_WITHOUT_LIMIT if limit is None else DIVE_SHARE * limit
            t = time.perf_counter()
            dove, report = dive_sites(pb, chosen, seconds=seconds, threads=options.threads)
            gc.collect()  # the merged model's Pyomo objects hold reference cycles: free them before the MIP
            spent = time.perf_counter() - t
            dive_seconds = report.pop("seconds", None)
            if dove is not None:
                chosen = dove
                start.update(report, method=report["chosen"], dive_seconds=dive_seconds)
            else:
                start.update(dive=f"no result ({report['reason']}); greedy kept", dive_seconds=dive_seconds)
            if options.log is not None:
                options.log(f"start: {start}")
            if limit is not None:
                options = replace(options, time_limit=remaining_limit(limit, spent))
        options = replace(options, warm_start=warm_start_values(pb, chosen))
        if greedy != chosen:
            options = replace(options, alternative_starts=[warm_start_values(pb, greedy)])
    solved = solve_model(model, options)
    result = extract(model, pb, solved, build_seconds)
    if solved.start_costs and len(solved.start_costs) > 1:
        start["model_cost_dive"], start["model_cost_greedy"] = solved.start_costs[:2]
        start["method"] = {0: "dive", 1: "greedy"}.get(solved.start_used, start["method"])
    if start["method"] != "none":
        start["reached_highs"] = solved.start_used is not None
    result.start = start
    return result
