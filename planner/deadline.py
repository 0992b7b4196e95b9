"""One wall-clock deadline per run, over every stage (network, MILP, equilibria, outputs) — issue #19.

A run's deadline is its solver time limit plus an allowance for the stages around the solve
(``PLANNER_RUN_ALLOWANCE_S``, default :data:`RUN_ALLOWANCE_S` seconds), the same rule on the command line
(``planner run``) and in the API's workers. :func:`active` makes a deadline the current one for the code it
wraps; :func:`stage` names the stage being computed and checks the deadline as the stage starts; every solve
asks :func:`time_left` for the seconds it may take (the MILP at most its ``solver.time_limit_s``, a price
equilibrium at most its own cap). Past the deadline :class:`DeadlineExceeded` names the stage it was reached in:
a run ends with that status, it never hangs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

RUN_ALLOWANCE_S = 300
"""Default seconds a run gets beyond its solver time limit for every other stage (network, losses, price
equilibria, investor's view, outputs): a project setting (``PLANNER_RUN_ALLOWANCE_S``)."""
ALLOWANCE_SETTING = "PLANNER_RUN_ALLOWANCE_S"


class DeadlineExceeded(RuntimeError):
    """A run's wall-clock deadline passed: names the stage it was reached in and the deadline (seconds)."""

    def __init__(self, stage: str, budget_s: float):
        super().__init__(f"deadline of {budget_s:g} s passed at stage '{stage}' (solver.time_limit_s plus "
                         f"{ALLOWANCE_SETTING}); the run was stopped")
        self.stage = stage
        self.budget_s = budget_s


@dataclass
class Deadline:
    """A wall-clock deadline ``budget_s`` seconds after ``start`` (``time.monotonic()``)."""

    budget_s: float
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        """Seconds left (negative once past)."""
        return self.start + self.budget_s - time.monotonic()

    def check(self, stage: str) -> None:
        """Raise :class:`DeadlineExceeded` naming ``stage`` when the deadline has passed."""
        if self.remaining() <= 0:
            raise DeadlineExceeded(stage, self.budget_s)


_CURRENT: ContextVar[Deadline | None] = ContextVar("planner_deadline", default=None)
_STAGE: ContextVar[str] = ContextVar("planner_stage", default="run")


def allowance_s(env: dict[str, str] | None = None) -> float:
    """The allowance beyond the solver time limit, seconds (``PLANNER_RUN_ALLOWANCE_S``); ValueError naming the
    setting for a value that is not a whole number ≥ 1."""
    raw = (os.environ if env is None else env).get(ALLOWANCE_SETTING)
    if raw is None or raw.strip() == "":
        return float(RUN_ALLOWANCE_S)
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ALLOWANCE_SETTING}: expected a whole number of seconds ≥ 1, got {raw[:40]!r}")
    return float(value)


def run_deadline(time_limit_s: float, allowance: float | None = None) -> Deadline:
    """A run's deadline from now: its solver time limit plus the allowance (default :func:`allowance_s`)."""
    return Deadline(float(time_limit_s) + (allowance_s() if allowance is None else allowance))


def current() -> Deadline | None:
    """The deadline in force, if any."""
    return _CURRENT.get()


def current_stage() -> str:
    """The stage being computed (``run`` outside any)."""
    return _STAGE.get()


@contextmanager
def active(deadline: Deadline | None) -> Iterator[Deadline | None]:
    """Make ``deadline`` the one in force inside the block (None: none)."""
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Name the stage computed inside the block; checks the deadline in force as it starts."""
    d = _CURRENT.get()
    if d is not None:
        d.check(name)
    token = _STAGE.set(name)
    try:
        yield
    finally:
        _STAGE.reset(token)


def time_left(cap_s: float) -> float:
    """Seconds a solve may take: ``cap_s``, or less when the deadline in force is nearer. Raises
    :class:`DeadlineExceeded` (naming the current stage) when it has passed."""
    d = _CURRENT.get()
    if d is None:
        return float(cap_s)
    left = d.remaining()
    if left <= 0:
        raise DeadlineExceeded(_STAGE.get(), d.budget_s)
    return min(float(cap_s), left)


def check_passed() -> None:
    """Raise :class:`DeadlineExceeded` for the current stage if the deadline in force has passed (after a solve
    that stopped at its time limit: the deadline, not the instance, ended it)."""
    d = _CURRENT.get()
    if d is not None:
        d.check(_STAGE.get())
