"""A fast greedy add/drop heuristic whose site choice warm-starts the MIP.

It works on a single-echelon approximation of the problem: the cost of serving demand row *d* from site *j* is
the outbound arc's cost and lost value plus the cheapest inbound arc's cost and lost value for that site and
commodity; without any site, a demand row pays its cheapest direct arc or its unmet penalty (a demand that must
be met pays a prohibitive cost instead). Each tonne delivered uses 1/((1-loss out)(1-loss in)) tonnes of the
site's throughput capacity.

Greedy add (lazy: a site's gain only falls as others open, so stale gains are upper bounds) opens the site and
size module with the largest net saving — the saving on the demand rows it would take, most valuable first, up
to the module's capacity, minus the module's annual fixed cost — and gives it those rows; it stops when no
opening saves anything (or at p sites). When no capacity ever bound, drop then closes any site whose removal
lowers the cost. Each open site takes the smallest module that covers the load it was given.
"""

from __future__ import annotations

import heapq

import numpy as np
import pandas as pd

from optimization.model import row_index, row_numbers
from optimization.problem import NetworkProblem


def _service_arcs(pb: NetworkProblem):
    """Sparse single-echelon service costs: arrays (site index, demand index, cost per tonne delivered), the
    baseline cost per demand row (cheapest direct arc, the unmet penalty, or a prohibitive cost where demand
    must be met), demand weights (t), throughput used per tonne delivered, site ids."""
    value = pb.value_per_t
    sites = list(pb.sites["site_id"])
    srow = {s: i for i, s in enumerate(sites)}
    dem = pb.demands.reset_index(drop=True)
    drow = row_index(dem, "demand_id")
    inb = pb.inbound
    buy = _cheapest_step(pb)
    in_cost = (inb["cost_per_t"] + _step_price(inb, buy) + inb["loss"] * inb["commodity"].map(value).fillna(0)) / (
        1 - inb["loss"])
    best_in = pd.Series(in_cost.to_numpy(), index=pd.MultiIndex.from_arrays([inb["site_id"], inb["commodity"]]))
    best_in = best_in.groupby(level=[0, 1]).min()
    worst_keep = pd.Series(1 - inb["loss"].to_numpy(float),
                           index=pd.MultiIndex.from_arrays([inb["site_id"], inb["commodity"]]))
    worst_keep = worst_keep.groupby(level=[0, 1]).min()
    out = pb.outbound
    out_cost = (out["cost_per_t"] + out["loss"] * out["commodity"].map(value).fillna(0)) / (1 - out["loss"])
    key = pd.MultiIndex.from_arrays([out["site_id"], out["commodity"]])
    # float arrays even when a group has no inbound arc at all (no module takes it): an empty reindex is object
    total = out_cost.to_numpy(float) + best_in.reindex(key).to_numpy(float)
    jj = out["site_id"].map(srow).to_numpy(int)
    dd = row_numbers(drow, out, "demand_id")
    use = 1 / ((1 - out["loss"].to_numpy(float)) * worst_keep.reindex(key).to_numpy(float))
    ok = np.isfinite(total) & np.isfinite(use)
    must = 100 * (float(np.nanmax(total[ok])) if ok.any() else 1.0) + 1.0
    base = np.where(dem["penalty_per_t"].notna(), dem["penalty_per_t"].fillna(0).to_numpy(float), must)
    if len(pb.direct):
        dr = pb.direct
        dcost = (dr["cost_per_t"] + _step_price(dr, buy) + dr["loss"] * dr["commodity"].map(value).fillna(0)) / (
            1 - dr["loss"])
        di = row_numbers(drow, dr, "demand_id")
        np.minimum.at(base, di, dcost.to_numpy())
    exit_mask = dem["is_exit"].fillna(False).to_numpy(bool)
    weight = np.where(exit_mask, 0.0, dem["quantity_t"].to_numpy(float))
    return jj[ok], dd[ok], total[ok], base, weight, use[ok], sites


def _cheapest_step(pb: NetworkProblem) -> pd.Series:
    """Price of the cheapest step of each outside supplier, keyed by (supply id, commodity)."""
    t = pb.tiers
    if t is None or not len(t):
        return pd.Series(dtype=float)
    sel = t[t["row_kind"] == "supply"]
    return sel.groupby(["row_id", "commodity"])["price_per_t"].min()


def _step_price(arcs: pd.DataFrame, buy: pd.Series) -> np.ndarray:
    """Per arc, the purchase price of its outside supplier's cheapest step (0 for a farm)."""
    if buy.empty or not len(arcs):
        return np.zeros(len(arcs))
    key = pd.MultiIndex.from_arrays([arcs["supply_id"], arcs["commodity"]])
    return buy.reindex(key).fillna(0.0).to_numpy(float)


def _buckets(keys: np.ndarray, n: int, within: np.ndarray | None = None) -> list[np.ndarray]:
    """Positions of ``keys`` grouped by key value 0..n-1, each group ordered by ``within`` (ascending) if given."""
    order = np.lexsort((keys,) if within is None else (within, keys))
    cut = np.searchsorted(keys[order], np.arange(n + 1))
    return [order[cut[i]:cut[i + 1]] for i in range(n)]


def _fitting_module(ms: np.ndarray, mcap: np.ndarray, tonnes: float) -> int:
    """The smallest of a site's modules ``ms`` (sorted by capacity) that carries ``tonnes``, else the largest."""
    fits = ms[mcap[ms] >= tonnes - 1e-9]
    return int(fits[0] if len(fits) else ms[-1])


def _served(open_: np.ndarray, jj, dd, cc, base) -> np.ndarray:
    served = base.copy()
    on = open_[jj]
    np.minimum.at(served, dd[on], cc[on])
    return served


def _drop(open_: np.ndarray, keep: np.ndarray, fixed: np.ndarray, jj, dd, cc, base, w) -> None:
    """Close, one at a time, the open site (not in ``keep``) whose removal lowers the uncapacitated cost most."""
    while True:
        on = open_[jj]
        if not on.any():
            return
        order = np.lexsort((cc[on], dd[on]))
        d_on, c_on, j_on = dd[on][order], cc[on][order], jj[on][order]
        first = np.r_[True, d_on[1:] != d_on[:-1]]
        best_d, best_c, best_j = d_on[first], c_on[first], j_on[first]
        starts = np.flatnonzero(first)
        has_second = np.r_[d_on[1:] == d_on[:-1], False][starts]
        second = base.copy()
        second[best_d[has_second]] = np.minimum(base[best_d[has_second]], c_on[starts[has_second] + 1])
        useful = best_c < base[best_d]
        increase = np.bincount(best_j[useful], weights=(second[best_d[useful]] - best_c[useful]) * w[best_d[useful]],
                               minlength=len(open_))
        saving = np.where(open_ & ~keep, fixed - increase, -np.inf)
        j = int(np.argmax(saving))
        if not np.isfinite(saving[j]) or saving[j] <= 1e-9:
            return
        open_[j] = False


def greedy_sites(pb: NetworkProblem, max_rounds: int | None = None) -> dict[str, str]:
    """Site id → module id of a good network (see the module docstring); ``max_rounds`` caps the openings."""
    jj, dd, cc, base, w, use, sites = _service_arcs(pb)
    J = len(sites)
    mods = pb.modules.reset_index(drop=True)
    site_row = {s: i for i, s in enumerate(sites)}
    mj = mods["site_id"].map(site_row).to_numpy(int)
    mcap = mods["capacity_t"].to_numpy(float)
    mfix = mods["fixed_cost"].to_numpy(float)
    mods_of = _buckets(mj, J, within=mcap)
    arcs_of = _buckets(jj, J)
    existing = pb.sites["existing"].fillna(False).to_numpy(bool) & pb.options.force_existing
    p = pb.options.p
    served = base.copy()
    load = np.zeros(J)
    open_ = np.zeros(J, bool)
    bound = {"hit": False}

    def evaluate(j: int) -> tuple[float, int, np.ndarray, np.ndarray]:
        """Net saving of opening site j with its best module; that module; the arcs it takes and the share of
        each arc's demand row."""
        arcs = arcs_of[j]
        if not len(mods_of[j]):
            return -np.inf, -1, arcs[:0], np.zeros(0)
        sav = (served[dd[arcs]] - cc[arcs]) * w[dd[arcs]]
        pos = sav > 0
        arcs, sav = arcs[pos], sav[pos]
        rank = np.argsort(-sav / np.maximum(w[dd[arcs]] * use[arcs], 1e-12), kind="stable")
        arcs, sav = arcs[rank], sav[rank]
        need = w[dd[arcs]] * use[arcs]
        cum = np.cumsum(need)
        best = (-np.inf, -1, arcs[:0], np.zeros(0))
        for m in mods_of[j]:
            share = np.clip((mcap[m] - (cum - need)) / np.maximum(need, 1e-12), 0.0, 1.0)
            net = float(np.dot(sav, share)) - mfix[m]
            if net > best[0]:
                best = (net, int(m), arcs, share)
        if len(need) and best[1] >= 0 and cum[-1] > mcap[best[1]]:
            bound["hit"] = True
        return best

    owner = np.full(len(w), -1)

    def open_site(j: int, arcs: np.ndarray, share: np.ndarray) -> None:
        open_[j] = True
        taken = arcs[share >= 0.5]
        d = dd[taken]
        prev = owner[d]
        moved = prev >= 0
        np.subtract.at(load, jj[prev[moved]], w[d[moved]] * use[prev[moved]])
        owner[d] = taken
        served[d] = cc[taken]
        load[j] += float(np.dot(w[d], use[taken]))

    for j in np.flatnonzero(existing):
        _, _, arcs, share = evaluate(int(j))
        open_site(int(j), arcs, share)
    heap = [(-evaluate(j)[0], j) for j in range(J) if not open_[j]]
    heap = [(g, j) for g, j in heap if np.isfinite(g)]
    heapq.heapify(heap)
    rounds = 0
    while heap and (p is None or open_.sum() < p) and (max_rounds is None or rounds < max_rounds):
        _, j = heapq.heappop(heap)
        gain, m, arcs, share = evaluate(j)
        if heap and gain < -heap[0][0] - 1e-9 * max(1.0, abs(gain)):
            if np.isfinite(gain):
                heapq.heappush(heap, (-gain, j))
            continue
        if m < 0 or (gain <= 0 and p is None):
            break
        open_site(j, arcs, share)
        rounds += 1
    if p is None and not bound["hit"]:
        fixed_min = np.array([mfix[m].min() if len(m) else np.inf for m in mods_of])
        _drop(open_, existing, fixed_min, jj, dd, cc, base, w)
        load = _loads(open_, jj, dd, cc, base, w, use, J)
    elif p is None:
        _drop_capacitated(open_, existing, owner, load, served, mods_of, mcap, mfix, jj, dd, cc, base, w, use)
    chosen: dict[str, str] = {}
    for j in np.flatnonzero(open_):
        chosen[sites[j]] = str(mods.at[_fitting_module(mods_of[j], mcap, load[j]), "module_id"])
    return chosen


def _drop_capacitated(open_, keep, owner, load, served, mods_of, mcap, mfix, jj, dd, cc, base, w, use,
                      passes: int = 3) -> None:
    """Close open sites (not in ``keep``), least used first, whenever moving their demand rows to the cheapest
    open sites with room left (or to the baseline) costs less than the fixed cost saved. Updates ``open_``,
    ``owner`` (serving arc of each demand row, -1 = baseline), ``load`` and ``served`` in place."""
    arcs_by_cost = _buckets(dd, len(w), within=cc)
    cap_max = np.array([mcap[m].max() if len(m) else 0.0 for m in mods_of])

    for _ in range(passes):
        changed = False
        rows_of: dict[int, list[int]] = {}
        for d in np.flatnonzero(owner >= 0):
            rows_of.setdefault(int(jj[owner[d]]), []).append(int(d))
        util = np.where(cap_max > 0, load / np.maximum(cap_max, 1e-12), np.inf)
        for j in sorted(np.flatnonzero(open_ & ~keep), key=lambda j: util[j]):
            spare = cap_max - load
            increase, moves = 0.0, []
            for d in rows_of.get(int(j), []):
                a_old = owner[d]
                if a_old < 0 or jj[a_old] != j:
                    continue
                new_arc, new_cost = -1, base[d]
                for a in arcs_by_cost[d]:
                    if cc[a] >= base[d]:
                        break
                    k = jj[a]
                    if k != j and open_[k] and spare[k] >= w[d] * use[a]:
                        new_arc, new_cost = int(a), cc[a]
                        break
                if new_arc >= 0:
                    spare[jj[new_arc]] -= w[d] * use[new_arc]
                increase += w[d] * (new_cost - cc[a_old])
                moves.append((d, new_arc, new_cost))
            if mfix[_fitting_module(mods_of[j], mcap, load[j])] <= increase:
                continue
            open_[j] = False
            load[j] = 0.0
            changed = True
            for d, a, c in moves:
                owner[d], served[d] = a, c
                if a >= 0:
                    load[jj[a]] += w[d] * use[a]
                    rows_of.setdefault(int(jj[a]), []).append(d)
        if not changed:
            return


def _loads(open_: np.ndarray, jj, dd, cc, base, w, use, J: int) -> np.ndarray:
    """Throughput each open site needs when every demand row goes to its cheapest open site."""
    served = _served(open_, jj, dd, cc, base)
    on = open_[jj] & (cc <= served[dd]) & (cc < base[dd])
    first = np.zeros(len(w), bool)
    load = np.zeros(J)
    for a in np.flatnonzero(on):
        d = dd[a]
        if not first[d]:
            first[d] = True
            load[jj[a]] += w[d] * use[a]
    return load


def module_choice(modules, chosen: dict[str, str]) -> np.ndarray:
    """1.0 for each row of a modules table that a site → module choice opens, else 0.0."""
    return np.array([1.0 if chosen.get(s) == str(mod) else 0.0
                     for s, mod in zip(modules["site_id"], modules["module_id"], strict=True)])


def warm_start_values(pb: NetworkProblem, chosen: dict[str, str]) -> dict[str, float]:
    """Values of the model's ``y`` variables (by component name) for a site → module choice."""
    return {f"y[{i}]": float(v) for i, v in enumerate(module_choice(pb.modules, chosen))}
