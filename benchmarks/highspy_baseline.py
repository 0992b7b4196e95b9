"""The model of :mod:`optimization.model` for a single-commodity CFLP/UFLP/p-median problem, built directly with
highspy's array API: the baseline the Pyomo path is measured against.

Same columns and rows as the Pyomo model of such a problem (one supply row, zero-cost inbound arcs, one module
per site, no direct arcs, no slack): y_j, inbound x1_j, outbound x2_jd, unsold w; rows one-size, supply,
balance per site, demand per customer, capacity per site, strong linking on inbound and outbound arcs, total
capacity, and p when set.
"""

from __future__ import annotations

import time

import highspy
import numpy as np
from scipy.sparse import coo_matrix

from optimization.problem import NetworkProblem


def build_and_solve(pb: NetworkProblem, rel_gap: float = 0.0, time_limit: float | None = None) -> dict:
    """Build the model with highspy arrays and solve it; returns objective, status and build/solve seconds."""
    t0 = time.perf_counter()
    sites = list(pb.sites["site_id"])
    J = len(sites)
    jrow = {s: i for i, s in enumerate(sites)}
    dem = pb.demands
    D = len(dem)
    drow = {d: i for i, d in enumerate(dem["demand_id"])}
    out = pb.outbound
    A = len(out)
    a_j = out["site_id"].map(jrow).to_numpy()
    a_d = out["demand_id"].map(drow).to_numpy()
    cap = pb.modules.set_index("site_id").loc[sites, "capacity_t"].to_numpy(float)
    fixed = pb.modules.set_index("site_id").loc[sites, "fixed_cost"].to_numpy(float)
    P = float(pb.supplies["quantity_t"].iloc[0])
    q = dem["quantity_t"].to_numpy(float)
    # columns: y (J) | x1 (J) | x2 (A) | w (1)
    ny, nx1, nx2 = J, J, A
    n = ny + nx1 + nx2 + 1
    y0, x10, x20, w0 = 0, ny, ny + nx1, ny + nx1 + nx2
    cost = np.zeros(n)
    cost[y0:y0 + J] = fixed
    cost[x20:x20 + A] = out["cost_per_t"].to_numpy(float)
    lower = np.zeros(n)
    upper = np.full(n, highspy.kHighsInf)
    upper[y0:y0 + J] = 1.0
    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0

    def add(rr, cc, vv):
        rows.append(np.asarray(rr))
        cols.append(np.asarray(cc))
        vals.append(np.asarray(vv, dtype=float))

    add(np.arange(J), y0 + np.arange(J), np.ones(J))  # one size per site
    lo += [-highspy.kHighsInf] * J
    hi += [1.0] * J
    r += J
    add(np.full(J + 1, r), np.r_[x10 + np.arange(J), w0], np.ones(J + 1))  # supply
    lo.append(P)
    hi.append(P)
    r += 1
    add(r + np.arange(J), x10 + np.arange(J), np.ones(J))  # balance: x1_j - sum x2_jd = 0
    add(r + a_j, x20 + np.arange(A), -np.ones(A))
    lo += [0.0] * J
    hi += [0.0] * J
    r += J
    add(r + a_d, x20 + np.arange(A), np.ones(A))  # demand
    lo += list(q)
    hi += list(q)
    r += D
    add(r + np.arange(J), x10 + np.arange(J), np.ones(J))  # capacity: x1_j - cap_j y_j <= 0
    add(r + np.arange(J), y0 + np.arange(J), -cap)
    lo += [-highspy.kHighsInf] * J
    hi += [0.0] * J
    r += J
    u1 = np.minimum(P, cap)
    add(r + np.arange(J), x10 + np.arange(J), np.ones(J))  # link in
    add(r + np.arange(J), y0 + np.arange(J), -u1)
    lo += [-highspy.kHighsInf] * J
    hi += [0.0] * J
    r += J
    u2 = np.minimum(q[a_d], cap[a_j])
    add(r + np.arange(A), x20 + np.arange(A), np.ones(A))  # link out
    add(r + np.arange(A), y0 + a_j, -u2)
    lo += [-highspy.kHighsInf] * A
    hi += [0.0] * A
    r += A
    add(np.full(J, r), y0 + np.arange(J), cap)  # total capacity
    lo.append(float(q.sum()))
    hi.append(highspy.kHighsInf)
    r += 1
    if pb.options.p is not None:
        add(np.full(J, r), y0 + np.arange(J), np.ones(J))
        lo.append(float(pb.options.p))
        hi.append(float(pb.options.p))
        r += 1
    mat = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, n)).tocsc()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, r
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lower, upper
    lp.row_lower_, lp.row_upper_ = np.array(lo), np.array(hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = mat.indptr, mat.indices, mat.data
    lp.integrality_ = [highspy.HighsVarType.kInteger] * J + [highspy.HighsVarType.kContinuous] * (n - J)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", rel_gap)
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    h.passModel(lp)
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    h.run()
    solve = time.perf_counter() - t1
    info = h.getInfo()
    return {"objective": info.objective_function_value, "bound": info.mip_dual_bound, "gap": info.mip_gap,
            "status": h.modelStatusToString(h.getModelStatus()), "build_seconds": build, "solve_seconds": solve,
            "nonzeros": int(mat.nnz)}
