"""Runs outside the request: each run in its own worker process, a configurable number at a time.

A dispatcher thread claims queued runs while fewer than ``PLANNER_MAX_RUNS`` (default 1) are running. The worker
process writes its progress (the solver's log line and current gap) and finally the result or the error to the
database. Cancelling marks the run cancelled and terminates its worker — the solve itself stops.

Crashes and several servers (issue #19, item 3):

- **Workers die with their server.** A worker asks Linux to kill it when its parent goes
  (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) as the first thing it runs (its entry point, :mod:`api.worker_boot`,
  imports only the standard library), and exits at once if the parent is already gone; an estimate's process
  does the same. A server that starts reaps (SIGKILL) a stored worker of an expired run that still lives on this
  host, recognised by pid *and* process start time, so a reused pid is never hit.
- **Leases, not guesses.** Claiming a run (``queued`` → ``running``, conditional, so two servers never start the
  same run) gives it a lease token (``lease_owner``) and an expiry (``lease_until``); its worker renews the
  lease every fifth of ``PLANNER_LEASE_S``. Any server, at start-up and every few seconds, fails only runs whose
  lease has expired (their worker is really gone or hung) — never a live run of another server on the database.
- **Conditional writes.** Every write of a worker (progress, result, error) and of the server about a run it
  started is ``UPDATE … WHERE status = 'running' AND lease_owner = <token>``: once a run has been cancelled or
  failed nothing overwrites that, and a worker that finds its run no longer its own exits at once. So a
  ``DELETE`` on any server stops the worker, wherever it runs, within one renewal period (at once on its own).

Estimates as jobs: a row with ``kind`` ``loss`` or ``price`` is an estimate submitted with ``?wait=false``; it is
claimed, leased, limited, cancelled and recovered exactly as a run, and its worker stores the estimate (the same
JSON as the synchronous answer) as the result.

A host is named by ``PLANNER_HOST_ID`` (default the machine's host name): servers that share a database from
several machines (or containers with one host name) must each have their own.

A run has one wall-clock deadline for every stage (network, MILP, equilibrium, outputs): its solver time limit
plus ``PLANNER_RUN_ALLOWANCE_S`` (:mod:`planner.deadline`, as on the command line). The worker holds a deadline
:data:`WORKER_MARGIN_S` earlier and ends the run itself naming the stage; past the server's, the worker is
terminated and the run ends ``failed`` naming the stage it had reached. Each worker runs under an address-space
limit (``PLANNER_WORKER_MEMORY_MB``, ``resource.setrlimit``): a run that needs more ends ``failed`` with that
reason; the server and the other runs go on.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import resource
import shutil
import signal
import socket
import threading
import time
import traceback
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import load_only

from api.db import RunRecord, clean_json, now, session
from api.limits import Limits, load_limits, runs_dir
from api.worker_boot import PR_SET_PDEATHSIG, boot, die_with_parent  # noqa: F401  (the workers' entry point)
from planner import deadline

WORKER_MARGIN_S = 5.0
"""Seconds by which a worker's own deadline precedes the server's for the same run (its start-up)."""
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


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), or None: no such process, a zombie
    (it runs no more) or no /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if not fields or fields[0] in ("Z", "X") else fields


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (``/proc/PID/stat``, field 22), or None when
    it does not run (no such process, a zombie, or no /proc)."""
    fields = _stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def host_id() -> str:
    """This host's name in worker tags: ``PLANNER_HOST_ID`` if set (no spaces), else the machine's host name."""
    return "".join((os.environ.get("PLANNER_HOST_ID") or socket.gethostname()).split()) or "host"


def worker_tag(pid: int) -> str:
    """How a worker is named in the database: host, its pid and start time, and its server's (this process's)
    pid and start time (``"host 1234 98765 1200 97000"``)."""
    me = os.getpid()
    return f"{host_id()} {pid} {process_start(pid)} {me} {process_start(me)}"


def worker_state(tag: str | None) -> tuple[str, int | None]:
    """What became of the worker a stored ``worker`` tag names: ``("gone", None)`` when it was started on this host
    and that process (same pid, same start time) runs no more; ``("orphan", pid)`` when it runs on but its parent
    server has gone (re-parented to init); ``("alive", pid)`` when it runs under its server; ``("unknown", None)``
    when it was started on another host or not yet named (the lease decides then)."""
    parts = (tag or "").split()
    if (len(parts) != 5 or parts[0] != host_id() or not parts[1].isdigit() or not parts[3].isdigit()
            or "None" in parts):
        return "unknown", None
    pid = int(parts[1])
    fields = _stat(pid)
    if fields is None or len(fields) <= 19 or fields[19] != parts[2]:
        return "gone", None
    server_gone = fields[1] != parts[3] or process_start(int(parts[3])) != parts[4]
    return ("orphan" if server_gone else "alive"), pid


def _mine(run_id: str, owner: str):
    """SQL condition: the run is still running under the lease ``owner``."""
    return (RunRecord.id == run_id) & (RunRecord.status == "running") & (RunRecord.lease_owner == owner)


def write(url: str, run_id: str, owner: str, **fields) -> bool:
    """Write ``fields`` to a run only while it is running under the lease ``owner``; False when it is not (it
    was cancelled, or failed by a server because the lease expired): nothing is written then."""
    with session(url) as s:
        n = s.execute(update(RunRecord).where(_mine(run_id, owner)).values(**fields)).rowcount
        s.commit()
    return n == 1


def _write_or_quit(url: str, run_id: str, owner: str, **fields) -> None:
    """A worker's write; a worker whose run is no longer its own stops at once (nothing of it may be stored)."""
    if not write(url, run_id, owner, **fields):
        os._exit(0)


def _renew(url: str, run_id: str, owner: str, lease_s: float, stop: threading.Event) -> None:
    """Worker thread: renew the run's lease every fifth of ``lease_s`` seconds; quit the process when the run is
    no longer this worker's (cancelled, or failed elsewhere). A database error skips one renewal."""
    every = max(0.2, lease_s / 5)
    while True:  # the first renewal at once: starting the interpreter may have taken a good part of the lease
        try:
            ok = write(url, run_id, owner, lease_until=time.time() + lease_s)
        except Exception:  # a busy or briefly unreachable database: try again at the next period
            ok = True
        if not ok:
            os._exit(0)
        if stop.wait(every):
            return


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


def _execute(run_id: str, url: str, owner: str, body: dict) -> None:
    """Run a stored scenario, report progress, write the run's files into ``PLANNER_RUNS_DIR/<run id>/`` with
    :func:`planner.outputs.write_outputs` (the command line's writer: report, workbook, GeoPackage, layers, map,
    CSVs, summary), then store the result; a run the solver could not solve stores its failure and no files."""
    from optimization.solve import relative_gap
    from planner.data.loader import load_dataset
    from planner.execute import execute_scenario
    from planner.outputs import network_geojson, result_tables, write_outputs
    from planner.scenario import parse_scenario

    scenario = parse_scenario(body, source="scenario")
    last = {"t": 0.0}

    def on_log(line: str) -> None:
        t = time.monotonic()
        if t - last["t"] > 1.0:
            last["t"] = t
            _write_or_quit(url, run_id, owner, progress=("solving: " + line.strip())[:200])

    def on_progress(info: dict) -> None:
        gap = relative_gap(info.get("objective"), info.get("bound"))
        if gap is not None:
            _write_or_quit(url, run_id, owner, gap=gap)

    _write_or_quit(url, run_id, owner, progress="building the model")
    # the run's own deadline, a few seconds inside the server's (which stops the worker as a last resort): past
    # it the worker itself ends the run naming the stage (planner.deadline)
    own = deadline.run_deadline(scenario.solver.time_limit_s,
                                allowance=max(1.0, load_limits().run_allowance_s - WORKER_MARGIN_S))
    dataset = load_dataset(dict(scenario.data))
    try:
        out = execute_scenario(scenario, dataset, on_log=on_log, on_progress=on_progress, run_deadline=own)
    except deadline.DeadlineExceeded as exc:
        write(url, run_id, owner, status="failed", progress="failed", finished=now(), error=str(exc))
        return
    t = result_tables(out.planned, out.result, out.summary, out.losses, out.prices, out.investor)
    result = {"summary": out.summary,
              "tables": {k: json.loads(v.to_json(orient="records", force_ascii=False)) for k, v in t.items()},
              "geojson": network_geojson(out.planned, out.result, t["sites"], dataset, out.summary)}
    result = clean_json(json.loads(json.dumps(result, default=float)))
    status = "succeeded" if out.result.objective is not None else "failed"
    folder = runs_dir() / run_id
    if status == "succeeded":  # the run's files, as `planner run -o` writes them; the run succeeds once they exist
        _write_or_quit(url, run_id, owner, progress="writing the report, map and tables")
        write_outputs(folder, out.planned, out.result, out.summary, dataset, scenario.region_ids(dataset),
                      out.losses, out.prices, out.investor, force=True)
    if not write(url, run_id, owner, status=status, progress="done", result=result, gap=out.result.gap,
                 finished=now(), error=None if status == "succeeded" else out.result.message):
        shutil.rmtree(folder, ignore_errors=True)  # cancelled (or failed elsewhere) meanwhile: no files stay


def _estimate(run_id: str, url: str, owner: str, kind: str, scenario: dict, request: dict) -> None:
    """An estimate job: compute it as the synchronous estimate does and store it as the result; a domain error
    (unknown centre, a scope the network cannot serve, an equilibrium that cannot be computed) ends it ``failed``
    with the message."""
    from api.estimates import UnknownCentres, compute
    from geo.network import NetworkError
    from planner.economics.equilibrium import EquilibriumError
    from planner.scenario import ScenarioError

    _write_or_quit(url, run_id, owner, progress="estimating")
    try:
        result = compute(kind, scenario, request.get("centres"), request.get("baseline", "traditional"))
    except (UnknownCentres, ScenarioError, NetworkError, EquilibriumError) as exc:
        write(url, run_id, owner, status="failed", progress="failed", finished=now(), error=str(exc)[:2000])
        return
    write(url, run_id, owner, status="succeeded", progress="done", result=result, finished=now())


def worker_main(run_id: str, url: str, owner: str, parent_pid: int, memory_mb: int = 0,
                lease_s: float = 30.0) -> None:
    """Worker process: die with the server, renew the run's lease, load the libraries and the run's scenario,
    then run it under an address-space limit of ``memory_mb`` MiB (0: none); every failure is stored as the
    run's error (a run over the limit says so), and only while the run is still this worker's (lease ``owner``)."""
    die_with_parent(parent_pid)
    stop = threading.Event()
    threading.Thread(target=_renew, args=(url, run_id, owner, lease_s, stop), daemon=True,
                     name="planner-lease").start()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        import planner.execute  # noqa: F401  (libraries and the embedded dataset load before the limit applies:
        import planner.outputs  # noqa: F401   it bounds what the run itself builds)
        from planner.data.loader import load_dataset

        load_dataset()

        with session(url) as s:
            rec = s.get(RunRecord, run_id)
            body, kind, request = rec.scenario, rec.kind, rec.request or {}
        _limit_memory(memory_mb)
        if kind is None:
            _execute(run_id, url, owner, body)
        else:
            _estimate(run_id, url, owner, kind, body, request)
    except MemoryError:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))  # the run's objects are gone with _execute's frame
        write(url, run_id, owner, status="failed", progress="failed", finished=now(),
              error=MEMORY_HINT.format(mb=memory_mb))
    except Exception as exc:  # the worker reports every failure to the database instead of dying silently
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        # a library that turns a refused allocation into its own error (pandas' reader, HiGHS) still ran out
        hint = f" — {MEMORY_HINT.format(mb=memory_mb)}" if memory_mb and _peak_mb() >= 0.9 * memory_mb else ""
        write(url, run_id, owner, status="failed", progress="failed", finished=now(),
              error=(f"{type(exc).__name__}: {str(exc)[:1500]}{hint}")[:2000])
        traceback.print_exc()
    finally:
        stop.set()


INTERRUPTED = ("interrupted: its worker is gone (the server was stopped, crashed or restarted while the run was "
               "running; {why}); submit it again")


class JobManager:
    """Claims queued runs and starts them in worker processes, watches them, fails runs whose lease expired (on
    any server), and cancels runs on request."""

    def __init__(self, url: str, limits: Limits | None = None):
        self.url = url
        self.limits = limits or load_limits()
        self.procs: dict[str, mp.Process] = {}
        self.owners: dict[str, str] = {}  # run id -> the lease token its worker holds
        self.deadlines: dict[str, float] = {}  # run id -> time.monotonic() past which its worker is stopped
        self.budget: dict[str, float] = {}  # run id -> its deadline, seconds from the start
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.next_sweep = 0.0

    def recover(self) -> int:
        """Fail the running runs (other than this server's own) whose worker is really gone: its process on this
        host has ended, or it is an orphan whose server died (it is killed first), or — started on another host,
        or not yet named — its lease has expired. A worker alive under its live server on this host is left to
        that server (its deadline and exit watch), however late its renewals on a loaded machine; so is every
        live run of another server on the same database. Every write is conditional on the run still being the
        same worker's. Returns how many runs were failed."""
        n = 0
        t = time.time()
        with session(self.url) as s:
            running = list(s.scalars(select(RunRecord).options(load_only(
                RunRecord.id, RunRecord.lease_owner, RunRecord.lease_until, RunRecord.worker))
                .where(RunRecord.status == "running")))
            for run in running:
                if run.id in self.procs:
                    continue
                state, pid = worker_state(run.worker)
                expired = run.lease_until is None or run.lease_until < t
                if state == "gone":
                    why = "its process has ended"
                elif state == "orphan":
                    why = "its server died and the orphaned worker was stopped"
                elif expired and state == "unknown":  # on another host, or not yet named: the lease decides
                    why = f"it stopped renewing its lease of {self.limits.lease_s} s"
                else:  # alive under its live server on this host: that server's deadline and watch govern it
                    continue
                if pid is not None:  # a worker that must not solve on
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                cond = (RunRecord.id == run.id) & (RunRecord.status == "running")
                cond = cond & (RunRecord.lease_owner == run.lease_owner if run.lease_owner is not None
                               else RunRecord.lease_owner.is_(None))
                n += s.execute(update(RunRecord).where(cond).values(
                    status="failed", progress="interrupted", error=INTERRUPTED.format(why=why),
                    finished=now())).rowcount
            s.commit()
        return n

    def start(self) -> None:
        """Recover interrupted runs and start the dispatcher thread."""
        self.recover()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="planner-dispatcher")
        self.thread.start()

    def shutdown(self) -> None:
        """Stop dispatching; running workers are terminated and their runs marked failed with the reason."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)
        with self.lock:
            for rid, p in list(self.procs.items()):
                if p.is_alive():
                    p.terminate()
                    p.join(5)
                write(self.url, rid, self.owners.get(rid, ""), status="failed", progress="interrupted",
                      finished=now(), error="interrupted: the server was shut down while the run was running; "
                                            "submit it again")
            self.procs.clear()

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run and stop its worker: at once when this server runs it, else the worker
        sees at its next lease renewal that the run is no longer its own and exits. False if it had already
        ended."""
        with self.lock, session(self.url) as s:
            n = s.execute(update(RunRecord).where(RunRecord.id == run_id,
                                                  RunRecord.status.in_(("queued", "running")))
                          .values(status="cancelled", progress="cancelled", finished=now())).rowcount
            s.commit()
            if n != 1:
                return False
            p = self.procs.pop(run_id, None)
            self.owners.pop(run_id, None)
            self.deadlines.pop(run_id, None)
            self.budget.pop(run_id, None)
            if p is not None and p.is_alive():
                p.terminate()
                p.join(5)
                if p.is_alive():
                    p.kill()
                    p.join(5)
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
        owner = self.owners.pop(rid, "")
        with session(self.url) as s:
            run = s.get(RunRecord, rid)
            stage = run.progress if run is not None else "?"
        write(self.url, rid, owner, status="failed", finished=now(),
              error=(f"deadline of {self.budget.pop(rid, 0):g} s passed at stage '{stage}' "
                     "(solver.time_limit_s plus PLANNER_RUN_ALLOWANCE_S); the worker was stopped"))

    def _claim(self, free: int) -> list[RunRecord]:
        """Claim up to ``free`` queued runs, oldest first: each is set running with a new lease, conditionally on
        its still being queued (another server may claim it first)."""
        claimed = []
        with session(self.url) as s:
            queued = list(s.scalars(select(RunRecord).where(RunRecord.status == "queued")
                                    .order_by(RunRecord.created).limit(free)))
            for run in queued:
                owner = uuid.uuid4().hex
                n = s.execute(update(RunRecord).where(RunRecord.id == run.id, RunRecord.status == "queued").values(
                    status="running", started=now(), progress="starting", lease_owner=owner,
                    lease_until=time.time() + self.limits.lease_s)).rowcount
                s.commit()
                if n == 1:
                    run.lease_owner = owner
                    claimed.append(run)
        return claimed

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
                            write(self.url, rid, self.owners.pop(rid, ""), status="failed", finished=now(),
                                  error=self._exit_reason(p.exitcode))
                    if time.monotonic() >= self.next_sweep:
                        self.next_sweep = time.monotonic() + max(0.5, self.limits.lease_s / 5)
                        self.recover()
                    free = self.limits.max_runs - len(self.procs)
                    if free > 0:
                        for run in self._claim(free):
                            owner = run.lease_owner
                            p = ctx.Process(target=boot, daemon=True,  # dies with this server first thing
                                            args=(run.id, self.url, owner, os.getpid(),
                                                  self.limits.worker_memory_mb, self.limits.lease_s))
                            p.start()
                            self.procs[run.id] = p
                            self.owners[run.id] = owner
                            self.budget[run.id] = self.deadline_s(run.scenario)
                            self.deadlines[run.id] = time.monotonic() + self.budget[run.id]
                            write(self.url, run.id, owner, pid=p.pid, worker=worker_tag(p.pid))
            except Exception:  # keep dispatching whatever one iteration hit
                traceback.print_exc()
            self.stop.wait(0.5)
