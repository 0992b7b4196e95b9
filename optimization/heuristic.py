"""A fast greedy add/drop heuristic whose site choice warm-starts the MIP.

It works on a single-echelon approximation of the problem: the cost of serving demand row *d* from site *j* is
the outbound arc's cost and lost value plus the cheapest inbound arc's cost and lost value for that site and
commodity; without any site, a demand row pays its cheapest direct arc (or its unmet penalty). Capacities are
respected only in aggregate (open capacity must cover the demand the sites take). Greedy add opens the site
that lowers this cost most until none does (or until p sites); drop then closes any site whose removal lowers
it. Each open site takes the smallest module that covers its assigned demand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimization.problem import NetworkProblem

BIG = 1e18


def _service_arcs(pb: NetworkProblem):
    """Sparse single-echelon service costs: arrays (site index, demand index, cost per tonne delivered), the
    baseline cost per demand row (cheapest direct arc, or the unmet penalty), demand weights, site ids."""
    value = pb.value_per_t
    sites = list(pb.sites["site_id"])
    srow = {s: i for i, s in enumerate(sites)}
    dem = pb.demands.reset_index(drop=True)
    drow = {(d, k): i for i, (d, k) in enumerate(zip(dem["demand_id"], dem["commodity"], strict=True))}
    inb = pb.inbound
    in_cost = (inb["cost_per_t"] + inb["loss"] * inb["commodity"].map(value).fillna(0)) / (1 - inb["loss"])
    best_in = pd.Series(in_cost.to_numpy(), index=pd.MultiIndex.from_arrays([inb["site_id"], inb["commodity"]]))
    best_in = best_in.groupby(level=[0, 1]).min()
    out = pb.outbound
    out_cost = (out["cost_per_t"] + out["loss"] * out["commodity"].map(value).fillna(0)) / (1 - out["loss"])
    key = pd.MultiIndex.from_arrays([out["site_id"], out["commodity"]])
    total = out_cost.to_numpy() + best_in.reindex(key).to_numpy()
    jj = out["site_id"].map(srow).to_numpy(int)
    dd = np.array([drow[(d, k)] for d, k in zip(out["demand_id"], out["commodity"], strict=True)], dtype=int)
    ok = np.isfinite(total)
    base = np.where(dem["penalty_per_t"].notna(), dem["penalty_per_t"].fillna(0).to_numpy(float), BIG)
    if len(pb.direct):
        dr = pb.direct
        dcost = (dr["cost_per_t"] + dr["loss"] * dr["commodity"].map(value).fillna(0)) / (1 - dr["loss"])
        di = np.array([drow[(d, k)] for d, k in zip(dr["demand_id"], dr["commodity"], strict=True)], dtype=int)
        np.minimum.at(base, di, dcost.to_numpy())
    exit_mask = dem["is_exit"].fillna(False).to_numpy(bool)
    weight = np.where(exit_mask, 0.0, dem["quantity_t"].to_numpy(float))
    return jj[ok], dd[ok], total[ok], base, weight, sites


def _served(open_: np.ndarray, jj, dd, cc, base) -> np.ndarray:
    served = base.copy()
    on = open_[jj]
    np.minimum.at(served, dd[on], cc[on])
    return served


def greedy_sites(pb: NetworkProblem, max_rounds: int | None = None) -> dict[str, str]:
    """Site id → module id of a good feasible-looking network (see the module docstring)."""
    jj, dd, cc, base, w, sites = _service_arcs(pb)
    J = len(sites)
    mods = pb.modules
    fixed_min = mods.groupby("site_id")["fixed_cost"].min().reindex(sites).fillna(BIG).to_numpy()
    cap_max = mods.groupby("site_id")["capacity_t"].max().reindex(sites).fillna(0).to_numpy()
    existing = pb.sites["existing"].fillna(False).to_numpy(bool) & pb.options.force_existing
    p = pb.options.p
    open_ = existing.copy()
    rounds = 0
    while (p is None or open_.sum() < p) and (max_rounds is None or rounds < max_rounds):
        rounds += 1
        served = _served(open_, jj, dd, cc, base)
        gains = np.bincount(jj, weights=np.clip(served[dd] - cc, 0, None) * w[dd], minlength=J) - fixed_min
        gains[open_] = -np.inf
        j = int(np.argmax(gains))
        if not np.isfinite(gains[j]) or (gains[j] <= 0 and p is None):
            break
        open_[j] = True
    while p is None:
        on = open_[jj]
        order = np.lexsort((cc[on], dd[on]))
        d_on, c_on, j_on = dd[on][order], cc[on][order], jj[on][order]
        first = np.r_[True, d_on[1:] != d_on[:-1]]
        best_d, best_c, best_j = d_on[first], c_on[first], j_on[first]
        second = base.copy()
        nxt = np.flatnonzero(first)[:-1] + 1
        nxt = np.r_[nxt, len(d_on)] if len(d_on) else nxt
        has_second = (nxt < len(d_on)) & (np.r_[d_on, -1][nxt] == best_d)
        second[best_d[has_second]] = np.minimum(base[best_d[has_second]], c_on[nxt[has_second]])
        useful = best_c < base[best_d]
        increase = np.bincount(best_j[useful], weights=(second[best_d[useful]] - best_c[useful]) * w[best_d[useful]],
                               minlength=J)
        saving = np.where(open_ & ~existing, fixed_min - increase, -np.inf)
        j = int(np.argmax(saving))
        if not np.isfinite(saving[j]) or saving[j] <= 1e-9:
            break
        open_[j] = False
    demand_total = w.sum() if not len(pb.direct) else 0.0
    while cap_max[open_].sum() < demand_total and (~open_).any() and (p is None or open_.sum() < p):
        ratio = np.where(open_, np.inf, fixed_min / np.maximum(cap_max, 1e-9))
        open_[int(np.argmin(ratio))] = True
    served = _served(open_, jj, dd, cc, base)
    on = open_[jj] & (cc <= served[dd]) & (cc < base[dd])
    assigned = np.zeros(J)
    taken = np.zeros(len(w), bool)
    for j, d in zip(jj[on], dd[on], strict=True):
        if not taken[d]:
            taken[d] = True
            assigned[j] += w[d]
    chosen: dict[str, str] = {}
    for j in np.flatnonzero(open_):
        m = mods[mods["site_id"] == sites[j]].sort_values("capacity_t")
        fits = m[m["capacity_t"] >= assigned[j]]
        chosen[sites[j]] = str((fits.iloc[0] if len(fits) else m.iloc[-1])["module_id"])
    return chosen


def warm_start_values(pb: NetworkProblem, chosen: dict[str, str]) -> dict[str, float]:
    """Values of the model's ``y`` variables (by component name) for a site → module choice."""
    values = {}
    for i, (s, mod) in enumerate(zip(pb.modules["site_id"], pb.modules["module_id"], strict=True)):
        values[f"y[{i}]"] = 1.0 if chosen.get(s) == str(mod) else 0.0
    return values
