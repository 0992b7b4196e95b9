"""Load benchmark of the API (issue #19): read throughput and latency at 40 concurrent clients, and the queue's
behaviour when 50 runs are submitted at once.

Starts its own ``planner serve`` on 127.0.0.1 with a throw-away SQLite database (no other host is ever
contacted), then:

1. **reads**: 40 concurrent clients (asyncio + httpx) send ``--requests`` GETs to each read endpoint
   (``/health``, ``/scenarios``, ``/scenarios/{id}``, ``/runs/{id}``, ``/runs/{id}/result``,
   ``/datasets/regions``); requests per second and p50/p95 latency in milliseconds per endpoint;
2. **queue**: 50 runs of a one-region scenario are submitted at once by 10 planner keys; each answer must be
   202 or 429 (with ``Retry-After``); every accepted run must end (succeeded, failed or cancelled) within
   ``--queue-timeout`` seconds and none may be lost (each accepted id answers ``GET /runs/{id}``).

Every loop is bounded in count and in time. The figures replace the ``load`` section of docs/benchmarks.md
(``--write``). Run: ``python benchmarks/load.py --write`` (about 3–6 minutes on the 2-core machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from docsection import replace_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.db import create_key  # noqa: E402

CLIENTS = 40
RUNS = 50
KEYS = 10
TINY = {"name": "load_tiny", "scope": {"regions": ["RU-KB"]}, "commodities": ["vegetables"],
        "objective": {"p": 1}, "solver": {"time_limit_s": 10}}
"""A one-region, one-commodity scenario (Kabardino-Balkaria, vegetables, one centre): the queue is measured,
not the solver."""
MARK_BEGIN, MARK_END = "<!-- load:begin -->", "<!-- load:end -->"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    """``planner serve`` on 127.0.0.1:port; waits (at most 90 s) for /health."""
    full = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.Popen([sys.executable, "-m", "planner.cli", "serve", "--host", "127.0.0.1", "--port",
                             str(port)], env=full, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    end = time.monotonic() + 90
    while time.monotonic() < end:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, 9)
    raise RuntimeError("the server did not start within 90 s")


async def _one_endpoint(client: httpx.AsyncClient, path: str, n: int, budget_s: float) -> dict:
    """``n`` GETs of ``path`` by CLIENTS concurrent clients, stopping at ``budget_s`` seconds."""
    latencies: list[float] = []
    bad = 0
    todo = iter(range(n))
    end = time.monotonic() + budget_s

    async def worker() -> None:
        nonlocal bad
        for _ in todo:
            if time.monotonic() > end:
                return
            t = time.perf_counter()
            r = await client.get(path)
            latencies.append(time.perf_counter() - t)
            bad += r.status_code != 200

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"requests": len(latencies), "rps": len(latencies) / wall, "p50_ms": q[49] * 1000,
            "p95_ms": q[94] * 1000, "not_200": bad}


async def read_load(base: str, paths: list[str], headers: dict, n: int, budget_s: float) -> dict[str, dict]:
    """For each path: requests per second, p50 and p95 latency (ms) and the count of answers other than 200."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as client:
        return {path: await _one_endpoint(client, path, n, budget_s) for path in paths}


async def queue_load(base: str, keys: list[str], timeout_s: float) -> dict:
    """Submit RUNS runs at once (spread over the keys); wait (bounded) for every accepted one to end."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        t0 = time.perf_counter()
        answers = await asyncio.gather(*(client.post("/runs", json={"scenario": TINY},
                                                     headers={"X-API-Key": keys[i % len(keys)]})
                                         for i in range(RUNS)))
        submit_s = time.perf_counter() - t0
        codes = [r.status_code for r in answers]
        accepted = [(r.json()["id"], keys[i % len(keys)]) for i, r in enumerate(answers) if r.status_code == 202]
        refused = [r for r in answers if r.status_code == 429]
        retry_after_ok = all(r.headers.get("retry-after", "").isdigit() for r in refused)
        final: dict[str, str] = {}
        end = time.monotonic() + timeout_s
        while len(final) < len(accepted) and time.monotonic() < end:
            for rid, key in accepted:
                if rid in final:
                    continue
                r = await client.get(f"/runs/{rid}", headers={"X-API-Key": key})
                if r.status_code == 200 and r.json()["status"] not in ("queued", "running"):
                    final[rid] = r.json()["status"]
            await asyncio.sleep(1.0)
        all_s = time.perf_counter() - t0
        lost = [rid for rid, key in accepted
                if (await client.get(f"/runs/{rid}", headers={"X-API-Key": key})).status_code != 200]
    by_state: dict[str, int] = {}
    for s in final.values():
        by_state[s] = by_state.get(s, 0) + 1
    return {"submitted": RUNS, "accepted": len(accepted), "refused_429": len(refused),
            "other_codes": sorted({c for c in codes if c not in (202, 429)}), "retry_after_ok": retry_after_ok,
            "ended": len(final), "unfinished": len(accepted) - len(final), "lost": len(lost), "by_state": by_state,
            "submit_s": submit_s, "all_ended_s": all_s}


def markdown(reads: dict, queue: dict, env: dict, n: int) -> str:
    """The docs section: settings, the read table, the queue figures."""
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [f"Load (`benchmarks/load.py`), {when}, this 2-core machine shared with other work (`{platform.node()}`,"
             f" Python {platform.python_version()}); one `planner serve` (uvicorn, one process) on 127.0.0.1 with a "
             f"SQLite file; settings {', '.join(f'`{k}={v}`' for k, v in env.items())}.", "",
             f"Reads: {CLIENTS} concurrent clients, {n} requests per endpoint (one stored scenario, one finished "
             "run):", "",
             "| endpoint | requests | req/s | p50, ms | p95, ms | answers other than 200 |",
             "|---|---|---|---|---|---|"]
    for path, r in reads.items():
        shown = re.sub(r"/[0-9a-f]{32}", "/{id}", path)
        lines.append(f"| `GET {shown}` | {r['requests']} | {r['rps']:.0f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |"
                     f" {r['not_200']} |")
    q = queue
    lines += ["", f"Queue: {q['submitted']} runs of a one-region scenario submitted at once by {KEYS} planner keys: "
              f"{q['accepted']} accepted (202), {q['refused_429']} refused with 429 (`Retry-After` on every one: "
              f"{'yes' if q['retry_after_ok'] else 'NO'}), other answers: {q['other_codes'] or 'none'}; "
              f"submitting took {q['submit_s']:.1f} s. Of the accepted runs {q['ended']} ended "
              f"({', '.join(f'{v} {k}' for k, v in sorted(q['by_state'].items())) or 'none'}), "
              f"{q['unfinished']} had not ended at the time limit, {q['lost']} lost; all ended "
              f"{q['all_ended_s']:.0f} s after the first submission."]
    return "\n".join(lines)


def write_section(md: str) -> None:
    """Replace (or append) the section between the markers in docs/benchmarks.md."""
    replace_section(ROOT / "docs" / "benchmarks.md", MARK_BEGIN, MARK_END, md, "API load / Нагрузка на API")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400, help="GETs per read endpoint (default 400)")
    ap.add_argument("--read-budget", type=float, default=60, help="seconds at most per endpoint (default 60)")
    ap.add_argument("--queue-timeout", type=float, default=600, help="seconds at most for the accepted runs "
                                                                     "to end (default 600)")
    ap.add_argument("--write", action="store_true", help="rewrite the load section of docs/benchmarks.md")
    args = ap.parse_args()
    env = {"PLANNER_MAX_RUNS": "2", "PLANNER_MAX_QUEUE": "20", "PLANNER_MAX_RUNS_PER_KEY": "5"}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'load.db'}"
        keys = [create_key("planner", url=url, label=f"load {i}")[1] for i in range(KEYS)]
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(url, port, env)
        try:
            h = {"X-API-Key": keys[0]}
            sid = httpx.post(f"{base}/scenarios", json=TINY, headers=h, timeout=120).json()["id"]
            rid = httpx.post(f"{base}/runs", json={"scenario_id": sid}, headers=h, timeout=60).json()["id"]
            end = time.monotonic() + 300
            while httpx.get(f"{base}/runs/{rid}", headers=h).json()["status"] in ("queued", "running"):
                if time.monotonic() > end:
                    raise RuntimeError("the first run did not end within 300 s")
                time.sleep(0.5)
            paths = ["/health", "/scenarios", f"/scenarios/{sid}", f"/runs/{rid}", f"/runs/{rid}/result",
                     "/datasets/regions"]
            reads = asyncio.run(read_load(base, paths, h, args.requests, args.read_budget))
            queue = asyncio.run(queue_load(base, keys, args.queue_timeout))
        finally:
            os.killpg(proc.pid, 9)
            proc.wait(20)
    md = markdown(reads, queue, env, args.requests)
    print(md)
    if args.write:
        write_section(md)


if __name__ == "__main__":
    main()
