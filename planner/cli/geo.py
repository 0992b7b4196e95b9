"""``planner geo``: the corridor network — summary, GeoJSON export, and routes between towns."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from planner.cli.common import DEFAULT_SCENARIO, console, emit_json, fail, load_data, scenario_or_fail
from planner.settings import COMMODITY_KEYS

geo_app = typer.Typer(help="The road and rail corridor network: summary, export, routes.", no_args_is_help=True)

ScenarioOpt = Annotated[Path, typer.Option("--scenario", "-s", help="scenario whose parameters and borders apply")]


def _network(scenario_path: Path):
    from geo.network import NetworkError
    from planner.network import scenario_network
    from planner.scenario import ScenarioError

    sc = scenario_or_fail(scenario_path)
    ds = load_data(dict(sc.data))
    try:
        return sc, ds, scenario_network(sc, ds)
    except (NetworkError, ScenarioError, ValueError) as exc:
        raise fail(str(exc)) from None


@geo_app.command("info")
def geo_info(scenario: ScenarioOpt = DEFAULT_SCENARIO) -> None:
    """Nodes, edges by mode, length sources and border crossings of the network."""
    from geo.snap import snap_frame

    sc, ds, G = _network(scenario)
    modes: dict[str, list[int]] = {}
    for _, _, d in G.edges(data=True):
        m = modes.setdefault(d["mode"], [0, 0, 0])
        m[0] += 1
        m[1] += d.get("length_source") == "published"
        m[2] += d.get("length", 0)
    t = Table(title=f"Corridor network / Сеть коридоров ({G.number_of_nodes()} nodes)")
    for col in ("mode", "edges (directed)", "published km", "km (one way)"):
        t.add_column(col, justify="right" if col != "mode" else "left")
    for mode, (n, pub, metres) in sorted(modes.items()):
        t.add_row(mode, str(n), f"{pub / max(n, 1):.0%}", f"{metres / 2000:,.0f}")
    console.print(t)
    corridors = ds.corridors.drop_duplicates("corridor_id")
    console.print(f"Corridors: {len(corridors)} — " + ", ".join(f"{r.name_ru} ({r.mode})"
                                                              for r in corridors.itertuples()))
    used = {d.get("crossing_id") for _, _, d in G.edges(data=True)} - {None}
    closed = set(G.graph.get("closed_crossings", []))
    x = Table(title="Border crossings / Пункты пропуска")
    for col in ("id", "пункт пропуска", "countries", "mode", "delay h", "state", "nearest node (km)"):
        x.add_column(col)
    snapped = snap_frame(G, ds.border_crossings)
    for r in snapped.itertuples():
        state = "closed" if r.crossing_id in closed else "on network" if r.crossing_id in used else "not on network"
        near = f"{G.nodes[r.node].get('name_ru', r.node)} ({r.snap_km:.0f})"
        x.add_row(r.crossing_id, r.name_ru, f"{r.country_a}–{r.country_b}", r.mode, f"{r.typical_delay_h:g}", state,
                  near)
    console.print(x)


@geo_app.command("export")
def geo_export(directory: Annotated[Path, typer.Argument(help="folder for the GeoJSON files")],
               scenario: ScenarioOpt = DEFAULT_SCENARIO) -> None:
    """Write corridors.geojson, crossings.geojson and candidates.geojson (EPSG:4326) for a scenario."""
    from geo.export import candidates_geojson, corridors_geojson, crossings_geojson, write_geojson
    from geo.network import NetworkError
    from planner.candidates import candidate_sites
    from planner.network import scenario_borders

    sc, ds, G = _network(scenario)
    try:
        cands = candidate_sites(sc, ds, G)
    except (NetworkError, ValueError) as exc:
        raise fail(str(exc)) from None
    directory.mkdir(parents=True, exist_ok=True)
    docs = {"corridors": corridors_geojson(G),
            "crossings": crossings_geojson(ds.border_crossings, scenario_borders(sc)),
            "candidates": candidates_geojson(cands)}
    for name, doc in docs.items():
        path = write_geojson(doc, directory / f"{name}.geojson")
        console.print(f"wrote {path} ({len(doc['features'])} features)")


@geo_app.command("route")
def geo_route(
    origin: Annotated[str, typer.Argument(metavar="FROM", help="town name (Russian or English) or node id")],
    destination: Annotated[str, typer.Argument(metavar="TO", help="town name (Russian or English) or node id")],
    mode: Annotated[str, typer.Option(help="road, rail or any")] = "any",
    commodity: Annotated[str, typer.Option(help=f"commodity group: {', '.join(COMMODITY_KEYS)}")] = "vegetables",
    as_json: Annotated[bool, typer.Option("--json", help="print only the route, as one JSON document")] = False,
    osm: Annotated[Path | None, typer.Option(help="route on this OpenStreetMap .osm extract instead")] = None,
    scenario: ScenarioOpt = DEFAULT_SCENARIO,
) -> None:
    """Cheapest route per tonne between two towns: towns passed, km, hours, RUB per tonne, crossings."""
    from geo.network import NetworkError
    from geo.osm import graph_from_osm_file
    from geo.route import route

    if commodity not in COMMODITY_KEYS:
        raise fail(f"--commodity: unknown group {commodity!r}; valid: {', '.join(COMMODITY_KEYS)}")
    if osm is not None:
        sc = scenario_or_fail(scenario)
        ds = load_data(dict(sc.data))
        try:
            G = graph_from_osm_file(osm, sc.parameter_set(ds))
        except (OSError, ValueError) as exc:
            raise fail(f"--osm: {exc}") from None
    else:
        sc, ds, G = _network(scenario)
    try:
        r = route(G, origin, destination, sc.parameter_set(ds), commodity, mode)
    except NetworkError as exc:
        raise fail(str(exc)) from None
    if not as_json:
        console.print(" → ".join(r.towns))
        console.print(f"{r.distance_km:,.0f} km, {r.hours:.1f} h, {r.cost_per_t:,.0f} RUB/t ({commodity}); "
                      f"crossings: {', '.join(r.crossings) or 'none'}")
    else:
        emit_json(r.as_dict())
