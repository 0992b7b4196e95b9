r"""The network-design model: where to open wholesale distribution centres, of what size, and how produce flows.

Formulation (a multi-commodity, two-echelon capacitated facility-location model with a direct channel):

Sets
    :math:`K` commodity groups; :math:`S` supply rows (a region's production of one group);
    :math:`J` sites (candidate and existing centres); :math:`M_j` size modules of site *j*;
    :math:`D` demand rows (a market's or an exit's demand for one group);
    :math:`A^1 \subseteq S \times J` inbound arcs (farm → centre), :math:`A^2 \subseteq J \times D` outbound
    arcs (centre → market), :math:`A^0 \subseteq S \times D` direct arcs (farm → market, the traditional
    channel). Arcs exist only where the data lists them: the model is sparse by construction.

Parameters
    :math:`P_s` production (t/yr); :math:`q_d` demand (t/yr); :math:`Q_m`, :math:`F_m`, :math:`C_m` capacity
    (t/yr), annual fixed cost and capital cost of module *m*; :math:`c_a`, :math:`\ell_a` cost per tonne and
    loss share of arc *a*; :math:`\sigma_s` storage loss share of unsold produce; :math:`v_k` value of a
    lost tonne; :math:`\pi_d` penalty per tonne of unmet demand; :math:`r_d` price per tonne at exit *d*.

Variables
    :math:`y_m \in \{0,1\}` module *m* open; :math:`x_a \ge 0` tonnes shipped on arc *a*;
    :math:`u_d \ge 0` unmet demand; :math:`w_s \ge 0` production left unsold (in farm storage);
    :math:`v_{st}, z_{dt} \ge 0` tonnes on the steps of outside supply and demand curves.

Objective (``cost``)
    .. math:: \min \sum_m F_m y_m + \sum_{a} c_a x_a + \sum_d \pi_d u_d
              + \sum_{(s,t)} \rho_{st} v_{st} - \sum_{(d,t)} r_{dt} z_{dt}
              - \sum_{d \in E^0} r_d \sum_{a \to d} (1-\ell_a) x_a

    A lost tonne is charged once, through the balances: a tonne lost on the way to a market must be replaced
    (shipped from a farm whose produce could have been sold elsewhere, or imported at :math:`\rho`), a tonne lost
    on the way to an exit does not earn :math:`r`. Its price is therefore the shadow price of the produce where
    it was lost, not a fixed value; produce no outlet pays for is worth nothing at the margin. (Before 2026-12 the
    objective also charged :math:`v_k \ell_a x_a` and :math:`v_k \sigma_s w_s`, valuing a lost tonne twice.)
    :math:`v_k` now only reports the value of lost produce at the reference price.

    (``loss``: minimise tonnes lost :math:`\sum_a \ell_a x_a + \sum_s \sigma_s w_s + \sum_d u_d` within the
    budget.)

    Outside markets: :math:`v_{st} \in [0, W_{st}]` the tonnes bought on step *t* of outside supplier *s*'s
    upward-sloping supply curve at price :math:`\rho_{st}`; :math:`z_{dt} \in [0, W_{dt}]` the tonnes sold on step
    *t* of exit *d*'s downward-sloping demand at price :math:`r_{dt}`. Exits without steps (:math:`E^0`) take any
    quantity at :math:`r_d`.

Constraints
    - one size per site: :math:`\sum_{m \in M_j} y_m \le 1` (:math:`= 1` for existing sites kept open);
    - supply: :math:`\sum_{a \in A^1(s)} x_a + \sum_{a \in A^0(s)} x_a + w_s = P_s`; for an outside supplier
      :math:`\sum_{a \in A^1(s)} x_a + \sum_{a \in A^0(s)} x_a = \sum_t v_{st}`;
    - exit with steps: :math:`\sum_{a \to d} (1-\ell_a) x_a = \sum_t z_{dt}`;
    - seasonal storage (groups in the ``storage`` table): the centre balance loses :math:`\lambda_k h_{jk}` of the
      tonnes :math:`h_{jk}` held for the off-season; :math:`h_{jk} \le \sum_{a \in A^1(j,k)} (1-\ell_a) x_a`;
      :math:`\sum_k \mu_k h_{jk} \le 12 \sum_m H_m y_m` (tonne-months within the storage :math:`H_m` of the
      open module, :math:`\mu_k` months stored), and per group set *G* (below)
      :math:`\sum_{k \in G} \mu_k h_{jk} \le 12 \sum_{m \in M_j(G)} H_m y_m`;
      :math:`\sum_j h_{jk} = \sum_t z^{season}_{kt}`, the steps of the
      off-season market (falling net spreads), whose revenue enters the objective like an exit's;
    - centre balance per site and group: :math:`\sum_{a \in A^1(j,k)} (1-\ell_a) x_a = \sum_{a \in A^2(j,k)} x_a`;
    - demand (markets, not exits): :math:`\sum_{a \to d} (1-\ell_a) x_a + u_d = q_d` (no :math:`u_d` where the
      penalty is undefined: demand must be met);
    - capacity (aggregated): :math:`\sum_{a \in A^1(j)} x_a \le \sum_{m \in M_j} Q_m y_m`;
    - store types: a module may take only some groups (``groups`` column of ``modules``, e.g. a potato and
      vegetable store); where a site has such a module, per group *k* it excludes somewhere:
      :math:`\sum_{a \in A^1(j,k)} x_a \le \sum_{m \in M_j(k)} Q_m y_m` over the modules :math:`M_j(k)` that take
      *k* (the group-set rows below with :math:`G = \{k\}`), and the linking rows of group *k*'s arcs sum only
      those modules' :math:`y` (a store never receives fruit);
    - group sets: for each site *j* and each set *G* of groups that some module of *j* does not take — every
      single group (the store-type rows above) and each module's own set (a store's potatoes and vegetables; valid
      inequalities, implied at integer :math:`y` because a site opens one module) — with :math:`M_j(G)` the
      modules taking any group of *G*:
      :math:`\sum_{k \in G} \sum_{a \in A^1(j,k)} x_a \le \sum_{m \in M_j(G)} Q_m y_m` and the tonne-months row
      above. Without them the LP relaxation opens half a store and half an elevator and sends potatoes and
      vegetables through both halves' capacity and storage, a bound far below any plan (docs/benchmarks.md, the
      federal scenario);
    - strong linking (disaggregated, optional): :math:`x_a \le U_a \sum_{m \in M_j} y_m` for every inbound and
      outbound arc, with :math:`U_a` = min(supply or demand of the arc, largest module of *j*); or, with
      ``pairs``, one row per place pair (farm–centre, centre–market) summed over commodity groups:
      :math:`\sum_k x_{a(k)} \le \min(\sum_k U_{a(k)}, \max_m Q_m) \sum_{m \in M_j} y_m` — a sixth of the
      rows with six groups, nearly as tight when a market takes all its groups from one centre;
    - total capacity (valid when all demand must pass through centres):
      :math:`\sum_m Q_m y_m \ge \sum_{d \notin E} q_d`;
    - options: :math:`\sum_m y_m = p`; :math:`\sum_m C_m y_m \le B`; per-group minimum/maximum of open sites
      (a site's ``group`` may list several labels, ``"RU-STA|NCFD"``: region and federal district);
      :math:`\sum_{A^1} x_a \ge \alpha (\sum_{A^1} x_a + \sum_{A^0} x_a)`;
    - distinct regions (``min_regions``): with :math:`G` the regions of the sites, :math:`J_g` the sites of region
      *g* and :math:`o_g \in [0, 1]` "region *g* has an open centre",
      :math:`o_g \le \sum_{j \in J_g} \sum_{m \in M_j} y_m` and :math:`\sum_g o_g \ge R`. :math:`o_g` needs
      no integrality: at integer :math:`y`, :math:`o_g \le \min(1, \text{open sites in } g)`, so
      :math:`\sum_g o_g` never exceeds the number of regions holding an open site;
    - coverage (``coverage``): with :math:`N` the covered areas (the regions of the rule) and :math:`J(n)` the
      sites within :math:`H` hours of area *n*'s farm node, :math:`\sum_{j \in J(n)} \sum_{m \in M_j} y_m \ge 1`
      for every :math:`n \in N` (a maximal-covering rule made a constraint; an area with :math:`J(n) = \emptyset`
      is refused before the model is built, by name).

An OR-Library CFLP instance is the special case of one commodity, one supply row holding all demand, zero-cost
inbound arcs, one module per site, no direct arcs and no unmet-demand slack.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.core.expr.relational_expr import EqualityExpression, InequalityExpression

from optimization.problem import NetworkProblem, check_problem, site_regions


def _groups(keys) -> dict:
    out: dict = defaultdict(list)
    for i, k in enumerate(keys):
        out[k].append(i)
    return out


def _lin(ones=(), coefs=(), terms=()) -> LinearExpression:
    """Σ ones + Σ coef·term as one ``LinearExpression`` built from its parts: no operator dispatch per term, and
    Pyomo's standard-form compiler reads it on its fast path (on 250,000 link rows: build 0.64 → 0.39 s,
    compile 1.49 → 1.08 s)."""
    return LinearExpression([*ones, *map(MonomialTermExpression, zip(coefs, terms, strict=True))])


def _le(body: LinearExpression, upper: float) -> InequalityExpression:
    """The row ``body ≤ upper``, made as Pyomo's relational expression directly: a rule that returns a tuple
    makes Pyomo convert it (about 1 µs a row, a quarter of a link row's build)."""
    return InequalityExpression((body, upper), False)


def _eq(body: LinearExpression, rhs: float) -> EqualityExpression:
    """The row ``body = rhs`` (see :func:`_le`)."""
    return EqualityExpression((body, rhs))


def _pair_rule(x, groups: list[list[int]], bound: list[float], qmax: np.ndarray, site_of: list[int], open_ys):
    """Rule of the linking rows per place pair (summed over commodity groups):
    Σ_k x_a ≤ min(Σ_k U_a, largest module of the site) · Σ y."""

    def rule(m, g):
        arcs = groups[g]
        ys = open_ys[site_of[arcs[0]]]
        cap = min(sum(bound[a] for a in arcs), float(qmax[site_of[arcs[0]]]))
        return _le(_lin([x[a] for a in arcs], [-cap] * len(ys), ys), 0.0)

    return rule


def _link_bounds(P, q, is_exit, l2, qmax, a1_s, a1_j, a2_d, a2_j) -> tuple[np.ndarray, np.ndarray]:
    """U of the linking rows x_a ≤ U_a·Σ y (tonnes a year): inbound, the farm's production capped by the site's
    largest module; outbound, the tonnes that must leave to meet the market's demand (unbounded for an exit)
    capped the same way."""
    u1 = np.minimum(P[a1_s], qmax[a1_j])
    u2 = np.minimum(np.where(is_exit[a2_d], np.inf, q[a2_d] / np.maximum(1 - l2, 1e-9)), qmax[a2_j])
    return u1, u2


def supply_quantities(pb: NetworkProblem) -> np.ndarray:
    """Tonnes each supply row can ship: its production, or for an outside supplier the sum of its steps."""
    P = pb.supplies["quantity_t"].to_numpy(float).copy()
    t = pb.tiers
    if t is not None and len(t):
        sel = t[t["row_kind"] == "supply"]
        if len(sel):
            rows = row_numbers(row_index(pb.supplies, "supply_id"), sel.rename(columns={"row_id": "supply_id"}),
                               "supply_id")
            P[np.unique(rows)] = 0.0
            np.add.at(P, rows, sel["width_t"].to_numpy(float))
    return P


def link_bounds(pb: NetworkProblem) -> dict[str, np.ndarray]:
    """The linking rows' data per arc, aligned with ``pb.inbound`` / ``pb.outbound``: ``u1``/``u2`` the bounds U
    (t/yr, see :func:`_link_bounds`) and ``site1``/``site2`` the site's row in ``pb.sites``."""
    sup, dem, mods = pb.supplies, pb.demands, pb.modules
    sup_row = row_index(sup, "supply_id")
    dem_row = row_index(dem, "demand_id")
    site_row = {s: i for i, s in enumerate(pb.sites["site_id"])}
    qmax = np.zeros(len(site_row))
    np.maximum.at(qmax, mods["site_id"].map(site_row).to_numpy(int), mods["capacity_t"].to_numpy(float))
    a1_j = pb.inbound["site_id"].map(site_row).to_numpy(int)
    a2_j = pb.outbound["site_id"].map(site_row).to_numpy(int)
    u1, u2 = _link_bounds(supply_quantities(pb), dem["quantity_t"].to_numpy(float),
                          dem["is_exit"].fillna(False).to_numpy(bool), pb.outbound["loss"].to_numpy(float), qmax,
                          row_numbers(sup_row, pb.inbound, "supply_id"), a1_j,
                          row_numbers(dem_row, pb.outbound, "demand_id"), a2_j)
    return {"u1": u1, "u2": u2, "site1": a1_j, "site2": a2_j}


def objective_coefficients(pb: NetworkProblem) -> dict[str, dict[str, list[float]]]:
    """Per-variable coefficients (lists aligned with the problem's tables) of the cost objective's parts and of
    tonnes lost: ``cost`` (transport + handling; unmet penalty; minus revenue at exits without steps; outside
    purchases and sales on the steps ``v``/``z``) and ``loss_t`` (tonnes lost on arcs and in storage, unmet
    tonnes). ``parts`` also carries ``loss_value`` (tonnes lost × reference value), which is reported but is not
    in the objective: the balances already charge a lost tonne (see the module docstring)."""
    value = {k: pb.value_per_t.get(k, 0.0) for k in pb.commodities}
    dem = pb.demands
    is_exit = dem["is_exit"].fillna(False).to_numpy(bool)
    stepped = pb.tiered("demand")
    flat_exit = is_exit & ~np.array([k in stepped for k in zip(dem["demand_id"], dem["commodity"], strict=True)],
                                    dtype=bool)
    price = np.where(flat_exit, dem["price_per_t"].fillna(0).to_numpy(float), 0.0)
    drow = row_index(dem, "demand_id")
    parts: dict[str, dict[str, np.ndarray]] = {"transport": {}, "loss_value": {}, "exit_revenue": {}, "loss_t": {}}
    for name, t, to_demand in (("x1", pb.inbound, False), ("x2", pb.outbound, True), ("x0", pb.direct, True)):
        loss = t["loss"].to_numpy(float)
        parts["transport"][name] = t["cost_per_t"].to_numpy(float)
        parts["loss_value"][name] = t["commodity"].map(value).fillna(0).to_numpy(float) * loss
        parts["loss_t"][name] = loss
        if to_demand and len(t):
            rows = row_numbers(drow, t, "demand_id")
            parts["exit_revenue"][name] = price[rows] * (1 - loss)
        else:
            parts["exit_revenue"][name] = np.zeros(len(t))
    sup = pb.supplies
    storage = sup["storage_loss"].to_numpy(float)
    slack = [d for d in range(len(dem)) if not is_exit[d] and np.isfinite(dem["penalty_per_t"].iat[d])]
    cost = {n: (parts["transport"][n] - parts["exit_revenue"][n]).tolist() for n in ("x1", "x2", "x0")}
    cost["w"] = [0.0] * len(sup)
    penalty = dem["penalty_per_t"].to_numpy(float)
    cost["u"] = {d: float(penalty[d]) for d in slack}
    tiers = pb.tiers if pb.tiers is not None else None
    tier_price = tiers["price_per_t"].to_numpy(float) if tiers is not None and len(tiers) else np.zeros(0)
    sign = np.where(tiers["row_kind"].to_numpy() == "supply", 1.0, -1.0) if len(tier_price) else np.zeros(0)
    cost["tier"] = (sign * tier_price).tolist()
    loss_t = {n: parts["loss_t"][n].tolist() for n in ("x1", "x2", "x0")}
    loss_t["w"] = storage.tolist()
    loss_t["u"] = {d: 1.0 for d in slack}
    loss_t["tier"] = [0.0] * len(tier_price)
    out_parts = {k: {n: v.tolist() for n, v in d.items()} for k, d in parts.items()}
    out_parts["loss_value"]["w"] = (sup["value_per_t"].to_numpy(float) * storage).tolist()
    return {"cost": cost, "loss_t": loss_t, "parts": out_parts}


def module_groups(modules) -> list[frozenset[str] | None]:
    """Per module row, the commodity groups it may take (from the optional ``groups`` column, ``|``-separated), or
    None where it takes every group (no column, or an empty cell)."""
    if "groups" not in modules.columns:
        return [None] * len(modules)
    return [frozenset(str(g).split("|")) if isinstance(g, str) and g else None for g in modules["groups"]]


def _group_sets(mods_of: dict, takes: list, received: dict) -> list[tuple[int, tuple[str, ...], list[int]]]:
    """The group sets *G* of each site's rows that keep the LP relaxation from lending one module's capacity to
    groups it does not take: per site *j*, every single group and the group set of each of its modules (a potato
    and vegetable store's), within the groups the site receives (``received``: site → the groups of its inbound
    arcs), with the modules :math:`M_j(G)` that take at least one group of *G*. Only sets that leave out some
    module of the site are kept (otherwise the row is the site's aggregate one). Each item is (site, groups of
    *G*, modules of :math:`M_j(G)`)."""
    out = []
    for j in sorted(received):
        ms, groups = mods_of.get(j, []), received[j]
        if all(takes[n] is None for n in ms):
            continue
        candidates = {frozenset([k]) for k in groups} | {takes[n] & groups for n in ms if takes[n] is not None}
        for g in sorted((g for g in candidates if g), key=sorted):
            allowed = [n for n in ms if takes[n] is None or takes[n] & g]
            if len(allowed) < len(ms):
                out.append((j, tuple(sorted(g)), allowed))
    return out


def row_index(table, id_col: str) -> dict:
    """(id, commodity) → row number of a supply or demand table."""
    return {key: i for i, key in enumerate(zip(table[id_col].tolist(), table["commodity"].tolist(), strict=True))}


def row_numbers(index: dict, table, id_col: str) -> np.ndarray:
    """Row numbers (in ``index``, keyed by (id, commodity)) of each row of an arc table, as an int array."""
    keys = zip(table[id_col].tolist(), table["commodity"].tolist(), strict=True)
    return np.array([index[key] for key in keys], dtype=int)


def build_model(pb: NetworkProblem) -> pyo.ConcreteModel:
    """Build the Pyomo model of a :class:`NetworkProblem` (formulation in this module's docstring)."""
    check_problem(pb)
    with PauseGC():
        return _build(pb)


def _build(pb: NetworkProblem) -> pyo.ConcreteModel:
    """The body of :func:`build_model`; garbage collection is paused around it (millions of small objects).
    Rows are relational expressions with every variable on the left and a number on the right (:func:`_le`,
    :func:`_eq`): the translation then reads them without first rebuilding ``lhs - rhs``."""
    opt = pb.options
    sup, dem, mods, sites = pb.supplies, pb.demands, pb.modules, pb.sites
    inb, outb, dirc = pb.inbound, pb.outbound, pb.direct

    sup_row = row_index(sup, "supply_id")
    dem_row = row_index(dem, "demand_id")
    site_ids = list(sites["site_id"])
    site_row = {s: i for i, s in enumerate(site_ids)}
    a1_s = row_numbers(sup_row, inb, "supply_id")
    a1_j = inb["site_id"].map(site_row).to_numpy(int)
    a2_j = outb["site_id"].map(site_row).to_numpy(int)
    a2_d = row_numbers(dem_row, outb, "demand_id")
    a0_s = row_numbers(sup_row, dirc, "supply_id")
    a0_d = row_numbers(dem_row, dirc, "demand_id")
    m_j = mods["site_id"].map(site_row).to_numpy(int)

    P = supply_quantities(pb)
    q = dem["quantity_t"].to_numpy(float)
    Pl, ql = P.tolist(), q.tolist()
    is_exit = dem["is_exit"].fillna(False).to_numpy(bool)
    penalty = dem["penalty_per_t"].to_numpy(float)
    Q = mods["capacity_t"].to_numpy(float)
    l2 = outb["loss"].to_numpy(float)
    keep1, keep2, keep0 = ((1 - t["loss"].to_numpy(float)).tolist() for t in (inb, outb, dirc))

    mods_of = _groups(m_j)
    a1_of_s, a0_of_s = _groups(a1_s), _groups(a0_s)
    a2_of_d, a0_of_d = _groups(a2_d), _groups(a0_d)
    a1_of_j = _groups(a1_j)
    a1_of_jk = _groups(zip(a1_j.tolist(), inb["commodity"].tolist(), strict=True))
    a2_of_jk = _groups(zip(a2_j.tolist(), outb["commodity"].tolist(), strict=True))
    qmax = np.zeros(len(site_ids))
    for j, ms in mods_of.items():
        qmax[j] = Q[ms].max()
    takes = module_groups(mods)
    restricted_jk = {(j, k) for jk in (a1_of_jk, a2_of_jk) for j, k in jk
                     if any(takes[i] is not None and k not in takes[i] for i in mods_of.get(j, []))}
    received: dict = defaultdict(set)
    for j, k in a1_of_jk:
        received[j].add(k)
    group_sets = _group_sets(mods_of, takes, received)

    m = pyo.ConcreteModel(name=pb.name)
    m.M = pyo.RangeSet(0, len(mods) - 1) if len(mods) else pyo.Set(initialize=[])
    m.A1 = pyo.RangeSet(0, len(inb) - 1) if len(inb) else pyo.Set(initialize=[])
    m.A2 = pyo.RangeSet(0, len(outb) - 1) if len(outb) else pyo.Set(initialize=[])
    m.A0 = pyo.RangeSet(0, len(dirc) - 1) if len(dirc) else pyo.Set(initialize=[])
    m.S = pyo.RangeSet(0, len(sup) - 1)
    slack_rows = [d for d in range(len(dem)) if not is_exit[d] and np.isfinite(penalty[d])]
    m.U = pyo.Set(initialize=slack_rows)

    m.y = pyo.Var(m.M, domain=pyo.Binary)
    m.x1 = pyo.Var(m.A1, domain=pyo.NonNegativeReals)
    m.x2 = pyo.Var(m.A2, domain=pyo.NonNegativeReals)
    m.x0 = pyo.Var(m.A0, domain=pyo.NonNegativeReals)
    m.w = pyo.Var(m.S, domain=pyo.NonNegativeReals)
    m.u = pyo.Var(m.U, domain=pyo.NonNegativeReals)
    tiers = pb.tiers if pb.tiers is not None and len(pb.tiers) else None
    n_tiers = 0 if tiers is None else len(tiers)
    m.T = pyo.RangeSet(0, n_tiers - 1) if n_tiers else pyo.Set(initialize=[])
    width = [] if tiers is None else tiers["width_t"].astype(float).tolist()
    m.v = pyo.Var(m.T, domain=pyo.NonNegativeReals, bounds=lambda m, t: (0.0, width[t]))
    y, x1, x2, x0, w, v = (list(var.values()) for var in (m.y, m.x1, m.x2, m.x0, m.w, m.v))
    u = {d: m.u[d] for d in slack_rows}
    steps_of_s: dict[int, list[int]] = defaultdict(list)
    steps_of_d: dict[int, list[int]] = defaultdict(list)
    steps_of_k: dict[str, list[int]] = defaultdict(list)
    if tiers is not None:
        for t, (kind, rid, k) in enumerate(zip(tiers["row_kind"], tiers["row_id"], tiers["commodity"], strict=True)):
            if kind == "supply":
                steps_of_s[sup_row[(rid, k)]].append(t)
            elif kind == "season":
                steps_of_k[k].append(t)
            else:
                steps_of_d[dem_row[(rid, k)]].append(t)
    for s_ in steps_of_s:
        w[s_].fix(0.0)

    existing = dict(zip(sites["site_id"], sites["existing"].fillna(False).astype(bool), strict=True))

    def one_size(m, j):
        lhs = _lin([y[i] for i in mods_of[j]])
        return _eq(lhs, 1) if existing[site_ids[j]] and opt.force_existing else _le(lhs, 1)

    m.one_size = pyo.Constraint(sorted(mods_of), rule=one_size)
    def supply_rule(m, s):
        shipped = [*(x1[a] for a in a1_of_s.get(s, [])), *(x0[a] for a in a0_of_s.get(s, []))]
        if s in steps_of_s:
            steps = steps_of_s[s]
            return _eq(_lin(shipped, [-1.0] * len(steps), [v[t] for t in steps]), 0.0)
        return _eq(_lin([*shipped, w[s]]), Pl[s])

    m.supply = pyo.Constraint(m.S, rule=supply_rule)
    def _balance(arcs_in, arcs_out, held=()):
        return _lin([], [*(keep1[a] for a in arcs_in), *([-1.0] * len(arcs_out)), *(-lam for lam, _ in held)],
                    [*(x1[a] for a in arcs_in), *(x2[a] for a in arcs_out), *(h for _, h in held)])

    def _link(x, bound, ys):
        if not ys:  # no module of the site takes the group: the arc stays empty
            return LinearExpression([x])
        return LinearExpression([x, MonomialTermExpression((-bound, ys[0]))] if len(ys) == 1 else
                                [x, *(MonomialTermExpression((-bound, yy)) for yy in ys)])

    store = pb.storage if pb.storage is not None and len(pb.storage) else None
    months = {} if store is None else dict(zip(store["commodity"], store["months"].astype(float), strict=True))
    lam = {} if store is None else dict(zip(store["commodity"], store["loss"].astype(float), strict=True))
    held_keys = sorted(jk for jk in a1_of_jk if jk[1] in months)
    m.H = pyo.Set(initialize=held_keys, dimen=2)
    m.h = pyo.Var(m.H, domain=pyo.NonNegativeReals)
    m.balance = pyo.Constraint(
        sorted(set(a1_of_jk) | set(a2_of_jk)),
        rule=lambda m, j, k: _eq(_balance(a1_of_jk.get((j, k), []), a2_of_jk.get((j, k), []),
                                          [(lam[k], m.h[j, k])] if (j, k) in m.H else []), 0.0))
    if held_keys:
        m.store_in = pyo.Constraint(m.H, rule=lambda m, j, k: _le(
            _lin([m.h[j, k]], [-keep1[a] for a in a1_of_jk[(j, k)]], [x1[a] for a in a1_of_jk[(j, k)]]), 0.0))
        H_m = (mods["storage_t"].fillna(0.0).astype(float).to_numpy() if "storage_t" in mods.columns
               else np.zeros(len(mods))).tolist()
        held_of_j = _groups(j for j, _ in held_keys)
        m.tonne_months = pyo.Constraint(sorted(held_of_j), rule=lambda m, j: _le(_lin(
            [], [*(months[held_keys[i][1]] for i in held_of_j[j]), *(-12.0 * H_m[i] for i in mods_of.get(j, []))],
            [*(m.h[held_keys[i]] for i in held_of_j[j]), *(y[i] for i in mods_of.get(j, []))]), 0.0))
        held = set(held_keys)
        held_sets = [(j, [k for k in g if (j, k) in held], ms) for j, g, ms in group_sets]
        held_sets = [item for item in held_sets if item[1]]

        def tonne_months_set(m, i):
            j, ks, ms = held_sets[i]
            return _le(_lin([], [*(months[k] for k in ks), *(-12.0 * H_m[n] for n in ms)],
                            [*(m.h[j, k] for k in ks), *(y[n] for n in ms)]), 0.0)

        m.tonne_months_set = pyo.Constraint(range(len(held_sets)), rule=tonne_months_set)
        held_of_k = _groups(k for _, k in held_keys)
        m.season = pyo.Constraint(sorted(held_of_k), rule=lambda m, k: _eq(_lin(
            [m.h[held_keys[i]] for i in held_of_k[k]], [-1.0] * len(steps_of_k.get(k, [])),
            [v[t] for t in steps_of_k.get(k, [])]), 0.0))
    market_rows = [d for d in range(len(dem)) if not is_exit[d]]
    slack = set(slack_rows)

    def demand_rule(m, d):
        in2, in0 = a2_of_d.get(d, []), a0_of_d.get(d, [])
        arrivals = _lin([u[d]] if d in slack else [], [*(keep2[a] for a in in2), *(keep0[a] for a in in0)],
                        [*(x2[a] for a in in2), *(x0[a] for a in in0)])
        if d in slack:
            return _eq(arrivals, ql[d])
        if not a2_of_d.get(d) and not a0_of_d.get(d):
            return pyo.Constraint.Infeasible if ql[d] > 0 else pyo.Constraint.Skip
        return _eq(arrivals, ql[d])

    m.demand = pyo.Constraint(market_rows, rule=demand_rule)

    def exit_rule(m, d):
        in2, in0 = a2_of_d.get(d, []), a0_of_d.get(d, [])
        steps = steps_of_d[d]
        return _eq(_lin([], [*(keep2[a] for a in in2), *(keep0[a] for a in in0), *([-1.0] * len(steps))],
                        [*(x2[a] for a in in2), *(x0[a] for a in in0), *(v[t] for t in steps)]), 0.0)

    m.exit_steps = pyo.Constraint(sorted(steps_of_d), rule=exit_rule)
    Ql = Q.tolist()
    allowed = {jk: [i for i in mods_of.get(jk[0], []) if takes[i] is None or jk[1] in takes[i]]
               for jk in restricted_jk}
    def capacity_set(m, i):
        j, g, ms = group_sets[i]
        return _le(_lin([x1[a] for k in g for a in a1_of_jk.get((j, k), [])], [-Ql[n] for n in ms],
                        [y[n] for n in ms]), 0.0)

    m.capacity_set = pyo.Constraint(range(len(group_sets)), rule=capacity_set)
    m.capacity = pyo.Constraint(sorted(a1_of_j), rule=lambda m, j: _le(
        _lin([x1[a] for a in a1_of_j[j]], [-Ql[i] for i in mods_of.get(j, [])], [y[i] for i in mods_of.get(j, [])]),
        0.0))
    linking = {True: "all", False: "none"}.get(opt.strong_linking, opt.strong_linking)
    if linking != "none":
        open_ys = defaultdict(list, {j: [y[i] for i in ms] for j, ms in mods_of.items()})
        ys_of = {jk: [y[i] for i in ms] for jk, ms in allowed.items()}
        u1, u2 = (u.tolist() for u in _link_bounds(P, q, is_exit, l2, qmax, a1_s, a1_j, a2_d, a2_j))
        a2_jl = a2_j.tolist()
        a1_jl = a1_j.tolist()
        k1l, k2l = inb["commodity"].tolist(), outb["commodity"].tolist()

        def arc_ys(j: int, k: str) -> list:
            """The binaries of the modules of site j that may take group k (all of the site's when none excludes
            it)."""
            return ys_of.get((j, k), open_ys[j])
        if linking == "pairs":
            pair_out = _groups(zip(a2_jl, outb["demand_id"].tolist(), strict=True))
            m.link_out = pyo.Constraint(
                list(range(len(pair_out))),
                rule=_pair_rule(x2, list(pair_out.values()), u2, qmax, a2_jl, open_ys))
            pair_in = _groups(zip(inb["supply_id"].tolist(), a1_jl, strict=True))
            m.link_in = pyo.Constraint(
                list(range(len(pair_in))),
                rule=_pair_rule(x1, list(pair_in.values()), u1, qmax, a1_jl, open_ys))
        else:
            m.link_out = pyo.Constraint(m.A2, rule=lambda m, a: _le(_link(x2[a], u2[a], arc_ys(a2_jl[a], k2l[a])),
                                                                    0.0))
        if linking == "all":
            m.link_in = pyo.Constraint(m.A1, rule=lambda m, a: _le(_link(x1[a], u1[a], arc_ys(a1_jl[a], k1l[a])),
                                                                   0.0))
    if len(dirc) == 0 and not slack_rows and market_rows:
        m.total_capacity = pyo.Constraint(expr=sum(Ql[i] * y[i] for i in m.M) >= float(q[market_rows].sum()))
    if opt.p is not None:
        m.p_sites = pyo.Constraint(expr=sum(y) == opt.p)
    if opt.budget is not None:
        cap = mods["capital_cost"].astype(float).tolist()
        m.budget = pyo.Constraint(expr=sum(cap[i] * y[i] for i in m.M) <= opt.budget)
    group_of = dict(zip(sites["site_id"], sites["group"], strict=True))
    for name, limits, sense in (("group_min", opt.min_per_group, ">="), ("group_max", opt.max_per_group, "<=")):
        rows = {}
        for g, n in limits.items():
            ys = [i for j, ms in mods_of.items() if g in str(group_of[site_ids[j]]).split("|") for i in ms]
            rows[g] = (sum(y[i] for i in ys) >= n) if sense == ">=" else (sum(y[i] for i in ys) <= n)
        if rows:
            setattr(m, name, pyo.Constraint(list(rows), rule=lambda m, g, rows=rows: rows[g]))
    if opt.min_regions is not None and opt.min_regions > 0:
        region_sites = _groups(site_regions(sites))
        names = sorted(region_sites)
        m.G = pyo.Set(initialize=names)
        m.o = pyo.Var(m.G, bounds=(0.0, 1.0))
        m.region_open = pyo.Constraint(m.G, rule=lambda m, g: _le(_lin(
            [m.o[g]], [-1.0] * sum(len(mods_of.get(j, [])) for j in region_sites[g]),
            [y[i] for j in region_sites[g] for i in mods_of.get(j, [])]), 0.0))
        m.min_regions = pyo.Constraint(expr=sum(m.o[g] for g in names) >= opt.min_regions)
    if opt.coverage:
        areas = sorted(opt.coverage)
        m.N = pyo.Set(initialize=areas)
        m.coverage = pyo.Constraint(m.N, rule=lambda m, n: _lin(
            [y[i] for sid in opt.coverage[n] for i in mods_of.get(site_row[sid], [])]) >= 1.0)
    if opt.min_share_through_centres is not None:
        alpha = opt.min_share_through_centres
        m.share = pyo.Constraint(expr=(1 - alpha) * sum(x1) >= alpha * sum(x0))

    coef = objective_coefficients(pb)
    if opt.objective == "loss":
        k1, k2, k0, kw, ku, kt = (coef["loss_t"][t] for t in ("x1", "x2", "x0", "w", "u", "tier"))
        k_y = [0.0] * len(mods)
    else:
        k1, k2, k0, kw, ku, kt = (coef["cost"][t] for t in ("x1", "x2", "x0", "w", "u", "tier"))
        k_y = mods["fixed_cost"].astype(float).tolist()
    m.obj = pyo.Objective(
        expr=_lin((), [*k_y, *k1, *k2, *k0, *kw, *(ku[d] for d in slack_rows), *kt],
                  [*y, *x1, *x2, *x0, *w, *(u[d] for d in slack_rows), *v]),
        sense=pyo.minimize)
    m._problem = pb
    return m
