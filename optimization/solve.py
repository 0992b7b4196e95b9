"""The solver layer: a Pyomo model solved by HiGHS, no LP-file round trips.

Two translations of the Pyomo model into HiGHS, chosen by :attr:`SolverOptions.interface`:

- ``compiled`` (default for the network model): :mod:`optimization.translate` turns the model into sparse
  arrays in one pass, as Pyomo's ``LinearStandardFormCompiler`` does (with a fast path for rows that are already
  ``LinearExpression`` objects), and they go to ``highspy.Highs.passModel`` at once. This is the design of
  Pyomo's own ``gurobi_direct`` solver; it translates the network model several times faster than the persistent
  interface (which walks every constraint's expression and adds rows in Python), measured in
  ``docs/benchmarks.md``. Linear models only.
- ``persistent``: Pyomo's ``highs`` interface (``pyomo.contrib.solver.solvers.highs.Highs``), which also
  handles the QPs of the price model; kept selectable and tested to give the same optimum.

Either way, what Pyomo does not expose is reached on the ``highspy.Highs`` object:

- the **warm start**: a feasible site choice from :mod:`optimization.heuristic` is passed with
  ``highspy.Highs.setSolution`` (sparse form: only the binary columns);
- the **live gap**: ``cbMipImprovingSolution`` / ``cbMipInterrupt`` callbacks report the incumbent and bound;
- **interrupting** a solve: the interrupt callback stops HiGHS when :attr:`SolverOptions.should_stop` says so;
- the **log**: HiGHS's logging callback streams each line to :attr:`SolverOptions.log` (compiled path); the banner
  HiGHS prints straight to the process's standard output when its first instance is made is caught by
  :func:`capture_banner` (once per process: a command line's run, each sweep worker) and sent to the same sink.

Statuses map to ``optimal``, ``feasible`` (stopped with a gap), ``infeasible``, ``time_limit_no_solution``,
``cancelled`` (interrupted before any solution) and ``error``, each with a message a planner can act on.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from optimization import completion
from optimization.translate import compile_model


@dataclass
class SolverOptions:
    """Time limit (seconds), relative MIP gap, threads, warm start (variable name → value); callbacks for
    progress and stopping; ``extra``: further HiGHS options by name (e.g. ``{"mip_lp_solver": "ipm"}``);
    ``interface``: ``compiled`` or ``persistent`` (see the module docstring); ``start``: the warm start
    :func:`optimization.run.optimize` builds when ``warm_start`` is not given — ``greedy``, ``dive`` (the LP
    dive of :mod:`optimization.dive`, which falls back to the greedy), ``auto`` (the dive for large
    multi-commodity models, else the greedy) or ``none``; ``alternative_starts``: further candidate starts
    (same form as ``warm_start``). On the compiled path, where start completion applies (models of at least
    ``optimization.completion.COMPLETE_START_COLUMNS`` columns), ``warm_start`` and each alternative are
    completed and priced in the model and HiGHS gets the cheapest that completes; elsewhere the partial
    ``warm_start`` goes to HiGHS and the alternatives are ignored. ``start_completion``: ``background`` (the
    starts are completed in worker threads while HiGHS sets up the MIP and reach it through its user-solution
    callback, :class:`optimization.completion.BackgroundCompletion`; ``start_wait`` is how many seconds HiGHS
    waits for them after its setup, None for as long as they take within the time limit; the solve time then
    includes that wait, and ``SolveResult.start_used`` is the best start HiGHS was given, so a start finished
    after HiGHS's last callback is priced but unused) or ``before`` (completed one after another before HiGHS
    starts, the time counted against the limit; the partial ``warm_start`` goes to HiGHS when none
    completes)."""

    time_limit: float | None = None
    rel_gap: float = 1e-4
    threads: int | None = None
    warm_start: dict[str, float] | None = None
    on_progress: Callable[[dict], None] | None = None
    should_stop: Callable[[], bool] | None = None
    log: Callable[[str], None] | None = None
    extra: dict = field(default_factory=dict)
    interface: str = "compiled"
    start: str = "auto"
    alternative_starts: list[dict[str, float]] = field(default_factory=list)
    start_completion: str = "background"
    start_wait: float | None = None


STARTS = ("auto", "greedy", "dive", "none")
START_COMPLETIONS = ("background", "before")


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
    start_costs: list[float | None] = field(default_factory=list)
    start_used: int | None = None


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


_BANNER: dict[str, str | None] = {"text": None}
_BANNER_LOCK = threading.Lock()


def capture_banner(sink: Callable[[str], None] | None = None) -> str:
    """Make the process's first HiGHS instance with file descriptor 1 pointed at a temporary file, so that the
    banner HiGHS writes there ("Running HiGHS … Copyright …", once per process) does not land in the middle of a
    command's tables; returns the banner and sends each of its lines to ``sink`` (a run's log) the first time.
    Later calls return the same text and send nothing."""
    with _BANNER_LOCK:
        if _BANNER["text"] is not None:
            return _BANNER["text"]
        text = ""
        try:
            sys.stdout.flush()
            saved = os.dup(1)
        except (OSError, ValueError):  # no real descriptor 1 (an embedding host): leave HiGHS as it is
            highspy.Highs()
            _BANNER["text"] = ""
            return ""
        with tempfile.TemporaryFile(mode="w+b") as tmp:
            try:
                os.dup2(tmp.fileno(), 1)
                highspy.Highs()
                _flush_c_stdout()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
        _BANNER["text"] = text
    if sink is not None:
        for line in text.splitlines():
            if line.strip():
                sink(line)
    return text


def _flush_c_stdout() -> None:
    """Flush the C library's stdout buffer (HiGHS writes its banner through it)."""
    with contextlib.suppress(OSError, AttributeError):  # a libc without fflush by that name: nothing to flush
        ctypes.CDLL(None).fflush(None)


def reset_highs_scheduler() -> None:
    """Let the next HiGHS run in this process set its own thread count: HiGHS keeps one task scheduler per
    process, sized by the first run, and refuses a later run that asks for another size ("the scheduler has
    already been initialized"), so a solve that sets its threads resets the scheduler first. Call it only where
    no other HiGHS run of this process is active (a solve's start; a sweep runs one task per worker process)."""
    highspy.Highs.resetGlobalScheduler(True)


def remaining_limit(limit: float, spent: float) -> float:
    """What is left of a time limit (seconds) after ``spent`` seconds of preparation, never below a second (or
    the whole limit, if that is shorter) so that HiGHS can still return a solution it is given."""
    return max(limit - spent, min(limit, 1.0))


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|objective − bound| / max(|objective|, 1e-10); None when either is missing."""
    if objective is None or bound is None or not math.isfinite(objective) or not math.isfinite(bound):
        return None
    return abs(objective - bound) / max(abs(objective), 1e-10)


def solve_model(model: pyo.ConcreteModel, options: SolverOptions | None = None) -> SolveResult:
    """Solve a Pyomo model with HiGHS and load the solution when there is one."""
    options = options or SolverOptions()
    if options.interface not in ("compiled", "persistent"):
        raise ValueError(f"SolverOptions.interface: 'compiled' or 'persistent', got {options.interface!r}")
    if options.start_completion not in START_COMPLETIONS:
        raise ValueError(f"SolverOptions.start_completion: 'background' or 'before', got {options.start_completion!r}")
    wait = options.start_wait
    if wait is not None and (isinstance(wait, bool) or not isinstance(wait, int | float) or not wait >= 0):
        raise ValueError(f"SolverOptions.start_wait: seconds (a number >= 0) or None, got {wait!r}")
    if options.interface == "compiled":
        return _solve_compiled(model, options)
    capture_banner(options.log)
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
    has_solution = ss in (SolutionStatus.optimal, SolutionStatus.feasible)
    if has_solution:
        results.solution_loader.load_vars()
    return _result(tc, has_solution, objective, bound, seconds, stream.buffer_.getvalue(), options)


_HIGHS_STATUS = {
    "kOptimal": TerminationCondition.convergenceCriteriaSatisfied,
    "kInfeasible": TerminationCondition.provenInfeasible,
    "kUnboundedOrInfeasible": TerminationCondition.infeasibleOrUnbounded,
    "kUnbounded": TerminationCondition.unbounded,
    "kTimeLimit": TerminationCondition.maxTimeLimit,
    "kIterationLimit": TerminationCondition.iterationLimit,
    "kSolutionLimit": TerminationCondition.iterationLimit,
    "kInterrupt": TerminationCondition.interrupted,
    "kObjectiveBound": TerminationCondition.objectiveLimit,
    "kObjectiveTarget": TerminationCondition.objectiveLimit,
}


def _solve_compiled(model: pyo.ConcreteModel, options: SolverOptions) -> SolveResult:
    """The ``compiled`` path of :func:`solve_model`."""
    capture_banner(options.log)
    highs, cols = compile_model(model)
    lines: list[str] = []

    def on_log(e) -> None:
        text = e.message.rstrip("\n")
        lines.append(text)
        if options.log is not None:
            for line in text.splitlines():
                if line.strip():
                    options.log(line)

    highs.setOptionValue("output_flag", True)
    highs.setOptionValue("log_to_console", False)
    highs.cbLogging.subscribe(on_log)
    if options.threads is not None:
        reset_highs_scheduler()
        highs.setOptionValue("threads", int(options.threads))
    if options.time_limit is not None:
        highs.setOptionValue("time_limit", float(options.time_limit))
    highs.setOptionValue("mip_rel_gap", float(options.rel_gap))
    for key, value in options.extra.items():
        highs.setOptionValue(key, value)
    start_costs: list[float | None] = []
    start_used = None
    kept_start = None
    background = None
    if options.warm_start:
        partial = _partial_starts(model, cols, options)
        if options.start_completion == "background" and highs.getNumCol() >= completion.COMPLETE_START_COLUMNS:
            background = completion.BackgroundCompletion(highs, partial, options.start_wait, options.time_limit,
                                                         options.should_stop, options.log)
        else:
            started = time.perf_counter()
            start_costs, start_used, kept_start = _set_start(highs, partial, options)
            if options.time_limit is not None:
                spent = time.perf_counter() - started
                highs.setOptionValue("time_limit", remaining_limit(float(options.time_limit), spent))
    if options.on_progress is not None or options.should_stop is not None:
        _attach_callbacks(highs, options)
    start = time.perf_counter()
    ran = False
    try:
        if background is not None:
            background.attach(highs)
        highs.run()
        ran = True
    finally:
        if background is not None and not ran:
            background.close()
    status = highs.getModelStatus()
    tc = _HIGHS_STATUS.get(status.name, TerminationCondition.error)
    info = highs.getInfo()
    has_solution = info.primal_solution_status == 2
    objective = info.objective_function_value if has_solution else None
    is_mip = info.mip_node_count >= 0
    bound = info.mip_dual_bound if is_mip else (objective if tc == TerminationCondition.convergenceCriteriaSatisfied
                                                else None)
    values = highs.getSolution().col_value if has_solution else None
    if background is not None:
        # Interrupted before HiGHS had a solution: the completed start is the incumbent the caller keeps (as
        # when the start went to HiGHS before the solve), so the workers are let finish.
        interrupted = options.should_stop is not None and bool(options.should_stop())
        start_costs, start_used = background.close(finish=interrupted and not has_solution)
        fallback = None if has_solution else background.best_start()
        if fallback is not None:
            values, objective = fallback
            has_solution = True
    if not has_solution and tc == TerminationCondition.maxTimeLimit and options.warm_start:
        kept_start = kept_start or completion.complete_now(highs, partial, options.threads)
        if kept_start is not None:
            values, objective = kept_start
            has_solution = True
    seconds = time.perf_counter() - start
    if has_solution:
        for v, x in zip(cols, values, strict=True):
            v.set_value(x, skip_validation=True)
    result = _result(tc, has_solution, objective, bound, seconds, "\n".join(lines), options)
    result.start_costs, result.start_used = start_costs, start_used
    return result


def _partial_starts(model: pyo.ConcreteModel, cols, options: SolverOptions) -> list[tuple[np.ndarray, np.ndarray]]:
    """``options.warm_start`` and ``options.alternative_starts`` as (column indices, values) in ``cols``."""
    index = {id(v): i for i, v in enumerate(cols)}
    partial = []
    for start in [options.warm_start, *options.alternative_starts]:
        pairs = [(index[id(var)], float(value)) for name, value in start.items()
                 if (var := model.find_component(name)) is not None and id(var) in index]
        partial.append((np.array([p[0] for p in pairs], dtype=np.int32),
                        np.array([p[1] for p in pairs], dtype=np.float64)))
    return partial


def _set_start(highs, partial: list[tuple[np.ndarray, np.ndarray]], options: SolverOptions
               ) -> tuple[list[float | None], int | None, tuple[np.ndarray, float] | None]:
    """Give HiGHS, before it starts, the cheapest of the partial starts once completed (see
    :func:`optimization.completion.complete_starts`), or the first partial start when none completes; returns
    each start's cost in the model (None where it did not complete), the position of the start HiGHS got, and the
    completed start (full column values, cost) the caller keeps as the incumbent if HiGHS stops before it has
    a solution of its own (a time limit shorter than its presolve)."""
    completed, sense = completion.complete_starts(highs, partial, options.threads)
    costs = completion.costs_of(completed)
    k = completion.best(costs, sense)
    if k is not None:
        values = completed[k][0]
        status = highs.setSolution(len(values), np.arange(len(values), dtype=np.int32), values)
        return costs, (k if status == highspy.HighsStatus.kOk else None), (np.asarray(values), float(costs[k]))
    idx, vals = partial[0]
    if not len(idx):
        return costs, None, None
    status = highs.setSolution(len(idx), idx, vals)
    return costs, (0 if status == highspy.HighsStatus.kOk else None), None


def _result(tc, has_solution: bool, objective, bound, seconds: float, log: str, options: SolverOptions) -> SolveResult:
    """Map a termination condition to a status and a message a planner can act on."""
    if bound is not None and not math.isfinite(bound):
        bound = None
    interrupted = options.should_stop is not None and options.should_stop()
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
    return SolveResult(status, msg, objective if has_solution else None, bound, gap, seconds, log)


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
