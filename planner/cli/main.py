"""The ``planner`` command line: dataset checks and summaries, scenario validation and runs.

Every command exits 0 on success and 1 with a plain message (file, row, field) on bad input; no tracebacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from geo.network import NetworkError
from optimization.problem import ProblemError
from planner.balance import DEMAND_BASIS_TEXT, regional_balance
from planner.candidates import candidate_sites
from planner.cli.api import keys_app, serve
from planner.cli.common import DEFAULT_SCENARIO, console, fail, load_data, scenario_or_fail
from planner.cli.estimate import estimate_app, print_losses, print_prices
from planner.cli.geo import geo_app
from planner.cli.orlib import solve_orlib
from planner.cli.runs import compare, sweep
from planner.data.loader import Dataset
from planner.economics.equilibrium import EquilibriumError
from planner.execute import execute_scenario
from planner.network import scenario_network
from planner.outputs import OutputError, prepare_folder, write_outputs
from planner.scenario import ScenarioError
from planner.settings import COMMODITY_BY_KEY, FEDERAL_DISTRICTS, NCFD_REGIONS
from planner.summary import clean_json

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
    sc = scenario_or_fail(scenario)
    ds = load_data(dict(sc.data))
    try:
        ids = sc.region_ids(ds)
        G = scenario_network(sc, ds)
        candidate_sites(sc, ds, G)
    except (ScenarioError, NetworkError, ValueError) as exc:
        raise fail(f"{scenario}: {exc}") from None
    console.print(f"[green]OK[/green]: scenario '{sc.name}' is valid; {len(ids)} regions in scope.")


@app.command("run")
def run(scenario: Annotated[Path, typer.Argument(help="scenario YAML file")] = DEFAULT_SCENARIO,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="folder for the run's files")] = None,
        force: Annotated[bool, typer.Option(help="overwrite an output folder that holds a run")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON line at the end")] = False,
        ) -> None:
    """Run a scenario: supply-demand balance, siting and flows, losses, prices, investor's view; write outputs."""
    sc = scenario_or_fail(scenario)
    ds = load_data(dict(sc.data))
    try:
        ids = sc.region_ids(ds)
        params = sc.parameter_set(ds)
        if output is not None:
            prepare_folder(output, force)
    except (ScenarioError, OutputError, ValueError) as exc:
        raise fail(f"{scenario}: {exc}") from None
    console.print(f"[bold]Scenario[/bold] {sc.name}: {sc.title_en or ''} / {sc.title_ru or ''}")
    print_balance(regional_balance(ds, ids, list(sc.commodities), params, sc.demand_basis), sc.demand_basis)
    try:
        with console.status("building the model ...") as status:
            def on_log(line: str) -> None:
                status.update(f"solving: {line.strip()[:110]}")

            out = execute_scenario(sc, ds, on_log=on_log, output=output)
        if output is not None:
            written = write_outputs(output, out.planned, out.result, out.summary, ds, ids, out.losses, out.prices,
                                    out.investor, force=True)
    except (ScenarioError, NetworkError, ProblemError, EquilibriumError, OutputError, ValueError) as exc:
        raise fail(f"{scenario}: {exc}") from None
    print_summary(out.summary)
    if output is not None:
        console.print(f"wrote {len(written)} files to {output}")
    if as_json:
        typer.echo(json.dumps(clean_json(json.loads(json.dumps(out.summary, default=float))), ensure_ascii=False))
    if out.result.objective is None:
        raise typer.Exit(code=2)


def print_balance(bal: pd.DataFrame, basis: str = "actual") -> None:
    """The scope's production, demand and surplus per commodity group (thousand tonnes a year), demand on
    ``basis`` (the scenario's ``demand_basis``)."""
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
    for col in ("id", "ОРЦ", "centre", "region", "existing", "size", "throughput, kt", "utilisation"):
        t.add_column(col)
    for c in s["centres"]:
        t.add_row(c["id"], c["name_ru"], c["name_en"], c["region"], "yes" if c["existing"] else "new", c["size"],
                  f"{c['throughput_t'] / 1000:,.1f}", f"{c['utilisation']:.0%}")
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
    for cause in s.get("unmet_causes", []):
        console.print(f"[yellow]unmet ({cause['cause']}):[/yellow] {cause['message']}")
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
                      f"{tot['npv_new_rub'] / 1e6:+,.0f} mln RUB; network operating result "
                      f"{tot['operating_result_rub'] / 1e6:+,.0f} mln RUB a year.")


def print_trade(s: dict) -> None:
    """Imports, exports and unmet demand by group, and trade by outside market (thousand tonnes a year)."""
    groups = list(s.get("unmet_t", {}))
    if not groups:
        return
    t = Table(title="Trade with outside markets and unmet demand, thousand tonnes a year / "
                    "Торговля с внешними рынками и неудовлетворённый спрос, тыс. т в год")
    t.add_column("market / рынок")
    for k in groups:
        t.add_column(f"{k}: sold / bought", justify="right")
    names = {m["id"]: f"{m['name_ru']} / {m['name_en']}" for m in s.get("outside_markets", [])}
    for mid in names:
        sold = s["exports_by_exit_t"].get(mid, {})
        bought = s["imports_by_exit_t"].get(mid, {})
        if not sold and not bought:
            continue
        t.add_row(names[mid], *(f"{sold.get(k, 0) / 1000:,.1f} / {bought.get(k, 0) / 1000:,.1f}" for k in groups))
    t.add_row("[bold]total / всего[/bold]",
              *(f"{s['exports_t'][k] / 1000:,.1f} / {s['imports_t'][k] / 1000:,.1f}" for k in groups))
    t.add_row("unmet / не удовлетворено", *(f"{s['unmet_t'][k] / 1000:,.1f}" for k in groups))
    console.print(t)


def main() -> None:  # pragma: no cover
    """Entry point for ``python -m planner.cli`` (see ``planner/cli/__main__.py``)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
