"""Benchmark: sweep throughput on a real Dask cluster, one against two single-threaded workers (issue #18, Scale).

Starts a ``dask scheduler`` on 127.0.0.1 and ``dask worker --nthreads 1`` processes (separate processes, as on a
cluster), then runs the same sweep of ``--samples`` variants of a small scenario (ncfd_expansion, HiGHS on one
thread) through :func:`planner.sweep.run_sweep` with ``scheduler=ADDRESS``: first on one worker, then on two.
Each worker first runs one untimed sample (imports, the dataset, the HiGHS banner), as a long-lived cluster
worker would have; the timed part is the sweep itself, from the environment check to the last result. The
configurations alternate for ``--rounds`` rounds so that the shared machine's load falls on both alike; the
figures are variants per minute (median over rounds) and their ratio (goal ≥ 1.6×). The load average and the
CPU use of other processes are recorded beside each measurement: on a 2-core machine shared with other jobs,
two workers cannot get two free cores and the ratio shows it.

Results go to ``docs/benchmarks.md`` (section "Sweeps on a Dask cluster").

Run: ``.venv/bin/python benchmarks/dask_sweep.py [--samples 16] [--rounds 2] [--no-write]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
from docsection import replace_section

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
MARK_BEGIN = "<!-- dask_sweep:begin -->"
MARK_END = "<!-- dask_sweep:end -->"
DASK = Path(sys.executable).with_name("dask")
VARY = {"road_tariff_rub_per_tkm": "uniform(3, 5)", "centre_loss_factor": "uniform(0.3, 0.7)"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A ``dask scheduler`` and its ``dask worker`` processes, started from this environment (PYTHONPATH puts
    this checkout first) and stopped by pid."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                                                   if p)}
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str]) -> None:
        with (self.folder / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen([str(DASK), *args], cwd=self.folder, env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def scheduler(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        self.start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"])

    def worker(self, name: str) -> None:
        self.start(name, ["worker", self.address, "--nthreads", "1", "--nworkers", "1", "--name", name, "--host",
                          "127.0.0.1", "--no-dashboard", "--local-directory", str(self.folder / name)])

    def stop(self, name: str) -> None:
        """Stop one process we started (SIGTERM to it, then SIGKILL to what is left of its tree)."""
        proc = self.procs.pop(name)
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        for ps in tree:
            if ps.is_running():
                ps.kill()
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for name in [n for n in self.procs if n != "scheduler"] + (["scheduler"] if "scheduler" in self.procs else []):
            self.stop(name)


def _others_cpu(ours: set[int], seconds: float = 2.0) -> float:
    """CPU used by processes other than ours over ``seconds``, in cores."""
    procs = []
    for p in psutil.process_iter():
        if p.pid not in ours:
            try:
                p.cpu_percent(None)
                procs.append(p)
            except psutil.Error:
                pass
    time.sleep(seconds)
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.cpu_percent(None)
    return total / 100.0


def _our_pids(cluster: Cluster) -> set[int]:
    out = {os.getpid()}
    for proc in cluster.procs.values():
        try:
            ps = psutil.Process(proc.pid)
            out |= {ps.pid, *(c.pid for c in ps.children(recursive=True))}
        except psutil.NoSuchProcess:
            pass
    return out


def _workers_cpu(cluster: Cluster, names: list[str]) -> float:
    """CPU seconds (user + system) used so far by the named workers' process trees (nanny and worker)."""
    total = 0.0
    for name in names:
        with contextlib.suppress(psutil.NoSuchProcess):
            ps = psutil.Process(cluster.procs[name].pid)
            for q in (ps, *ps.children(recursive=True)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = q.cpu_times()
                    total += t.user + t.system
    return total


def measure_config(cluster: Cluster, n_workers: int, scenario: dict, draws, data: dict) -> dict:
    """Start ``n_workers`` workers, warm each with one untimed sample, time the sweep, stop the workers."""
    from distributed import Client

    from planner.sweep import run_sample, run_sweep

    names = [f"w{i + 1}" for i in range(n_workers)]
    for name in names:
        cluster.worker(name)
    with Client(cluster.address, timeout=30) as client:
        client.wait_for_workers(n_workers, timeout=120)
        warm = [client.submit(run_sample, scenario, draws.iloc[0].to_dict(), data, workers=[w], pure=False)
                for w in client.scheduler_info()["workers"]]
        client.gather(warm)
    others_before = _others_cpu(_our_pids(cluster))
    load_before = os.getloadavg()[0]
    cpu_before = _workers_cpu(cluster, names)
    start = time.perf_counter()
    runs = run_sweep(scenario, draws, data, scheduler=cluster.address)
    seconds = time.perf_counter() - start
    cpu = _workers_cpu(cluster, names) - cpu_before
    load_after = os.getloadavg()[0]
    for name in names:
        cluster.stop(name)
    assert (runs["status"] == "optimal").all(), runs["status"].value_counts()
    used = runs["worker"].nunique()
    return {"workers": n_workers, "workers_used": int(used), "seconds": seconds,
            "per_min": 60 * len(draws) / seconds, "load_before": load_before, "load_after": load_after,
            "others_cores": others_before, "worker_cores": cpu / seconds,
            "cpu_s_per_variant": cpu / len(draws)}


def run(samples: int, rounds: int) -> dict:
    """Alternate one and two workers for ``rounds`` rounds on one scheduler; medians and the ratio."""
    from planner.scenario import load_scenario
    from planner.sweep import draw_samples, parse_vary

    sc = load_scenario(ROOT / "scenarios" / "ncfd_expansion.yaml")
    scenario = sc.model_dump(exclude={"extends"})
    scenario["solver"] = {**scenario["solver"], "threads": 1}
    draws = draw_samples(parse_vary(VARY), samples, seed=18)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dask-sweep-bench-") as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.scheduler()
            for r in range(rounds):
                for n in (1, 2):
                    row = {"round": r + 1, **measure_config(cluster, n, scenario, draws, dict(sc.data))}
                    print(f"round {row['round']}, {n} worker(s): {row['seconds']:.1f} s, "
                          f"{row['per_min']:.1f} variants/min, load {row['load_before']:.2f}→{row['load_after']:.2f},"
                          f" other processes {row['others_cores']:.2f} cores, workers got "
                          f"{row['worker_cores']:.2f} cores, {row['cpu_s_per_variant']:.1f} CPU s/variant", flush=True)
                    rows.append(row)
        finally:
            cluster.stop_all()
    med = {n: statistics.median(r["per_min"] for r in rows if r["workers"] == n) for n in (1, 2)}
    per_round = [b["per_min"] / a["per_min"] for a, b in zip(rows[::2], rows[1::2], strict=True)]
    return {"samples": samples, "rounds": rounds, "rows": rows, "median_per_min": med, "ratio": med[2] / med[1],
            "ratio_per_round": per_round, "cpus": psutil.cpu_count(), "date": datetime.now(UTC)}


QUIET_OTHERS = 0.25
"""Largest CPU use of other processes (cores) for a round to count as quiet."""

QUIET_SHARE = 0.9
"""Smallest share of a core each worker must get, in both halves of a round, for it to count as quiet."""


def quiet_rounds(rows: list[dict]) -> dict[int, float]:
    """``{round: 2-worker / 1-worker throughput}`` for the rounds run while the machine was quiet: the only
    ratios that measure the cluster rather than the other jobs on a shared machine."""
    out = {}
    for one, two in zip(rows[::2], rows[1::2], strict=True):
        if all(r["others_cores"] < QUIET_OTHERS and r["worker_cores"] >= QUIET_SHARE * r["workers"]
               for r in (one, two)):
            out[one["round"]] = two["per_min"] / one["per_min"]
    return out


def markdown(res: dict) -> str:
    """The docs/benchmarks.md section."""
    lines = [
             f"Machine: {platform.machine()}, {res['cpus']} logical CPUs shared with other jobs, Python "
             f"{platform.python_version()}; run {res['date']:%Y-%m-%d %H:%M} UTC with `python benchmarks/dask_sweep.py "
             f"--samples {res['samples']} --rounds {res['rounds']}`: a `dask scheduler` and `dask worker --nthreads 1`"
             " processes on 127.0.0.1, the sweep of ncfd_expansion (HiGHS on 1 thread, "
             f"{', '.join(f'{k}={v}' for k, v in VARY.items())}, the same {res['samples']} variants each time) "
             "through `run_sweep(scheduler=ADDRESS)`; each worker warmed with one untimed sample.", "",
             "| round | workers | workers that ran samples | wall time (s) | variants/min | CPU the workers got "
             "(cores) | worker CPU s per variant | load average before → after | other processes' CPU before "
             "(cores) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['round']} | {r['workers']} | {r['workers_used']} | {r['seconds']:.1f} | "
                     f"{r['per_min']:.1f} | {r['worker_cores']:.2f} | {r['cpu_s_per_variant']:.2f} | "
                     f"{r['load_before']:.2f} → {r['load_after']:.2f} | {r['others_cores']:.2f} |")
    m = res["median_per_min"]
    lines += ["", f"Median throughput: 1 worker {m[1]:.1f} variants/min, 2 workers {m[2]:.1f} variants/min: "
              f"**{res['ratio']:.2f}×** (per round: {', '.join(f'{x:.2f}×' for x in res['ratio_per_round'])}). "
              "Goal ≥ 1.6×."]
    quiet = quiet_rounds(res["rows"])
    if quiet:
        lines.append(f"Quiet rounds (other processes under {QUIET_OTHERS} cores and each worker given at least "
                     f"{QUIET_SHARE:.0%} of a core in both halves): "
                     + ", ".join(f"round {r}: **{x:.2f}×**" for r, x in quiet.items()) + ".")
    else:
        lines.append("No quiet round (other processes under "
                     f"{QUIET_OTHERS} cores and each worker given at least {QUIET_SHARE:.0%} of a core in both "
                     "halves): the machine was too busy for a clean ratio.")
    return "\n".join(lines)


def write_doc(section: str) -> None:
    """Replace (or append) the section between the markers in docs/benchmarks.md."""
    replace_section(DOC, MARK_BEGIN, MARK_END, section, "Sweeps on a Dask cluster")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=16, help="variants in the sweep")
    ap.add_argument("--rounds", type=int, default=2, help="alternations of 1 and 2 workers")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    res = run(args.samples, args.rounds)
    section = markdown(res)
    print(section)
    if not args.no_write:
        write_doc(section)


if __name__ == "__main__":
    main()
