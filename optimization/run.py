"""One entry point from a problem to results: build the model, warm-start it, solve it, extract the tables.

Both ``planner run`` (scenarios) and ``planner solve-orlib`` (OR-Library instances) call :func:`optimize`.
"""

from __future__ import annotations

import time
from dataclasses import replace

from optimization.heuristic import greedy_sites, warm_start_values
from optimization.model import build_model
from optimization.problem import NetworkProblem
from optimization.results import NetworkResult, extract
from optimization.solve import SolverOptions, solve_model


def optimize(pb: NetworkProblem, options: SolverOptions | None = None, warm_start: bool = True) -> NetworkResult:
    """Build, warm-start (greedy add/drop), solve with HiGHS and return tidy results with timings (seconds)."""
    options = options or SolverOptions()
    t = time.perf_counter()
    model = build_model(pb)
    build_seconds = time.perf_counter() - t
    if warm_start and options.warm_start is None and len(pb.modules):
        options = replace(options, warm_start=warm_start_values(pb, greedy_sites(pb)))
    solved = solve_model(model, options)
    return extract(model, pb, solved, build_seconds)
