"""``planner estimate``: loss reduction and price impact of a given set of centres, without a siting run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from planner.cli.common import (
    DEFAULT_SCENARIO,
    console,
    emit_json,
    fail,
    json_mode,
    load_data,
    scenario_or_fail,
    split_list,
)

estimate_app = typer.Typer(help="Loss reduction and price impact of a set of centres (flows routed at fixed sites).",
                           no_args_is_help=True)

ScenarioArg = Annotated[Path, typer.Argument(help="scenario YAML file")]
CentresOpt = Annotated[str | None, typer.Option(help="comma-separated sites: ids or Russian/English names, e.g. "
                                                    "ru_sta_orc,Пятигорск (default: the existing centres)")]
BaselineOpt = Annotated[str, typer.Option(help="traditional (no centres) or existing (existing centres only)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print only the estimate, as one JSON document, on standard "
                                                    "output (tables go to standard error)")]


def _estimate(kind: str, scenario: Path, centres: str | None, baseline: str, as_json: bool) -> None:
    from geo.network import NetworkError
    from optimization.problem import ProblemError
    from planner.candidates import SiteNameError, candidate_sites, centre_towns, match_sites
    from planner.economics import estimate_loss_reduction, estimate_price_impact
    from planner.economics.equilibrium import EquilibriumError
    from planner.network import scenario_network
    from planner.scenario import ScenarioError

    sc = scenario_or_fail(scenario)
    ds = load_data(dict(sc.data))
    fn, show = ((estimate_loss_reduction, print_losses) if kind == "losses"
                else (estimate_price_impact, print_prices))
    sites = split_list(centres)
    try:
        if sites is not None:
            cands = candidate_sites(sc, ds, scenario_network(sc, ds))
            sites = match_sites(cands, sites, "--centres", centre_towns(ds))
        rep = fn(sc, ds, sites, baseline)
    except SiteNameError as exc:
        raise fail(str(exc)) from None
    except (ScenarioError, NetworkError, ProblemError, EquilibriumError, ValueError) as exc:
        raise fail(f"{scenario}: {exc}") from None
    with json_mode(as_json):
        show(rep.as_dict())
        print_trade(rep.as_dict())
    if as_json:
        emit_json(rep.as_dict())


@estimate_app.command("losses")
def estimate_losses(scenario: ScenarioArg = DEFAULT_SCENARIO, centres: CentresOpt = None,
                    baseline: BaselineOpt = "traditional", as_json: JsonOpt = False) -> None:
    """Tonnes lost by commodity and stage with the centres, against the baseline."""
    _estimate("losses", scenario, centres, baseline, as_json)


@estimate_app.command("prices")
def estimate_prices(scenario: ScenarioArg = DEFAULT_SCENARIO, centres: CentresOpt = None,
                    baseline: BaselineOpt = "traditional", as_json: JsonOpt = False) -> None:
    """Equilibrium consumer and farm-gate prices with the centres, against the baseline."""
    _estimate("prices", scenario, centres, baseline, as_json)


def print_losses(d: dict) -> None:
    """Loss summary table (thousand tonnes a year, million RUB)."""
    t = Table(title=f"Losses vs the {d['baseline']} baseline / Потери, тыс. т в год")
    for col in ("commodity", "baseline", "network", "saved", "reduction", "saved, mln RUB"):
        t.add_column(col, justify="left" if col == "commodity" else "right")
    for r in d["summary"]:
        t.add_row(r["commodity"], f"{r['baseline_t'] / 1000:,.1f}", f"{r['network_t'] / 1000:,.1f}",
                  f"{r['saved_t'] / 1000:,.1f}", f"{r['reduction_pct']:.1f}%", f"{r['saved_value_rub'] / 1e6:,.0f}")
    console.print(t)


def print_prices(d: dict) -> None:
    """Price summary table (% change, million RUB)."""
    t = Table(title="Price impact (spatial equilibrium) / Влияние на цены")
    for col in ("commodity", "consumer price", "farm-gate price", "consumer surplus, mln", "producer surplus, mln"):
        t.add_column(col, justify="left" if col == "commodity" else "right")
    for r in d["summary"]:
        t.add_row(r["commodity"], f"{r['consumer_price_change_pct']:+.1f}%", f"{r['farm_price_change_pct']:+.1f}%",
                  f"{r['consumer_surplus_change_rub'] / 1e6:+,.0f}", f"{r['producer_surplus_change_rub'] / 1e6:+,.0f}")
    console.print(t)


def print_trade(s: dict) -> None:
    """Imports, exports and unmet demand by group, trade by outside market and by border crossing or port
    (thousand tonnes a year), and the cause of any unmet demand (its code and message): the one rendering of a
    run's summary and of an estimate's answer, which carry the same keys."""
    groups = list(s.get("unmet_t", {}))
    if not groups:
        return
    t = Table(title="Trade with outside markets and unmet demand, thousand tonnes a year / "
                    "Торговля с внешними рынками и неудовлетворённый спрос, тыс. т в год")
    t.add_column("market / рынок")
    for k in groups:
        t.add_column(f"{k}: sold / bought", justify="right")
    names = {m["id"]: f"{m['name_ru']} / {m['name_en']}" for m in s.get("outside_markets", [])}
    for mid in [*names, *sorted({*s.get("exports_by_exit_t", {}), *s.get("imports_by_exit_t", {})} - set(names))]:
        sold = s.get("exports_by_exit_t", {}).get(mid, {})
        bought = s.get("imports_by_exit_t", {}).get(mid, {})
        if sum(sold.values()) + sum(bought.values()) < 0.5:
            continue
        t.add_row(names.get(mid, mid),
                  *(f"{sold.get(k, 0) / 1000:,.1f} / {bought.get(k, 0) / 1000:,.1f}" for k in groups))
    t.add_row("[bold]total / всего[/bold]",
              *(f"{s['exports_t'].get(k, 0) / 1000:,.1f} / {s['imports_t'].get(k, 0) / 1000:,.1f}" for k in groups))
    t.add_row("unmet / не удовлетворено", *(f"{s['unmet_t'][k] / 1000:,.1f}" for k in groups))
    console.print(t)
    points = s.get("trade_points") or []
    if points:
        x = Table(title="Trade by border crossing and port, thousand tonnes a year / "
                        "Торговля по пунктам пропуска и портам, тыс. т в год")
        x.add_column("crossing or port / пункт пропуска или порт")
        x.add_column("kind")
        for k in groups:
            x.add_column(f"{k}: out / in", justify="right")
        out, inn = s.get("exports_by_crossing_t", {}), s.get("imports_by_crossing_t", {})
        for p in points:
            o, i = out.get(p["id"], {}), inn.get(p["id"], {})
            x.add_row(f"{p['name_ru']} / {p['name_en']}", p["kind"],
                      *(f"{o.get(k, 0) / 1000:,.1f} / {i.get(k, 0) / 1000:,.1f}" for k in groups))
        console.print(x)
    for cause in s.get("unmet_causes", []):
        console.print(f"[yellow]unmet ({cause['cause']}):[/yellow] {cause['message']}")
