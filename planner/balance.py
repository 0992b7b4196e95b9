"""Regional supply-demand balance: production against consumption, per region and commodity group.

Demand is resident population × per-capita consumption norm (grain: the bread-products norm, in flour
equivalent, converted to grain with the registry's ``grain_per_flour_equivalent``). The balance is what the
optimizer later routes: a surplus region ships out, a deficit region draws in.
"""

from __future__ import annotations

import pandas as pd

from planner.data.loader import Dataset
from planner.parameters import ParameterSet


def demand_kt_per_capita(dataset: Dataset, params: ParameterSet) -> dict[str, float]:
    """Consumption per person by commodity group, in thousand tonnes per person per year."""
    norms = dataset.consumption_norms.set_index("commodity")["kg_per_capita_year"].to_dict()
    norms["grain"] = norms["grain"] * params["grain_per_flour_equivalent"]
    return {c: kg / 1e6 for c, kg in norms.items()}


def regional_balance(dataset: Dataset, region_ids: list[str], commodities: list[str],
                     params: ParameterSet) -> pd.DataFrame:
    """Production, demand and surplus (thousand tonnes a year) per region and commodity group.

    ``approximate`` is true where the production figure or the population is flagged approximate;
    ``production_kt`` is NaN where the dataset has no regional figure.
    """
    regions = dataset.regions.set_index("region_id").loc[region_ids]
    prod = dataset.production
    prod = prod[(prod["area_level"] == "region") & prod["area_id"].isin(region_ids)]
    latest = prod.sort_values("year").groupby(["area_id", "commodity"]).tail(1).set_index(["area_id", "commodity"])
    per_capita = demand_kt_per_capita(dataset, params)
    rows = []
    for rid, reg in regions.iterrows():
        pop = reg["population"]
        pop_approx = bool(reg["population_approximate"]) if pd.notna(reg["population_approximate"]) else False
        for c in commodities:
            have = (rid, c) in latest.index
            p = latest.loc[(rid, c)] if have else None
            demand = float(pop) * per_capita[c] if pd.notna(pop) else float("nan")
            production = float(p["quantity_kt"]) if have else float("nan")
            rows.append(dict(
                region_id=rid, name_ru=reg["name_ru"], name_en=reg["name_en"],
                federal_district=reg["federal_district"], commodity=c,
                production_kt=production, demand_kt=demand, surplus_kt=production - demand,
                year=int(p["year"]) if have else None,
                approximate=(have and bool(p["approximate"])) or pop_approx,
            ))
    return pd.DataFrame(rows)
