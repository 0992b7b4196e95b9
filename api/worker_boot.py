"""The first code a run's worker process executes: it asks Linux to kill it when its server ends, before any
heavy import (issue #19, item 3).

The dispatcher starts workers with the ``spawn`` method; the process object it unpickles names :func:`boot` in
this module, which imports only the standard library. So the window in which a worker could outlive a server
that dies (``kill -9``) while the worker starts is the interpreter's own start-up, not the seconds it takes to
load pandas, Pyomo, HiGHS and the dataset. After setting the signal it checks ``getppid()``: a server that died
before that is seen, and the worker exits at once.
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent ends (``PR_SET_PDEATHSIG``); exit at once if the parent
    has already gone (``parent_pid`` given and no longer the parent, or re-parented to init). Elsewhere than
    Linux: nothing (the run's lease still ends it honestly)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    ppid = os.getppid()
    if ppid == 1 or (parent_pid is not None and ppid != parent_pid):
        os._exit(1)


def boot(run_id: str, url: str, owner: str, parent_pid: int, memory_mb: int = 0, lease_s: float = 30.0) -> None:
    """Worker entry point: die with the server first, then load :mod:`api.jobs` and run the job."""
    die_with_parent(parent_pid)
    from api.jobs import worker_main

    worker_main(run_id, url, owner, parent_pid, memory_mb, lease_s)
