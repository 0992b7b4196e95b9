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


def regional_population(dataset: Dataset) -> pd.Series:
    """Population per region (persons): Rosstat where the regions table has it; elsewhere the country's
    population (countries table) split by the region's share of the country's city population — a proxy for
    partner countries, whose regional populations the dataset does not hold."""
    reg = dataset.regions.set_index("region_id")
    pop = reg["population"].astype(float)
    urban = dataset.cities.groupby("region_id")["population"].sum().reindex(reg.index).fillna(0.0)
    national = dataset.countries.set_index("country_id")["population"] if "population" in dataset.countries else None
    if national is None:
        return pop
    country_urban = urban.groupby(reg["country_id"]).transform("sum")
    proxy = reg["country_id"].map(national).astype(float) * urban / country_urban.where(country_urban > 0)
    return pop.fillna(proxy)


def regional_production(dataset: Dataset, region_ids: list[str], commodities: list[str]) -> pd.DataFrame:
    """Latest production per region and commodity (``area_id``, ``commodity``, ``quantity_kt``, ``approximate``):
    regional statistics where the dataset has them; otherwise the country's national total (FAOSTAT) split by
    the regions' population shares (:func:`regional_population`), flagged approximate."""
    p = dataset.production[dataset.production["commodity"].isin(commodities)]
    p = p.sort_values("year").groupby(["area_id", "area_level", "commodity"], as_index=False).tail(1)
    regional = p[(p["area_level"] == "region") & p["area_id"].isin(region_ids)]
    have = set(zip(regional["area_id"], regional["commodity"], strict=True))
    reg = dataset.regions.set_index("region_id")
    pop = regional_population(dataset)
    share = pop / pop.groupby(reg["country_id"]).transform("sum")
    national = p[p["area_level"] == "country"].set_index(["area_id", "commodity"])["quantity_kt"]
    rows = []
    for r in region_ids:
        for c in commodities:
            cid = reg.at[r, "country_id"]
            if (r, c) not in have and (cid, c) in national.index and pd.notna(share.get(r)):
                rows.append({"area_id": r, "commodity": c, "quantity_kt": float(national[(cid, c)] * share[r]),
                             "approximate": True})
    cols = ["area_id", "commodity", "quantity_kt", "approximate"]
    return pd.concat([regional[cols], pd.DataFrame(rows, columns=cols)], ignore_index=True)


def regional_balance(dataset: Dataset, region_ids: list[str], commodities: list[str],
                     params: ParameterSet) -> pd.DataFrame:
    """Production, demand and surplus (thousand tonnes a year) per region and commodity group.

    ``approximate`` is true where the production figure or the population is flagged approximate;
    ``production_kt`` is NaN where the dataset has no regional figure.
    """
    regions = dataset.regions.set_index("region_id").loc[region_ids].copy()
    regions["population"] = regional_population(dataset).reindex(regions.index)
    latest = regional_production(dataset, region_ids, commodities).set_index(["area_id", "commodity"])
    per_capita = demand_kt_per_capita(dataset, params)
    rows = []
    for rid, reg in regions.iterrows():
        pop = reg["population"]
        pop_approx = (bool(reg["population_approximate"]) if pd.notna(reg["population_approximate"])
                      else reg["country_id"] != "RU")
        for c in commodities:
            have = (rid, c) in latest.index
            p = latest.loc[(rid, c)] if have else None
            demand = float(pop) * per_capita[c] if pd.notna(pop) else float("nan")
            production = float(p["quantity_kt"]) if have else float("nan")
            rows.append(dict(
                region_id=rid, name_ru=reg["name_ru"], name_en=reg["name_en"],
                federal_district=reg["federal_district"], commodity=c,
                production_kt=production, demand_kt=demand, surplus_kt=production - demand,
                approximate=(have and bool(p["approximate"])) or pop_approx,
            ))
    return pd.DataFrame(rows)
