"""HiGHS keeps one task scheduler per process, sized by its first run: a later solve that asks for another number
of threads must still solve (a sweep sets ``solver.threads: 1`` in a process that has solved before)."""

from __future__ import annotations

from optimization.run import optimize
from optimization.solve import SolverOptions


def test_solves_with_different_thread_counts_in_one_process(ncfd_planned):
    pb = ncfd_planned.problem
    statuses = [optimize(pb, SolverOptions(time_limit=60, rel_gap=0.01, threads=t)).status for t in (None, 1, 2, 1)]
    assert statuses == ["optimal"] * 4, statuses
