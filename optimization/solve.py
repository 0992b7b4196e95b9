"""The solver layer: HiGHS through Pyomo's ``highs`` interface (pyomo.contrib.solver), no LP-file round trips.

Pyomo exposes time limit, relative gap, threads and the log stream. What it does not expose is reached on the
underlying ``highspy.Highs`` object (``Highs._solver_model``) after ``set_instance``:

- the **warm start**: a feasible site choice from :mod:`optimization.heuristic` is passed with
  ``highspy.Highs.setSolution`` (sparse form: only the binary columns);
- the **live gap**: ``cbMipImprovingSolution`` / ``cbMipInterrupt`` callbacks report the incumbent and bound;
- **interrupting** a solve: the interrupt callback stops HiGHS when :attr:`SolverOptions.should_stop` says so.

Statuses map to ``optimal``, ``feasible`` (stopped with a gap), ``infeasible``, ``time_limit_no_solution``,
``cancelled`` (interrupted before any solution) and ``error``, each with a message a planner can act on.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs


@dataclass
class SolverOptions:
    """Time limit (seconds), relative MIP gap, threads, warm start; callbacks for progress and stopping;
    ``extra``: further HiGHS options by name (e.g. ``{"mip_lp_solver": "ipm"}``)."""

    time_limit: float | None = None
    rel_gap: float = 1e-4
    threads: int | None = None
    warm_start: dict[str, float] | None = None
    on_progress: Callable[[dict], None] | None = None
    should_stop: Callable[[], bool] | None = None
    log: Callable[[str], None] | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class SolveResult:
    """What came back: status, message, objective, bound, relative gap and timings (seconds)."""

    status: str
    message: str
    objective: float | None
    bound: float | None
    gap: float | None
    solve_seconds: float
    log: str


class _LogStream(io.TextIOBase):
    def __init__(self, sink: Callable[[str], None] | None):
        self.sink = sink
        self.buffer_ = io.StringIO()

    def write(self, s: str) -> int:
        self.buffer_.write(s)
        if self.sink is not None:
            for line in s.splitlines():
                if line.strip():
                    self.sink(line)
        return len(s)


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|objective − bound| / max(|objective|, 1e-10); None when either is missing."""
    if objective is None or bound is None or not math.isfinite(objective) or not math.isfinite(bound):
        return None
    return abs(objective - bound) / max(abs(objective), 1e-10)


def solve_model(model: pyo.ConcreteModel, options: SolverOptions | None = None) -> SolveResult:
    """Solve a Pyomo model with HiGHS and load the solution when there is one."""
    options = options or SolverOptions()
    opt = Highs()
    if not opt.available():
        return SolveResult("error", "HiGHS (highspy) is not available", None, None, None, 0.0, "")
    stream = _LogStream(options.log)
    config = dict(load_solutions=False, raise_exception_on_nonoptimal_result=False, tee=[stream],
                  rel_gap=options.rel_gap, time_limit=options.time_limit, threads=options.threads,
                  solver_options=dict(options.extra))
    opt.set_instance(model)
    highs = opt._solver_model
    if options.warm_start:
        cols, vals = [], []
        for name, value in options.warm_start.items():
            var = model.find_component(name)
            if var is not None and id(var) in opt._pyomo_var_to_solver_var_map:
                cols.append(opt._pyomo_var_to_solver_var_map[id(var)])
                vals.append(float(value))
        if cols:
            import numpy as np

            highs.setSolution(len(cols), np.array(cols, dtype=np.int32), np.array(vals, dtype=np.float64))
    if options.on_progress is not None or options.should_stop is not None:
        _attach_callbacks(highs, options)
    start = time.perf_counter()
    results = opt.solve(model, **config)
    seconds = time.perf_counter() - start
    tc, ss = results.termination_condition, results.solution_status
    objective = results.incumbent_objective
    bound = results.objective_bound
    if bound is None or not math.isfinite(bound):
        dual = highs.getInfo().mip_dual_bound
        bound = dual if math.isfinite(dual) else bound
    interrupted = options.should_stop is not None and options.should_stop()
    has_solution = ss in (SolutionStatus.optimal, SolutionStatus.feasible)
    if has_solution:
        results.solution_loader.load_vars()
    gap = relative_gap(objective, bound) if has_solution else None
    if tc == TerminationCondition.convergenceCriteriaSatisfied and has_solution:
        status = "optimal"
        msg = f"optimal within the relative gap of {options.rel_gap:.2g}"
    elif tc in (TerminationCondition.provenInfeasible, TerminationCondition.locallyInfeasible,
                TerminationCondition.infeasibleOrUnbounded):
        status, msg = "infeasible", ("the model has no feasible solution: check forced sites, p, budget and "
                                     "per-region limits against each other")
    elif has_solution:
        status = "feasible"
        why = ("time limit" if tc == TerminationCondition.maxTimeLimit else
               "an interrupt on request" if interrupted else str(tc.name))
        msg = f"stopped by {why} with a feasible solution; relative gap {gap:.2%}" if gap is not None else (
            f"stopped by {why} with a feasible solution")
    elif tc == TerminationCondition.maxTimeLimit:
        status, msg = "time_limit_no_solution", "the time limit passed before any feasible solution was found"
    elif interrupted:
        status, msg = "cancelled", "interrupted on request before any feasible solution was found"
    else:
        status, msg = "error", f"HiGHS ended with {tc.name} and no solution"
    return SolveResult(status, msg, objective if has_solution else None, bound, gap, seconds,
                       stream.buffer_.getvalue())


def _attach_callbacks(highs, options: SolverOptions) -> None:
    """Report incumbent, bound and gap as HiGHS progresses; interrupt it when ``should_stop`` says so."""
    last = {"t": 0.0}

    def progress(e) -> None:
        data = e.data_out
        if options.on_progress is not None:
            options.on_progress({"objective": getattr(data, "objective_function_value", None),
                                 "bound": getattr(data, "mip_dual_bound", None),
                                 "gap": getattr(data, "mip_gap", None)})

    def interrupt(e) -> None:
        now = time.perf_counter()
        if options.on_progress is not None and e.callback_type == _mip_interrupt_type() and now - last["t"] > 1.0:
            last["t"] = now
            progress(e)
        if options.should_stop is not None and options.should_stop():
            e.interrupt()

    highs.cbMipImprovingSolution.subscribe(progress)
    for cb in (highs.cbMipInterrupt, highs.cbSimplexInterrupt, highs.cbIpmInterrupt):
        cb.subscribe(interrupt)


def _mip_interrupt_type():
    from highspy import cb

    return cb.HighsCallbackType.kCallbackMipInterrupt
