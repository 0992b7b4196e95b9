"""Scenario sweeps: Monte Carlo or grid variations of a scenario's parameters, run as Dask tasks.

Distributions (``--vary NAME=DIST`` or a scenario's ``uncertainty:`` section), NAME a registry parameter:
``uniform(a, b)``, ``normal(mean, sd)``, ``triangular(low, mode, high)``, ``choice(a, b, ...)`` (random pick) and
``grid(a, b, ...)`` (every value; several grids form their product, and Monte Carlo parameters are drawn per grid
point). Samples are drawn with a fixed seed, so a sweep is repeatable.

Each sample is one :func:`planner.execute.execute_scenario` run in a Dask worker process: a local cluster
(``distributed.LocalCluster``) by default, or an existing scheduler given by address (``tcp://host:8786``) whose
workers are separate ``dask worker`` processes, on this machine or on others (docs/cluster.md). Before the
first task the client checks that every worker runs the same planner (version, code and embedded data
digests, :func:`worker_environment`); user files named by the scenario travel with the tasks and the solver
logs come back with the results, so workers need no shared filesystem. Aggregates: percentiles of total cost,
loss reduction and price change, and how often each site opens (robustness), with each site's Russian and
English name and region.

Files (:func:`write_sweep`): ``samples.csv`` (one row per sample: the values drawn, the figures and the worker
that ran it), ``robustness.csv`` (each site's share of samples in which it opens), ``robustness.png`` (that share
as bars, and the spread of the headline figures as box plots), ``sweep.xlsx`` (the same tables),
``summary.json``; CSV in UTF-8 with BOM and a unit in every numeric header. ``run.log`` in the sweep's folder
holds each worker's HiGHS banner (once per worker process) and every sample's solver log, written by the
client as the samples finish.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from functools import lru_cache
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


WORKER_WAIT_S = 120.0
"""How long a sweep on an existing scheduler waits for its first worker before it gives up, seconds."""

CONNECT_TIMEOUT_S = 20.0
"""How long the client tries to reach the scheduler given by ``--scheduler``, seconds."""

MAX_INPUT_BYTES = 200 * 1024 * 1024
"""Largest total size of the user files (``data:`` tables, ``candidates.file``) a sweep ships to its workers,
bytes (200 MiB)."""


@lru_cache(maxsize=1)
def worker_environment() -> dict[str, str]:
    """What must be the same on the client and on every worker for a sample to mean the same thing: the
    planner's version, Python's minor version, and SHA-256 digests of the project's code (the ``planner``,
    ``optimization`` and ``geo`` packages' ``.py`` files) and of the embedded data files. Computed once per
    process (a few milliseconds)."""
    import importlib.util
    import platform
    from importlib import metadata

    from planner.settings import EMBEDDED_DATA_DIR

    try:
        version = metadata.version("orc-planner")
    except metadata.PackageNotFoundError:
        version = "not installed"
    code = hashlib.sha256()
    for package in ("planner", "optimization", "geo"):
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for f in sorted(Path(folder).rglob("*.py")):
                code.update(f.relative_to(folder).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    data = hashlib.sha256()
    for f in sorted(EMBEDDED_DATA_DIR.iterdir()):
        if f.is_file():
            data.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return {"orc-planner": version, "python": ".".join(platform.python_version_tuple()[:2]),
            "code_sha256": code.hexdigest(), "embedded_data_sha256": data.hexdigest()}


def _environment_mismatch(theirs: dict[str, str], ours: dict[str, str]) -> str:
    """The fields in which a worker's environment differs from the client's, as text ("" when they agree)."""
    return "; ".join(f"{k}: worker {theirs.get(k)!r}, client {v!r}" for k, v in ours.items() if theirs.get(k) != v)


def input_files(scenario_dict: dict, data: dict[str, str]) -> dict[str, bytes]:
    """The user files a sample reads (tables named in ``data:``, ``candidates.file``) as ``{path: bytes}``, read
    on the client so that workers on other machines need no shared filesystem. SweepError naming the field
    when a file cannot be read or the files are over :data:`MAX_INPUT_BYTES`."""
    named = {f"data.{k}": v for k, v in {**(scenario_dict.get("data") or {}), **data}.items() if v}
    cand = (scenario_dict.get("candidates") or {}).get("file")
    if cand:
        named["candidates.file"] = cand
    out: dict[str, bytes] = {}
    for field, path in named.items():
        try:
            out[str(path)] = Path(path).read_bytes()
        except OSError as exc:
            raise SweepError(f"{field}: cannot read {path}: {exc.strerror or exc}") from None
    total = sum(len(b) for b in out.values())
    if total > MAX_INPUT_BYTES:
        raise SweepError(f"data: the user files come to {total / 2**20:.0f} MiB, over the {MAX_INPUT_BYTES / 2**20:.0f}"
                         " MiB a sweep ships to its workers")
    return out


def _materialise(inputs: dict[str, bytes]) -> dict[str, str]:
    """Write shipped input files into this user's private folder of the machine's temporary folder (mode 0700,
    refused when another user owns it; one subfolder per file digest, written atomically so that worker processes
    on one machine can share it); a file already there is used only when its bytes hash to that digest;
    ``{client path: local path}``."""
    root = Path(tempfile.gettempdir()) / f"planner-sweep-inputs-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    st = root.lstat()
    if not root.is_dir() or root.is_symlink() or st.st_uid != os.getuid():
        raise SweepError(f"{root}: not a folder of this user; remove it and run the sweep again")
    os.chmod(root, 0o700)
    local = {}
    for src, body in inputs.items():
        digest = hashlib.sha256(body).hexdigest()
        dest = root / digest[:20] / Path(src).name
        if dest.is_symlink() or (dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() != digest):
            dest.unlink()
        if not dest.is_file():
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            tmp.write_bytes(body)
            os.replace(tmp, dest)
        local[src] = str(dest)
    return local


def run_sample(scenario_dict: dict, overrides: dict[str, float], data: dict[str, str], sample: int | None = None,
               inputs: dict[str, bytes] | None = None, expected: dict[str, str] | None = None) -> dict:
    """One sample in a worker: the scenario with ``overrides`` applied, run with economics; headline figures.

    ``inputs`` are the user files the client read (:func:`input_files`); they are written on the worker's own
    disk and the scenario's paths point there. ``expected`` is the client's :func:`worker_environment`; a worker
    whose code, data or version differ refuses the sample (SweepError naming the field). The row carries the
    worker's address (``worker``; None outside a Dask worker) and, under ``log``, the solver's log lines (the
    HiGHS banner once per worker process, then the sample's log prefixed with its number), which the client
    writes to the sweep's run.log: nothing is written to the worker's console or to a shared folder."""
    from optimization.solve import capture_banner
    from planner.data.loader import load_dataset
    from planner.execute import execute_scenario
    from planner.scenario import parse_scenario

    if expected is not None:
        diff = _environment_mismatch(worker_environment(), expected)
        if diff:
            raise SweepError(f"worker {_worker_address()} runs a different planner than the client ({diff}); install "
                             "the same orc-planner version on every worker")
    lines: list[str] = []
    capture_banner(lines.append)
    prefix = "" if sample is None else f"[sample {sample}] "
    d = dict(scenario_dict)
    if inputs:
        local = _materialise(inputs)
        data = {k: local.get(str(v), v) for k, v in data.items()}
        d["data"] = {k: local.get(str(v), v) for k, v in (d.get("data") or {}).items()}
        if (d.get("candidates") or {}).get("file"):
            d["candidates"] = {**d["candidates"], "file": local.get(str(d["candidates"]["file"]),
                                                                    d["candidates"]["file"])}
    d["parameters"] = {**d.get("parameters", {}), **overrides}
    sc = parse_scenario(d)
    out = execute_scenario(sc, load_dataset(data), on_log=lambda line: lines.append(prefix + line.rstrip("\n")))
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
    row["worker"] = _worker_address()
    row["log"] = lines
    return row


def _worker_address() -> str | None:
    """The address of the Dask worker running this code, or None outside one."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None


def connect(scheduler: str, wait_workers_s: float = WORKER_WAIT_S):
    """A ``distributed.Client`` on the scheduler at ``scheduler`` (``tcp://host:8786``) with at least one worker;
    SweepError naming ``--scheduler`` when nothing answers there or no worker joins within ``wait_workers_s``."""
    from distributed import Client

    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, ValueError, TimeoutError) as exc:
        raise SweepError(f"--scheduler {scheduler}: no Dask scheduler answers there within {CONNECT_TIMEOUT_S:.0f} s "
                         f"({type(exc).__name__}: {exc}); start one with `dask scheduler` and give its tcp:// "
                         "address") from None
    try:
        client.wait_for_workers(1, timeout=wait_workers_s)
    except (TimeoutError, OSError):
        client.close()
        raise SweepError(f"--scheduler {scheduler}: no Dask worker joined within {wait_workers_s:.0f} s; start "
                         f"workers with `dask worker {scheduler} --nthreads 1`") from None
    return client


def check_workers(client) -> dict[str, dict[str, str]]:
    """Every connected worker's :func:`worker_environment`; SweepError naming the worker and the field when one
    cannot import the planner or runs a different version, code or data than the client."""
    ours = worker_environment()
    try:
        theirs = client.run(worker_environment)
    except Exception as exc:  # noqa: BLE001 — whatever a worker raises while importing the planner
        raise SweepError(f"a Dask worker cannot run the planner ({type(exc).__name__}: {exc}); install the same "
                         "orc-planner version on every worker (docs/cluster.md)") from None
    bad = {w: _environment_mismatch(env, ours) for w, env in theirs.items()}
    bad = {w: d for w, d in bad.items() if d}
    if bad:
        raise SweepError("Dask workers run a different planner than the client: "
                         + "; ".join(f"{w}: {d}" for w, d in sorted(bad.items()))
                         + "; install the same orc-planner version on every worker (docs/cluster.md)")
    return theirs


def run_sweep(scenario_dict: dict, samples: pd.DataFrame, data: dict[str, str], scheduler: str | None = None,
              n_workers: int = 2, on_done: Callable[[int, int], None] | None = None,
              log_path: Path | None = None, wait_workers_s: float = WORKER_WAIT_S) -> pd.DataFrame:
    """Run every sample as a Dask task: on a local cluster of ``n_workers`` single-threaded worker processes, or
    on the scheduler at ``scheduler`` (separate ``dask scheduler`` / ``dask worker`` processes, on this machine or
    others). The workers' environments are checked first (:func:`check_workers`); the user files travel with
    the tasks (:func:`input_files`); task keys carry a random sweep id, so sweeps sharing a scheduler never
    share results. The solver logs come back with the results and go to ``log_path`` (in the order samples
    finish) when given. ``attrs["workers"]``: the workers connected at the end."""
    from distributed import Client, LocalCluster, as_completed

    inputs = input_files(scenario_dict, data)
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = connect(scheduler, wait_workers_s)
    try:
        expected = worker_environment()
        check_workers(client)
        shipped = client.scatter([inputs], broadcast=True, hash=False)[0] if inputs else None
        sweep_id = uuid.uuid4().hex[:12]
        futures = [client.submit(run_sample, scenario_dict, row, data, i, shipped, expected,
                                 key=f"planner-sweep-{sweep_id}-sample-{i}", pure=False)
                   for i, row in enumerate(samples.to_dict("records"))]
        index = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, dict] = {}
        with contextlib.ExitStack() as stack:
            log = None if log_path is None else stack.enter_context(Path(log_path).open("a", encoding="utf-8"))
            for done, fut in enumerate(as_completed(futures), start=1):
                row = fut.result()
                lines = row.pop("log", [])
                if log is not None:
                    log.writelines(line + "\n" for line in lines)
                    log.flush()
                results[index[fut.key]] = row
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
    if col == "worker":
        return "Dask worker address / адрес исполнителя Dask"
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
