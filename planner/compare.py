"""Two runs side by side: what changes where it matters, sites matched by their stable identity.

:func:`compare_summaries` takes two run summaries (``summary.json`` of ``planner run``) and returns one JSON-ready
document: the headline figures (annual cost, losses, consumer prices, net social benefit, NPVs) of A and B and
their difference B − A; the centres opened, closed, resized or kept; trade by outside market (each market is a
border crossing's country or a port, e.g. «Армения (Ереван) через Верхний Ларс») and by country, exports and
imports in tonnes a year; the same trade by border crossing (each market's trade counted at the crossing into
the scope's country on its shortest road or rail path with every crossing open, :func:`market_crossings`; a
domestic market or port has none); and the loss and price change by commodity group.

Sites are matched by id. Ids are the town's name (``pyatigorsk``) or the existing centre's id (``ru_sta_orc``) in
every scenario (:mod:`geo.candidates`); a summary written before stable ids (``cand_012``) is matched by the
same slug of its Russian name, so ``cand_012`` = Кизляр in one run and Новороссийск in another are never taken
for one site. Units: tonnes a year (``_t``), million RUB a year (``_mrub``), million RUB (NPVs), per cent.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx

from geo.candidates import site_slug
from geo.network import NetworkError
from geo.route import resolve_place

if TYPE_CHECKING:
    from planner.data.loader import Dataset

_OLD_ID = re.compile(r"^cand_\d+$")


def site_key(centre: dict) -> str:
    """The identity a centre is matched by: its id, or for a positional ``cand_NNN`` id the slug of its name."""
    cid = str(centre.get("id", ""))
    if _OLD_ID.match(cid):
        return site_slug(str(centre.get("name_ru") or ""), str(centre.get("name_en") or ""))
    return cid


def _num(x: object) -> float | None:
    return float(x) if isinstance(x, int | float) and x == x else None  # noqa: PLR0124 - NaN test


def _total(values: Mapping[str, object] | None) -> float:
    """The sum of a summary's per-commodity figures (t a year); a value stored as null (a NaN written to JSON) or
    not a number adds nothing, so an older or partial summary still compares instead of failing."""
    return sum(v for v in map(_num, (values or {}).values()) if v is not None)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _headline(s: dict) -> dict[str, float | None]:
    """The figures a reader compares first (units in the keys)."""
    base = _total(s.get("loss_tonnes_baseline"))
    net = _total(s.get("loss_tonnes_network"))
    social = s.get("social") or {}
    inv = (s.get("investor") or {}).get("totals") or {}
    exports = _total(s.get("exports_t"))
    imports = _total(s.get("imports_t"))
    return {
        "total_cost_mrub_per_yr": None if _num(s.get("objective")) is None else s["objective"] / 1e6,
        "centres_open": float(len(s.get("centres", []))),
        "loss_t_per_yr": net if s.get("loss_tonnes_network") else None,
        "loss_saved_t_per_yr": (base - net) if s.get("loss_tonnes_network") else None,
        "loss_reduction_pct": 100 * (base - net) / base if base > 0 else None,
        "exports_t_per_yr": exports,
        "imports_t_per_yr": imports,
        "unmet_t_per_yr": _total(s.get("unmet_t")),
        "net_social_benefit_mrub_per_yr": _num(s.get("net_social_benefit_mrub")),
        "social_npv_mrub": _num(social.get("social_npv_mrub")),
        "investor_npv_mrub": None if _num(inv.get("npv_new_rub")) is None else inv["npv_new_rub"] / 1e6,
        "capital_new_mrub": None if _num(inv.get("capital_new_rub")) is None else inv["capital_new_rub"] / 1e6,
    }


HEADLINE_LABELS = {
    "total_cost_mrub_per_yr": ("Objective: annual cost less sales to outside markets, mln RUB/yr",
                               "Целевая функция: затраты за вычетом выручки внешних продаж, млн руб./год"),
    "centres_open": ("Centres open", "Открыто ОРЦ"),
    "loss_t_per_yr": ("Losses, t/yr", "Потери, т/год"),
    "loss_saved_t_per_yr": ("Losses saved vs traditional channel, t/yr", "Сбережено от потерь, т/год"),
    "loss_reduction_pct": ("Loss reduction, %", "Снижение потерь, %"),
    "exports_t_per_yr": ("Sales to outside markets, t/yr", "Продажи на внешние рынки, т/год"),
    "imports_t_per_yr": ("Purchases from outside markets, t/yr", "Закупки на внешних рынках, т/год"),
    "unmet_t_per_yr": ("Unmet demand, t/yr", "Неудовлетворённый спрос, т/год"),
    "net_social_benefit_mrub_per_yr": ("Net social benefit, mln RUB/yr", "Чистая общественная выгода, млн руб./год"),
    "social_npv_mrub": ("Social NPV, mln RUB", "Общественная ЧПС, млн руб."),
    "investor_npv_mrub": ("Investor NPV (new centres), mln RUB", "ЧПС инвестора (новые ОРЦ), млн руб."),
    "capital_new_mrub": ("Capital of new centres, mln RUB", "Капвложения в новые ОРЦ, млн руб."),
}
"""English and Russian label of each headline key."""


def _centres(a: dict, b: dict) -> list[dict]:
    """Every centre open in A or B, matched by :func:`site_key`, with its change."""
    ca = {site_key(c): c for c in a.get("centres", [])}
    cb = {site_key(c): c for c in b.get("centres", [])}
    rows = []
    for key in sorted(set(ca) | set(cb)):
        x, y = ca.get(key), cb.get(key)
        c = y or x
        if x and y:
            change = "resized" if x.get("size") != y.get("size") else "kept"
        else:
            change = "opened in B" if y else "closed in B"
        ta = (x or {}).get("throughput_t")
        tb = (y or {}).get("throughput_t")
        rows.append({"id": key, "name_ru": c.get("name_ru"), "name_en": c.get("name_en"), "region": c.get("region"),
                     "existing": bool(c.get("existing")), "change": change,
                     "size_a": (x or {}).get("size"), "size_b": (y or {}).get("size"),
                     "throughput_a_t": ta, "throughput_b_t": tb, "throughput_change_t": (tb or 0.0) - (ta or 0.0)})
    order = {"opened in B": 0, "closed in B": 1, "resized": 2, "kept": 3}
    return sorted(rows, key=lambda r: (order[r["change"]], -abs(r["throughput_change_t"])))


def market_crossings(G: nx.MultiDiGraph, market_towns: Mapping[str, str], home_country: str) -> dict[str, list[str]]:
    """The border crossings (ids, in path order) each outside market's trade passes on the shortest road path (km;
    road and rail where no road path exists) from its town to the nearest town of ``home_country`` on network
    ``G`` (the scope's country); [] for a market in that country (the rest of Russia, a port) or one the network
    cannot place or reach."""
    road = G.subgraph([n for n, d in G.nodes(data=True) if d.get("mode", "road") == "road"])
    out: dict[str, list[str]] = {}
    for mid, town in market_towns.items():
        out[mid] = _crossings_on_path(road, town, home_country) or _crossings_on_path(G, town, home_country)
    return out


@dataclass
class _NetworkPaths:
    """A dataset's corridor network at the registry's parameters (every crossing open), its road part, and the
    crossings found so far for each (home country, market town) — what :func:`compare_inputs` derives from the
    network, kept so a repeated comparison does not rebuild the graph or rerun a Dijkstra per market."""

    graph: nx.MultiDiGraph
    road: nx.MultiDiGraph
    crossings: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def of(self, town: str, home_country: str) -> list[str]:
        """The crossings on ``town``'s shortest path into ``home_country`` (as :func:`market_crossings`)."""
        key = (home_country, town)
        if key not in self.crossings:
            self.crossings[key] = (_crossings_on_path(self.road, town, home_country)
                                   or _crossings_on_path(self.graph, town, home_country))
        return self.crossings[key]


_NETWORKS: dict[int, _NetworkPaths] = {}
""":class:`_NetworkPaths` by ``id()`` of the dataset it was built from, dropped when that dataset is."""
_NETWORKS_LOCK = threading.Lock()


def _network_paths(dataset: Dataset) -> _NetworkPaths:
    """The cached :class:`_NetworkPaths` of ``dataset``, built on first use (one build at a time: the API
    compares in worker threads)."""
    from planner import network
    from planner.parameters import ParameterSet

    with _NETWORKS_LOCK:
        paths = _NETWORKS.get(id(dataset))
        if paths is None:
            G = network.corridor_graph(dataset, ParameterSet(dataset.loss_rates))
            road = G.subgraph([n for n, d in G.nodes(data=True) if d.get("mode", "road") == "road"])
            paths = _NETWORKS[id(dataset)] = _NetworkPaths(G, road)
            weakref.finalize(dataset, _NETWORKS.pop, id(dataset), None)
        return paths


def compare_inputs(dataset: Dataset, a: dict, b: dict) -> tuple[dict[str, tuple[str, str]], dict[str, list[str]],
                                                                dict[str, tuple[str, str]]]:
    """What :func:`compare_summaries` needs beside the two summaries, from the dataset: each country's
    (English, Russian) name by ISO code; each outside market of either run → the crossings into the scope's
    country on its shortest path (as :func:`market_crossings`, on the embedded network at the registry's
    parameters, every crossing open; the network and each path are computed once per dataset and kept); and each
    crossing's (English, Russian) name. The scope's country is the one most of the runs' centres are in; without
    centres no market is given a crossing. ``planner compare`` and ``POST /compare`` both call this, so the
    command line and the web pages compare alike."""
    names = {r.country_id: (r.name_en, r.name_ru) for r in dataset.countries.itertuples()}
    countries = Counter(c.get("country") for c in a.get("centres", []) + b.get("centres", []) if c.get("country"))
    if not countries:
        return names, {}, {}
    home = countries.most_common(1)[0][0]
    towns = dict(zip(dataset.outside_markets["market_id"], dataset.outside_markets["town_ru"], strict=True))
    ids = {m["id"] for m in a.get("outside_markets", []) + b.get("outside_markets", [])}
    paths = _network_paths(dataset)
    with _NETWORKS_LOCK:
        crossing_of = {m: list(paths.of(towns[m], home)) for m in sorted(ids) if m in towns}
    crossing_names = {r.crossing_id: (r.name_en, r.name_ru) for r in dataset.border_crossings.itertuples()}
    return names, crossing_of, crossing_names


def _crossings_on_path(G: nx.MultiDiGraph, town: str, home_country: str) -> list[str]:
    """The crossings on the shortest path (km) from ``town`` to the nearest node of ``home_country`` in ``G``."""
    home = {n for n, d in G.nodes(data=True) if d.get("country") == home_country}
    try:
        node = resolve_place(G, town, "road")
    except NetworkError:
        return []
    if node in home or not home:
        return []
    dist, paths = nx.single_source_dijkstra(G, node, weight="length")
    reach = [n for n in home if n in dist]
    if not reach:
        return []
    path = paths[min(reach, key=dist.__getitem__)]
    crossings: list[str] = []
    for u, v in zip(path, path[1:], strict=False):
        edge = min(G.get_edge_data(u, v).values(), key=lambda d: d.get("length", 0.0))
        if edge.get("crossing_id") and edge["crossing_id"] not in crossings:
            crossings.append(edge["crossing_id"])
    return crossings


_TRADE_KEYS = ("exports_a_t", "exports_b_t", "imports_a_t", "imports_b_t")


def _sum_trade(rows: dict[str, dict], key: str, head: dict, market: str, trade: Mapping[str, float]) -> None:
    """Add one market's exports and imports (t a year, A and B) to the row ``key`` of ``rows`` (made from
    ``head`` when new), and list the market there."""
    r = rows.setdefault(key, {**head, "markets": [], **dict.fromkeys(_TRADE_KEYS, 0.0)})
    r["markets"].append(market)
    for k in _TRADE_KEYS:
        r[k] += trade[k]


def _with_changes(rows: list[dict]) -> list[dict]:
    """``rows`` with exports and imports changes B − A (t a year) added."""
    for r in rows:
        r["exports_change_t"] = r["exports_b_t"] - r["exports_a_t"]
        r["imports_change_t"] = r["imports_b_t"] - r["imports_a_t"]
    return rows


def _by_crossing(markets: list[dict], crossing_of: Mapping[str, list[str]],
                 crossing_names: Mapping[str, tuple[str, str]]) -> list[dict]:
    """Trade (t a year) by border crossing: the markets whose path passes it, their sales and purchases summed."""
    rows: dict[str, dict] = {}
    for m in markets:
        for cid in crossing_of.get(m["market"], []):
            en, ru = crossing_names.get(cid, (cid, cid))
            _sum_trade(rows, cid, {"crossing": cid, "name_en": en, "name_ru": ru}, m["market"], m)
    return sorted(_with_changes(list(rows.values())),
                  key=lambda r: -(abs(r["exports_change_t"]) + abs(r["imports_change_t"])))


def _trade(a: dict, b: dict, country_names: dict[str, tuple[str, str]]) -> tuple[list[dict], list[dict]]:
    """Exports and imports (t a year) by outside market and by country, A, B and B − A; a market one run cannot
    reach (a closed crossing) counts zero there and is marked."""
    names = {m["id"]: m for m in a.get("outside_markets", []) + b.get("outside_markets", [])}
    in_a = {m["id"] for m in a.get("outside_markets", [])}
    in_b = {m["id"] for m in b.get("outside_markets", [])}
    rows = []
    for mid in sorted(names, key=lambda m: (names[m].get("country", ""), m)):
        m = names[mid]
        ex_a = _total((a.get("exports_by_exit_t") or {}).get(mid))
        ex_b = _total((b.get("exports_by_exit_t") or {}).get(mid))
        im_a = _total((a.get("imports_by_exit_t") or {}).get(mid))
        im_b = _total((b.get("imports_by_exit_t") or {}).get(mid))
        rows.append({"market": mid, "name_ru": m.get("name_ru"), "name_en": m.get("name_en"),
                     "country": m.get("country"), "kind": m.get("kind"),
                     "reachable_a": mid in in_a, "reachable_b": mid in in_b,
                     "exports_a_t": ex_a, "exports_b_t": ex_b, "exports_change_t": ex_b - ex_a,
                     "imports_a_t": im_a, "imports_b_t": im_b, "imports_change_t": im_b - im_a})
    countries: dict[str, dict] = {}
    for r in rows:
        en, ru = country_names.get(r["country"], (r["name_en"] or r["country"], r["name_ru"] or r["country"]))
        _sum_trade(countries, r["country"], {"country": r["country"], "name_en": en, "name_ru": ru}, r["market"], r)
    return rows, _with_changes(list(countries.values()))


def _by_group(a: dict, b: dict, key: str) -> list[dict]:
    ga, gb = a.get(key) or {}, b.get(key) or {}
    return [{"commodity": k, "a": ga.get(k), "b": gb.get(k), "change": _diff(_num(ga.get(k)), _num(gb.get(k)))}
            for k in list(dict.fromkeys([*ga, *gb]))]


def compare_summaries(a: dict, b: dict, label_a: str | None = None, label_b: str | None = None,
                      country_names: Mapping[str, tuple[str, str]] | None = None,
                      crossing_of: Mapping[str, list[str]] | None = None,
                      crossing_names: Mapping[str, tuple[str, str]] | None = None) -> dict:
    """The comparison document of runs ``a`` and ``b`` (see the module docstring); ``label_*`` name the runs
    (default: their scenario names); ``country_names``: ISO code → (English, Russian) name. Exports and imports
    are the scope's: ``exports`` are what an outside market buys from the scope, ``imports`` what it sells.
    ``crossing_of``: market id → the crossings its trade passes (:func:`market_crossings`), with
    ``crossing_names`` (id → English, Russian); without them ``trade_by_crossing`` is empty."""
    ha, hb = _headline(a), _headline(b)
    markets, countries = _trade(a, b, country_names or {})
    return {
        "a": {"label": label_a or a.get("scenario"), "scenario": a.get("scenario"), "status": a.get("status")},
        "b": {"label": label_b or b.get("scenario"), "scenario": b.get("scenario"), "status": b.get("status")},
        "headline": [{"key": k, "label_en": HEADLINE_LABELS[k][0], "label_ru": HEADLINE_LABELS[k][1],
                      "a": ha[k], "b": hb[k], "change": _diff(ha[k], hb[k])} for k in ha],
        "centres": _centres(a, b),
        "trade_by_market": markets,
        "trade_by_country": countries,
        "trade_by_crossing": _by_crossing(markets, crossing_of or {}, crossing_names or {}),
        "loss_reduction_pct": _by_group(a, b, "loss_reduction_pct"),
        "consumer_price_change_pct": _by_group(a, b, "price_change_pct"),
        "farm_price_change_pct": _by_group(a, b, "farm_price_change_pct"),
        "cost_breakdown_rub": _by_group(a, b, "cost_breakdown"),
    }


def trade_headlines(doc: dict, min_change_t: float = 0.5) -> list[tuple[str, list[str]]]:
    """What each outside country gains or loses from A to B, largest change first: a line per country (what it
    sells to and buys from the scope, t a year) and a line per market of it that changes (its crossing or port,
    English and Russian names). Countries whose trade does not change by ``min_change_t`` are left out. This is the
    answer to "what does Armenia (and each crossing) gain or lose" when Upper Lars closes."""
    out = []
    changed = [c for c in doc["trade_by_country"]
               if abs(c["exports_change_t"]) >= min_change_t or abs(c["imports_change_t"]) >= min_change_t]
    markets = {m["market"]: m for m in doc["trade_by_market"]}
    for c in sorted(changed, key=lambda c: -(abs(c["exports_change_t"]) + abs(c["imports_change_t"]))):
        name = f"{c.get('name_en') or c['country']} / {c.get('name_ru') or c['country']}"
        head = (f"{name}: sells to the scope {c['imports_a_t']:,.0f} → {c['imports_b_t']:,.0f} t/yr "
                f"({c['imports_change_t']:+,.0f}); buys from it {c['exports_a_t']:,.0f} → {c['exports_b_t']:,.0f} "
                f"t/yr ({c['exports_change_t']:+,.0f})")
        lines = []
        for mid in c["markets"]:
            m = markets[mid]
            if abs(m["exports_change_t"]) < min_change_t and abs(m["imports_change_t"]) < min_change_t:
                continue
            closed = " — cut off in B / недоступен в B" if m["reachable_a"] and not m["reachable_b"] else ""
            lines.append(f"{m['name_en']} / {m['name_ru']}: sells {m['imports_change_t']:+,.0f} t/yr, buys "
                         f"{m['exports_change_t']:+,.0f} t/yr{closed}")
        out.append((head, lines))
    return out


def crossing_headlines(doc: dict, min_change_t: float = 0.5) -> list[str]:
    """One line per border crossing whose trade changes: what passes it in A and in B (t a year)."""
    return [f"{r['name_en']} / {r['name_ru']}: outside sellers {r['imports_a_t']:,.0f} → {r['imports_b_t']:,.0f} "
            f"t/yr ({r['imports_change_t']:+,.0f}), buyers {r['exports_a_t']:,.0f} → {r['exports_b_t']:,.0f} t/yr "
            f"({r['exports_change_t']:+,.0f}); markets {', '.join(r['markets'])}"
            for r in doc.get("trade_by_crossing", [])
            if abs(r["exports_change_t"]) >= min_change_t or abs(r["imports_change_t"]) >= min_change_t]
