"""The ``planner`` command line: dataset checks and summaries, scenario validation, candidates and runs.

Every command exits 0 on success and 1 with a plain message (file, row, field) on bad input; no tracebacks.
Only typer, rich and the standard library load at start (``planner --help`` answers in a fraction of a second,
``benchmarks/cli_startup.py``); each command imports the domain modules (pandas, Pyomo, the geo stack) it needs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from planner.cli.api import keys_app, serve
from planner.cli.common import (
    DEFAULT_SCENARIO,
    console,
    emit_json,
    err_console,
    fail,
    json_mode,
    load_data,
    scenario_or_fail,
)
from planner.cli.estimate import estimate_app, print_losses, print_prices, print_trade
from planner.cli.geo import geo_app
from planner.cli.orlib import solve_orlib
from planner.cli.runs import compare, sweep

if TYPE_CHECKING:
    import pandas as pd

    from planner.data.loader import Dataset

app = typer.Typer(help="Agrologistics network planner: wholesale distribution centres (ОРЦ) for farm produce.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="The dataset: validate it (or your replacement tables) and summarise it.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(geo_app, name="geo")
app.command("solve-orlib")(solve_orlib)
app.add_typer(estimate_app, name="estimate")
app.command("compare")(compare)
app.command("sweep")(sweep)
app.add_typer(keys_app, name="keys")
app.command("serve")(serve)

TableFile = Annotated[Path | None, typer.Option(help="CSV/GeoJSON replacing the embedded table",
                                                 dir_okay=False)]


@data_app.command("check")
def data_check(
    regions: TableFile = None, cities: TableFile = None, production: TableFile = None,
    consumption_norms: TableFile = None, agri_shares: TableFile = None, existing_centres: TableFile = None,
    border_crossings: TableFile = None, countries: TableFile = None, loss_rates: TableFile = None,
    corridors: TableFile = None,
) -> None:
    """Validate the embedded tables, or your replacements for any of them; exit 0 if all is well, else 1."""
    ds = load_data(locals())  # the options are named after the tables they replace
    t = Table(title="Dataset check / Проверка данных")
    t.add_column("table / таблица")
    t.add_column("rows", justify="right")
    t.add_column("file")
    for name, frame in ds.tables.items():
        t.add_row(name, str(len(frame)), ds.files[name])
    console.print(t)
    console.print("[green]OK[/green]: every table matches its schema and every code joins.")


@data_app.command("info")
def data_info(
    regions: TableFile = None, cities: TableFile = None, production: TableFile = None,
    consumption_norms: TableFile = None, agri_shares: TableFile = None, existing_centres: TableFile = None,
    border_crossings: TableFile = None, countries: TableFile = None, loss_rates: TableFile = None,
    corridors: TableFile = None,
) -> None:
    """Rows per table, regions per federal district, and NCFD production by commodity with sources."""
    ds = load_data(locals())  # the options are named after the tables they replace
    print_dataset_summary(ds)


def print_dataset_summary(ds: Dataset) -> None:
    """Print the dataset overview tables (rows, federal districts, NCFD production, sources)."""
    import pandas as pd

    from planner.settings import COMMODITY_BY_KEY, FEDERAL_DISTRICTS, NCFD_REGIONS

    t = Table(title="Tables / Таблицы")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, frame in ds.tables.items():
        t.add_row(name, str(len(frame)))
    console.print(t)

    reg = ds.regions
    fd = Table(title="Regions per federal district / Субъекты по федеральным округам")
    fd.add_column("code")
    fd.add_column("федеральный округ")
    fd.add_column("federal district")
    fd.add_column("regions", justify="right")
    fd.add_column("population, mln", justify="right")
    for d in FEDERAL_DISTRICTS:
        sub = reg[reg["federal_district"] == d.code]
        fd.add_row(d.code, d.name_ru, d.name_en, str(len(sub)), f"{sub['population'].sum() / 1e6:.2f}")
    console.print(fd)

    ncfd = reg[reg["region_id"].isin(NCFD_REGIONS)].sort_values("region_id")
    prod = ds.production[(ds.production["area_level"] == "region") & ds.production["area_id"].isin(NCFD_REGIONS)]
    pivot = prod.pivot_table(index="area_id", columns="commodity", values="quantity_kt", aggfunc="sum")
    approx = prod[prod["approximate"]].groupby("area_id")["commodity"].apply(set)
    commodities = [c for c in COMMODITY_BY_KEY if c in pivot.columns]
    pt = Table(title="North Caucasus FD production, thousand tonnes (* = approximate) / "
                     "Производство в СКФО, тыс. т (* — оценка)")
    pt.add_column("region")
    pt.add_column("субъект")
    for c in commodities:
        pt.add_column(f"{COMMODITY_BY_KEY[c].name_en}", justify="right")
    for _, r in ncfd.iterrows():
        cells = []
        for c in commodities:
            v = pivot.at[r["region_id"], c] if r["region_id"] in pivot.index else float("nan")
            mark = "*" if c in approx.get(r["region_id"], set()) else ""
            cells.append("—" if pd.isna(v) else f"{v:,.0f}{mark}")
        pt.add_row(f"{r['region_id']} {r['name_en']}", r["name_ru"], *cells)
    pt.add_row("NCFD total", "итого СКФО", *[f"{pivot[c].sum():,.0f}" for c in commodities], style="bold")
    console.print(pt)
    years = sorted(set(prod["year"]))
    console.print(f"Production year(s): {years}. Sources: " + "; ".join(sorted(_short_sources(prod))))

    shares = ds.agri_shares
    st = Table(title="Agriculture's share, % (LQ vs Russia) / Доля сельского хозяйства, % (коэфф. локализации)")
    for col in ("region", "employment %", "LQ", "GVA %", "LQ", "approx."):
        st.add_column(col, justify="right" if col != "region" else "left")
    for _, r in shares[shares["region_id"].isin(NCFD_REGIONS | {"RU"})].iterrows():
        st.add_row(r["region_id"], _fmt(r["employment_share_pct"]), _fmt(r["employment_lq"], 2),
                   _fmt(r["grp_share_pct"]), _fmt(r["grp_lq"], 2), "yes" if r["approximate"] else "no")
    console.print(st)


def _fmt(v, digits: int = 1) -> str:
    import pandas as pd

    return "—" if v is None or pd.isna(v) else f"{v:.{digits}f}"


def _short_sources(prod: pd.DataFrame) -> set[str]:
    return {s.split(";")[0].split("(")[0].strip()[:70] for s in prod["source"]}


@app.command("schema")
def schema(output: Annotated[Path | None, typer.Option("--output", "-o", help="write to this file")] = None) -> None:
    """The scenario file's JSON Schema (docs/scenario-schema.json is this output)."""
    from planner.scenario import scenario_json_schema

    text = json.dumps(scenario_json_schema(), ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")


@app.command("validate")
def validate(scenario: Annotated[Path, typer.Argument(help="scenario YAML file")]) -> None:
    """Validate a scenario: schema, parameters, and that its regions and tables exist (no solve)."""
    from geo.network import NetworkError
    from planner.candidates import candidate_sites
    from planner.network import scenario_network
    from planner.scenario import ScenarioError

    sc = scenario_or_fail(scenario)
    ds = load_data(dict(sc.data))
    try:
        ids = sc.region_ids(ds)
        G = scenario_network(sc, ds)
        candidate_sites(sc, ds, G)
    except (ScenarioError, NetworkError, ValueError) as exc:
        raise fail(f"{scenario}: {exc}") from None
    console.print(f"[green]OK[/green]: scenario '{sc.name}' is valid; {len(ids)} regions in scope.")


@app.command("candidates")
def candidates(scenario: Annotated[Path, typer.Argument(help="scenario YAML file")] = DEFAULT_SCENARIO,
               as_json: Annotated[bool, typer.Option("--json", help="print the list as one JSON document")] = False,
               ) -> None:
    """The scenario's candidate sites: id (the same in every scenario), Russian and English names, region, kind,
    corridors. ``--centres`` and other site options take any of the id or the names."""
    from geo.network import NetworkError
    from planner.candidates import candidate_sites
    from planner.network import scenario_network
    from planner.scenario import ScenarioError

    sc = scenario_or_fail(scenario)
    ds = load_data(dict(sc.data))
    try:
        cands = candidate_sites(sc, ds, scenario_network(sc, ds))
    except (ScenarioError, NetworkError, ValueError) as exc:
        raise fail(f"{scenario}: {exc}") from None
    region_name = ds.regions.set_index("region_id")[["name_ru", "name_en"]]
    rows = []
    for c in cands.itertuples():
        reg = region_name.loc[c.region_id] if c.region_id in region_name.index else None
        rows.append({"id": c.candidate_id, "name_ru": c.name_ru, "name_en": c.name_en, "region": c.region_id,
                     "region_ru": None if reg is None else reg["name_ru"],
                     "region_en": None if reg is None else reg["name_en"], "country": c.country,
                     "kind": c.kind, "existing": bool(c.existing),
                     "corridors": [k for k in str(c.corridors).split(",") if k],
                     "lat": round(float(c.lat), 5), "lon": round(float(c.lon), 5)})
    with json_mode(as_json):
        t = Table(title=f"Candidate sites of {sc.name} / Площадки-кандидаты ({len(rows)})")
        for col in ("id", "площадка", "site", "region / субъект", "kind / тип", "corridors / коридоры"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(r["id"], r["name_ru"], r["name_en"], f"{r['region']} {r['region_ru'] or ''}",
                      ("existing / действующий" if r["existing"] else r["kind"]), ", ".join(r["corridors"]))
        console.print(t)
    if as_json:
        emit_json({"scenario": sc.name, "candidates": rows})


DEADLINE_EXIT = 3
"""Exit code of ``planner run`` when the run's deadline passed (1: bad input; 2: no solution)."""
RUN_FILES = (("report", ("report.html", "report.pdf")), ("map", ("map.png", "map.svg", "map.pdf")),
             ("workbook", ("results.xlsx",)), ("GIS layers", ("network.gpkg", "network.geojson")),
             ("summary", ("summary.json",)), ("solver log", ("run.log",)))
"""What ``planner run -o DIR`` points the user to at the end, by the names the run folder may hold."""


@app.command("run")
def run(scenario: Annotated[Path, typer.Argument(help="scenario YAML file")] = DEFAULT_SCENARIO,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="folder for the run's files (report, "
                                                    "map, workbook, CSV, GIS layers, summary.json, run.log)")] = None,
        force: Annotated[bool, typer.Option(help="overwrite an output folder that holds a run")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print only the summary, as one JSON document, on "
                                                             "standard output (tables go to standard error)")] = False,
        ) -> None:
    """Run a scenario: supply-demand balance, siting and flows, losses, prices, investor's view; write outputs."""
    from geo.network import NetworkError
    from optimization.problem import ProblemError
    from planner import deadline
    from planner.balance import regional_balance
    from planner.economics.equilibrium import EquilibriumError
    from planner.outputs import OutputError, prepare_folder
    from planner.scenario import ScenarioError

    sc = scenario_or_fail(scenario)
    try:  # one deadline for every stage, from here: the solve's time limit plus the allowance (as the API's)
        run_deadline = deadline.run_deadline(sc.solver.time_limit_s)
    except ValueError as exc:
        raise fail(str(exc)) from None
    ds = load_data(dict(sc.data))
    try:
        ids = sc.region_ids(ds)
        params = sc.parameter_set(ds)
        if output is not None:
            prepare_folder(output, force)
    except (ScenarioError, OutputError, ValueError) as exc:
        raise fail(f"{scenario}: {exc}") from None
    with json_mode(as_json), _RunLog(output / "run.log" if output is not None else None) as log:
        console.print(f"[bold]Scenario[/bold] {sc.name}: {sc.title_en or ''} / {sc.title_ru or ''}")
        print_balance(regional_balance(ds, ids, list(sc.commodities), params, sc.demand_basis), sc.demand_basis)
        try:
            with deadline.active(run_deadline), SolveProgress(sc.solver.time_limit_s) as progress:
                from planner.execute import execute_scenario

                def on_log(line: str) -> None:
                    log.write(line)
                    progress.log(line)

                out = execute_scenario(sc, ds, on_log=on_log, on_progress=progress.update,
                                       output=output)
                written: list[Path] = []
                if output is not None:
                    from planner.outputs import write_outputs

                    progress.phase("writing the report, map and tables")
                    with deadline.stage("outputs"):
                        written = write_outputs(output, out.planned, out.result, out.summary, ds, ids,
                                                out.losses, out.prices, out.investor, force=True)
        except deadline.DeadlineExceeded as exc:
            err_console.print(f"[bold red]error:[/bold red] {scenario}: {exc}", highlight=False)
            raise typer.Exit(code=DEADLINE_EXIT) from None
        except (ScenarioError, NetworkError, ProblemError, EquilibriumError, OutputError, ValueError) as exc:
            raise fail(f"{scenario}: {exc}") from None
        print_summary(out.summary)
        if output is not None:
            print_run_files(output, written)
        else:
            console.print("No files written: add [bold]-o DIR[/bold] for the report, map, workbook, tables and GIS "
                          "layers / файлы не записаны: укажите -o ПАПКА")
    if as_json:
        emit_json(out.summary)
    if out.result.objective is None:
        raise typer.Exit(code=2)


def print_run_files(folder: Path, written: list[Path]) -> None:
    """Where the run's report, map, workbook, GIS layers, summary and log are (the files that exist)."""
    console.print(f"\n[bold]Wrote {len(written) + 1} files to {folder}[/bold] / Файлы расчёта:")
    for label, names in RUN_FILES:
        found = [folder / n for n in names if (folder / n).exists()]
        if found:
            console.print(f"  {label:<11} " + ", ".join(str(f) for f in found))


class _RunLog:
    """The run's log file (``run.log`` in the output folder): the HiGHS banner, HiGHS's log lines, scaling
    warnings. Without an output folder the lines are dropped (the console shows the progress line instead)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.file = None

    def __enter__(self) -> _RunLog:
        if self.path is not None:
            self.file = self.path.open("w", encoding="utf-8")
            self.file.write(f"# planner run, {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n")
        from optimization.solve import capture_banner

        capture_banner(self.write)
        return self

    def write(self, line: str) -> None:
        """Append one line (HiGHS's log callback calls this)."""
        if self.file is not None:
            self.file.write(line.rstrip("\n") + "\n")

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def progress_text(elapsed_s: float, time_limit_s: float | None, objective: float | None, bound: float | None) -> str:
    """The live line of a solve: elapsed and limit (s), incumbent and bound (million RUB a year), gap (%)."""
    from optimization.solve import relative_gap

    limit = f" of {time_limit_s:,.0f} s" if time_limit_s else ""
    parts = [f"solving {elapsed_s:,.0f} s{limit}"]
    ok = lambda v: v is not None and abs(v) < 1e30  # noqa: E731 - HiGHS reports ±inf before it has one
    parts.append(f"incumbent {objective / 1e6:,.1f} mln RUB/yr" if ok(objective) else "incumbent —")
    parts.append(f"bound {bound / 1e6:,.1f}" if ok(bound) else "bound —")
    gap = relative_gap(objective, bound) if ok(objective) and ok(bound) else None
    parts.append(f"gap {100 * gap:.2f}%" if gap is not None else "gap —")
    return " · ".join(parts)


class SolveProgress:
    """A live line on standard error while a run builds, solves and prices: the phase, and while HiGHS solves the
    seconds spent against the time limit, the incumbent, the bound and the gap (%) from the solver's callbacks
    (never raw HiGHS lines, which go to ``run.log``). The solve's start and end are read from HiGHS's log lines."""

    def __init__(self, time_limit_s: float | None) -> None:
        from rich.progress import Progress, ProgressColumn, SpinnerColumn, TimeElapsedColumn
        from rich.text import Text

        owner = self

        class _Line(ProgressColumn):
            def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
                return Text(owner.text())

        self.limit = time_limit_s
        self.bar = Progress(SpinnerColumn(), _Line(), TimeElapsedColumn(), console=err_console, transient=True)
        self.task = self.bar.add_task("run", total=None)
        self.phase_text = "building the model (network, candidates, trips) ..."
        self.solve_start: float | None = None
        self.solve_end: float | None = None
        self.last: dict = {}

    def __enter__(self) -> SolveProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def text(self) -> str:
        """The line as it stands now (rich redraws it several times a second)."""
        if self.solve_start is None or self.solve_end is not None:
            return self.phase_text
        return progress_text(time.perf_counter() - self.solve_start, self.limit, self.last.get("objective"),
                             self.last.get("bound"))

    def phase(self, text: str) -> None:
        """Show a new phase (``writing the report``)."""
        self.phase_text = text

    def log(self, line: str) -> None:
        """A HiGHS log line: marks the solve's start (its first line) and end (``Solving report``)."""
        if self.solve_start is None:
            self.solve_start = time.perf_counter()
        elif "Solving report" in line and self.solve_end is None:
            self.solve_end = time.perf_counter()
            self.phase_text = "losses, prices, net social benefit, investor's view ..."

    def update(self, info: dict) -> None:
        """The solver's progress callback: ``{"objective", "bound", "gap"}`` (RUB a year)."""
        if self.solve_start is None:
            self.solve_start = time.perf_counter()
        if self.solve_end is None:
            self.last = info


def print_balance(bal: pd.DataFrame, basis: str = "actual") -> None:
    """The scope's production, demand and surplus per commodity group (thousand tonnes a year), demand on
    ``basis`` (the scenario's ``demand_basis``)."""
    from planner.balance import DEMAND_BASIS_TEXT
    from planner.settings import COMMODITY_BY_KEY

    t = Table(title="Supply-demand balance in scope, thousand tonnes a year (* = approximate input) / "
                    "Баланс производства и потребления, тыс. т в год")
    for col in ("commodity", "production", "demand", "surplus (+) / deficit (−)"):
        t.add_column(col, justify="right" if col != "commodity" else "left")
    for c, g in (bal.groupby("commodity", sort=False) if not bal.empty else []):
        mark = "*" if g["approximate"].any() else ""
        dmark = "*" if "demand_approximate" in g and g["demand_approximate"].any() else ""
        t.add_row(f"{COMMODITY_BY_KEY[c].name_en} / {COMMODITY_BY_KEY[c].name_ru}",
                  f"{g['production_kt'].sum():,.0f}{mark}", f"{g['demand_kt'].sum():,.0f}{dmark}",
                  f"{g['surplus_kt'].sum():+,.0f}")
    console.print(t)
    console.print(DEMAND_BASIS_TEXT[basis])


def print_summary(s: dict) -> None:
    """Status, opened centres, cost components, flows by channel, losses and shortfalls of a run."""
    gap = f"{s['gap']:.2%}" if s.get("gap") is not None else "—"
    obj = "—" if s.get("objective") is None else f"{s['objective']:,.0f} RUB/yr"
    console.print(f"[bold]{s['status']}[/bold]: {s['message']} (objective {obj}, "
                  f"gap {gap}; build {s['build_seconds']:.1f} s, solve {s['solve_seconds']:.1f} s)")
    if "centres" not in s:
        return
    t = Table(title="Centres / Оптово-распределительные центры")
    for col in ("id", "ОРЦ", "centre", "region", "existing", "type", "size", "throughput, kt", "utilisation"):
        t.add_column(col)
    for c in s["centres"]:
        kind = c.get("store_type", "—")
        t.add_row(c["id"], c["name_ru"], c["name_en"], c["region"], "yes" if c["existing"] else "new", kind,
                  c["size"], f"{c['throughput_t'] / 1000:,.1f}", f"{c['utilisation']:.0%}")
    types = {c["store_type"]: (c["store_type_ru"], c["store_type_en"]) for c in s["centres"] if c.get("store_type")}
    t.caption = "; ".join(f"{k}: {ru} / {en}" for k, (ru, en) in sorted(types.items()))
    console.print(t)
    k = Table(title="Annual cost / Годовые затраты, млн руб.")
    k.add_column("component")
    k.add_column("million RUB", justify="right")
    for name, v in s["cost_breakdown"].items():
        k.add_row(name, f"{v / 1e6:,.0f}")
    console.print(k)
    f = Table(title="Shipped and lost, thousand tonnes a year / Отгружено и потеряно, тыс. т")
    for col in ("commodity", "through centres", "traditional", "lost"):
        f.add_column(col, justify="right" if col != "commodity" else "left")
    for c in s["loss_tonnes"]:
        f.add_row(c, f"{s['shipped_t'].get(f'through centres/{c}', 0) / 1000:,.1f}",
                  f"{s['shipped_t'].get(f'traditional/{c}', 0) / 1000:,.1f}", f"{s['loss_tonnes'][c] / 1000:,.1f}")
    console.print(f)
    print_trade(s)
    for note in s.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {note}")
    if "losses" in s:
        print_losses(s["losses"])
        print_prices(s["prices"])
        soc = s.get("social")
        if soc:
            console.print(f"Net social benefit of the new centres against today's network / Чистая общественная "
                          f"выгода: {soc['net_social_benefit_mrub']:+,.0f} mln RUB a year (surplus "
                          f"{soc['surplus_change_mrub']:+,.0f}, centres' margin "
                          f"{soc['centre_margin_change_mrub']:+,.0f}, seasonal storage "
                          f"{soc['seasonal_value_change_mrub']:+,.0f}, "
                          f"duties {soc['import_duty_change_mrub']:+,.0f}, capital and opex "
                          f"{-soc['annualised_capital_mrub'] - soc['fixed_opex_change_mrub']:+,.0f}); NPV at "
                          f"{soc['social_discount_rate_pct']:g}% {soc['social_npv_mrub']:+,.0f} mln RUB.")
        tot = s["investor"]["totals"]
        console.print(f"Investor view (new centres): capital {tot['capital_new_rub'] / 1e6:,.0f} mln RUB, public "
                      f"support {tot['public_support_pct']:.0f}%, NPV at {tot['discount_rate_pct']:g}% "
                      f"{tot['npv_new_rub'] / 1e6:+,.0f} mln RUB"
                      + (f" ({tot['npv_new_with_loan_rub'] / 1e6:+,.0f} with the preferential loan, which saves "
                         f"{tot['loan_interest_saving_new_rub'] / 1e6:,.0f} mln RUB of interest)"
                         if tot.get("npv_new_with_loan_rub") is not None else "")
                      + "; network operating result "
                      f"{tot['operating_result_rub'] / 1e6:+,.0f} mln RUB a year.")


def main() -> None:  # pragma: no cover
    """Entry point for ``python -m planner.cli`` (see ``planner/cli/__main__.py``)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
