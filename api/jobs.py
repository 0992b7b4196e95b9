"""Runs outside the request: each run in its own worker process, a configurable number at a time.

A dispatcher thread starts queued runs while fewer than ``PLANNER_MAX_RUNS`` (default 1) are running. The worker
process writes its progress (the solver's log line and current gap) and finally the result or the error to the
database. Cancelling terminates the worker process — the solve itself stops — and marks the run cancelled.
At start-up, a run left ``running`` by a previous server (its process is gone) is marked failed, with the
reason, so nothing is silently lost.

A run has one wall-clock deadline for every stage (network, MILP, equilibrium, outputs): its solver time limit
plus ``PLANNER_RUN_ALLOWANCE_S``; past it the worker is terminated and the run ends ``failed`` naming the stage
it had reached. Each worker runs under an address-space limit (``PLANNER_WORKER_MEMORY_MB``,
``resource.setrlimit``): a run that needs more ends ``failed`` with that reason; the server and the other runs go
on.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import signal
import threading
import time
import traceback

from sqlalchemy import select

from api.db import RunRecord, clean_json, now, session
from api.limits import Limits, load_limits

MEMORY_HINT = ("the run needed more memory than the worker limit of {mb} MiB (PLANNER_WORKER_MEMORY_MB); make "
               "the scenario smaller (scope, commodities, network.k_nearest) or ask the operator to raise the limit")


def max_runs() -> int:
    """How many runs execute at once (``PLANNER_MAX_RUNS``, default 1); SettingsError for a bad value."""
    return load_limits().max_runs


def _limit_memory(mb: int) -> None:
    """Cap this process's address space at ``mb`` MiB (0: no cap): the soft limit only, so the worker can lift it
    again to report the failure."""
    if mb > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = mb << 20 if hard == resource.RLIM_INFINITY else min(mb << 20, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _update(url: str, run_id: str, **fields) -> None:
    with session(url) as s:
        run = s.get(RunRecord, run_id)
        if run is None:
            return
        for k, v in fields.items():
            setattr(run, k, v)
        s.commit()


def _peak_mb() -> float:
    """This process's peak address space so far, MiB (Linux ``VmPeak``; 0 where unknown)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _execute(run_id: str, url: str, body: dict) -> None:
    """Run a stored scenario, report progress, store the result (or the solver's failure)."""
    from optimization.solve import relative_gap
    from planner.data.loader import load_dataset
    from planner.execute import execute_scenario
    from planner.outputs import network_geojson, result_tables
    from planner.scenario import parse_scenario

    scenario = parse_scenario(body, source="scenario")
    last = {"t": 0.0}

    def on_log(line: str) -> None:
        t = time.monotonic()
        if t - last["t"] > 1.0:
            last["t"] = t
            _update(url, run_id, progress=("solving: " + line.strip())[:200])

    def on_progress(info: dict) -> None:
        gap = relative_gap(info.get("objective"), info.get("bound"))
        if gap is not None:
            _update(url, run_id, gap=gap)

    _update(url, run_id, progress="building the model")
    dataset = load_dataset(dict(scenario.data))
    out = execute_scenario(scenario, dataset, on_log=on_log, on_progress=on_progress)
    t = result_tables(out.planned, out.result, out.summary, out.losses, out.prices, out.investor)
    result = {"summary": out.summary,
              "tables": {k: json.loads(v.to_json(orient="records", force_ascii=False)) for k, v in t.items()},
              "geojson": network_geojson(out.planned, out.result, t["sites"])}
    result = clean_json(json.loads(json.dumps(result, default=float)))
    status = "succeeded" if out.result.objective is not None else "failed"
    _update(url, run_id, status=status, progress="done", result=result, gap=out.result.gap, finished=now(),
            error=None if status == "succeeded" else out.result.message)


def worker_main(run_id: str, url: str, memory_mb: int = 0) -> None:
    """Worker process: load the libraries and the run's scenario, then run it under an address-space limit of
    ``memory_mb`` MiB (0: none); every failure is stored as the run's error (a run over the limit says so)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        import planner.execute  # noqa: F401  (libraries and the embedded dataset load before the limit applies:
        import planner.outputs  # noqa: F401   it bounds what the run itself builds)
        from planner.data.loader import load_dataset

        load_dataset()

        with session(url) as s:
            body = s.get(RunRecord, run_id).scenario
        _limit_memory(memory_mb)
        _execute(run_id, url, body)
    except MemoryError:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))  # the run's objects are gone with _execute's frame
        _update(url, run_id, status="failed", progress="failed", finished=now(), error=MEMORY_HINT.format(mb=memory_mb))
    except Exception as exc:  # the worker reports every failure to the database instead of dying silently
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        # a library that turns a refused allocation into its own error (pandas' reader, HiGHS) still ran out
        hint = f" — {MEMORY_HINT.format(mb=memory_mb)}" if memory_mb and _peak_mb() >= 0.9 * memory_mb else ""
        _update(url, run_id, status="failed", progress="failed", finished=now(),
                error=(f"{type(exc).__name__}: {str(exc)[:1500]}{hint}")[:2000])
        traceback.print_exc()


class JobManager:
    """Starts queued runs in worker processes, watches them, and cancels them on request."""

    def __init__(self, url: str, limits: Limits | None = None):
        self.url = url
        self.limits = limits or load_limits()
        self.procs: dict[str, mp.Process] = {}
        self.deadlines: dict[str, float] = {}  # run id -> time.monotonic() past which its worker is stopped
        self.budget: dict[str, float] = {}  # run id -> its deadline, seconds from the start
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def recover(self) -> int:
        """Mark runs left running by a previous server as failed; returns how many."""
        n = 0
        with session(self.url) as s:
            for run in s.scalars(select(RunRecord).where(RunRecord.status == "running")):
                run.status = "failed"
                run.progress = "interrupted"
                run.error = "interrupted by a server restart while running; submit it again"
                run.finished = now()
                n += 1
            s.commit()
        return n

    def start(self) -> None:
        """Recover interrupted runs and start the dispatcher thread."""
        self.recover()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="planner-dispatcher")
        self.thread.start()

    def shutdown(self) -> None:
        """Stop dispatching; running workers are terminated (their runs are marked at the next start-up)."""
        self.stop.set()
        with self.lock:
            for p in self.procs.values():
                if p.is_alive():
                    p.terminate()

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run; terminates its worker. False if it had already ended."""
        with self.lock, session(self.url) as s:
            run = s.get(RunRecord, run_id)
            if run is None or run.status not in ("queued", "running"):
                return False
            p = self.procs.pop(run_id, None)
            self.deadlines.pop(run_id, None)
            self.budget.pop(run_id, None)
            if p is not None and p.is_alive():
                p.terminate()
                p.join(5)
            run.status = "cancelled"
            run.progress = "cancelled"
            run.finished = now()
            s.commit()
        return True

    def _exit_reason(self, code: int | None) -> str:
        """Why a worker ended without writing its outcome: a signal (a native allocation past the memory limit
        aborts the process) or an exit code."""
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            hint = (" — " + MEMORY_HINT.format(mb=self.limits.worker_memory_mb)
                    if self.limits.worker_memory_mb and -code in (signal.SIGABRT, signal.SIGSEGV, signal.SIGKILL,
                                                                   signal.SIGBUS) else "")
            return f"worker ended by signal {name}{hint}"
        return f"worker exited with code {code}"

    def deadline_s(self, scenario: dict) -> float:
        """A run's wall-clock deadline, seconds from its start: its solver time limit plus the allowance for the
        other stages (network, equilibrium, outputs; ``PLANNER_RUN_ALLOWANCE_S``)."""
        limit = (scenario.get("solver") or {}).get("time_limit_s") or self.limits.max_time_limit_s
        return float(limit) + self.limits.run_allowance_s

    def _past_deadline(self, rid: str, p) -> None:
        """Stop a worker past its run's deadline and mark the run failed with the stage it had reached."""
        p.terminate()
        p.join(5)
        self.procs.pop(rid)
        with session(self.url) as s:
            run = s.get(RunRecord, rid)
            if run is not None and run.status == "running":
                run.status, run.finished = "failed", now()
                run.error = (f"deadline of {self.budget.pop(rid, 0):g} s passed at stage '{run.progress}' "
                             "(solver.time_limit_s plus PLANNER_RUN_ALLOWANCE_S); the worker was stopped")
                s.commit()

    def _loop(self) -> None:
        ctx = mp.get_context("spawn")
        while not self.stop.is_set():
            try:
                with self.lock:
                    for rid, p in list(self.procs.items()):
                        if p.is_alive() and time.monotonic() > self.deadlines.get(rid, float("inf")):
                            self._past_deadline(rid, p)
                        elif not p.is_alive():
                            p.join()
                            self.procs.pop(rid)
                            self.deadlines.pop(rid, None)
                            self.budget.pop(rid, None)
                            with session(self.url) as s:
                                run = s.get(RunRecord, rid)
                                if run is not None and run.status == "running":
                                    run.status, run.finished = "failed", now()
                                    run.error = run.error or self._exit_reason(p.exitcode)
                                    s.commit()
                    free = self.limits.max_runs - len(self.procs)
                    if free > 0:
                        with session(self.url) as s:
                            queued = list(s.scalars(select(RunRecord).where(RunRecord.status == "queued")
                                                    .order_by(RunRecord.created).limit(free)))
                            for run in queued:
                                run.status, run.started, run.progress = "running", now(), "starting"
                            s.commit()
                        for run in queued:
                            p = ctx.Process(target=worker_main, daemon=True,
                                            args=(run.id, self.url, self.limits.worker_memory_mb))
                            p.start()
                            self.procs[run.id] = p
                            self.budget[run.id] = self.deadline_s(run.scenario)
                            self.deadlines[run.id] = time.monotonic() + self.budget[run.id]
                            _update(self.url, run.id, pid=p.pid)
            except Exception:  # keep dispatching whatever one iteration hit
                traceback.print_exc()
            self.stop.wait(0.5)
