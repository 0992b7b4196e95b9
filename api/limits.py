"""The service's limits, read once from the environment at start-up (docs/api.md, "Limits and guarantees").

Each limit is a project setting that keeps one client from pinning the machine; none is a published figure. A
setting that is not a whole number in its range stops the server at start-up with a message naming the variable
(never a loop of tracebacks later).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


class SettingsError(ValueError):
    """A service setting (environment variable) that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Limits:
    """The service's limits; every field is set by the environment variable named in its comment."""

    max_body: int = 1 << 20              # PLANNER_MAX_BODY: largest request body, bytes (counted as it streams)
    max_runs: int = 1                    # PLANNER_MAX_RUNS: runs executing at once (one worker process each)
    max_active_runs: int = 20            # PLANNER_MAX_QUEUE: queued + running runs and estimate jobs of all keys,
                                         # counted in the database (all servers on it together); more: 429
    max_active_runs_per_key: int = 5     # PLANNER_MAX_RUNS_PER_KEY: the same for one key; more: 429
    max_estimates: int = 2               # PLANNER_MAX_ESTIMATES: synchronous estimates computed at once by one
                                         # server process; more: 429
    retry_after_s: int = 30              # PLANNER_RETRY_AFTER_S: the Retry-After a 429 carries, seconds
    max_time_limit_s: int = 3_600        # PLANNER_MAX_TIME_LIMIT_S: largest solver.time_limit_s accepted, seconds
    worker_memory_mb: int = 4_096        # PLANNER_WORKER_MEMORY_MB: address-space limit of a worker, MiB (0: none)
    run_allowance_s: int = 300           # PLANNER_RUN_ALLOWANCE_S: a run's deadline is solver.time_limit_s plus this
    estimate_deadline_s: int = 120       # PLANNER_ESTIMATE_DEADLINE_S: wall-clock deadline of one estimate, seconds
    estimate_sync_s: int = 5             # PLANNER_ESTIMATE_SYNC_S: an estimate (without ?wait) answered in the
                                         # request within this many seconds; past it, it becomes a job (202)
    lease_s: int = 30                    # PLANNER_LEASE_S: a running run's lease, seconds; its worker renews it
                                         # every fifth of that; a run whose lease expired is failed by any server


ENV = {"max_body": "PLANNER_MAX_BODY", "max_runs": "PLANNER_MAX_RUNS", "max_active_runs": "PLANNER_MAX_QUEUE",
       "max_active_runs_per_key": "PLANNER_MAX_RUNS_PER_KEY", "max_estimates": "PLANNER_MAX_ESTIMATES",
       "retry_after_s": "PLANNER_RETRY_AFTER_S", "max_time_limit_s": "PLANNER_MAX_TIME_LIMIT_S",
       "worker_memory_mb": "PLANNER_WORKER_MEMORY_MB", "run_allowance_s": "PLANNER_RUN_ALLOWANCE_S",
       "estimate_deadline_s": "PLANNER_ESTIMATE_DEADLINE_S", "estimate_sync_s": "PLANNER_ESTIMATE_SYNC_S",
       "lease_s": "PLANNER_LEASE_S"}
"""The environment variable of each limit."""
MINIMUM = {"worker_memory_mb": 0, "lease_s": 2}
"""Smallest admissible value of a limit (1 where not listed)."""


def load_limits(environ: dict[str, str] | None = None) -> Limits:
    """The limits from ``environ`` (default ``os.environ``), defaults where unset; raises SettingsError naming the
    variable for a value that is not a whole number at or above its minimum."""
    env = os.environ if environ is None else environ
    values = {}
    for f in fields(Limits):
        var = ENV[f.name]
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            continue
        lowest = MINIMUM.get(f.name, 1)
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(f"{var}: expected a whole number ≥ {lowest}, got {raw[:40]!r}") from None
        if value < lowest:
            raise SettingsError(f"{var}: expected a whole number ≥ {lowest}, got {value}")
        values[f.name] = value
    return Limits(**values)
