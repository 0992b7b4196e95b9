"""Benchmark: how long the service takes to read a YAML body at the size limit (1 MiB, the scenario files'
``planner.scenario.MAX_FILE_BYTES``), the figure the ``Retry-After`` of the YAML parse guard is set from
(``api.guard.YAML_RETRY_AFTER_S``).

A YAML body costs far more than JSON: PyYAML builds a Python object per value. The shapes measured are the
costly ones a client could send within the size limit — a block list of short items, a flow list of one-character
items, a mapping of many short keys, nested mappings (each refused once it passes the 100,000 values of a scenario
file, counted from the parse events before the tree is built) —, the costliest bodies still read whole (just under
100,000 values), and a realistic scenario padded to the limit with a long description. Each is read by
:func:`api.guard.yaml_to_json` (what the guard runs in its worker thread: parse under the scenario files' limits,
then JSON), several times; the table gives the median and the worst. Results go to ``docs/benchmarks.md``
(section "YAML bodies").

Run: ``.venv/bin/python benchmarks/yaml_body.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date
from pathlib import Path

from docsection import replace_section

from api.guard import MAX_YAML_BODY, yaml_to_json

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
MARK_BEGIN, MARK_END = "<!-- yaml_body:begin -->", "<!-- yaml_body:end -->"


def _fill(head: str, unit: str, limit: int, tail: str = "") -> bytes:
    """``head`` then ``unit`` repeated to just under ``limit`` bytes, then ``tail``."""
    n = (limit - len(head.encode()) - len(tail.encode())) // len(unit.encode())
    return (head + unit * n + tail).encode()


def shapes(limit: int) -> dict[str, bytes]:
    """The bodies measured, each just under ``limit`` bytes."""
    keys = "name: keys\nparameters:\n" + "".join(f"  k{i:06d}: 1\n" for i in range(limit // 14))
    nested = "name: nested\nscope:\n" + "".join(f"  r{i:05d}: {{a: 1, b: 2}}\n" for i in range(limit // 22))
    return {
        "block list of short items (`- 1`)": _fill("name: blocklist\ncommodities:\n", "- 1\n", limit),
        "flow list of one-character items (`[1,1,…]`)": _fill("name: flowlist\ncommodities: [", "1,", limit, "1]\n"),
        "mapping of short keys": keys.encode()[:limit].rsplit(b"\n", 1)[0] + b"\n",
        "nested mappings": nested.encode()[:limit].rsplit(b"\n", 1)[0] + b"\n",
        "list of 99,990 short items (just under the 100,000 values)": (
            "name: underlist\ncommodities:\n" + "- 1\n" * 99_990).encode(),
        "mapping of 49,990 keys (just under the 100,000 values)": (
            "name: underkeys\nparameters:\n" + "".join(f"  k{i:06d}: 1\n" for i in range(49_990))).encode(),
        "a scenario with a long description": _fill(
            "name: described\nscope: {federal_districts: [NCFD]}\ncommodities: [vegetables]\ndescription: |\n",
            "  строка описания сценария\n", limit),
    }


def measure(body: bytes, repeats: int) -> tuple[float, float, str]:
    """Median and worst seconds of :func:`yaml_to_json` on ``body``, and its outcome (accepted or the error)."""
    times = []
    outcome = ""
    for _ in range(repeats):
        t = time.perf_counter()
        data, errors = yaml_to_json(body)
        times.append(time.perf_counter() - t)
        outcome = "accepted" if data is not None else f"422 {errors[0]['type']}"
    return statistics.median(times), max(times), outcome


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = ap.parse_args()
    rows = []
    for name, body in shapes(MAX_YAML_BODY).items():
        med, worst, outcome = measure(body, args.repeats)
        rows.append(f"| {name} | {len(body):,} | {med:.2f} | {worst:.2f} | {outcome} |")
        print(rows[-1], flush=True)
    section = (f"Machine: {platform.machine()}, Python {platform.python_version()}; run {date.today():%Y-%m} "
               f"with `python benchmarks/yaml_body.py --repeats {args.repeats}` (2 shared cores, other work "
               f"running: `approximate`).\n\n"
               "| body (YAML, ≤ 1 MiB) | bytes | median (s) | worst (s) | answer |\n|---|---|---|---|---|\n"
               + "\n".join(rows) + "\n")
    if not args.no_write:
        replace_section(DOC, MARK_BEGIN, MARK_END, section, "YAML bodies / Тела YAML")
    print(section)


if __name__ == "__main__":
    main()
