"""``planner compare`` and ``planner sweep``: two runs side by side, and Dask sweeps of uncertain parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from planner.cli.common import console, emit_json, err_console, fail, json_mode, load_data, scenario_or_fail

OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="folder for the files")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print only the result, as one JSON document, on standard "
                                                    "output (tables go to standard error)")]


def _run_of(path: Path, out_dir: Path | None, label: str) -> tuple[dict, Path | None]:
    """A run's summary and its map: from a run folder (``summary.json``, ``map.png``), or by running a scenario
    file now (its whole folder written to ``out_dir/label`` when ``out_dir`` is given, so the map exists)."""
    if path.is_dir():
        f = path / "summary.json"
        if not f.is_file():
            raise fail(f"{path}: no summary.json (not a run folder)")
        try:
            summary = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise fail(f"{f}: not valid JSON ({exc})") from None
        return summary, (path / "map.png") if (path / "map.png").is_file() else None
    if not path.is_file():
        raise fail(f"{path}: neither a run folder nor a scenario file")
    from geo.network import NetworkError
    from optimization.problem import ProblemError
    from planner.economics.equilibrium import EquilibriumError
    from planner.execute import execute_scenario
    from planner.outputs import OutputError, write_outputs
    from planner.scenario import ScenarioError

    sc = scenario_or_fail(path)
    ds = load_data(dict(sc.data))
    try:
        with err_console.status(f"running {sc.name} ..."):
            out = execute_scenario(sc, ds)
            if out_dir is None or out.result.objective is None:
                return out.summary, None
            folder = out_dir / label
            write_outputs(folder, out.planned, out.result, out.summary, ds, sc.region_ids(ds), out.losses,
                          out.prices, out.investor, force=True)
    except (ScenarioError, NetworkError, ProblemError, EquilibriumError, OutputError, ValueError) as exc:
        raise fail(f"{path}: {exc}") from None
    return out.summary, (folder / "map.png") if (folder / "map.png").is_file() else None


def _fmt(v: float | None, digits: int = 0, sign: bool = False) -> str:
    if v is None:
        return "—"
    text = f"{v:{'+' if sign else ''},.{digits}f}"
    return "0" if text in ("-0", "+0", "-0.0", "+0.0") and digits == 0 else text.replace("-0.00", "0.00")


def compare(run_a: Annotated[Path, typer.Argument(help="run folder (planner run -o) or scenario file")],
            run_b: Annotated[Path, typer.Argument(help="run folder (planner run -o) or scenario file")],
            output: OutputOpt = None, force: Annotated[bool, typer.Option(help="overwrite the output folder")] = False,
            as_json: JsonOpt = False) -> None:
    """What changes from run A to run B: trade by country and crossing first (what Armenia and each crossing gains
    or loses), then cost, losses, prices, net social benefit, NPV, and the centres opened, closed or resized
    (sites matched by their stable id). -o DIR writes compare.json, compare.xlsx, compare.html."""
    from planner.compare import compare_inputs, compare_summaries

    if output is not None:
        if output.exists() and (output / "compare.json").exists() and not force:
            raise fail(f"{output}: already holds a comparison; choose another folder or pass --force")
        output.mkdir(parents=True, exist_ok=True)
    a, map_a = _run_of(run_a, output, "a")
    b, map_b = _run_of(run_b, output, "b")
    doc = compare_summaries(a, b, _label(run_a, a), _label(run_b, b), *compare_inputs(load_data({}), a, b))
    with json_mode(as_json):
        print_compare(doc)
        if output is not None:
            written = write_compare(output, doc, map_a, map_b)
            console.print(f"wrote {', '.join(p.name for p in written)} to {output}")
    if as_json:
        emit_json(doc)


def _label(path: Path, summary: dict) -> str:
    """A run's name on screen: its scenario, and its folder where the folder is named otherwise."""
    name = str(summary.get("scenario"))
    return name if not path.is_dir() or path.name == name else f"{path.name} ({name})"


def print_compare(doc: dict) -> None:
    """The comparison on the console: trade by country first, then headline figures, centres, markets."""
    from planner.compare import crossing_headlines, trade_headlines

    la, lb = doc["a"]["label"], doc["b"]["label"]
    console.print(f"[bold]A[/bold] = {la} ({doc['a']['status']})   [bold]B[/bold] = {lb} ({doc['b']['status']})")
    lines = trade_headlines(doc)
    console.print("[bold]What each outside country gains or loses, B against A / Что теряет или получает каждая "
                  "страна, B к A[/bold]")
    if not lines:
        console.print("  no change in any country's trade with the scope / торговля не меняется")
    for head, per_market in lines:
        console.print(f"  [bold]{head}[/bold]", highlight=False)
        for line in per_market:
            console.print(f"      {line}", highlight=False)
    crossing_lines = crossing_headlines(doc)
    if crossing_lines:
        console.print("[bold]Border crossings, B against A / Пункты пропуска, B к A[/bold]")
        for line in crossing_lines:
            console.print(f"  {line}", highlight=False)
    t = Table(title="Headline figures / Основные показатели")
    for col in ("figure", "показатель", "A", "B", "B − A"):
        t.add_column(col, justify="left" if col in ("figure", "показатель") else "right")
    for h in doc["headline"]:
        digits = 1 if h["key"].endswith("pct") else 0
        t.add_row(h["label_en"], h["label_ru"], _fmt(h["a"], digits), _fmt(h["b"], digits),
                  _fmt(h["change"], digits, sign=True))
    for group in ("consumer_price_change_pct", "loss_reduction_pct"):
        for r in doc[group]:
            label = ("consumer price change" if group.startswith("consumer") else "loss reduction")
            t.add_row(f"{label}, {r['commodity']}, %", "", _fmt(r["a"], 2, True), _fmt(r["b"], 2, True),
                      _fmt(r["change"], 2, True))
    console.print(t)
    c = Table(title="Centres / ОРЦ (matched by id)")
    for col in ("id", "ОРЦ", "centre", "region", "change", "size A", "size B", "throughput A, kt", "B, kt"):
        c.add_column(col, justify="right" if "kt" in col else "left")
    for r in doc["centres"]:
        c.add_row(r["id"], r["name_ru"], r["name_en"], str(r["region"]), r["change"], str(r["size_a"] or "—"),
                  str(r["size_b"] or "—"), _fmt(None if r["throughput_a_t"] is None else r["throughput_a_t"] / 1e3, 1),
                  _fmt(None if r["throughput_b_t"] is None else r["throughput_b_t"] / 1e3, 1))
    console.print(c)
    m = Table(title="Outside markets (crossing or port), thousand tonnes a year / Внешние рынки, тыс. т в год")
    for col in ("market / рынок", "sales A", "sales B", "Δ", "purchases A", "purchases B", "Δ "):
        m.add_column(col, justify="left" if col.startswith("market") else "right")
    for r in doc["trade_by_market"]:
        m.add_row(f"{r['name_ru']} / {r['name_en']}", *(_fmt(r[k] / 1e3, 1, "change" in k) for k in (
            "exports_a_t", "exports_b_t", "exports_change_t", "imports_a_t", "imports_b_t", "imports_change_t")))
    console.print(m)


def write_compare(folder: Path, doc: dict, map_a: Path | None, map_b: Path | None) -> list[Path]:
    """compare.json, compare.xlsx (one sheet per table, RU/EN headers, frozen header row, filters, widths) and
    compare.html (self-contained: the headline, trade and centres, the two runs' map.png side by side)."""
    import pandas as pd

    from planner.summary import clean_json

    paths = [folder / "compare.json", folder / "compare.xlsx", folder / "compare.html"]
    paths[0].write_text(json.dumps(clean_json(doc), ensure_ascii=False, indent=2), encoding="utf-8")
    sheets = {
        "headline": pd.DataFrame(doc["headline"]).rename(columns={
            "key": "key / ключ", "label_en": "figure", "label_ru": "показатель", "a": "A", "b": "B",
            "change": "B − A"}),
        "trade_by_country": pd.DataFrame(doc["trade_by_country"]).assign(
            markets=lambda d: d["markets"].map(", ".join)).rename(columns=lambda c: (
                _trade_headers(c) if c.startswith(("exports", "imports", "markets")) else
                {"name_en": "country", "name_ru": "страна", "country": "code / код"}.get(c, c))),
        "trade_by_market": pd.DataFrame(doc["trade_by_market"]).rename(columns=_trade_headers),
        "trade_by_crossing": pd.DataFrame(doc["trade_by_crossing"], columns=[
            "crossing", "name_en", "name_ru", "markets", "exports_a_t", "exports_b_t", "exports_change_t",
            "imports_a_t", "imports_b_t", "imports_change_t"]).assign(
                markets=lambda d: d["markets"].map(", ".join)).rename(columns=lambda c: (
                    _trade_headers(c) if c.startswith(("exports", "imports", "markets")) else
                    {"crossing": "crossing id / код", "name_en": "crossing", "name_ru": "пункт пропуска"}.get(c, c))),
        "centres": pd.DataFrame(doc["centres"]).rename(columns={
            "id": "id", "name_ru": "ОРЦ", "name_en": "centre", "region": "region / субъект",
            "change": "change / изменение", "size_a": "size A", "size_b": "size B",
            "throughput_a_t": "throughput A, t/yr", "throughput_b_t": "throughput B, t/yr",
            "throughput_change_t": "throughput B − A, t/yr"}),
        "prices_losses": pd.concat([
            pd.DataFrame(doc["consumer_price_change_pct"]).assign(figure="consumer price change, %"),
            pd.DataFrame(doc["farm_price_change_pct"]).assign(figure="farm-gate price change, %"),
            pd.DataFrame(doc["loss_reduction_pct"]).assign(figure="loss reduction, %")], ignore_index=True).rename(
                columns={"commodity": "commodity / группа", "a": "A, %", "b": "B, %", "change": "B − A, % points",
                         "figure": "figure / показатель"}),
    }
    _write_xlsx(paths[1], sheets)
    paths[2].write_text(compare_html(doc, map_a, map_b), encoding="utf-8")
    return paths


def _trade_headers(col: str) -> str:
    """Units and both languages in a trade table's headers."""
    names = {"exports": "scope's sales / продажи", "imports": "scope's purchases / закупки"}
    for k, v in names.items():
        if col.startswith(k):
            side = col.removeprefix(k + "_").removesuffix("_t").replace("change", "B − A")
            return f"{v} {side.upper() if len(side) == 1 else side}, t/yr"
    return {"market": "market id / код рынка", "name_ru": "рынок", "name_en": "market", "country": "country / страна",
            "kind": "kind / тип", "markets": "markets / рынки",
            "reachable_a": "reachable in A / доступен в A",
            "reachable_b": "reachable in B / доступен в B"}.get(col, col)


def _write_xlsx(path: Path, sheets: dict) -> None:
    """A workbook with a bold frozen header row, filters and column widths fitted to the text."""
    import pandas as pd
    from openpyxl.styles import Font

    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        for name, frame in sheets.items():
            frame.to_excel(xl, sheet_name=name[:31], index=False)
            ws = xl.sheets[name[:31]]
            ws.freeze_panes = "A2"
            ws.auto_filter.ref = ws.dimensions
            for cell in ws[1]:
                cell.font = Font(bold=True)
            for col in ws.columns:
                width = max(len(str(c.value)) if c.value is not None else 0 for c in col)
                ws.column_dimensions[col[0].column_letter].width = min(max(10, width + 2), 60)
                for c in col[1:]:
                    if isinstance(c.value, float):
                        c.number_format = "#,##0.00" if abs(c.value) < 100 else "#,##0"


_HTML = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Сравнение / Comparison: {{ a.label }} — {{ b.label }}</title>
<style>
body{font-family:"DejaVu Sans",Arial,sans-serif;max-width:1100px;margin:1em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:3px 7px}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#eef}
.maps{display:flex;gap:1em}.maps figure{flex:1;margin:0}.maps img{width:100%}.neg{color:#a00}.pos{color:#070}
</style></head><body>
<h1>Сравнение расчётов / Comparison of runs</h1>
<p><b>A</b> = {{ a.label }} ({{ a.status }}); <b>B</b> = {{ b.label }} ({{ b.status }})</p>
<h2>Что теряет или получает каждая страна / What each outside country gains or loses, B against A</h2>
<ul>{% for head, lines in trade_lines %}<li><b>{{ head }}</b>{% if lines %}<ul>{% for l in lines %}<li>{{ l }}</li>
{% endfor %}</ul>{% endif %}</li>{% else %}<li>no change / без изменений</li>{% endfor %}</ul>
{% if crossing_lines %}<h2>Пункты пропуска / Border crossings, B against A</h2>
<ul>{% for l in crossing_lines %}<li>{{ l }}</li>{% endfor %}</ul>{% endif %}
<h2>Основные показатели / Headline figures</h2>
<table><tr><th>показатель</th><th>figure</th><th>A</th><th>B</th><th>B − A</th></tr>
{% for h in headline %}<tr><td>{{ h.label_ru }}</td><td>{{ h.label_en }}</td><td class="n">{{ fmt(h.a, h.digits) }}</td>
<td class="n">{{ fmt(h.b, h.digits) }}</td><td class="n">{{ fmt(h.change, h.digits, True) }}</td></tr>{% endfor %}
</table>
<div class="maps">
<figure>{% if map_a %}<img alt="map A" src="data:image/png;base64,{{ map_a }}">{% else %}<p>no map for A</p>{% endif %}
<figcaption>A: {{ a.label }}</figcaption></figure>
<figure>{% if map_b %}<img alt="map B" src="data:image/png;base64,{{ map_b }}">{% else %}<p>no map for B</p>{% endif %}
<figcaption>B: {{ b.label }}</figcaption></figure></div>
<h2>Внешние рынки / Outside markets, t/yr</h2>
<table><tr><th>рынок / market</th><th>sales A</th><th>sales B</th><th>Δ</th><th>purchases A</th><th>purchases B</th>
<th>Δ</th></tr>{% for m in markets %}<tr><td>{{ m.name_ru }} / {{ m.name_en }}</td>
<td class="n">{{ fmt(m.exports_a_t) }}</td><td class="n">{{ fmt(m.exports_b_t) }}</td>
<td class="n">{{ fmt(m.exports_change_t, 0, True) }}</td><td class="n">{{ fmt(m.imports_a_t) }}</td>
<td class="n">{{ fmt(m.imports_b_t) }}</td><td class="n">{{ fmt(m.imports_change_t, 0, True) }}</td></tr>{% endfor %}
</table>
<h2>ОРЦ / Centres (matched by id)</h2>
<table><tr><th>id</th><th>ОРЦ</th><th>centre</th><th>region</th><th>change</th><th>size A</th><th>size B</th>
<th>throughput A, t/yr</th><th>throughput B, t/yr</th></tr>{% for c in centres %}<tr><td>{{ c.id }}</td>
<td>{{ c.name_ru }}</td><td>{{ c.name_en }}</td><td>{{ c.region }}</td><td>{{ c.change }}</td>
<td>{{ c.size_a or "—" }}</td><td>{{ c.size_b or "—" }}</td><td class="n">{{ fmt(c.throughput_a_t) }}</td>
<td class="n">{{ fmt(c.throughput_b_t) }}</td></tr>{% endfor %}</table>
</body></html>
"""


def compare_html(doc: dict, map_a: Path | None, map_b: Path | None) -> str:
    """The comparison as one self-contained HTML page (Jinja2, autoescaped; maps embedded as base64)."""
    import base64

    from jinja2 import Environment

    from planner.compare import crossing_headlines, trade_headlines

    env = Environment(autoescape=True)
    enc = (lambda p: base64.b64encode(p.read_bytes()).decode("ascii") if p is not None else None)  # noqa: E731
    headline = [{**h, "digits": 1 if h["key"].endswith("pct") else 0} for h in doc["headline"]]
    return env.from_string(_HTML).render(a=doc["a"], b=doc["b"], trade_lines=trade_headlines(doc),
                                         crossing_lines=crossing_headlines(doc), headline=headline,
                                         markets=doc["trade_by_market"], centres=doc["centres"], map_a=enc(map_a),
                                         map_b=enc(map_b), fmt=_fmt)


def sweep(scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
          vary: Annotated[list[str] | None, typer.Option(help="PARAM=DIST, e.g. road_tariff_rub_per_tkm=uniform(3,5)")]
          = None,
          samples: Annotated[int, typer.Option(min=1, help="samples (per grid point)")] = 20,
          output: Annotated[Path | None, typer.Option("--output", "-o", help="folder for the sweep's files")] = None,
          scheduler: Annotated[str | None, typer.Option(help="address of a running Dask scheduler, e.g. "
                                                        "tcp://HOST:8786 (docs/cluster.md); default: a local "
                                                        "cluster")] = None,
          workers: Annotated[int, typer.Option(min=1, help="worker processes of the local cluster")] = 2,
          wait_workers: Annotated[float, typer.Option(min=0, help="with --scheduler: seconds to wait for the "
                                                       "first worker to join")] = 120.0,
          seed: Annotated[int, typer.Option(help="random seed")] = 20261125,
          force: Annotated[bool, typer.Option(help="overwrite an output folder")] = False,
          as_json: JsonOpt = False) -> None:
    """Monte Carlo or grid sweep on Dask: percentiles of cost, loss reduction, price change; how often each site
    opens. -o DIR writes samples.csv, robustness.csv, robustness.png, sweep.xlsx, summary.json, run.log."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from planner.outputs import OutputError, prepare_folder
    from planner.sweep import SweepError, aggregate, draw_samples, parse_vary, run_sweep, write_sweep

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
        out_dir = prepare_folder(output, force) if output is not None else None
    except (SweepError, OutputError) as exc:
        raise fail(f"{scenario}: {exc}") from None
    draws = draw_samples(spec, samples, seed)
    scenario_dict = sc.model_dump(exclude={"extends"})
    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("sweep", total=len(draws))
        try:
            runs = run_sweep(scenario_dict, draws, dict(sc.data), scheduler, workers,
                             on_done=lambda done, total: bar.update(task, completed=done),
                             log_path=None if out_dir is None else out_dir / "run.log", wait_workers_s=wait_workers)
        except SweepError as exc:
            raise fail(f"{scenario}: {exc}") from None
    agg, freq = aggregate(runs)
    agg["workers"] = runs.attrs.get("workers")
    with json_mode(as_json):
        t = Table(title=f"Sweep of {sc.name}: {len(runs)} samples on {agg['workers']} workers")
        for col in ("figure", "p5", "p50", "p95"):
            t.add_column(col, justify="left" if col == "figure" else "right")
        for name, p in agg["percentiles"].items():
            scale = 1e6 if name == "objective" else 1.0
            t.add_row(name + (", mln RUB/yr" if scale > 1 else ", %"),
                      *(f"{p[q] / scale:,.2f}" for q in ("p5", "p50", "p95")))
        console.print(t)
        r = Table(title="How often each site opens / Как часто открывается площадка")
        for col in ("id", "площадка", "site", "region", "share of samples"):
            r.add_column(col, justify="right" if col.startswith("share") else "left")
        for row in freq.itertuples():
            r.add_row(row.site_id, str(row.name_ru), str(row.name_en), str(row.region), f"{row.open_share:.0%}")
        console.print(r)
        if out_dir is not None:
            written = write_sweep(out_dir, runs, agg, freq)
            console.print(f"wrote {', '.join(p.name for p in written)} to {out_dir}")
    if as_json:
        emit_json({**agg, "sites": freq.to_dict("records")})
