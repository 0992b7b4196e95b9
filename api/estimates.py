"""Estimates (loss reduction, price impact) computed in a child process under a wall-clock deadline.

This is the synchronous path (``POST /estimate/*``, the default); with ``?wait=false`` an estimate is a job in the
run queue instead, computed by :func:`compute` in a worker process (:mod:`api.jobs`).

A request's estimate runs in a process forked from a server that has the libraries and the embedded dataset
loaded (``forkserver``), so it starts in a fraction of a second. It gets ``PLANNER_ESTIMATE_DEADLINE_S`` seconds
for every stage (network, routing, price equilibrium) and the worker memory limit; past the deadline the
process is terminated — the solve stops with it — and the client is told why. The outcome comes back as a tagged
tuple: ``("ok", result)``; ``("invalid", [(loc, msg), ...])`` for unknown centre ids; ``("domain", msg)`` for a
domain error of the scenario (its network, its candidates, a price equilibrium that cannot be computed);
``("memory", None)``; ``("deadline", None)``; or ``("error", traceback)``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
import traceback
from typing import Any

PRELOAD = "api.estimate_preload"
_CTX: Any = None
_CTX_LOCK = threading.Lock()


class UnknownCentres(ValueError):
    """Centre ids the scenario's candidates do not hold, each with its position in the request."""

    def __init__(self, items: list[tuple[tuple, str]]):
        super().__init__("; ".join(msg for _, msg in items))
        self.items = items


def compute(kind: str, scenario: dict, centres: list[str] | None, baseline: str,
            deadline_s: float | None = None) -> dict:
    """The estimate as plain JSON: ``kind`` ``loss`` or ``price`` for a validated scenario mapping; with
    ``deadline_s``, every stage (network, routing, equilibria) within that many seconds
    (:class:`planner.deadline.DeadlineExceeded` past it)."""
    from planner import deadline

    with deadline.active(deadline.Deadline(deadline_s) if deadline_s else deadline.current()):
        return _compute(kind, scenario, centres, baseline)


def _compute(kind: str, scenario: dict, centres: list[str] | None, baseline: str) -> dict:
    from planner.data.loader import load_dataset
    from planner.deadline import stage
    from planner.economics import estimate_loss_reduction, estimate_price_impact
    from planner.pipeline import build_problem
    from planner.scenario import Scenario, short
    from planner.summary import clean_json

    sc = Scenario.model_validate(scenario)
    dataset = load_dataset()
    with stage("network"):
        planned = build_problem(sc, dataset)
    if centres is not None:
        known = set(planned.problem.sites["site_id"])
        unknown = [(("centres", i), f"unknown candidate id {short(c)}") for i, c in enumerate(centres)
                   if c not in known]
        if unknown:
            raise UnknownCentres(unknown)
    fn = estimate_loss_reduction if kind == "loss" else estimate_price_impact
    with stage("losses" if kind == "loss" else "prices"):
        rep = fn(sc, dataset, centres, baseline, planned=planned)
    return clean_json(json.loads(json.dumps(rep.as_dict(), default=float)))


def _child(conn, kind: str, scenario: dict, centres: list[str] | None, baseline: str, memory_mb: int,
           deadline_s: float | None = None) -> None:
    """Child process: compute the estimate under the memory limit and send the tagged outcome."""
    from api.jobs import _limit_memory, die_with_parent
    from geo.network import NetworkError
    from planner.deadline import DeadlineExceeded
    from planner.economics.equilibrium import EquilibriumError
    from planner.scenario import ScenarioError

    die_with_parent()  # its parent, the fork server, ends with the API server
    try:
        _limit_memory(memory_mb)
        outcome: tuple = ("ok", compute(kind, scenario, centres, baseline, deadline_s))
    except DeadlineExceeded as exc:  # its own deadline, a little inside the server's wait: names the stage
        outcome = ("deadline", exc.stage)
    except UnknownCentres as exc:
        outcome = ("invalid", exc.items)
    except (ScenarioError, NetworkError, EquilibriumError) as exc:
        outcome = ("domain", str(exc))
    except MemoryError:
        outcome = ("memory", None)
    except Exception:  # sent to the server, which logs it and answers 500
        outcome = ("error", traceback.format_exc())
    try:
        conn.send(outcome)
    finally:
        conn.close()


def _context():
    """The forkserver context, its server preloading the libraries and the embedded dataset (once)."""
    global _CTX
    with _CTX_LOCK:
        if _CTX is None:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload([PRELOAD])
            _CTX = ctx
        return _CTX


def run_estimate(kind: str, scenario: dict, centres: list[str] | None, baseline: str, deadline_s: float,
                 memory_mb: int, own_deadline: bool = True) -> tuple[str, Any]:
    """Compute an estimate in a child process; ``("deadline", None)`` if it is not done within ``deadline_s``
    seconds (the child is terminated). With ``own_deadline`` the child ends itself a little earlier, naming the
    stage it had reached (``("deadline", stage)``)."""
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)
    own = max(1.0, deadline_s - min(2.0, deadline_s / 10)) if own_deadline else None
    proc = ctx.Process(target=_child, args=(send, kind, scenario, centres, baseline, memory_mb, own), daemon=True)
    proc.start()
    send.close()
    try:
        if not receive.poll(deadline_s):
            return "deadline", None
        try:
            return receive.recv()
        except EOFError:  # the child died without a word (a native abort past the memory limit)
            return "error", f"estimate process ended with code {proc.exitcode}"
    finally:
        receive.close()
        if proc.is_alive():
            proc.terminate()
        proc.join(5)
