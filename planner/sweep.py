"""Scenario sweeps: Monte Carlo or grid variations of a scenario's parameters, run as Dask tasks.

Distributions (``--vary NAME=DIST`` or a scenario's ``uncertainty:`` section), NAME a registry parameter:
``uniform(a, b)``, ``normal(mean, sd)``, ``triangular(low, mode, high)``, ``choice(a, b, ...)`` (random pick) and
``grid(a, b, ...)`` (every value; several grids form their product, and Monte Carlo parameters are drawn per grid
point). Samples are drawn with a fixed seed, so a sweep is repeatable.

Each sample is one :func:`planner.execute.execute_scenario` run in a Dask worker process: a local cluster
(``distributed.LocalCluster``) by default, or an existing scheduler given by address
(``tcp://host:8786``). Aggregates: percentiles of total cost, loss reduction and price change, and how often
each site opens (robustness), with each site's Russian and English name and region.

Files (:func:`write_sweep`): ``samples.csv`` (one row per sample: the values drawn and the figures), ``robustness.csv``
(each site's share of samples in which it opens), ``robustness.png`` (that share as bars, and the spread of the
headline figures as box plots), ``sweep.xlsx`` (the same tables), ``summary.json``; CSV in UTF-8 with BOM and a
unit in every numeric header. Each worker sends the HiGHS banner (once per worker process) and its solver log to
``run.log`` in the sweep's folder.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from planner.parameters import PARAMETER_BY_NAME, suggest

DIST = re.compile(r"^\s*(uniform|normal|triangular|choice|grid)\s*\(([^)]*)\)\s*$")


class SweepError(ValueError):
    """A sweep specification that cannot be used; names the parameter and what to fix."""


def parse_vary(specs: dict[str, str]) -> dict[str, tuple[str, list[float]]]:
    """Validate ``{parameter: "dist(args)"}``; returns ``{parameter: (dist, args)}``."""
    out = {}
    for name, text in specs.items():
        if name not in PARAMETER_BY_NAME:
            raise SweepError(f"vary: unknown parameter {name!r}.{suggest(name, list(PARAMETER_BY_NAME))}")
        m = DIST.match(str(text))
        if not m:
            raise SweepError(f"vary {name}: expected uniform(a,b), normal(mean,sd), triangular(low,mode,high), "
                             f"choice(a,b,...) or grid(a,b,...), got {text!r}")
        try:
            args = [float(a) for a in m.group(2).split(",") if a.strip()]
        except ValueError:
            raise SweepError(f"vary {name}: arguments must be numbers, got {m.group(2)!r}") from None
        need = {"uniform": 2, "normal": 2, "triangular": 3}.get(m.group(1))
        if (need and len(args) != need) or not args:
            raise SweepError(f"vary {name}: {m.group(1)} takes {need or 'one or more'} numbers, got {len(args)}")
        out[name] = (m.group(1), args)
    return out


def draw_samples(spec: dict[str, tuple[str, list[float]]], n: int, seed: int = 20261125) -> pd.DataFrame:
    """``n`` samples per grid point (grid parameters take every value), clipped to each parameter's range."""
    rng = np.random.default_rng(seed)
    grids = {k: v[1] for k, v in spec.items() if v[0] == "grid"}
    points = [dict(zip(grids, combo, strict=True)) for combo in itertools.product(*grids.values())] or [{}]
    rows = []
    for point in points:
        for _ in range(n):
            row = dict(point)
            for name, (dist, a) in spec.items():
                if dist == "uniform":
                    row[name] = rng.uniform(a[0], a[1])
                elif dist == "normal":
                    row[name] = rng.normal(a[0], a[1])
                elif dist == "triangular":
                    row[name] = rng.triangular(a[0], a[1], a[2])
                elif dist == "choice":
                    row[name] = float(rng.choice(a))
            for name, v in list(row.items()):
                p = PARAMETER_BY_NAME[name]
                lo = -np.inf if p.minimum is None else p.minimum
                hi = np.inf if p.maximum is None else p.maximum
                row[name] = float(np.clip(v, lo, hi))
            rows.append(row)
    return pd.DataFrame(rows)


def _log_sink(log_path: str | None, sample: int | None) -> Callable[[str], None] | None:
    """A function appending a solver log line to ``log_path`` (prefixed with the sample number), or None."""
    if log_path is None:
        return None
    prefix = "" if sample is None else f"[sample {sample}] "

    def write(line: str) -> None:
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(prefix + line.rstrip("\n") + "\n")

    return write


def run_sample(scenario_dict: dict, overrides: dict[str, float], data: dict[str, str], log_path: str | None = None,
               sample: int | None = None) -> dict:
    """One sample in a worker: the scenario with ``overrides`` applied, run with economics; headline figures.
    The HiGHS banner (once per worker process) and the solver log go to ``log_path`` when given, never to the
    worker's console."""
    from optimization.solve import capture_banner
    from planner.data.loader import load_dataset
    from planner.execute import execute_scenario
    from planner.scenario import parse_scenario

    capture_banner(_log_sink(log_path, None))
    d = dict(scenario_dict)
    d["parameters"] = {**d.get("parameters", {}), **overrides}
    sc = parse_scenario(d)
    out = execute_scenario(sc, load_dataset(data), on_log=_log_sink(log_path, sample))
    s = out.summary
    row = {"status": s["status"], "objective": s.get("objective"), "gap": s.get("gap"),
           "open_sites": ",".join(c["id"] for c in s.get("centres", [])),
           "site_names": json.dumps({c["id"]: [c["name_ru"], c["name_en"], c["region"]] for c in s.get("centres", [])},
                                    ensure_ascii=False)}
    base, net = s.get("loss_tonnes_baseline", {}), s.get("loss_tonnes_network", {})
    if base:
        row["loss_reduction_pct_total"] = 100 * (sum(base.values()) - sum(net.values())) / max(sum(base.values()), 1e-9)
    for k, v in s.get("loss_reduction_pct", {}).items():
        row[f"loss_reduction_pct_{k}"] = v
    for k, v in s.get("price_change_pct", {}).items():
        row[f"price_change_pct_{k}"] = v
    return row


def run_sweep(scenario_dict: dict, samples: pd.DataFrame, data: dict[str, str], scheduler: str | None = None,
              n_workers: int = 2, on_done: Callable[[int, int], None] | None = None,
              log_path: Path | None = None) -> pd.DataFrame:
    """Run every sample as a Dask task (local cluster of worker processes, or the given scheduler); the workers'
    solver logs go to ``log_path`` when given."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        log = None if log_path is None else str(Path(log_path).resolve())
        futures = [client.submit(run_sample, scenario_dict, row, data, log, i, key=f"sample-{i}", pure=False)
                   for i, row in enumerate(samples.to_dict("records"))]
        index = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, dict] = {}
        for done, fut in enumerate(as_completed(futures), start=1):
            results[index[fut.key]] = fut.result()
            if on_done is not None:
                on_done(done, len(futures))
        workers = len(client.scheduler_info()["workers"])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    out = samples.reset_index(drop=True).join(pd.DataFrame([results[i] for i in range(len(samples))]))
    out.attrs["workers"] = workers
    return out


def figure_columns(runs: pd.DataFrame) -> list[str]:
    """The headline figure columns of a sweep's samples: total cost (RUB a year), loss reduction and consumer
    price change (%)."""
    return [c for c in runs.columns if c == "objective" or c.startswith(("loss_reduction_pct", "price_change_pct"))]


def aggregate(runs: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Percentiles (5, 50, 95) of cost, loss reduction and price change; how often each site opens, with its
    Russian and English names and region (``site_id, name_ru, name_en, region, open_share``), most often first."""
    cols = figure_columns(runs)
    pct = {c: {f"p{q}": float(np.nanpercentile(runs[c].astype(float), q)) for q in (5, 50, 95)} for c in cols
           if runs[c].notna().any()}
    sites = runs["open_sites"].fillna("").str.split(",").explode()
    sites = sites[sites != ""]
    freq = (sites.value_counts() / len(runs)).rename("open_share").rename_axis("site_id").reset_index()
    names: dict[str, list[str]] = {}
    for text in runs.get("site_names", pd.Series(dtype=object)).dropna():
        names.update(json.loads(text))
    for i, col in enumerate(("name_ru", "name_en", "region")):
        freq.insert(1 + i, col, [names.get(s, [None] * 3)[i] for s in freq["site_id"]])
    freq = freq.sort_values(["open_share", "site_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return {"samples": len(runs), "optimal": int((runs["status"] == "optimal").sum()), "percentiles": pct}, freq


ROBUSTNESS_HEADERS = {"site_id": "site_id / id площадки", "name_ru": "площадка", "name_en": "site",
                      "region": "region / субъект", "open_share": "open share, % of samples / доля выборок, %"}
"""robustness.csv's headers: both languages, the unit of the share."""


def _figure_header(col: str) -> str:
    """A samples column's header with its unit."""
    if col == "objective":
        return "total cost, RUB/yr / годовые затраты, руб./год"
    if col == "gap":
        return "MIP gap, fraction / разрыв"
    if col.startswith("loss_reduction_pct"):
        return f"loss reduction {col.removeprefix('loss_reduction_pct_')}, % / снижение потерь, %"
    if col.startswith("price_change_pct"):
        return f"consumer price change {col.removeprefix('price_change_pct_')}, % / изменение цены, %"
    return col


def draw_robustness(runs: pd.DataFrame, freq: pd.DataFrame, samples: int, path: Path) -> None:
    """robustness.png: how often each site opens (bars, % of samples), the spread of the percentage figures (loss
    reduction and consumer price change, box plots with whiskers at the 5th and 95th percentiles) and of the
    objective (annual cost net of sales to outside markets, million RUB a year)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in figure_columns(runs) if runs[c].notna().any()]
    pct_cols = [c for c in cols if c != "objective"]
    height = max(4.5, 0.45 * len(freq) + 2.0)
    fig, axes = plt.subplots(1, 3, figsize=(16, height), layout="constrained",
                             gridspec_kw={"width_ratios": [1.4, 1.0, 0.45]})
    labels = [textwrap.fill(f"{r.name_ru or r.site_id} / {r.name_en or ''}", 48) for r in freq.itertuples()]
    axes[0].barh(labels[::-1], (100 * freq["open_share"]).to_numpy()[::-1], color="#2b8cbe")
    axes[0].set_xlim(0, 100)
    axes[0].tick_params(axis="y", labelsize=8)
    axes[0].set_xlabel("samples in which the site opens, %\nдоля выборок, в которых площадка открыта, %")
    axes[0].set_title("How often each site opens\nКак часто открывается площадка", fontsize=11)
    if pct_cols:
        data = [runs[c].dropna().astype(float).to_numpy() for c in pct_cols]
        axes[1].boxplot(data, orientation="horizontal", whis=(5, 95))
        axes[1].set_yticks(range(1, len(pct_cols) + 1),
                           [c.replace("_pct_", ", ").replace("_", " ") + ", %" for c in pct_cols], fontsize=8)
        axes[1].set_xlabel("% (box: quartiles; whiskers: 5th–95th percentile)\n% (ящик: квартили; усы: 5–95-й "
                           "процентили)")
    axes[1].set_title("Spread of the headline figures\nРазброс основных показателей", fontsize=11)
    if "objective" in cols:
        axes[2].boxplot([runs["objective"].dropna().astype(float).to_numpy() / 1e6], whis=(5, 95))
        axes[2].set_xticks([1], ["objective"])
        axes[2].set_ylabel("annual cost net of outside sales, mln RUB/yr\nзатраты за вычетом продаж, млн руб./год",
                           fontsize=8)
        axes[2].set_title("Objective\nЦелевая функция", fontsize=11)
    else:
        axes[2].set_axis_off()
    fig.suptitle(f"Sweep of {samples} samples / Анализ чувствительности: {samples} выборок")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_sweep(folder: Path, runs: pd.DataFrame, agg: dict, freq: pd.DataFrame) -> list[Path]:
    """Write the sweep's files (see the module docstring) into ``folder``; returns their paths."""
    folder = Path(folder)
    samples = runs.drop(columns=["site_names"], errors="ignore")
    samples = samples.rename(columns={c: _figure_header(c) for c in samples.columns})
    robust = freq.assign(open_share=(100 * freq["open_share"]).round(1)).rename(columns=ROBUSTNESS_HEADERS)
    paths = [folder / "samples.csv", folder / "robustness.csv", folder / "robustness.png", folder / "sweep.xlsx",
             folder / "summary.json"]
    samples.to_csv(paths[0], index=False, encoding="utf-8-sig")
    robust.to_csv(paths[1], index=False, encoding="utf-8-sig")

    draw_robustness(runs, freq, agg["samples"], paths[2])

    with pd.ExcelWriter(paths[3], engine="openpyxl") as xl:
        pct = pd.DataFrame([{"figure": _figure_header(k), **v} for k, v in agg["percentiles"].items()])
        for name, frame in (("robustness", robust), ("percentiles", pct), ("samples", samples)):
            frame.to_excel(xl, sheet_name=name, index=False)
            ws = xl.sheets[name]
            ws.freeze_panes = "A2"
            ws.auto_filter.ref = ws.dimensions
            for col in ws.columns:
                width = max(len(str(c.value)) if c.value is not None else 0 for c in col)
                ws.column_dimensions[col[0].column_letter].width = min(max(10, width + 2), 50)
    paths[4].write_text(json.dumps({**agg, "sites": freq.to_dict("records")}, indent=2, ensure_ascii=False,
                                   default=float), encoding="utf-8")
    return paths
