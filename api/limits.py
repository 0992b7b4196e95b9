"""The service's settings, read from the environment (docs/api.md, "Limits and guarantees" and "Settings").

Each limit is a project setting that keeps one client from pinning the machine; none is a published figure. A
setting that is not a whole number in its range stops the server at start-up with a message naming the variable
(never a loop of tracebacks later). Besides the limits: the folder of the runs' files (:func:`runs_dir`) and the
optional tile layer of the web map (:func:`tile_layer`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit


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


def runs_dir(environ: dict[str, str] | None = None) -> Path:
    """Folder holding one sub-folder of files per succeeded run, written by the run's worker
    (``PLANNER_RUNS_DIR``, default ``planner_runs`` in the server's working directory). Servers sharing one
    database must share this folder too (a network file system), or a run's files are served only by the server
    whose worker ran it."""
    env = os.environ if environ is None else environ
    return Path(env.get("PLANNER_RUNS_DIR") or "planner_runs")


@dataclass(frozen=True)
class TileLayer:
    """An optional tile layer under the web map: a Leaflet URL template, the attribution it must show, and the
    origin the page's Content-Security-Policy then admits for images (None: the tiles come from this server)."""

    url: str
    attribution: str
    origin: str | None


TILE_URL = "PLANNER_TILE_URL"
TILE_ATTRIBUTION = "PLANNER_TILE_ATTRIBUTION"
_TILE_SAFE = re.compile(r"^[A-Za-z0-9._~:/?#@!$&()*+,=%{}\[\]-]+$")
"""Characters a tile URL template may hold: those of a URL plus Leaflet's braces; no quote, space or ``;`` that
could end the CSP source or the page's JSON."""


def tile_layer(environ: dict[str, str] | None = None) -> TileLayer | None:
    """The web map's optional tile layer from ``PLANNER_TILE_URL`` (a Leaflet template with ``{z}``, ``{x}`` and
    ``{y}``: ``https://tiles.example.org/{z}/{x}/{y}.png``, ``https://{s}.tile.example.org/…`` for subdomains, or a
    path on this server such as ``/tiles/{z}/{x}/{y}.png``) and ``PLANNER_TILE_ATTRIBUTION`` (the text the map
    shows in its corner; required with a URL, as tile licences ask). None when the URL is unset: the map then has
    no tile layer and the pages load nothing from outside. SettingsError naming the variable for a bad value."""
    env = os.environ if environ is None else environ
    url = (env.get(TILE_URL) or "").strip()
    if not url:
        return None
    attribution = (env.get(TILE_ATTRIBUTION) or "").strip()
    if not all(f"{{{c}}}" in url for c in "zxy") or not _TILE_SAFE.match(url):
        raise SettingsError(f"{TILE_URL}: expected a tile URL template with {{z}}, {{x}} and {{y}} and no quotes "
                            f"or spaces, e.g. https://tiles.example.org/{{z}}/{{x}}/{{y}}.png; got {url[:80]!r}")
    if not attribution:
        raise SettingsError(f"{TILE_ATTRIBUTION}: required with {TILE_URL} (the map must credit the tiles' source)")
    if url.startswith("/") and not url.startswith("//"):
        return TileLayer(url, attribution, None)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if (parts.scheme not in ("http", "https") or not host or "{" in parts.netloc.removeprefix("{s}.")
            or "@" in parts.netloc):
        raise SettingsError(f"{TILE_URL}: expected an http(s) URL or a path on this server (/tiles/…), with {{s}} "
                            f"only as the first label of the host; got {url[:80]!r}")
    origin = f"{parts.scheme}://{parts.netloc.replace('{s}.', '*.', 1)}"
    return TileLayer(url, attribution, origin)
