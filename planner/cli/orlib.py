"""``planner solve-orlib``: solve an OR-Library instance through the same model layer the scenarios use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from planner.cli.common import console, fail


def solve_orlib(
    file: Annotated[Path, typer.Argument(help="OR-Library file (cap41.txt, capa.txt, pmed1.txt, ...)")],
    capacity: Annotated[float | None, typer.Option(help="capacity for capa/capb/capc (e.g. 8000)")] = None,
    uncapacitated: Annotated[bool, typer.Option(help="ignore capacities (UFLP)")] = False,
    pmedian: Annotated[bool, typer.Option(help="the file is a p-median graph")] = False,
    time_limit: Annotated[float | None, typer.Option(help="seconds")] = None,
    gap: Annotated[float, typer.Option(help="relative MIP gap to stop at")] = 0.0,
    threads: Annotated[int | None, typer.Option(help="solver threads")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print only the result, as one JSON document")] = False,
) -> None:
    """Solve an OR-Library CFLP/UFLP/p-median instance; print the objective, status, gap, timings, open sites."""
    from geo.orlib import pmedian_distances
    from optimization.orlib import read_cflp, read_pmedian
    from optimization.problem import ProblemError
    from optimization.run import optimize
    from optimization.solve import SolverOptions, capture_banner

    capture_banner()
    if not file.is_file():
        raise fail(f"{file}: file not found")
    if capacity is not None and capacity <= 0:
        raise fail(f"--capacity: must be > 0, got {capacity}")
    try:
        if pmedian:
            pb = read_pmedian(file, pmedian_distances(file))
        else:
            pb = read_cflp(file, capacity=capacity, uncapacitated=uncapacitated)
    except ProblemError as exc:
        raise fail(str(exc)) from None
    res = optimize(pb, SolverOptions(time_limit=time_limit, rel_gap=gap, threads=threads))
    out = {"instance": pb.name, "objective": res.objective, "status": res.status, "gap": res.gap,
           "bound": res.bound, "build_seconds": round(res.build_seconds, 4),
           "solve_seconds": round(res.solve_seconds, 4), "open_sites": res.open_sites}
    if as_json:
        typer.echo(json.dumps(out))
    else:
        console.print(f"{pb.name}: {res.status} — {res.message}")
        console.print(f"objective {res.objective}, bound {res.bound}, gap {res.gap}; build {res.build_seconds:.2f} s, "
                      f"solve {res.solve_seconds:.2f} s; open: {', '.join(res.open_sites)}")
    if res.status in ("infeasible", "error", "time_limit_no_solution"):
        raise typer.Exit(code=2)
