"""Commodity aggregation: the same network with its commodity groups merged into one, for fast heuristics.

Each place keeps its identity; what is merged is the commodity dimension:

- a supply row per farm region with its total production; storage-loss share and value per tonne are
  production-weighted means;
- a demand row per market or exit with its total demand; penalty and exit price are demand-weighted means (a
  market where any group must be met keeps "must be met");
- an arc per place pair, with cost and loss share weighted by the quantities of the groups it carries (demand
  for arcs into a market, production for arcs out of a farm) — a lost tonne is charged through the balances,
  as in the original model;
- the steps of outside markets' curves, all kept, under the merged group; seasonal storage is left out (the
  merged problem only chooses sites for the start).

What is lost is the match between groups: a farm's grain may meet a market's vegetable demand. The merged
problem is therefore an approximation (not a bound) of the original, with one sixth of the arcs when there are
six groups; :mod:`optimization.dive` uses it to choose sites, and the original model then prices the choice.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from optimization.problem import NetworkProblem

MERGED = "all"


def _weighted(frame: pd.DataFrame, keys: list[str], cols: list[str], weight: np.ndarray) -> pd.DataFrame:
    """Per group of ``keys``: the ``weight``-weighted mean of ``cols`` (equal weights where all are 0)."""
    w = np.where(np.nan_to_num(weight) > 0, np.nan_to_num(weight), 1e-9)
    tmp = frame[keys].copy()
    tmp["_w"] = w
    for c in cols:
        tmp[c] = frame[c].to_numpy(float) * w
    out = tmp.groupby(keys, sort=False, as_index=False).sum()
    for c in cols:
        out[c] = out[c] / out["_w"]
    return out.drop(columns="_w")


def aggregate_commodities(pb: NetworkProblem) -> NetworkProblem | None:
    """The problem with all commodity groups merged into one (see the module docstring); None when a place is an
    exit for some groups and a market for others, which one merged row cannot say."""
    dem, sup = pb.demands, pb.supplies
    exits = dem["is_exit"].fillna(False).astype(bool)
    if (exits.groupby(dem["demand_id"]).nunique() > 1).any():
        return None
    s2 = _weighted(sup, ["supply_id"], ["storage_loss", "value_per_t"], sup["quantity_t"].to_numpy(float))
    s2["quantity_t"] = sup.groupby("supply_id", sort=False)["quantity_t"].sum().to_numpy()
    s2["commodity"] = MERGED
    q = dem["quantity_t"].to_numpy(float)
    d2 = _weighted(dem.assign(penalty_per_t=dem["penalty_per_t"].fillna(0.0),
                              price_per_t=dem["price_per_t"].fillna(0.0)),
                   ["demand_id"], ["penalty_per_t", "price_per_t"], q)
    must = dem["penalty_per_t"].isna().groupby(dem["demand_id"], sort=False).any().to_numpy()
    d2["penalty_per_t"] = np.where(must, np.nan, d2["penalty_per_t"])
    d2["quantity_t"] = dem.groupby("demand_id", sort=False)["quantity_t"].sum().to_numpy()
    d2["is_exit"] = exits.groupby(dem["demand_id"], sort=False).first().to_numpy()
    d2["commodity"] = MERGED
    sup_q = pd.Series(sup["quantity_t"].to_numpy(float),
                      index=pd.MultiIndex.from_frame(sup[["supply_id", "commodity"]]))
    dem_q = pd.Series(q, index=pd.MultiIndex.from_frame(dem[["demand_id", "commodity"]]))

    def arcs(table: pd.DataFrame, keys: list[str], quantity: pd.Series, by: str) -> pd.DataFrame:
        t = table
        weight = quantity.reindex(pd.MultiIndex.from_arrays([t[by], t["commodity"]])).to_numpy()
        out = _weighted(t, keys, ["cost_per_t", "loss"], weight)
        out["commodity"] = MERGED
        return out

    tiers = pb.tiers.assign(commodity=MERGED) if pb.tiers is not None and len(pb.tiers) else pb.tiers
    if tiers is not None and len(tiers):
        tiers = tiers[tiers["row_kind"] != "season"].reset_index(drop=True)
    return replace(pb, commodities=[MERGED], supplies=s2, demands=d2, tiers=tiers,
                   storage=pb.storage.iloc[0:0] if pb.storage is not None else pb.storage,
                   inbound=arcs(pb.inbound, ["supply_id", "site_id"], sup_q, "supply_id"),
                   outbound=arcs(pb.outbound, ["site_id", "demand_id"], dem_q, "demand_id"),
                   direct=arcs(pb.direct, ["supply_id", "demand_id"], dem_q, "demand_id"),
                   value_per_t={MERGED: 0.0}, name=f"{pb.name}_merged")
