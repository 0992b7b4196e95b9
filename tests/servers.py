"""Helpers of the suites that start a real ``planner serve``: a free local port and the wait for ``/health``.

Imported by the test modules as ``servers`` (pytest puts this folder on ``sys.path``: the tests are not a package).
"""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of the call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, proc: subprocess.Popen, seconds: float) -> None:
    """Poll ``{base}/health`` until it answers 200; raise RuntimeError (with the end of the server's stderr when it
    was piped) if the server process exits first or ``seconds`` pass."""
    end = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else ""
            raise RuntimeError(f"planner serve exited with {proc.returncode} before answering /health: {err}")
        if time.monotonic() > end:
            raise RuntimeError(f"planner serve did not answer /health within {seconds:g} s")
        time.sleep(0.2)
