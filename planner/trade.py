"""Outside markets: the rest of the country, partner countries and ports, each with its own price, duties and a
net excess-demand curve for the scope's produce, calibrated on recorded trade.

For outside market *o* and commodity group *k* the scope's net sales :math:`N` (tonnes a year; negative = the
scope buys) face the linear inverse curve

.. math:: p_o(N) = P_o \\left(1 - \\frac{N - N_o}{\\varepsilon_o T_o}\\right)

through the reference point :math:`(N_o, P_o)`: :math:`N_o` = recorded exports − imports, :math:`T_o` = recorded
exports + imports (the volume the curve is scaled on, at least ``outside_unrecorded_trade_kt``; for the balancing
market — the rest of Russia for a Russian scope, Russia for Kazakhstan's — :math:`N_o` is what closes the scope's
balance: its surplus (production − demand) less the recorded net sales to the scenario's other outside markets —
zero for a whole country's own ports where those records more than fill the balance and the remainder would change
its sign (Russia's milk: a national deficit of 1.7 Mt against 3.8 Mt recorded from Belarus would have had the ports
export the 2.1 Mt difference; a neighbour that balances a partial scope, Russia for Kazakhstan, keeps the
remainder: Kazakhstan's potatoes, exported to Uzbekistan beyond its surplus, come in from Russia) — and :math:`T_o`
at least the scope's own demand: the national market is scaled on the scope's market, not on a balance that may be
near zero; when several markets balance — a scope covering the whole country has no rest of the country, and its
own ports close the balance — each takes a share of :math:`N_o` and :math:`T_o` in proportion to its
``balance_weight_kt`` in the ``outside_markets`` table (the port's recorded grain exports: the Azov–Black Sea ports
carry most of the country's trade, the Baltic and Pacific ports a few per cent; an equal share where no balancing
market has a weight, the mean weight for one without among weighted ones)),
:math:`\\varepsilon_o` the
elasticity of the market's excess demand (``outside_elasticity_partner``, ``outside_elasticity_rest_of_russia``).
The curve runs its natural course: the market buys until its price falls to zero and sells until its price
reaches ``outside_purchase_price_cap`` × :math:`P_o`; it is cut into steps of ``outside_step_pct`` % of
:math:`P_o` in price, each priced at its midpoint. Steps where :math:`N > 0` are sales (an exit's demand steps,
the market's duty on them deducted:
:math:`p/(1+\\tau^x_o)`); steps where :math:`N < 0` are purchases (an outside supplier's steps, the scope's duty
added: :math:`p(1+\\tau^m_o)`). One curve for both directions means the scope can never buy from and sell to the
same market at a profit.

Reference price (spatial arbitrage at the reference, Samuelson 1952): where the scope sells (:math:`N_o \\ge 0`),
:math:`P_o/(1+\\tau^x_o) = v_k + d_o`, so the scope's farms net their reference value :math:`v_k`; where it buys,
:math:`P_o(1+\\tau^m_o) = v_k + m_k - d_o` (at least 10% of :math:`v_k`), so the market's produce reaches the
scope's consumers at their reference price :math:`v_k + m_k`. :math:`m_k` is the traditional chain's local margin
(handling + the reference value of the post-harvest and distribution losses) and :math:`d_o` the delivered cost
of the traditional chain between the scope's farms and the market's node (freight + handling + the reference value
of what is lost on the way: the trade cost the price model charges) **of the marginal trader at the recorded
trade**: the farm regions sorted by that cost, :math:`d_o` is the cost at which their cumulated exportable surplus
(production − the region's own demand) reaches :math:`N_o` where the scope sells, their cumulated uncovered
deficit reaches :math:`-N_o` where it buys (:class:`DeliveredCosts`). So the regions nearest a market that sells
it :math:`N_o` at :math:`P_o` are the ones that do, and no farm profits from selling to a market with no recorded
trade (:math:`N_o = 0`: the nearest region is indifferent). (Before 2026-12-06 :math:`d_o` was the
production-weighted median over all the scope's farms: right for a compact scope, but in a national one it put
China's price at the delivered cost of a farm in European Russia, and Siberia sold it 5.1 Mt of grain against
3.0 Mt recorded.)
The duties in the calibration are the dataset's (the agreements in force); a scenario's own duties then move
prices from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.data.loader import Dataset
from planner.parameters import ParameterSet, suggest
from planner.scenario import Exit, ScenarioError


@dataclass
class OutsideMarket:
    """One outside market as a run uses it: identity, node, duties (dataset and scenario) and reference trade."""

    market_id: str
    name_ru: str
    name_en: str
    country_id: str
    kind: str
    node: str
    tariff_export_pct: float
    tariff_import_pct: float
    base_tariff_export_pct: float
    base_tariff_import_pct: float
    price_pct_of_value: float | None
    recorded: dict[str, tuple[float, float]]
    balancing: bool = False
    balance_weight: float | None = None
    """The market's weight among balancing markets (``balance_weight_kt`` × 1000: t a year of grain exports);
    None: none given."""

    @property
    def label(self) -> str:
        """The row id of this market in the model: ``exit:<id>`` for sales, ``import:<id>`` for purchases."""
        return self.market_id


def covers_country(region_ids: list[str], dataset: Dataset, country: str) -> bool:
    """Whether the scope holds every region of ``country`` in the dataset (all 85 federal subjects for Russia): the
    rest of the country is then inside the model, not an outside market."""
    regions = dataset.regions
    return set(regions.loc[regions["country_id"] == country, "region_id"]) <= set(region_ids)


def resolve_markets(exits: list[Exit], dataset: Dataset, scope_country: str, resolve_node,
                    whole_country: bool = False) -> list[OutsideMarket]:
    """The scenario's outside markets with their data: an exit names a ``market`` of the ``outside_markets`` table
    or a ``town`` (matched to the table's town, else a market of its own with no recorded trade and no duties).
    ``resolve_node(town)`` returns the network node of a town or raises ScenarioError.

    ``whole_country`` (the scope covers every region of its country, :func:`covers_country`): the rest of the
    country is in the model, so exits of kind ``rest_of_russia`` are dropped; unless an exit says ``balancing``,
    the country's own ports take the balancing role (the national surplus or deficit leaves or enters through
    them, shared equally, :func:`market_curves`), and its borders stay partner markets with their recorded trade."""
    table = dataset.outside_markets.set_index("market_id")
    trade = dataset.outside_trade
    trade = trade[trade["scope_country"] == scope_country]
    by_town = {str(t).casefold(): m for m, t in table["town_ru"].items()}
    out, seen = [], set()
    for i, e in enumerate(exits):
        mid = e.market
        if mid is None and e.town is not None:
            mid = by_town.get(e.town.casefold())
        if mid is not None and mid not in table.index:
            raise ScenarioError(f"exits[{i}].market: unknown outside market {mid!r}."
                                f"{suggest(mid, list(table.index))}")
        if mid is not None:
            row = table.loc[mid]
            town = e.town or row["town_ru"]
            name_ru, name_en, country, kind = row["name_ru"], row["name_en"], row["country_id"], row["kind"]
            tx, tm = float(row["tariff_export_pct"]), float(row["tariff_import_pct"])
        else:
            town = e.town
            mid = f"town_{len(out)}"
            name_ru = name_en = town
            country, kind, tx, tm = scope_country, e.kind, 0.0, 0.0
        if whole_country and kind == "rest_of_russia":
            continue
        if mid in seen:
            raise ScenarioError(f"exits[{i}]: outside market {mid!r} listed twice")
        seen.add(mid)
        node = resolve_node(town, i)
        rec = {r.commodity: (float(r.export_kt) * 1000.0, float(r.import_kt) * 1000.0)
               for r in trade[trade["market_id"] == mid].itertuples()}
        weight = None
        if mid in table.index and "balance_weight_kt" in table.columns:
            w = pd.to_numeric(table.at[mid, "balance_weight_kt"], errors="coerce")
            weight = float(w) * 1000.0 if pd.notna(w) and float(w) > 0 else None
        out.append(OutsideMarket(mid, name_ru, name_en, country, kind, node,
            tx if e.tariff_export_pct is None else e.tariff_export_pct,
            tm if e.tariff_import_pct is None else e.tariff_import_pct, tx, tm, e.price_pct_of_value, rec,
            kind == "rest_of_russia" if e.balancing is None else e.balancing, weight))
    if whole_country and not any(o.balancing for o in out):
        explicit = {i for i, e in enumerate(exits) if e.balancing is not None}
        if not explicit:
            for o in out:
                if o.kind == "port" and o.country_id == scope_country:
                    o.balancing = True
    return out


def curve_steps(N0: float, T0: float, P0: float, elasticity: float, step_pct: float,
                price_cap: float) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Sales steps and purchase steps, each a list of (width t, price RUB/t at the market) in the order the
    optimum fills them (sales: falling prices; purchases: rising prices). The curve runs its natural course: sales
    until the price falls to zero, purchases until it reaches ``price_cap`` × P0; each step spans ``step_pct`` % of
    P0 in price and is priced at its midpoint (see the module docstring)."""
    if T0 <= 0 or P0 <= 0 or elasticity <= 0:
        return [], []
    slope = elasticity * T0 / P0  # tonnes per RUB

    def n_at(price: float) -> float:
        return N0 + slope * (P0 - price)

    def price(n: float) -> float:
        return P0 - (n - N0) / slope

    width = step_pct / 100.0 * P0 * slope
    sales, purchases = [], []
    top = n_at(0.0)
    lo = 0.0
    while lo < top - 1e-9:
        hi = min(lo + width, top)
        p = price((lo + hi) / 2)
        if p > 0:
            sales.append((hi - lo, p))
        lo = hi
    bottom = n_at(price_cap * P0)
    hi = 0.0
    while hi > bottom + 1e-9:
        lo = max(hi - width, bottom)
        p = price((lo + hi) / 2)
        if p > 0:
            purchases.append((hi - lo, p))
        hi = lo
    return sales, purchases


@dataclass(frozen=True)
class DeliveredCosts:
    """The traditional chain's delivered cost from each of the scope's farm regions to one outside market (RUB per
    tonne of one group), with each region's ``production`` and ``demand`` of the group (t a year; a region without
    farms counts with its nearest farm region)."""

    cost: np.ndarray
    production: np.ndarray
    demand: np.ndarray

    @property
    def surplus(self) -> np.ndarray:
        """Each region's exportable surplus: production less its own demand, t a year (0 where short)."""
        return np.maximum(self.production - self.demand, 0.0)

    @property
    def deficit(self) -> np.ndarray:
        """Each region's uncovered deficit: demand less its own production, t a year (0 where in surplus)."""
        return np.maximum(self.demand - self.production, 0.0)

    def marginal(self, net: float) -> float:
        """:math:`d_o` at recorded net sales ``net`` (t a year; negative: the scope buys): the delivered cost at which
        the cumulated surplus of the regions nearest the market (by this cost) reaches ``net``, or their deficit
        reaches ``-net``; the production or demand where surplus or deficit cannot cover the record (the scope sells
        a group it is short of overall). NaN when no region reaches the market."""
        if net >= 0:
            surplus = self.surplus
            w = surplus if 0 < surplus.sum() >= net else self.production
        else:
            deficit = self.deficit
            w = deficit if deficit.sum() >= -net else self.demand
        return _cost_at(self.cost, w, abs(net))


def _cost_at(cost: np.ndarray, weight: np.ndarray, target: float) -> float:
    """The cost of the unit at which ``weight`` cumulated in ascending ``cost`` first reaches ``target`` (the
    cheapest for a target of zero, the dearest if it is never reached); NaN without a finite, weighted cost."""
    ok = np.isfinite(cost) & (weight > 0)
    if not ok.any():
        return float("nan")
    c, w = cost[ok], weight[ok]
    order = np.argsort(c, kind="stable")
    cum = np.cumsum(w[order])
    return float(c[order][min(int(np.searchsorted(cum, target)), len(c) - 1)])


def reference_price(value: float, delivered: float, net: float, tariff_export_pct: float,
                    tariff_import_pct: float, margin: float = 0.0) -> float:
    """P_o at the market's node (RUB per tonne): see the module docstring (``margin`` = :math:`m_k`)."""
    if net >= 0:
        return (value + delivered) * (1 + tariff_export_pct / 100.0)
    return max(value + margin - delivered, 0.1 * value) / (1 + tariff_import_pct / 100.0)


def balancing_shares(markets: list[OutsideMarket]) -> dict[str, float]:
    """Each balancing market's share of the scope's balance (summing to 1 over them): in proportion to its
    ``balance_weight`` where any balancing market has one (one without takes the mean of the others' weights),
    else equal."""
    bal = [o for o in markets if o.balancing]
    given = [o.balance_weight for o in bal if o.balance_weight]
    mean = sum(given) / len(given) if given else 1.0
    w = {o.market_id: (o.balance_weight or mean) if given else 1.0 for o in bal}
    total = sum(w.values())
    return {m: v / total for m, v in w.items()}


def market_curves(markets: list[OutsideMarket], commodities: list[str], params: ParameterSet,
                  balance_t: dict[str, float], demand_t: dict[str, float],
                  delivered: dict[tuple[str, str], DeliveredCosts | float],
                  margin: dict[str, float] | None = None) -> pd.DataFrame:
    """Per market and group: reference net sales N0 and volume T0 (t a year), reference price P0 (RUB/t), the
    elasticity, and the steps (lists). ``balance_t`` is the scope's production − demand per group,
    ``demand_t`` its demand, ``delivered[(market, group)]`` the delivered costs to the market by farm region
    (:class:`DeliveredCosts`; a number: that cost as the marginal trader's), ``margin`` the local margin per group
    (RUB per tonne)."""
    floor_t = params["outside_unrecorded_trade_kt"] * 1000.0
    recorded_net: dict[str, float] = {}
    for o in markets:
        if not o.balancing:
            for k, (x, m) in o.recorded.items():
                recorded_net[k] = recorded_net.get(k, 0.0) + x - m
    rows = []
    share = balancing_shares(markets)
    for o in markets:
        for k in commodities:
            value = params[f"value_rub_per_t_{k}"]
            if o.balancing:  # several balancing markets (a whole country's ports) share the balance by weight
                bal = balance_t.get(k, 0.0)
                rest = bal - recorded_net.get(k, 0.0)
                if rest * bal < 0 and o.kind == "port":  # the land records over-fill a whole country's balance:
                    rest = 0.0  # its own ports (the rest of the world) take no side
                N0 = rest * share[o.market_id]
                T0 = max(abs(N0), demand_t.get(k, 0.0) * share[o.market_id])
                eps = params["outside_elasticity_rest_of_russia"]
                recorded = False
            else:
                x, m = o.recorded.get(k, (0.0, 0.0))
                recorded = (x + m) > 0
                N0, T0 = x - m, max(x + m, floor_t)
                eps = params["outside_elasticity_partner"]
            d = delivered.get((o.market_id, k), np.nan)
            d = d.marginal(N0) if isinstance(d, DeliveredCosts) else float(d)
            if o.price_pct_of_value is not None:
                P0 = value * o.price_pct_of_value / 100.0
            elif np.isfinite(d):
                P0 = reference_price(value, d, N0, o.base_tariff_export_pct, o.base_tariff_import_pct,
                                     (margin or {}).get(k, 0.0))
            else:
                P0 = np.nan
            sales, purchases = ([], []) if not np.isfinite(P0) else curve_steps(
                N0, T0, P0, eps, params["outside_step_pct"], params["outside_purchase_price_cap"])
            rows.append({"market_id": o.market_id, "commodity": k, "N0_t": N0, "T0_t": T0, "P0_rub_per_t": P0,
                         "elasticity": eps, "recorded": recorded, "delivered_rub_per_t": d,
                         "tariff_export_pct": o.tariff_export_pct, "tariff_import_pct": o.tariff_import_pct,
                         "sales": sales, "purchases": purchases})
    return pd.DataFrame(rows)
