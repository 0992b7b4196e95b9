"""``planner compare`` and ``planner sweep``: two runs side by side, and Dask sweeps of uncertain parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from planner.cli.common import console, fail, load_data, scenario_or_fail
from planner.outputs import OutputError, prepare_folder
from planner.sweep import SweepError, aggregate, draw_samples, parse_vary, run_sweep


def _summary_of(path: Path) -> dict:
    """A run's summary: from a run folder's summary.json, or by running a scenario file."""
    if path.is_dir():
        f = path / "summary.json"
        if not f.is_file():
            raise fail(f"{path}: no summary.json (not a run folder)")
        return json.loads(f.read_text(encoding="utf-8"))
    from planner.execute import execute_scenario

    sc = scenario_or_fail(path)
    try:
        return execute_scenario(sc, load_data(dict(sc.data))).summary
    except ValueError as exc:
        raise fail(f"{path}: {exc}") from None


def compare(run_a: Annotated[Path, typer.Argument(help="run folder or scenario file")],
            run_b: Annotated[Path, typer.Argument(help="run folder or scenario file")]) -> None:
    """Side-by-side table of two runs (folders) or two scenarios (run now): sites, costs, losses, prices."""
    a, b = _summary_of(run_a), _summary_of(run_b)
    t = Table(title=f"{a.get('scenario')} vs {b.get('scenario')}")
    for col in ("", str(a.get("scenario")), str(b.get("scenario")), "difference"):
        t.add_column(col, justify="left" if not col else "right")

    def num(label: str, x, y, scale: float = 1.0, fmt: str = "{:,.0f}") -> None:
        if x is None or y is None:
            t.add_row(label, str(x), str(y), "")
            return
        t.add_row(label, fmt.format(x / scale), fmt.format(y / scale), fmt.format((y - x) / scale))

    t.add_row("status", str(a.get("status")), str(b.get("status")), "")
    num("objective, mln RUB/yr", a.get("objective"), b.get("objective"), 1e6)
    for k in sorted(set(a.get("cost_breakdown", {})) | set(b.get("cost_breakdown", {}))):
        num(f"  {k}", a["cost_breakdown"].get(k, 0), b["cost_breakdown"].get(k, 0), 1e6)
    for k in sorted(set(a.get("loss_reduction_pct", {})) | set(b.get("loss_reduction_pct", {}))):
        num(f"loss reduction {k}, %", a.get("loss_reduction_pct", {}).get(k), b.get("loss_reduction_pct", {}).get(k),
            fmt="{:+.1f}")
    for k in sorted(set(a.get("price_change_pct", {})) | set(b.get("price_change_pct", {}))):
        num(f"consumer price {k}, %", a.get("price_change_pct", {}).get(k), b.get("price_change_pct", {}).get(k),
            fmt="{:+.2f}")
    sa = {c["id"]: c for c in a.get("centres", [])}
    sb = {c["id"]: c for c in b.get("centres", [])}
    for sid in sorted(set(sa) | set(sb)):
        c = sa.get(sid) or sb.get(sid)
        size_a = sa[sid]["size"] if sid in sa else "—"
        size_b = sb[sid]["size"] if sid in sb else "—"
        t.add_row(f"centre {c['name_ru']}", size_a, size_b,
                  "" if (sid in sa) == (sid in sb) else ("only B" if sid in sb else "only A"))
    console.print(t)


def sweep(scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
          vary: Annotated[list[str] | None, typer.Option(help="PARAM=DIST, e.g. road_tariff_rub_per_tkm=uniform(3,5)")]
          = None,
          samples: Annotated[int, typer.Option(min=1, help="samples (per grid point)")] = 20,
          output: Annotated[Path | None, typer.Option("--output", "-o", help="folder for the sweep's files")] = None,
          scheduler: Annotated[str | None, typer.Option(help="address of a running Dask scheduler")] = None,
          workers: Annotated[int, typer.Option(min=1, help="worker processes of the local cluster")] = 2,
          seed: Annotated[int, typer.Option(help="random seed")] = 20261125,
          force: Annotated[bool, typer.Option(help="overwrite an output folder")] = False) -> None:
    """Monte Carlo or grid sweep on Dask: percentiles of cost, loss reduction, price change; site robustness."""
    sc = scenario_or_fail(scenario)
    load_data(dict(sc.data))
    try:
        specs = dict(sc.uncertainty)
        for item in vary or []:
            name, sep, dist = item.partition("=")
            if not sep:
                raise SweepError(f"--vary {item!r}: expected PARAM=DIST")
            specs[name.strip()] = dist
        if not specs:
            raise SweepError("nothing varies: give --vary PARAM=DIST or an uncertainty: section in the scenario")
        spec = parse_vary(specs)
        if output is not None:
            out_dir = prepare_folder(output, force)
    except (SweepError, OutputError) as exc:
        raise fail(f"{scenario}: {exc}") from None
    draws = draw_samples(spec, samples, seed)
    scenario_dict = sc.model_dump(exclude={"extends"})
    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task("sweep", total=len(draws))
        runs = run_sweep(scenario_dict, draws, dict(sc.data), scheduler, workers,
                         on_done=lambda done, total: bar.update(task, completed=done))
    agg, freq = aggregate(runs)
    agg["workers"] = runs.attrs.get("workers")
    t = Table(title=f"Sweep of {sc.name}: {len(runs)} samples on {agg['workers']} workers")
    for col in ("figure", "p5", "p50", "p95"):
        t.add_column(col, justify="left" if col == "figure" else "right")
    for name, p in agg["percentiles"].items():
        scale = 1e6 if name == "objective" else 1.0
        t.add_row(name + (", mln RUB" if scale > 1 else ""), *(f"{p[q] / scale:,.2f}" for q in ("p5", "p50", "p95")))
    console.print(t)
    r = Table(title="How often each site opens / Устойчивость площадок")
    r.add_column("site")
    r.add_column("share of samples", justify="right")
    for row in freq.itertuples():
        r.add_row(row.site_id, f"{row.open_share:.0%}")
    console.print(r)
    if output is not None:
        runs.to_csv(out_dir / "samples.csv", index=False)
        freq.to_csv(out_dir / "robustness.csv", index=False)
        (out_dir / "summary.json").write_text(json.dumps(agg, indent=2, default=float), encoding="utf-8")
        console.print(f"wrote samples.csv, robustness.csv, summary.json to {out_dir}")
