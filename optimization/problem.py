"""The data of a network-design problem, independent of how it was assembled (scenario or OR-Library file).

Every table is a pandas DataFrame with the columns listed below; quantities are tonnes a year, costs RUB (or
the instance's own currency) a year or per tonne, loss shares are fractions (0-1). :func:`check_problem`
validates a problem before a model is built and names the table, row and column of anything wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class ProblemError(ValueError):
    """A problem whose data cannot form a model; the message names the table and column."""


@dataclass
class Options:
    """Switches a scenario can set on the model (all optional).

    - ``p``: exactly this many sites open (counting existing ones);
    - ``budget``: cap on the capital cost of opened modules (same unit as ``capital_cost``);
    - ``force_existing``: existing sites must stay open (else they may close);
    - ``min_per_group`` / ``max_per_group``: open sites per group label (region or federal district);
    - ``min_share_through_centres``: fraction of all shipped supply that must pass through centres;
    - ``objective``: ``cost`` (minimise total annual cost) or ``loss`` (minimise tonnes lost; needs ``budget``);
    - ``min_regions``: open sites in at least this many different regions (a site's region is its ``region``
      column, else the first label of its ``group``);
    - ``coverage``: the coverage rule, covered area → the sites within reach of it (e.g. region id → the sites
      within H hours of its farm node): at least one of them open for every area;
    - ``strong_linking``: ``"all"`` (or True) adds the disaggregated rows ``x ≤ U·Σ y`` on every inbound and
      outbound arc; ``"outbound"`` only on centre → market arcs; ``"none"`` (or False) keeps only the aggregated
      capacity rows.
    """

    p: int | None = None
    budget: float | None = None
    force_existing: bool = True
    min_per_group: dict[str, int] = field(default_factory=dict)
    max_per_group: dict[str, int] = field(default_factory=dict)
    min_share_through_centres: float | None = None
    min_regions: int | None = None
    coverage: dict[str, list[str]] = field(default_factory=dict)
    objective: str = "cost"
    strong_linking: bool | str = "all"


@dataclass
class NetworkProblem:
    """A multi-commodity, two-echelon facility-location problem with a direct (traditional) channel.

    Tables and columns:

    - ``supplies``: supply_id, commodity, quantity_t, storage_loss (fraction of unsold produce lost),
      value_per_t (value of a lost tonne);
    - ``sites``: site_id, existing (bool), group (labels for per-group limits, ``|``-separated, e.g.
      ``"RU-STA|NCFD"``); optional ``region`` (the site's region for ``min_regions``; default the first label of
      ``group``);
    - ``modules``: site_id, module_id, capacity_t (throughput a year), fixed_cost (annualised capital + fixed
      operating, a year), capital_cost (for the budget); optional ``groups`` (the commodity groups the module may
      take, ``|``-separated; empty or absent: all, e.g. ``"potatoes|vegetables"`` for a potato and vegetable
      store; a module takes nothing of a group it does not name, so in a problem whose groups are merged,
      :mod:`optimization.aggregate`, it takes nothing) and ``store_type`` (a label the results carry);
    - ``demands``: demand_id, commodity, quantity_t, penalty_per_t (unmet demand; NaN = must be met),
      is_exit (bool: an outlet that takes any quantity at ``price_per_t``), price_per_t;
    - ``inbound``: supply_id, site_id, commodity, cost_per_t, loss (farm → centre);
    - ``outbound``: site_id, demand_id, commodity, cost_per_t, loss (centre → market);
    - ``direct``: supply_id, demand_id, commodity, cost_per_t, loss (farm → market, bypassing centres);
    - ``tiers`` (optional): row_kind (``supply`` or ``demand``), row_id, commodity, width_t, price_per_t — the
      steps of an outside market's curve. A supply row with tiers is an outside supplier: it ships at most
      Σ width_t, paying ``price_per_t`` on the tonnes of each step (its ``quantity_t`` and ``storage_loss`` are
      ignored, nothing is "unsold"). An exit row with tiers buys at most Σ width_t arriving tonnes, paying
      ``price_per_t`` for each step (its ``price_per_t`` column is then ignored). Steps of a downward-sloping
      demand have falling prices, of an upward-sloping supply rising prices, so the optimum fills them in order.

    - ``storage`` (optional): commodity, months, loss — seasonal storage at the centres: a group listed here may
      be held at a centre for ``months`` (losing the share ``loss`` of what is stored) and sold in the off-season
      on the steps of the ``tiers`` rows with row_kind ``season`` and row_id ``season`` (width t stored, price
      RUB per tonne stored: the seasonal spread net of financing and variable storage cost). A module's storage
      capacity (optional column ``storage_t`` of ``modules``, tonnes held at once) bounds the tonne-months stored:
      Σ_k months_k · stored_jk ≤ 12 · storage of the open module.

    A flow's cost is per tonne shipped; a share ``loss`` of it does not arrive.
    """

    commodities: list[str]
    supplies: pd.DataFrame
    sites: pd.DataFrame
    modules: pd.DataFrame
    demands: pd.DataFrame
    inbound: pd.DataFrame
    outbound: pd.DataFrame
    direct: pd.DataFrame
    options: Options = field(default_factory=Options)
    name: str = "problem"
    value_per_t: dict[str, float] = field(default_factory=dict)
    tiers: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TIER_COLUMNS))
    storage: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=STORAGE_COLUMNS))

    def size(self) -> dict[str, int]:
        """Counts of the model's main index sets (sites, modules, arcs by kind)."""
        return {"sites": len(self.sites), "modules": len(self.modules), "supplies": len(self.supplies),
                "demands": len(self.demands), "inbound": len(self.inbound), "outbound": len(self.outbound),
                "direct": len(self.direct), "tiers": len(self.tiers)}

    def tiered(self, kind: str) -> set[tuple[str, str]]:
        """(row id, commodity) of the supply (``kind="supply"``) or demand rows that carry tiers."""
        t = self.tiers
        if t is None or t.empty:
            return set()
        sel = t[t["row_kind"] == kind]
        return set(zip(sel["row_id"].tolist(), sel["commodity"].tolist(), strict=True))


def site_regions(sites: pd.DataFrame) -> list[str]:
    """Each site's region: its ``region`` column, else the first ``|``-separated label of its ``group``."""
    if "region" in sites.columns:
        return [str(r) for r in sites["region"]]
    return [str(g).split("|")[0] for g in sites["group"]]


TIER_COLUMNS = ["row_kind", "row_id", "commodity", "width_t", "price_per_t"]
STORAGE_COLUMNS = ["commodity", "months", "loss"]
COLUMNS = {
    "supplies": ["supply_id", "commodity", "quantity_t", "storage_loss", "value_per_t"],
    "sites": ["site_id", "existing", "group"],
    "modules": ["site_id", "module_id", "capacity_t", "fixed_cost", "capital_cost"],
    "demands": ["demand_id", "commodity", "quantity_t", "penalty_per_t", "is_exit", "price_per_t"],
    "inbound": ["supply_id", "site_id", "commodity", "cost_per_t", "loss"],
    "outbound": ["site_id", "demand_id", "commodity", "cost_per_t", "loss"],
    "direct": ["supply_id", "demand_id", "commodity", "cost_per_t", "loss"],
}
NONNEGATIVE = {
    "supplies": ["quantity_t", "storage_loss", "value_per_t"],
    "modules": ["capacity_t", "fixed_cost", "capital_cost"],
    "demands": ["quantity_t"],
    "inbound": ["cost_per_t", "loss"],
    "outbound": ["cost_per_t", "loss"],
    "direct": ["cost_per_t", "loss"],
}


def check_problem(pb: NetworkProblem) -> None:
    """Raise ProblemError naming the table, column and row of the first kind of bad data found."""
    for table, cols in COLUMNS.items():
        frame: pd.DataFrame = getattr(pb, table)
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ProblemError(f"{table}: missing column(s) {missing}")
        for col in NONNEGATIVE.get(table, []):
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = frame.index[~(values >= 0)]
            if len(bad):
                raise ProblemError(f"{table}.{col}: must be a number ≥ 0; row {bad[0]} has {frame.at[bad[0], col]!r}")
        for col in ("loss", "storage_loss"):
            if col in frame.columns and (frame[col] >= 1).any():
                raise ProblemError(f"{table}.{col}: loss shares are fractions below 1")
    sites = set(pb.sites["site_id"])
    for table, col, known in (("modules", "site_id", sites), ("inbound", "site_id", sites),
                              ("outbound", "site_id", sites), ("inbound", "supply_id", set(pb.supplies["supply_id"])),
                              ("direct", "supply_id", set(pb.supplies["supply_id"])),
                              ("outbound", "demand_id", set(pb.demands["demand_id"])),
                              ("direct", "demand_id", set(pb.demands["demand_id"]))):
        frame = getattr(pb, table)
        unknown = sorted(set(frame.loc[~frame[col].isin(known), col].tolist()))
        if unknown:
            raise ProblemError(f"{table}.{col}: unknown id(s) {unknown[:5]}")
    if "groups" in pb.modules.columns:
        bad = [i for i, g in enumerate(pb.modules["groups"]) if not (isinstance(g, str) or pd.isna(g))]
        if bad:
            raise ProblemError(f"modules.groups: '|'-separated group names or empty; row {bad[0]} has "
                               f"{pb.modules['groups'].iat[bad[0]]!r}")
    tiers = pb.tiers if pb.tiers is not None else pd.DataFrame(columns=TIER_COLUMNS)
    missing = [c for c in TIER_COLUMNS if c not in tiers.columns]
    if missing:
        raise ProblemError(f"tiers: missing column(s) {missing}")
    if len(tiers):
        bad_kind = tiers.index[~tiers["row_kind"].isin(["supply", "demand", "season"])]
        if len(bad_kind):
            raise ProblemError(f"tiers.row_kind: 'supply', 'demand' or 'season'; row {bad_kind[0]} has "
                               f"{tiers.at[bad_kind[0], 'row_kind']!r}")
        for col in ("width_t", "price_per_t"):
            values = pd.to_numeric(tiers[col], errors="coerce")
            bad = tiers.index[~(np.isfinite(values) & (values >= 0))]
            if len(bad):
                raise ProblemError(f"tiers.{col}: must be a finite number ≥ 0; row {bad[0]} has "
                                   f"{tiers.at[bad[0], col]!r}")
        stored = set() if pb.storage is None else set(pb.storage["commodity"])
        keys = {"season": {("season", k) for k in stored},
                "supply": set(zip(pb.supplies["supply_id"], pb.supplies["commodity"], strict=True)),
                "demand": set(zip(pb.demands.loc[pb.demands["is_exit"].fillna(False).astype(bool), "demand_id"],
                                  pb.demands.loc[pb.demands["is_exit"].fillna(False).astype(bool), "commodity"],
                                  strict=True))}
        for r in tiers.itertuples():
            if (r.row_id, r.commodity) not in keys[r.row_kind]:
                what = {"supply": "supply row", "demand": "exit (is_exit) demand row",
                        "season": "('season', group) of a group in the storage table"}[r.row_kind]
                raise ProblemError(f"tiers: ({r.row_id!r}, {r.commodity!r}) is not a {what}")
    if pb.options.p is not None and pb.options.p < 0:
        raise ProblemError(f"options.p: must be ≥ 0, got {pb.options.p}")
    if pb.options.strong_linking not in (True, False, "all", "outbound", "pairs", "none"):
        raise ProblemError("options.strong_linking: 'all', 'outbound', 'pairs' or 'none', "
                           f"got {pb.options.strong_linking!r}")
    if pb.options.objective not in ("cost", "loss"):
        raise ProblemError(f"options.objective: expected 'cost' or 'loss', got {pb.options.objective!r}")
    if pb.options.objective == "loss" and pb.options.budget is None:
        raise ProblemError("options.objective 'loss' maximises loss reduction within a budget: set options.budget")
    if pb.options.min_regions is not None:
        n_regions = len(set(site_regions(pb.sites)))
        if pb.options.min_regions > n_regions:
            raise ProblemError(f"options.min_regions: centres in {pb.options.min_regions} different regions asked, "
                               f"but the sites lie in {n_regions} regions")
        if pb.options.p is not None and pb.options.min_regions > pb.options.p:
            raise ProblemError(f"options.min_regions: {pb.options.min_regions} different regions need at least as "
                               f"many sites, but options.p is {pb.options.p}")
    unknown_sites = sorted({s for ids in pb.options.coverage.values() for s in ids} - sites)
    if unknown_sites:
        raise ProblemError(f"options.coverage: unknown site id(s) {unknown_sites[:5]}")
    uncovered = sorted(a for a, ids in pb.options.coverage.items() if not ids)
    if uncovered:
        raise ProblemError(f"options.coverage: no site within reach of {uncovered[:10]}"
                           + (f" and {len(uncovered) - 10} more" if len(uncovered) > 10 else ""))
    share = pb.options.min_share_through_centres
    if share is not None and not 0 <= share <= 1:
        raise ProblemError(f"options.min_share_through_centres: a fraction in 0-1, got {share}")
    if not np.isfinite(pb.modules["capacity_t"].to_numpy(float)).all():
        raise ProblemError("modules.capacity_t: must be finite (use a large number for 'uncapacitated')")
