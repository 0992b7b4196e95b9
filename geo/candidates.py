"""Candidate sites for wholesale distribution centres: generated along the corridors, or a user's sites snapped to it.

Generated candidates are the network's towns in the scenario's regions (border checkpoints excluded) that a
centre can serve from: the
existing centres (always kept), corridor junctions, rail stations with road access, and the other corridor
towns, then (when ``nearby_km`` > 0) cities off the network within ``nearby_km`` of a road node, taken in that
order of priority (then by population) and kept only if they lie at least
``min_spacing_km`` from every candidate already kept and their region holds fewer than ``max_per_region``
new candidates. Existing centres are snapped to their nearest road node. Spacing is geodesic km (WGS84).

**Identities** (:func:`site_slug`, :func:`town_ids`): an existing centre keeps its ``centre_id`` (``ru_sta_orc``); a
generated candidate is named after its town, its Russian name transliterated by the Wikipedia scheme of
`iuliia <https://github.com/nalgeon/iuliia>`_ (``Пятигорск`` → ``pyatigorsk``, ``Минеральные Воды`` →
``mineralnye_vody``; a name without Cyrillic letters, as for some Chinese towns, is slugged from the English
name). Where the same slug belongs to towns of more than one region in the towns the caller knows (the dataset's
whole ``cities`` table and the network's towns, every country), the region code is appended: ``armavir_ru_kda``
(Армавир, Krasnodar Krai) and ``armavir_am_av`` (Armenia). The id therefore depends on the dataset, never on
which other towns a scenario keeps, and is the same in every scenario.

The caller gives the tables (the dataset's ``cities`` and ``existing_centres``, a user's candidates table);
reading a user's file belongs to the planner (:func:`planner.candidates.load_candidates`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import iuliia
import networkx as nx
import numpy as np
import pandas as pd

from geo.geodesy import geodesic_km
from geo.network import NetworkError
from geo.snap import nearest_nodes

PRIORITY = {"existing": 0, "junction": 1, "rail_station": 2, "town": 3, "nearby_city": 4}


@dataclass(frozen=True)
class CandidateRules:
    """How candidates are generated: spacing (km), per-region cap, snapping distance (km), which kinds."""

    min_spacing_km: float = 30.0
    max_per_region: int = 4
    max_snap_km: float = 30.0
    include_existing: bool = True
    include_junctions: bool = True
    include_rail_stations: bool = True
    include_towns: bool = True
    nearby_km: float = 0.0
    nearby_min_population: int = 20_000

    def __post_init__(self) -> None:
        if min(self.min_spacing_km, self.max_per_region, self.max_snap_km, self.nearby_km) < 0:
            raise ValueError("candidates: min_spacing_km, max_per_region, max_snap_km and nearby_km must be ≥ 0")


COLUMNS = ["candidate_id", "name_ru", "name_en", "node", "lat", "lon", "region_id", "country", "kind",
           "corridors", "road_access", "rail_access", "existing", "population"]


_CYRILLIC = re.compile("[\u0400-\u04ff]")


def site_slug(name_ru: str, name_en: str = "") -> str:
    """A town's readable id: its Russian name transliterated (iuliia, Wikipedia scheme), ASCII, lower case, words
    joined by ``_`` (``Усть-Джегута`` → ``ust_dzheguta``); the English name when the Russian one has no Cyrillic."""
    text = iuliia.WIKIPEDIA.translate(name_ru) if _CYRILLIC.search(name_ru or "") else (name_en or name_ru or "")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or "site"


def region_suffix(region_id: str) -> str:
    """A region code as it goes into an id: ``RU-KDA`` → ``ru_kda``."""
    return re.sub(r"[^a-z0-9]+", "_", str(region_id).lower()).strip("_")


def ambiguous_slugs(towns: Iterable[tuple[str, str, str]]) -> set[str]:
    """The slugs that more than one region's towns share, from ``(name_ru, name_en, region_id)`` triples (the
    dataset's towns in every country): those ids carry the region code (see the module docstring)."""
    regions: dict[str, set[str]] = {}
    for ru, en, rid in towns:
        regions.setdefault(site_slug(str(ru), str(en)), set()).add(str(rid))
    return {s for s, r in regions.items() if len(r) > 1}


def town_ids(frame: pd.DataFrame, ambiguous: set[str]) -> list[str]:
    """The id of each row (``name_ru``, ``name_en``, ``region_id``) of a candidates frame: the town's slug, with the
    region code where the slug is in ``ambiguous``."""
    out = []
    for ru, en, rid in zip(frame["name_ru"], frame["name_en"], frame["region_id"], strict=True):
        slug = site_slug(str(ru), str(en))
        out.append(f"{slug}_{region_suffix(rid)}" if slug in ambiguous else slug)
    return out


def _town_nodes(G: nx.MultiDiGraph, cities: pd.DataFrame) -> pd.DataFrame:
    """One row per town on the network (road node preferred), with its access and junction status."""
    pop = {(c, n): p for c, n, p in zip(cities["country_id"], cities["name_ru"], cities["population"], strict=True)}
    towns: dict[tuple[str, str], dict] = {}
    for n, d in G.nodes(data=True):
        key = (d.get("country"), d.get("name_ru"))
        t = towns.setdefault(key, dict(name_ru=d.get("name_ru"), name_en=d.get("name_en"), country=d.get("country"),
                                       region_id=d.get("region_id"), lat=d["y"], lon=d["x"], node=None,
                                       corridors=set(), road_access=False, rail_access=False,
                                       population=pop.get(key, 0)))
        mode = d.get("mode", "road")
        t["corridors"].update(d.get("corridors") or [])
        if mode == "road":
            t["road_access"], t["node"] = True, n
        elif mode == "rail":
            t["rail_access"] = True
            t["node"] = t["node"] or n
    rows = []
    for t in towns.values():
        kind = ("junction" if len(t["corridors"]) >= 2 else
                "rail_station" if t["rail_access"] and t["road_access"] else "town")
        rows.append({**t, "kind": kind, "corridors": ",".join(sorted(t["corridors"]))})
    return pd.DataFrame(rows)


def _nearby_cities(G: nx.MultiDiGraph, cities: pd.DataFrame, region_ids: list[str], rules: CandidateRules,
                   on_network: set[str]) -> pd.DataFrame:
    """Cities of at least ``nearby_min_population`` off the network but within ``nearby_km`` of a road node,
    snapped to it (a centre there reaches the corridor by a short access road)."""
    c = cities
    c = c[c["region_id"].isin(region_ids) & (c["population"] >= rules.nearby_min_population)
          & ~c["name_ru"].isin(on_network)]
    road = G.subgraph([n for n, d in G.nodes(data=True) if d.get("mode", "road") == "road"])
    if c.empty or not len(road):
        return pd.DataFrame()
    nodes, km = nearest_nodes(road, c["lat"].to_numpy(), c["lon"].to_numpy())
    rows = []
    for (_, city), node, dist in zip(c.iterrows(), nodes, km, strict=True):
        if dist <= rules.nearby_km:
            nd = G.nodes[node]
            rows.append(dict(name_ru=city["name_ru"], name_en=city["name_en"], country=city["country_id"],
                             region_id=city["region_id"], lat=city["lat"], lon=city["lon"], node=node,
                             corridors=",".join(nd.get("corridors") or []), road_access=True,
                             rail_access=bool(nd.get("station")), population=int(city["population"]),
                             kind="nearby_city", existing=False))
    return pd.DataFrame(rows)


def generate_candidates(G: nx.MultiDiGraph, cities: pd.DataFrame, existing_centres: pd.DataFrame,
                        region_ids: list[str], rules: CandidateRules | None = None) -> pd.DataFrame:
    """Candidate sites in ``region_ids`` on network ``G`` following ``rules`` (see the module docstring), from the
    dataset's ``cities`` (population, nearby cities) and ``existing_centres`` tables."""
    rules = rules or CandidateRules()
    towns = _town_nodes(G, cities)
    border_towns = {G.nodes[n].get("name_ru") for u, v, d in G.edges(data=True) if d.get("crossing_id")
                    for n in (u, v)}
    in_scope = towns["region_id"].isin(region_ids)
    inland = in_scope & ~towns["name_ru"].isin(border_towns)
    if not inland.any():
        # the scope's only network towns lie at a crossing (Tashkent, Bishkek): keep the populated ones — they are
        # cities, not bare checkpoints — so a partner's scope still has sites
        inland = in_scope & (towns["population"] > 0)
    towns = towns[inland].copy()
    towns["existing"] = False
    pool = []
    if rules.include_existing:
        ex = existing_centres[existing_centres["region_id"].isin(region_ids)]
        if not ex.empty:
            # the road layer where there is one: a town's road and rail nodes share coordinates, and a tie between
            # them must not fall to the order nodes were added in (a centre on the rail node would pay the
            # transshipment on every road delivery in and skip it on rail despatch)
            road = G.subgraph([n for n, d in G.nodes(data=True) if d.get("mode", "road") == "road"])
            nodes, km = nearest_nodes(road if len(road) else G, ex["lat"].to_numpy(), ex["lon"].to_numpy())
            for (_, c), node, dist in zip(ex.iterrows(), nodes, km, strict=True):
                if dist > rules.max_snap_km:
                    raise NetworkError(f"existing centre {c['centre_id']} ({c['city_en']}) lies {dist:.0f} km from "
                                       f"the nearest network node; raise max_snap_km or extend the network")
                nd = G.nodes[node]
                pool.append(dict(name_ru=c["name_ru"], name_en=c["name_en"], node=node, lat=c["lat"], lon=c["lon"],
                                 region_id=c["region_id"], country=c["country"], kind="existing",
                                 corridors=",".join(nd.get("corridors") or []), road_access=nd.get("mode") == "road",
                                 rail_access=bool(nd.get("station")) or nd.get("mode") == "rail", existing=True,
                                 population=0, centre_id=c["centre_id"]))
    allowed = {"junction": rules.include_junctions, "rail_station": rules.include_rail_stations,
               "town": rules.include_towns}
    # a boolean mask even when no town is in scope (an empty object-dtype mask would select columns instead)
    towns = towns[towns["kind"].map(allowed).astype(bool)]
    if rules.nearby_km > 0:
        towns = pd.concat([towns, _nearby_cities(G, cities, region_ids, rules, set(towns["name_ru"]))],
                          ignore_index=True)
    towns = towns.assign(_p=towns["kind"].map(PRIORITY)).sort_values(["_p", "population"], ascending=[True, False])
    pool.extend(towns.drop(columns="_p").to_dict("records"))

    kept: list[dict] = []
    per_region: dict[str, int] = {}
    for c in pool:
        if kept:
            d = geodesic_km(c["lat"], c["lon"], np.array([k["lat"] for k in kept]), np.array([k["lon"] for k in kept]))
            if not c["existing"] and d.min() < rules.min_spacing_km:
                continue
        if not c["existing"]:
            if per_region.get(c["region_id"], 0) >= rules.max_per_region:
                continue
            per_region[c["region_id"]] = per_region.get(c["region_id"], 0) + 1
        kept.append(c)
    out = pd.DataFrame(kept, columns=COLUMNS + ["centre_id"])
    known = [(d.get("name_ru"), d.get("name_en"), d.get("region_id")) for _, d in G.nodes(data=True)
             if d.get("name_ru")]
    ambiguous = ambiguous_slugs(known + list(zip(cities["name_ru"], cities["name_en"], cities["region_id"],
                                                 strict=True)))
    ids = town_ids(out, ambiguous) if len(out) else []
    out["candidate_id"] = [c if e and isinstance(c, str) else t
                           for c, e, t in zip(out["centre_id"], out["existing"], ids, strict=True)]
    dup = out["candidate_id"][out["candidate_id"].duplicated()]
    if not dup.empty:  # two kept towns of one region with one name: never silently merged
        raise NetworkError(f"candidates: more than one site in one region named {sorted(set(dup))}; give the "
                           "scenario a candidates file with ids of your own")
    return out[COLUMNS].reset_index(drop=True)


def snap_candidates(frame: pd.DataFrame, G: nx.MultiDiGraph, known_regions: Collection[str],
                    max_snap_km: float = 30.0, source: str = "candidates") -> pd.DataFrame:
    """A user's candidates (a validated ``candidates`` table: ``candidate_id, name_ru, name_en, lat, lon, region_id,
    existing``) snapped to the network and given region, corridors and access; a site farther than
    ``max_snap_km`` from the network or in a region outside ``known_regions`` raises NetworkError prefixed
    with ``source`` (the file's name)."""
    nodes, km = nearest_nodes(G, frame["lat"].to_numpy(), frame["lon"].to_numpy())
    far = [f"{cid} ({d:.0f} km)" for cid, d in zip(frame["candidate_id"], km, strict=True) if d > max_snap_km]
    if far:
        raise NetworkError(f"{source}: candidates farther than {max_snap_km} km from the network: {', '.join(far)}")
    rows = []
    for (_, c), node in zip(frame.iterrows(), nodes, strict=True):
        nd = G.nodes[node]
        rows.append(dict(candidate_id=c["candidate_id"], name_ru=c["name_ru"], name_en=c["name_en"], node=node,
                         lat=c["lat"], lon=c["lon"], region_id=c["region_id"] or nd.get("region_id"),
                         country=nd.get("country"), kind="user", corridors=",".join(nd.get("corridors") or []),
                         road_access=nd.get("mode") == "road",
                         rail_access=bool(nd.get("station")) or nd.get("mode") == "rail",
                         existing=bool(c["existing"]), population=0))
    known = set(known_regions)
    bad = [r["candidate_id"] for r in rows if r["region_id"] not in known]
    if bad:
        raise NetworkError(f"{source}: candidates in unknown regions: {bad}")
    return pd.DataFrame(rows, columns=COLUMNS)
