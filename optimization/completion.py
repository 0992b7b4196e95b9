r"""Completing a warm start: from a site choice (the binary columns) to a full MIP start HiGHS can take.

A heuristic (:mod:`optimization.heuristic`, :mod:`optimization.dive`) fixes the binaries; the flows follow from
the LP with those columns fixed. HiGHS would complete a partial start itself with the dual simplex inside the
MIP solver, which on the national instance (459 k columns) took over 90 s. Here the LP is made small first:

1. **forced zeros**, propagated in numpy: a row whose free columns all have the same sign (and lower bound 0)
   and whose fixed part already sits on the bound those columns push against forces them to 0. A closed
   site's linking row :math:`x_a - U_a \sum y \le 0` and capacity row :math:`\sum x - \sum Q y \le 0` force
   its inbound arcs to 0; its balance row then forces the outbound arcs. Repeated until nothing changes;
2. the LP of the columns left (rows without any of them are checked and dropped), solved by HiGHS's
   interior-point solver with crossover (on the national instance 10 s, against 24 s for the dual simplex).

Measured against the IPX solve of the whole LP with the binaries fixed (the earlier way): pmed15 (90,601
columns, 100 of 300 sites open) 0.18 s instead of 0.28 s, a third of the columns left; pmed30 0.8 s instead of
2.1 s; the national instance's greedy start 10.7 s instead of 12.2 s, 222 k of 459 k columns left.
"""

from __future__ import annotations

import math
import threading
import time

import highspy
import numpy as np
from scipy.sparse import csc_array, csr_array

COMPLETE_START_COLUMNS = 50_000
TOLERANCE = 1e-9
WAIT_SLICE = 0.1


def forced_zeros(A, col_lower: np.ndarray, row_lower: np.ndarray, row_upper: np.ndarray, known: np.ndarray,
                 x: np.ndarray, passes: int = 20) -> np.ndarray:
    """Columns that must be 0 once the columns marked ``known`` take the values ``x`` (see the module
    docstring); ``A`` is the constraint matrix (any scipy sparse format), bounds as arrays with ±inf for open
    sides. A row forces its free columns only when the room left to its bound would move none of them by more
    than ``TOLERANCE`` (room / smallest free coefficient), so the propagation never forces a column that a
    feasible completion needs. Returns a boolean mask over the columns."""
    A = csr_array(A)
    n_rows, n = A.shape
    rows = np.repeat(np.arange(n_rows), np.diff(A.indptr))
    cols, a = A.indices, A.data
    at_zero = col_lower[cols] == 0
    magnitude = np.abs(a)
    zero = np.zeros(n, dtype=bool)
    for _ in range(passes):
        settled = known | zero
        value = np.where(settled, x, 0.0)
        fixed_part = np.bincount(rows, weights=a * value[cols], minlength=n_rows)
        free = ~settled[cols]
        blocks_up = np.bincount(rows, weights=(free & ~((a > 0) & at_zero)), minlength=n_rows) == 0
        blocks_down = np.bincount(rows, weights=(free & ~((a < 0) & at_zero)), minlength=n_rows) == 0
        smallest = np.full(n_rows, np.inf)
        np.minimum.at(smallest, rows[free], magnitude[free])
        has_free = np.isfinite(smallest)
        room = TOLERANCE * np.where(has_free, smallest, 0.0)
        at_upper = np.abs(row_upper - fixed_part) <= room
        at_lower = np.abs(row_lower - fixed_part) <= room
        forcing = has_free & ((blocks_up & at_upper) | (blocks_down & at_lower))
        new = cols[free & forcing[rows]]
        if not len(new):
            break
        zero[new] = True
    return zero & ~known


def _option(highs: highspy.Highs, name: str):
    """A HiGHS option's value (highspy returns (status, value) in some versions, the value in others)."""
    value = highs.getOptionValue(name)
    return value[1] if isinstance(value, tuple) else value


class _Model:
    """The arrays of the model loaded in a ``highspy.Highs`` that completion needs (copied once, in the thread
    that owns the solver); ``sense`` is +1 to minimise, -1 to maximise."""

    def __init__(self, highs: highspy.Highs):
        lp = highs.getLp()
        n, m = lp.num_col_, lp.num_row_
        self.n = n
        self.lower, self.upper, self.cost = (np.asarray(v, dtype=np.float64)
                                             for v in (lp.col_lower_, lp.col_upper_, lp.col_cost_))
        self.offset = float(lp.offset_)
        self.sense_code = lp.sense_
        self.sense = -1.0 if lp.sense_ == highspy.ObjSense.kMaximize else 1.0
        self.feasibility = float(_option(highs, "primal_feasibility_tolerance"))
        self.row_lower, self.row_upper = (np.asarray(v, dtype=np.float64) for v in (lp.row_lower_, lp.row_upper_))
        self.A = csc_array((np.asarray(lp.a_matrix_.value_, dtype=np.float64), np.asarray(lp.a_matrix_.index_),
                            np.asarray(lp.a_matrix_.start_)), shape=(m, n))
        self.A_rows = self.A.tocsr()


def _complete(model: _Model, idx: np.ndarray, vals: np.ndarray, threads: int | None,
              should_stop=None) -> tuple[np.ndarray, float] | None:
    """One partial start completed: (column values, objective value in the model, offset included) or None
    (see :func:`complete_starts`); ``should_stop`` (a callable) interrupts the LP."""
    if not len(idx):
        return None
    known = np.zeros(model.n, dtype=bool)
    known[idx] = True
    x = np.zeros(model.n)
    x[idx] = vals
    zero = forced_zeros(model.A_rows, model.lower, model.row_lower, model.row_upper, known, x)
    solved = _solve_rest(model, known | zero, x, threads, should_stop)
    return None if solved is None else (solved, float(np.dot(model.cost, solved)) + model.offset)


def costs_of(completed: list[tuple[np.ndarray, float] | None]) -> list[float | None]:
    """The objective value of each completed start (None where it did not complete)."""
    return [None if c is None else c[1] for c in completed]


def best(costs: list[float | None], sense: float, among=None) -> int | None:
    """Position of the best cost (lowest when minimising, ``sense`` +1; highest when maximising, -1) among the
    positions ``among`` (all by default) whose cost is not None; None when there is none."""
    ks = [k for k in (range(len(costs)) if among is None else among) if costs[k] is not None]
    return min(ks, key=lambda k: sense * costs[k]) if ks else None


def complete_starts(highs: highspy.Highs, starts: list[tuple[np.ndarray, np.ndarray]],
                    threads: int | None) -> tuple[list, float]:
    """Full MIP starts from partial ones (column indices and values of the binaries) for the model loaded in
    ``highs``: per start, (column values, objective value in the model) or None when it is empty, its fixed
    part breaks a row, or the LP of the rest has no optimal solution; and the objective's sense (+1 minimise,
    -1 maximise). Models below ``COMPLETE_START_COLUMNS`` columns are left to HiGHS (all None)."""
    if highs.getNumCol() < COMPLETE_START_COLUMNS:
        return [None] * len(starts), 1.0
    model = _Model(highs)
    return [_complete(model, idx, vals, threads) for idx, vals in starts], model.sense


def complete_now(highs: highspy.Highs, starts: list[tuple[np.ndarray, np.ndarray]],
                 threads: int | None) -> tuple[np.ndarray, float] | None:
    """The best of ``starts`` completed in the model loaded in ``highs`` whatever its size (column values,
    objective value), or None when none completes: the incumbent a solve keeps when HiGHS stopped at its time limit
    before it had a solution of its own (a small model's start is otherwise left to HiGHS)."""
    model = _Model(highs)
    done = [_complete(model, idx, vals, threads) for idx, vals in starts]
    k = best(costs_of(done), model.sense)
    return None if k is None else done[k]


class BackgroundCompletion:
    """Completes partial starts in worker threads (one a start) while HiGHS sets up the MIP, and hands the
    best finished one to HiGHS through its user-solution callback (``cbMipUserSolution``: after setup, during
    the root node, before each dive). HiGHS releases the GIL while it solves, so the completion overlaps
    HiGHS's presolve and setup, and several starts are completed side by side; a start not finished when the
    MIP ends is interrupted and reported as None.

    ``wait``: seconds the first callback (after HiGHS's setup, before its root LP) waits for the workers, None
    for as long as they take (within ``limit``, the solve's time limit in seconds). Waiting matters: on the
    national instance a start that reaches HiGHS after its root node left it 30 s slower to a 1% gap. The wait
    ends early when ``should_stop()`` says so (the workers go on: a solve interrupted before HiGHS has a
    solution returns the best completed start, see :meth:`close` and :meth:`best_start`). ``log`` receives a
    line for each start whose completion failed with an error."""

    def __init__(self, highs: highspy.Highs, starts: list[tuple[np.ndarray, np.ndarray]], wait: float | None = None,
                 limit: float | None = None, should_stop=None, log=None):
        self.model = _Model(highs)
        self.starts = starts
        self.wait = wait
        self.limit = limit
        self.user_stop = should_stop
        self.log = log
        self.done: list[tuple[np.ndarray, float] | None] = [None] * len(starts)
        self.left = len(starts)
        self.lock = threading.Lock()
        self.finished = threading.Event()
        if not starts:
            self.finished.set()
        self.stopping = threading.Event()
        self.offered: list[int] = []
        self.calls = 0
        self.began = 0.0
        self.error: BaseException | None = None
        self.workers = [threading.Thread(target=self._work, args=(k,), name=f"start-completion-{k}", daemon=True)
                        for k in range(len(starts))]

    def _should_stop(self) -> bool:
        return self.stopping.is_set() or (self.user_stop is not None and bool(self.user_stop()))

    def _work(self, k: int) -> None:
        try:
            if not self.stopping.is_set():
                idx, vals = self.starts[k]
                self.done[k] = _complete(self.model, idx, vals, 1, self.stopping.is_set)
        except Exception as exc:  # a failed start is reported, the MIP goes on without it
            if self.log is not None:
                self.log(f"start {k}: completion failed ({exc!r}); HiGHS goes on without it")
        finally:
            with self.lock:
                self.left -= 1
                if self.left == 0:
                    self.finished.set()

    def attach(self, highs: highspy.Highs) -> None:
        """Subscribe to ``highs``'s user-solution callback and start the workers."""
        highs.cbMipUserSolution.subscribe(self._offer)
        self.began = time.perf_counter()
        for worker in self.workers:
            worker.start()

    def _wait_for_workers(self) -> None:
        deadline = None if self.limit is None else self.began + self.limit
        if self.wait is not None:
            deadline = min(deadline or math.inf, time.perf_counter() + self.wait)
        while not self.finished.wait(WAIT_SLICE):
            if self._should_stop() or (deadline is not None and time.perf_counter() >= deadline):
                return

    def _offer(self, e) -> None:
        # An exception raised here would not reach Python: HiGHS would end the solve with an error. It is
        # kept and raised again by close().
        try:
            self.calls += 1
            if self.calls == 1:
                self._wait_for_workers()
            costs = costs_of(self.done)
            k = best(costs, self.model.sense, [i for i in range(len(costs)) if i not in self.offered])
            if k is None:
                return
            given = best(costs, self.model.sense, self.offered)
            if given is not None and self.model.sense * costs[k] >= self.model.sense * costs[given]:
                return
            if e.data_in.setSolution(self.done[k][0]) == highspy.HighsStatus.kOk:
                self.offered.append(k)
        except BaseException as exc:
            self.error = self.error or exc
            self.stopping.set()

    def close(self, finish: bool = False) -> tuple[list[float | None], int | None]:
        """Stop the workers (after the MIP; with ``finish``, let them complete their starts first) and report
        each start's objective value in the model (None where it did not complete) and the position of the
        best start HiGHS was given (None if none reached it); raises what the callback raised (a
        KeyboardInterrupt while it waited, say)."""
        if not finish:
            self.stopping.set()
        for worker in self.workers:
            worker.join()
        costs = costs_of(self.done)
        if self.error is not None:
            raise self.error
        return costs, best(costs, self.model.sense, self.offered)

    def best_start(self) -> tuple[np.ndarray, float] | None:
        """The best completed start (column values, objective value), after :meth:`close`; None if none."""
        k = best(costs_of(self.done), self.model.sense)
        return None if k is None else self.done[k]


def _solve_rest(model: _Model, settled: np.ndarray, x: np.ndarray, threads: int | None,
                should_stop=None) -> np.ndarray | None:
    """The LP over the columns not ``settled`` (those keep their value in ``x``) as a continuous problem; the
    full column vector, or None when the settled part breaks a row (beyond HiGHS's primal feasibility
    tolerance), the LP has no optimal solution, or ``should_stop()`` interrupted it."""
    A, cost, lower, upper = model.A, model.cost, model.lower, model.upper
    row_lower, row_upper = model.row_lower, model.row_upper
    keep = np.flatnonzero(~settled)
    values = np.where(settled, x, 0.0)
    fixed_part = A @ values
    sub = A[:, keep].tocsr()
    live = np.diff(sub.indptr) > 0
    dead = ~live
    tol = model.feasibility
    if np.any((fixed_part[dead] < row_lower[dead] - tol) | (fixed_part[dead] > row_upper[dead] + tol)):
        return None
    if not len(keep):
        return values
    sub = sub[live].tocsc()
    sub.sort_indices()
    rest = highspy.HighsLp()
    rest.num_col_, rest.num_row_ = len(keep), sub.shape[0]
    rest.col_cost_, rest.col_lower_, rest.col_upper_ = cost[keep], lower[keep], upper[keep]
    rest.sense_ = model.sense_code
    rest.row_lower_ = row_lower[live] - fixed_part[live]
    rest.row_upper_ = row_upper[live] - fixed_part[live]
    rest.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    rest.a_matrix_.start_, rest.a_matrix_.index_, rest.a_matrix_.value_ = sub.indptr, sub.indices, sub.data
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    h.setOptionValue("solver", "ipx")
    h.passModel(rest)
    if should_stop is not None:
        def interrupt(e) -> None:
            if should_stop():
                e.interrupt()

        h.cbIpmInterrupt.subscribe(interrupt)
        h.cbSimplexInterrupt.subscribe(interrupt)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    values[keep] = np.asarray(h.getSolution().col_value, dtype=np.float64)
    return values
