r"""Spatial price equilibrium (Samuelson 1952; Takayama and Judge 1971) for one commodity group, solved as a
convex quadratic program by HiGHS's QP solver, the model passed to it as arrays (a run computes many equilibria:
each costs its solve, not a modelling layer's build).

Each market *i* has linear supply and demand calibrated at a reference point — supply :math:`S_i(p) = \gamma_i +
\delta_i p` through :math:`(p^s_{0i}, S_{0i})` with elasticity :math:`\varepsilon^s_i` (so
:math:`\delta_i = \varepsilon^s_i S_{0i} / p^s_{0i}`), demand :math:`D_i(p) = \alpha_i + \beta_i p` through
:math:`(p^d_{0i}, D_{0i})` with :math:`\beta_i = \varepsilon^d_i D_{0i} / p^d_{0i} < 0`. Arcs *a* = (i, j) carry
produce from i's farms to j's consumers at cost :math:`t_a` per tonne (the local arc (i, i) carries the local
chain's margin); an outside market buys at :math:`P^{out}` and sells at the same price, reached at cost
:math:`t^{out}_i`. The equilibrium maximises total surplus net of trade costs:

.. math:: \max \sum_j \int_0^{D_j} p^d_j(q)\,dq - \sum_i \int_0^{S_i} p^s_i(q)\,dq - \sum_a t_a x_a
          + \sum_i (P^{out} - t^{out}_i) e_i - \sum_j (P^{out} + t^{out}_j) m_j

subject to :math:`\sum_{a \in out(i)} x_a + e_i = S_i` and :math:`\sum_{a \in in(j)} x_a + m_j = D_j`. At the
optimum the farm-gate price is :math:`p^s_i = (S_i - \gamma_i)/\delta_i`, the consumer price
:math:`p^d_j = (D_j - \alpha_j)/\beta_j`, and on every arc :math:`p^d_j - p^s_i \le t_a`, with equality where it
carries flow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import pandas as pd
from scipy import sparse

from planner import deadline

EQUILIBRIUM_TIME_LIMIT_S = 60.0
"""Seconds one equilibrium may take at most (both attempts), a numerical setting; within a run, never past the
run's deadline (:mod:`planner.deadline`)."""
FLOW_REGULARISATION_FALLBACK = 1e-3
"""The stronger flow regularisation of a second attempt, when the first (:data:`FLOW_REGULARISATION`) has not
converged within :data:`FIRST_ATTEMPT_S`: on very degenerate instances (Azerbaijan alone: 81 markets on about 9
network nodes, 6,549 arcs but 32 distinct costs) HiGHS's QP solver stalls at 1e-5 and solves at 1e-3 in seconds.
Its marginal cost is at most about 0.2% of the highest reference price; the answer says which was used."""
FIRST_ATTEMPT_S = 15.0
"""Seconds the first attempt gets before the fallback regularisation is tried (within the caller's limit)."""
FLOW_REGULARISATION = 1e-5
"""A small quadratic cost on every flow, in the QP's scaled units (prices and quantities of order 100): it makes
the objective strictly convex in the flows, so the optimum is unique and HiGHS's active-set QP solver cannot cycle
between equally cheap routings (seen on Kazakhstan's 24 markets, which ran into the time limit at 1e-6). Its
marginal cost, 2·1e-5·x, is at most about 0.002% of the highest reference price: inside the tests'
tolerances on the closed-form cases."""


class EquilibriumError(ValueError):
    """The equilibrium cannot be computed from these markets (names the market or arc)."""


@dataclass
class Equilibrium:
    """Prices (RUB per tonne) and quantities (tonnes) per market, flows per arc, and total surplus (RUB)."""

    markets: pd.DataFrame
    flows: pd.DataFrame
    welfare: float
    regularisation: float = 0.0


def equivalence_classes(n: int, src: np.ndarray, dst: np.ndarray, cost: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group the ``n`` markets that trade alike, so the QP routes between groups rather than markets.

    Two markets are in one *supply class* when they reach every market by an arc of the same cost (or neither
    has an arc there), and in one *demand class* when every market reaches them at the same cost. Markets on
    one network node are alike (a country's districts mapped to a few towns: Azerbaijan alone has 80 markets
    on about a dozen nodes and 6,394 arcs). Then a class's supply can be sent to a demand class by one flow at
    the class-to-class cost, and any split of that flow among the class's markets costs the same: the optimum
    (quantities, prices, surplus) is the markets' optimum, and the QP no longer holds thousands of
    equally cheap routings between which HiGHS's active-set solver stalled (issue #19: vegetables and fruit of
    Azerbaijan ran into the time limit).

    ``src``, ``dst``: the arcs' market positions; ``cost``: their costs. Returns each market's supply class and
    demand class, and the class arcs (from supply class, to demand class, cost). Duplicate arcs (one pair
    twice): no grouping (every market its own class)."""
    pairs = src.astype(np.int64) * max(n, 1) + dst
    if len(np.unique(pairs)) != len(pairs) or n == 0:
        ident = np.arange(n)
        return ident, ident, src, dst, cost
    C = np.full((n, n), np.inf)
    C[src, dst] = cost
    _, sup_class = np.unique(C, axis=0, return_inverse=True)
    _, dem_class = np.unique(C.T, axis=0, return_inverse=True)
    sup_class, dem_class = sup_class.ravel().astype(int), dem_class.ravel().astype(int)
    class_pairs = np.unique(sup_class[src].astype(np.int64) * n + dem_class[dst])
    csrc, cdst = (class_pairs // n).astype(int), (class_pairs % n).astype(int)
    # every market pair of a class pair has an arc of that cost (the classes were built from identical rows)
    pos = np.searchsorted(class_pairs, sup_class[src].astype(np.int64) * n + dem_class[dst])
    ccost = np.empty(len(class_pairs))
    ccost[pos] = cost
    return sup_class, dem_class, csrc, cdst, ccost


def _split_flows(X: np.ndarray, csrc: np.ndarray, cdst: np.ndarray, sup_class: np.ndarray, dem_class: np.ndarray,
                 src: np.ndarray, dst: np.ndarray, ship: np.ndarray, take: np.ndarray, n_sc: int,
                 n_dc: int) -> np.ndarray:
    """Market-to-market flows (per original arc) from the class-to-class flows ``X``: each class flow split in
    proportion to what each market of the supply class ships (``ship``: supply less outside sales) and each market
    of the demand class takes (``take``: demand less outside purchases), which keeps every market's balance."""
    ship_tot = np.bincount(sup_class, weights=ship, minlength=n_sc)
    take_tot = np.bincount(dem_class, weights=take, minlength=n_dc)
    ship_share = np.divide(ship, ship_tot[sup_class], out=np.zeros_like(ship), where=ship_tot[sup_class] > 0)
    take_share = np.divide(take, take_tot[dem_class], out=np.zeros_like(take), where=take_tot[dem_class] > 0)
    flow = np.zeros((n_sc, n_dc))
    flow[csrc, cdst] = X
    return flow[sup_class[src], dem_class[dst]] * ship_share[src] * take_share[dst]


def solve_equilibrium(markets: pd.DataFrame, arcs: pd.DataFrame, outside_price: float | None = None,
                      outside_cost: pd.Series | None = None, time_limit: float | None = None,
                      regularisation: float = FLOW_REGULARISATION) -> Equilibrium:
    """Solve the spatial price equilibrium.

    ``markets``: market, S0, D0 (tonnes), ps0, pd0 (RUB per tonne), eps_s (> 0), eps_d (< 0);
    ``arcs``: from, to, cost (RUB per tonne); ``outside_price`` and ``outside_cost`` (per market) add an outside
    market that buys and sells at that price. ``time_limit`` (seconds; default :data:`EQUILIBRIUM_TIME_LIMIT_S`,
    and never past the run's deadline, :mod:`planner.deadline`) bounds the QP: the first attempt gets at most
    :data:`FIRST_ATTEMPT_S`, a second at the stronger :data:`FLOW_REGULARISATION_FALLBACK` the rest; past it the
    equilibrium is refused with :class:`EquilibriumError`, never waited on. ``Equilibrium.regularisation`` says
    which regularisation the answer carries; ``regularisation`` sets the first attempt's (two equilibria that are
    compared must carry the same).
    """
    mk = markets.reset_index(drop=True)
    for col in ("S0", "D0", "ps0", "pd0"):
        bad = mk.index[~(mk[col] >= 0)]
        if len(bad):
            raise EquilibriumError(f"markets.{col}: must be ≥ 0 (market {mk.at[bad[0], 'market']})")
    if ((mk["S0"] > 0) & ~(mk["eps_s"] > 0)).any() or ((mk["D0"] > 0) & ~(mk["eps_d"] < 0)).any():
        raise EquilibriumError("markets: supply elasticities must be > 0 and demand elasticities < 0")
    idx = {m: i for i, m in enumerate(mk["market"])}
    unknown = sorted((set(arcs["from"]) | set(arcs["to"])) - set(idx))
    if unknown:
        raise EquilibriumError(f"arcs: unknown market(s) {unknown}")
    # HiGHS's QP solver wants numbers near 1: solve in units of qs tonnes and ps RUB, convert back at the end
    qs = max(float(mk[["S0", "D0"]].to_numpy().max()) / 100.0, 1e-9)
    ps = max(float(mk[["ps0", "pd0"]].to_numpy().max()) / 100.0, 1e-9)
    S0, D0 = mk["S0"].to_numpy(float) / qs, mk["D0"].to_numpy(float) / qs
    p_s0, p_d0 = mk["ps0"].to_numpy(float) / ps, mk["pd0"].to_numpy(float) / ps
    delta = np.where(S0 > 0, mk["eps_s"].to_numpy(float) * S0 / np.where(p_s0 > 0, p_s0, 1), 0.0)
    gamma = S0 - delta * p_s0
    beta = np.where(D0 > 0, mk["eps_d"].to_numpy(float) * D0 / np.where(p_d0 > 0, p_d0, 1), 0.0)
    alpha = D0 - beta * p_d0
    src = arcs["from"].map(idx).to_numpy(int)
    dst = arcs["to"].map(idx).to_numpy(int)
    arc_cost = arcs["cost"].to_numpy(float) / ps
    # the QP's flows run between classes of markets that trade alike (see equivalence_classes), not between
    # markets: exact, and it removes the ties that made HiGHS's QP solver stall
    n = len(mk)
    sup_class, dem_class, csrc, cdst, cost = equivalence_classes(n, src, dst, arc_cost)
    n_sc, n_dc = int(sup_class.max(initial=-1)) + 1, int(dem_class.max(initial=-1)) + 1
    # a class arc stands for |supply class| × |demand class| market arcs: its regularisation is divided by that
    # count, the least the markets' own regularisation can cost for the same class flow (an even split)
    per_arc = (np.bincount(sup_class, minlength=n_sc)[csrc] * np.bincount(dem_class, minlength=n_dc)[cdst])
    if outside_price is not None:
        outside_price = outside_price / ps
    n_arcs = len(cost)
    trade = outside_price is not None
    oc = np.zeros(n)
    if trade:
        oc = (outside_cost.reindex(mk["market"]).to_numpy(float) / ps if outside_cost is not None else np.zeros(n))
    # columns: S (n), D (n), x (n_arcs, between classes), then e (n) and im (n) with trade;
    # rows: supply (one per supply class), demand (one per demand class)
    n_cols = 2 * n + n_arcs + (2 * n if trade else 0)
    upper = np.full(n_cols, np.inf)
    upper[:n][delta <= 0] = 0.0
    upper[n:2 * n][beta >= 0] = 0.0
    c = np.zeros(n_cols)
    c[:n] = np.where(delta > 0, -gamma / np.where(delta > 0, delta, 1), 0.0)
    c[n:2 * n] = np.where(beta < 0, alpha / np.where(beta < 0, beta, -1), 0.0)
    c[2 * n:2 * n + n_arcs] = cost
    x_cols = np.arange(2 * n, 2 * n + n_arcs)
    rows = [sup_class, n_sc + dem_class, csrc, n_sc + cdst]
    cols = [np.arange(n), np.arange(n, 2 * n), x_cols, x_cols]
    vals = [-np.ones(n), -np.ones(n), np.ones(n_arcs), np.ones(n_arcs)]
    if trade:
        e_cols, im_cols = 2 * n + n_arcs + np.arange(n), 3 * n + n_arcs + np.arange(n)
        closed = ~np.isfinite(oc)
        upper[e_cols[closed]] = 0.0
        upper[im_cols[closed]] = 0.0
        oc = np.where(np.isfinite(oc), oc, 0.0)
        c[e_cols] = -(outside_price - oc)
        c[im_cols] = outside_price + oc
        rows += [sup_class, n_sc + dem_class]
        cols += [e_cols, im_cols]
        vals += [np.ones(n), np.ones(n)]
    A = sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n_sc + n_dc, n_cols))
    quad = np.zeros(n_cols)
    quad[:n] = np.where(delta > 0, 1 / np.where(delta > 0, delta, 1), 0.0)
    quad[n:2 * n] = np.where(beta < 0, -1 / np.where(beta < 0, beta, -1), 0.0)

    def attempt(reg: float, limit: float) -> highspy.Highs:
        quad[x_cols] = 2 * reg / per_arc
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(limit))
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n_cols, n_sc + n_dc
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = c, np.zeros(n_cols), upper
        lp.row_lower_ = lp.row_upper_ = np.zeros(n_sc + n_dc)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
        on = np.flatnonzero(quad)
        hess = highspy.HighsHessian()
        hess.dim_ = n_cols
        hess.format_ = highspy.HessianFormat.kTriangular
        hess.start_ = np.searchsorted(on, np.arange(n_cols + 1)).astype(np.int32)
        hess.index_, hess.value_ = on.astype(np.int32), quad[on]
        model = highspy.HighsModel()
        model.lp_, model.hessian_ = lp, hess
        h.passModel(model)
        h.run()
        return h

    time_limit = deadline.time_left(EQUILIBRIUM_TIME_LIMIT_S if time_limit is None else time_limit)
    started = time.perf_counter()
    reg = regularisation
    fallback = regularisation < FLOW_REGULARISATION_FALLBACK  # a second attempt remains
    h = attempt(reg, min(time_limit, FIRST_ATTEMPT_S) if fallback else time_limit)
    left = time_limit - (time.perf_counter() - started)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal and left >= 1.0 and fallback:
        reg = FLOW_REGULARISATION_FALLBACK
        h = attempt(reg, left)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        deadline.check_passed()  # the run's deadline, not the instance, stopped it: say so
        raise EquilibriumError(f"the equilibrium QP ended with {h.modelStatusToString(h.getModelStatus())} "
                               f"(flow regularisation {reg:g}, {time_limit:g} s)")
    col = np.asarray(h.getSolution().col_value)
    S, D, X = col[:n], col[n:2 * n], col[2 * n:2 * n + n_arcs]
    e_val = col[e_cols] if trade else np.zeros(n)
    m_val = col[im_cols] if trade else np.zeros(n)
    x = _split_flows(X, csrc, cdst, sup_class, dem_class, src, dst, np.maximum(S - e_val, 0.0),
                     np.maximum(D - m_val, 0.0), n_sc, n_dc)
    p_sup = np.where(delta > 0, (S - gamma) / np.where(delta > 0, delta, 1), np.nan)
    p_dem = np.where(beta < 0, (D - alpha) / np.where(beta < 0, beta, -1), np.nan)
    out = mk.assign(S=S * qs, D=D * qs, supply_price=p_sup * ps, demand_price=p_dem * ps)
    if trade:
        out = out.assign(exports=col[e_cols] * qs, imports=col[im_cols] * qs)
    flows = arcs.assign(tonnes=x * qs)
    return Equilibrium(out, flows, -float(h.getInfo().objective_function_value) * qs * ps, float(reg))
