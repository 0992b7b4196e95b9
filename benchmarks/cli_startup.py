"""Benchmark: how fast the command line answers ``planner --help``, against a bare ``python -c pass``.

Each command is started as a new process (the way a user starts it) ``--runs`` times, alternating the two so that
the shared machine's load falls on both alike; the figure is the ratio of the medians (wall-clock seconds), with
the medians themselves. Also times ``planner run --help`` (a subcommand's help) and lists the heavy libraries
(pandas, Pyomo, osmnx, matplotlib, geopandas, highspy, scikit-learn) that ``--help`` imports: none is the goal.
The goal is under 1 s for ``planner --help`` (issue #16). Results go to ``docs/benchmarks.md`` (section
"Command-line start-up").

Run: ``.venv/bin/python benchmarks/cli_startup.py [--runs 15] [--no-write]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from docsection import replace_section

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
MARK_BEGIN = "<!-- cli_startup:begin -->"
MARK_END = "<!-- cli_startup:end -->"
HEAVY = ("pandas", "pyomo", "osmnx", "matplotlib", "geopandas", "highspy", "sklearn")


def wall(cmd: list[str]) -> float:
    """Seconds from starting ``cmd`` to its exit (it must exit 0)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def heavy_imports() -> list[str]:
    """The heavy libraries loaded by the time ``planner --help`` has printed."""
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom planner.cli import app\n"
            "CliRunner().invoke(app, ['--help'])\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         check=True, capture_output=True, text=True)
    return [m for m in out.stdout.strip().split(",") if m]


def measure(runs: int) -> dict:
    """Median seconds of each command over ``runs`` alternating starts, and the ratios to ``python -c pass``."""
    py = sys.executable
    cmds = {"python -c pass": [py, "-c", "pass"],
            "planner --help": [py, "-m", "planner.cli", "--help"],
            "planner run --help": [py, "-m", "planner.cli", "run", "--help"]}
    for cmd in cmds.values():  # warm the file cache once
        wall(cmd)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(wall(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"runs": runs, "median_s": med, "ratio": {k: med[k] / med["python -c pass"] for k in med},
            "heavy": heavy_imports()}


def markdown(res: dict) -> str:
    """The docs/benchmarks.md section."""
    lines = [
             f"Machine: {platform.machine()}, Python {platform.python_version()}; run {date.today().isoformat()} with "
             f"`python benchmarks/cli_startup.py --runs {res['runs']}` (medians of {res['runs']} fresh processes each, "
             "alternating; 2 shared cores).", "",
             "| command | median wall time (s) | ratio to `python -c pass` |", "|---|---|---|"]
    for name, s in res["median_s"].items():
        lines.append(f"| `{name}` | {s:.3f} | {res['ratio'][name]:.1f}× |")
    lines += ["", f"Heavy libraries imported by `planner --help`: {', '.join(res['heavy']) or 'none'} "
              f"(checked: {', '.join(HEAVY)}). Goal: `planner --help` under 1 s."]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    """Replace (or append) the section between the markers in docs/benchmarks.md."""
    replace_section(DOC, MARK_BEGIN, MARK_END, section, "Command-line start-up")


def main() -> None:
    """Measure, print and (unless ``--no-write``) record in docs/benchmarks.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    res = measure(args.runs)
    section = markdown(res)
    print(section)
    if not args.no_write:
        write_doc(section)


if __name__ == "__main__":
    main()
