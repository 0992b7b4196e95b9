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


def solve_equilibrium(markets: pd.DataFrame, arcs: pd.DataFrame, outside_price: float | None = None,
                      outside_cost: pd.Series | None = None, time_limit: float = 60.0,
                      regularisation: float = FLOW_REGULARISATION) -> Equilibrium:
    """Solve the spatial price equilibrium.

    ``markets``: market, S0, D0 (tonnes), ps0, pd0 (RUB per tonne), eps_s (> 0), eps_d (< 0);
    ``arcs``: from, to, cost (RUB per tonne); ``outside_price`` and ``outside_cost`` (per market) add an outside
    market that buys and sells at that price. ``time_limit`` (seconds) bounds the QP: the first attempt gets at most
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
    cost = arcs["cost"].to_numpy(float) / ps
    if outside_price is not None:
        outside_price = outside_price / ps
    n, n_arcs = len(mk), len(arcs)
    trade = outside_price is not None
    oc = np.zeros(n)
    if trade:
        oc = (outside_cost.reindex(mk["market"]).to_numpy(float) / ps if outside_cost is not None else np.zeros(n))
    # columns: S (n), D (n), x (n_arcs), then e (n) and im (n) with trade; rows: supply (n), demand (n)
    n_cols = 2 * n + n_arcs + (2 * n if trade else 0)
    upper = np.full(n_cols, np.inf)
    upper[:n][delta <= 0] = 0.0
    upper[n:2 * n][beta >= 0] = 0.0
    c = np.zeros(n_cols)
    c[:n] = np.where(delta > 0, -gamma / np.where(delta > 0, delta, 1), 0.0)
    c[n:2 * n] = np.where(beta < 0, alpha / np.where(beta < 0, beta, -1), 0.0)
    c[2 * n:2 * n + n_arcs] = cost
    x_cols = np.arange(2 * n, 2 * n + n_arcs)
    rows = [np.arange(n), np.arange(n, 2 * n), src, n + dst]
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
        rows += [np.arange(n), np.arange(n, 2 * n)]
        cols += [e_cols, im_cols]
        vals += [np.ones(n), np.ones(n)]
    A = sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(2 * n, n_cols))
    quad = np.zeros(n_cols)
    quad[:n] = np.where(delta > 0, 1 / np.where(delta > 0, delta, 1), 0.0)
    quad[n:2 * n] = np.where(beta < 0, -1 / np.where(beta < 0, beta, -1), 0.0)

    def attempt(reg: float, limit: float) -> highspy.Highs:
        quad[x_cols] = 2 * reg
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(limit))
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n_cols, 2 * n
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = c, np.zeros(n_cols), upper
        lp.row_lower_ = lp.row_upper_ = np.zeros(2 * n)
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

    started = time.perf_counter()
    reg = regularisation
    fallback = regularisation < FLOW_REGULARISATION_FALLBACK  # a second attempt remains
    h = attempt(reg, min(time_limit, FIRST_ATTEMPT_S) if fallback else time_limit)
    left = time_limit - (time.perf_counter() - started)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal and left >= 1.0 and fallback:
        reg = FLOW_REGULARISATION_FALLBACK
        h = attempt(reg, left)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise EquilibriumError(f"the equilibrium QP ended with {h.modelStatusToString(h.getModelStatus())} "
                               f"(flow regularisation {reg:g}, {time_limit:g} s)")
    col = np.asarray(h.getSolution().col_value)
    S, D, x = col[:n], col[n:2 * n], col[2 * n:2 * n + n_arcs]
    p_sup = np.where(delta > 0, (S - gamma) / np.where(delta > 0, delta, 1), np.nan)
    p_dem = np.where(beta < 0, (D - alpha) / np.where(beta < 0, beta, -1), np.nan)
    out = mk.assign(S=S * qs, D=D * qs, supply_price=p_sup * ps, demand_price=p_dem * ps)
    if trade:
        out = out.assign(exports=col[e_cols] * qs, imports=col[im_cols] * qs)
    flows = arcs.assign(tonnes=x * qs)
    return Equilibrium(out, flows, -float(h.getInfo().objective_function_value) * qs * ps, float(reg))
