r"""Spatial price equilibrium (Samuelson 1952; Takayama and Judge 1971) for one commodity group, solved as a
convex quadratic program by HiGHS through Pyomo's ``highs`` interface.

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

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus
from pyomo.contrib.solver.solvers.highs import Highs

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
    cost = (arcs["cost"].to_numpy(float) / ps).tolist()
    if outside_price is not None:
        outside_price = outside_price / ps
    n = len(mk)
    supply_on = [i for i in range(n) if delta[i] > 0]
    demand_on = [i for i in range(n) if beta[i] < 0]

    m = pyo.ConcreteModel(name="spatial_price_equilibrium")
    m.reg = pyo.Param(mutable=True, initialize=regularisation)
    m.S = pyo.Var(range(n), domain=pyo.NonNegativeReals)
    m.D = pyo.Var(range(n), domain=pyo.NonNegativeReals)
    m.x = pyo.Var(range(len(arcs)), domain=pyo.NonNegativeReals)
    for i in range(n):
        if delta[i] <= 0:
            m.S[i].fix(0.0)
        if beta[i] >= 0:
            m.D[i].fix(0.0)
    out_from: dict[int, list[int]] = {i: [] for i in range(n)}
    into: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, (i, j) in enumerate(zip(src, dst, strict=True)):
        out_from[i].append(a)
        into[j].append(a)
    trade = outside_price is not None
    if trade:
        oc = (outside_cost.reindex(mk["market"]).to_numpy(float) / ps if outside_cost is not None else np.zeros(n))
        m.e = pyo.Var(range(n), domain=pyo.NonNegativeReals)
        m.im = pyo.Var(range(n), domain=pyo.NonNegativeReals)
        for i in range(n):
            if not np.isfinite(oc[i]):
                m.e[i].fix(0.0)
                m.im[i].fix(0.0)
        oc = np.where(np.isfinite(oc), oc, 0.0)
    m.supply = pyo.Constraint(range(n), rule=lambda m, i: sum(m.x[a] for a in out_from[i])
                              + (m.e[i] if trade else 0) == m.S[i])
    m.demand = pyo.Constraint(range(n), rule=lambda m, j: sum(m.x[a] for a in into[j])
                              + (m.im[j] if trade else 0) == m.D[j])
    welfare = (sum((m.D[j] ** 2 / 2 - alpha[j] * m.D[j]) / beta[j] for j in demand_on)
               - sum((m.S[i] ** 2 / 2 - gamma[i] * m.S[i]) / delta[i] for i in supply_on)
               - sum(cost[a] * m.x[a] for a in range(len(arcs)))
               - sum(m.reg * m.x[a] ** 2 for a in range(len(arcs))))
    if trade:
        welfare += sum((outside_price - oc[i]) * m.e[i] - (outside_price + oc[i]) * m.im[i] for i in range(n))
    m.obj = pyo.Objective(expr=-welfare, sense=pyo.minimize)
    started = time.perf_counter()
    fallback = regularisation < FLOW_REGULARISATION_FALLBACK  # a second attempt remains
    res = Highs().solve(m, load_solutions=False, raise_exception_on_nonoptimal_result=False,
                        time_limit=min(time_limit, FIRST_ATTEMPT_S) if fallback else time_limit)
    left = time_limit - (time.perf_counter() - started)
    if res.solution_status != SolutionStatus.optimal and left >= 1.0 and fallback:
        m.reg.set_value(FLOW_REGULARISATION_FALLBACK)
        res = Highs().solve(m, load_solutions=False, raise_exception_on_nonoptimal_result=False, time_limit=left)
    if res.solution_status != SolutionStatus.optimal:
        raise EquilibriumError(f"the equilibrium QP ended with {res.termination_condition.name} "
                               f"(flow regularisation {pyo.value(m.reg):g}, {time_limit:g} s)")
    res.solution_loader.load_vars()
    S = np.array([pyo.value(m.S[i]) for i in range(n)])
    D = np.array([pyo.value(m.D[i]) for i in range(n)])
    x = np.array([pyo.value(m.x[a]) for a in range(len(arcs))])
    p_sup = np.where(delta > 0, (S - gamma) / np.where(delta > 0, delta, 1), np.nan)
    p_dem = np.where(beta < 0, (D - alpha) / np.where(beta < 0, beta, -1), np.nan)
    out = mk.assign(S=S * qs, D=D * qs, supply_price=p_sup * ps, demand_price=p_dem * ps)
    if trade:
        out = out.assign(exports=[pyo.value(m.e[i]) * qs for i in range(n)],
                         imports=[pyo.value(m.im[i]) * qs for i in range(n)])
    flows = arcs.assign(tonnes=x * qs)
    return Equilibrium(out, flows, -float(pyo.value(m.obj)) * qs * ps, float(pyo.value(m.reg)))
