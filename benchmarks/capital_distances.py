"""Every pair of regional capitals of the North Caucasus and Southern FDs: network road km against published km.

Issue #14 asks for the network's road distances between the regional capitals in scope to be compared with
published road distances, and the table published in ``docs/geo.md``. This script computes, on the embedded
dataset, the least-km road path (road layer only) between each pair of the 14 capitals on the network, the great-
circle distance and their ratio, and joins the published figures of ``docs/research-notes/capital_road_distances.csv``
(source, quote and date per row; ``tests/test_geo_distances.py`` holds the tolerance). A pair without a published
figure says "none found" — the table states for every pair what was and was not checked. It rewrites the marked
sections of ``docs/geo.md``::

    .venv/bin/python benchmarks/capital_distances.py

The program never reads the research-notes file; only this script and the tests do.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
from docsection import replace_section

from geo.geodesy import geodesic_km
from geo.matrix import od_matrix
from geo.network import mode_subgraph
from planner.data.loader import load_dataset
from planner.network import corridor_graph
from planner.parameters import ParameterSet

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "research-notes" / "capital_road_distances.csv"
DOC = ROOT / "docs" / "geo.md"
DISTRICTS = ("NCFD", "SFD")
UNFLAGGED = ("Симферополь", "Севастополь")
"""Capitals of Crimea and Sevastopol: the cities table does not flag them ``is_region_capital`` (its source predates
2014 for them). Magas, Ingushetia's capital, is not in the cities table at all (named in the table's text)."""
OFF = 0.10
"""A published pair more than this share off the network is flagged in the table (the test's tolerance is 15%)."""


def capitals(dataset) -> pd.DataFrame:
    """The regional capitals of the NCFD and SFD that are on the road network (Russian and English names, lat/lon)."""
    regions = dataset.regions
    ids = set(regions.loc[regions["federal_district"].isin(DISTRICTS), "region_id"])
    c = dataset.cities
    flagged = c["is_region_capital"].astype(str).str.lower().eq("true") | c["name_ru"].isin(UNFLAGGED)
    cap = c[c["region_id"].isin(ids) & flagged]
    return cap[["name_ru", "name_en", "region_id", "lat", "lon"]].drop_duplicates("name_ru").reset_index(drop=True)


def _node(country: str, town: str) -> str:
    return f"road:{country}:{town}"


def published() -> pd.DataFrame:
    """The published road distances (one row per pair, ``published_km`` as float)."""
    t = pd.read_csv(TABLE, encoding="utf-8-sig", keep_default_na=False, dtype=str)
    t["published_km"] = t["published_km"].astype(float)
    return t


def published_against(road) -> pd.DataFrame:
    """The published pairs with the road layer's least-km distance (``network_km``) and ``ratio`` = network /
    published; a ValueError names the towns of the table that are not road nodes."""
    t = published()
    nodes = sorted({_node(c, n) for c, n in zip(t["from_country"], t["from_ru"], strict=True)}
                   | {_node(c, n) for c, n in zip(t["to_country"], t["to_ru"], strict=True)})
    missing = [n for n in nodes if n not in road]
    if missing:
        raise ValueError(f"towns of the distances table not on the road network: {missing}")
    km = od_matrix(road, nodes, nodes, metric="distance").values
    t["network_km"] = [km.at[_node(a, b), _node(c, d)] for a, b, c, d in
                       zip(t["from_country"], t["from_ru"], t["to_country"], t["to_ru"], strict=True)]
    t["ratio"] = t["network_km"] / t["published_km"]
    return t


def compare() -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(published pairs with network km, every capital pair, capitals not on the road network)."""
    ds = load_dataset()
    road = mode_subgraph(corridor_graph(ds, ParameterSet(ds.loss_rates)), "road")
    pub = published_against(road)
    cap = capitals(ds)
    on = cap[[_node("RU", n) in road for n in cap["name_ru"]]].reset_index(drop=True)
    missing = [f"{r.name_en} ({r.name_ru})" for r in cap.itertuples() if _node("RU", r.name_ru) not in road]
    nodes = sorted(_node("RU", n) for n in on["name_ru"])
    km = od_matrix(road, nodes, nodes, metric="distance").values
    found = {frozenset((r.from_ru, r.to_ru)): r for r in pub.itertuples()}
    rows = []
    for a, b in itertools.combinations(on.itertuples(), 2):
        straight = float(geodesic_km(a.lat, a.lon, b.lat, b.lon))
        net = float(km.at[_node("RU", a.name_ru), _node("RU", b.name_ru)])
        p = found.get(frozenset((a.name_ru, b.name_ru)))
        rows.append({"pair": f"{a.name_en} – {b.name_en} ({a.name_ru} – {b.name_ru})", "network_km": net,
                     "straight_km": straight, "circuity": net / straight,
                     "published_km": None if p is None else p.published_km,
                     "source": "" if p is None else _host(p.source_url),
                     "exception": "" if p is None else p.known_exception})
    pairs = pd.DataFrame(rows).sort_values("circuity", ascending=False).reset_index(drop=True)
    return pub, pairs, missing


def _host(url: str) -> str:
    return url.split("//", 1)[-1].split("/", 1)[0]


def _flag(ratio: float, exception: str) -> str:
    if abs(ratio - 1.0) <= OFF:
        return ""
    return "**off > 10%**" + (" known exception" if exception.strip() else "")


def published_table(pub: pd.DataFrame) -> str:
    """The published pairs, sorted by network / published."""
    lines = ["| pair | scope | network km | published km | network / published | flag | source | independent |",
             "|---|---|---|---|---|---|---|---|"]
    for r in pub.sort_values("ratio", ascending=False).itertuples():
        approx = " (approximate)" if r.approximate == "true" else ""
        lines.append(f"| {r.from_en} – {r.to_en} ({r.from_ru} – {r.to_ru}) | {r.scope} | {r.network_km:,.0f} | "
                     f"{r.published_km:,.0f} | {r.ratio:.2f} | {_flag(r.ratio, r.known_exception)} | "
                     f"{_host(r.source_url)}{approx} | {'yes' if r.independent == 'true' else 'no'} |")
    return "\n".join(lines)


def pairs_table(pairs: pd.DataFrame, missing: list[str]) -> str:
    """Every capital pair: network, straight line, circuity and the published figure or "none found"."""
    n_pub = int(pairs["published_km"].notna().sum())
    lines = [f"{len(pairs)} pairs of the {_n(pairs)} capitals on the road "
             f"network; {n_pub} with a published road km, {len(pairs) - n_pub} with none found in the project's "
             f"search corpus (distance calculators are not in it). Not on the network: {', '.join(missing) or 'none'}; "
             "Magas (Ingushetia) is not in the cities table, Nazran stands for it on the network."
             " Sorted by network km / straight km: a ratio of 1.5 or more with no published figure marks a pair "
             "where a road may be missing.", "",
             "| pair | network km | straight km | network / straight | published km | network / published |",
             "|---|---|---|---|---|---|"]
    for r in pairs.itertuples():
        if r.published_km is None or pd.isna(r.published_km):
            pub, ratio = "none found", ""
        else:
            pub = f"{r.published_km:,.0f} ({r.source})"
            ratio = f"{r.network_km / r.published_km:.2f}" + (" known exception" if r.exception.strip() else "")
        lines.append(f"| {r.pair} | {r.network_km:,.0f} | {r.straight_km:,.0f} | {r.circuity:.2f} | {pub} | "
                     f"{ratio} |")
    return "\n".join(lines)


def _n(pairs: pd.DataFrame) -> int:
    """Number of towns n with n (n − 1) / 2 pairs."""
    n = 1
    while n * (n - 1) // 2 < len(pairs):
        n += 1
    return n


def main() -> None:
    pub, pairs, missing = compare()
    replace_section(DOC, "<!-- published-pairs:begin -->", "<!-- published-pairs:end -->", published_table(pub),
                    "Published road km")
    replace_section(DOC, "<!-- capital-pairs:begin -->", "<!-- capital-pairs:end -->",
                    pairs_table(pairs, missing), "Every capital pair")
    print(pairs_table(pairs, missing))


if __name__ == "__main__":
    main()
