"""Scenario sweeps: Monte Carlo or grid variations of a scenario's parameters, run as Dask tasks.

Distributions (``--vary NAME=DIST`` or a scenario's ``uncertainty:`` section), NAME a registry parameter:
``uniform(a, b)``, ``normal(mean, sd)``, ``triangular(low, mode, high)``, ``choice(a, b, ...)`` (random pick) and
``grid(a, b, ...)`` (every value; several grids form their product, and Monte Carlo parameters are drawn per grid
point). Samples are drawn with a fixed seed, so a sweep is repeatable.

Each sample is one :func:`planner.execute.execute_scenario` run in a Dask worker process: a local cluster
(``distributed.LocalCluster``) by default, or an existing scheduler given by address
(``tcp://host:8786``). Aggregates: percentiles of total cost, loss reduction and price change, and how often
each site opens (robustness).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

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


def run_sample(scenario_dict: dict, overrides: dict[str, float], data: dict[str, str]) -> dict:
    """One sample in a worker: the scenario with ``overrides`` applied, run with economics; headline figures."""
    from planner.data.loader import load_dataset
    from planner.execute import execute_scenario
    from planner.scenario import parse_scenario

    d = dict(scenario_dict)
    d["parameters"] = {**d.get("parameters", {}), **overrides}
    sc = parse_scenario(d)
    out = execute_scenario(sc, load_dataset(data))
    s = out.summary
    row = {"status": s["status"], "objective": s.get("objective"), "gap": s.get("gap"),
           "open_sites": ",".join(c["id"] for c in s.get("centres", []))}
    base, net = s.get("loss_tonnes_baseline", {}), s.get("loss_tonnes_network", {})
    if base:
        row["loss_reduction_pct_total"] = 100 * (sum(base.values()) - sum(net.values())) / max(sum(base.values()), 1e-9)
    for k, v in s.get("loss_reduction_pct", {}).items():
        row[f"loss_reduction_pct_{k}"] = v
    for k, v in s.get("price_change_pct", {}).items():
        row[f"price_change_pct_{k}"] = v
    return row


def run_sweep(scenario_dict: dict, samples: pd.DataFrame, data: dict[str, str], scheduler: str | None = None,
              n_workers: int = 2, on_done: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Run every sample as a Dask task (local cluster of worker processes, or the given scheduler)."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = [client.submit(run_sample, scenario_dict, row, data, key=f"sample-{i}", pure=False)
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


def aggregate(runs: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Percentiles (5, 50, 95) of cost, loss reduction and price change; how often each site opens."""
    cols = [c for c in runs.columns if c == "objective" or c.startswith(("loss_reduction_pct", "price_change_pct"))]
    pct = {c: {f"p{q}": float(np.nanpercentile(runs[c].astype(float), q)) for q in (5, 50, 95)} for c in cols
           if runs[c].notna().any()}
    sites = runs["open_sites"].fillna("").str.split(",").explode()
    sites = sites[sites != ""]
    freq = (sites.value_counts() / len(runs)).rename("open_share").rename_axis("site_id").reset_index()
    return {"samples": len(runs), "optimal": int((runs["status"] == "optimal").sum()), "percentiles": pct}, freq
