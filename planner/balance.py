"""Regional supply-demand balance: production against consumption, per region and commodity group.

Demand is resident population × per-capita consumption on one of two bases (the scenario's ``demand_basis``):

- ``actual`` (the default): Rosstat's actual consumption from its food resource balances (table
  ``consumption_actual``): the region's own figure, else its federal district's, else Russia's (the latest year
  at each level; a fallback is flagged approximate). Vegetables exclude food melons, as the production table
  does. Groups without an actual figure (grain, milk, meat in the shipped table) use the norm, flagged.
- ``norm``: the Ministry of Health rational norm (order № 614; table ``consumption_norms``) — grain: the
  bread-products norm, in flour equivalent, converted to grain with the registry's ``grain_per_flour_equivalent``;
  vegetables: the norm's «овощи и бахчевые» (140 kg) less food melons at ``melon_share_of_vegetables_pct`` (10%,
  the share the actual figures take out), so that demand covers the products production does on either basis.

Grain demand also carries **livestock feed** (:func:`feed_demand_kt`): a region's own figure where the
``feed_demand`` table has one, else its share of Russia's national feed use (the national figure less the regions'
own) in proportion to the region's meat production (pigs and poultry eat most of the feed grain), flagged
approximate. Regions outside Russia get no feed demand (no figure in the dataset).

Every group's demand also carries its **production use** (:func:`production_use_kt`): seed, processing into
non-food products and feed of groups other than grain, Russia's national figures (table ``production_use``) split
over its regions by their production of the group (seed is planted and potatoes are fed where they grow),
flagged approximate. Without it a group whose harvest is partly planted again (potatoes) shows a surplus that
only exports can take.

The balance is what the optimizer later routes: a surplus region ships out, a deficit region draws in.
"""

from __future__ import annotations

import pandas as pd

from planner.data.loader import Dataset
from planner.parameters import ParameterSet
from planner.settings import CITY_REGIONS, COMMODITY_KEYS

DEMAND_BASES: tuple[str, ...] = ("actual", "norm")
"""The bases of per-capita demand: Rosstat's actual consumption, or the Ministry of Health norm."""

DEMAND_BASIS_TEXT = {
    "actual": "Demand = resident population × Rosstat's actual per-capita consumption (resource balances: the "
              "region's figure, else its federal district's, else Russia's; vegetables exclude melons; groups "
              "without a figure use the Ministry of Health norm); grain adds livestock feed (Russia's national "
              "figure split by the regions' meat production, approximate); every group adds seed, processing and "
              "other feed (Russia's resource balances split by the regions' production, approximate).",
    "norm": "Demand = resident population × Ministry of Health rational norm (order № 614; vegetables exclude melons "
            "at the share the actual figures take out, 140 kg × 0.90 = 126 kg); grain adds livestock "
            "feed (Russia's national figure split by the regions' meat production, approximate); every group adds "
            "seed, processing and other feed (Russia's resource balances split by the regions' production, "
            "approximate).",
}
"""One line per basis saying what demand rests on (printed under the balance)."""


def _norm_kt(dataset: Dataset, params: ParameterSet) -> dict[str, float]:
    """The Ministry of Health norm per commodity group, thousand tonnes per person per year (grain as grain;
    vegetables without food melons, as the production table counts them)."""
    norms = dataset.consumption_norms.set_index("commodity")["kg_per_capita_year"].to_dict()
    norms["grain"] = norms["grain"] * params["grain_per_flour_equivalent"]
    norms["vegetables"] = norms["vegetables"] * (1 - params["melon_share_of_vegetables_pct"] / 100)
    return {c: kg / 1e6 for c, kg in norms.items()}


def demand_kt_per_capita(dataset: Dataset, params: ParameterSet, region_ids: list[str] | None = None,
                         basis: str = "actual") -> pd.DataFrame:
    """Consumption per person by region and commodity group, in thousand tonnes per person per year.

    Indexed by (``region_id``, ``commodity``) over ``region_ids`` (every region when None) and every group;
    columns ``kt_per_capita``, ``level`` (where the figure comes from: region / federal_district / national /
    norm), ``area_id``, ``year``, ``approximate`` (the figure is flagged in its table, or a coarser level or the
    norm stands in for an actual figure) and ``source``. ``basis`` is ``actual`` or ``norm`` (see the module
    docstring); regions outside Russia take Russia's figures, flagged.
    """
    if basis not in DEMAND_BASES:
        raise ValueError(f"demand_basis: expected one of {list(DEMAND_BASES)}, got {basis!r}")
    reg = dataset.regions.set_index("region_id")
    ids = list(reg.index) if region_ids is None else list(region_ids)
    norm = _norm_kt(dataset, params)
    norm_rows = dataset.consumption_norms.set_index("commodity")
    actual = pd.DataFrame(columns=["area_id", "commodity", "year", "kg_per_capita", "approximate", "source"])
    if basis == "actual":
        a = dataset.consumption_actual
        a = a[a["basis"] == "resource_balance"].sort_values("year")
        actual = a.groupby(["area_id", "commodity"], as_index=False).tail(1)
    latest = actual.set_index(["area_id", "commodity"])
    rows = []
    for r in ids:
        russian = r in reg.index and reg.at[r, "country_id"] == "RU"
        fd = reg.at[r, "federal_district"] if russian else None
        chain = [(r, "region"), (fd, "federal_district"), ("RU", "national")] if russian else [("RU", "national")]
        for c in COMMODITY_KEYS:
            hit = next(((area, level) for area, level in chain if (area, c) in latest.index), None)
            if hit is None:
                n = norm_rows.loc[c] if c in norm_rows.index else None
                rows.append(dict(region_id=r, commodity=c, kt_per_capita=norm.get(c, float("nan")), level="norm",
                                 area_id="RU", year=None,
                                 approximate=basis == "actual" or (n is not None and bool(n["approximate"])),
                                 source=n["source"] if n is not None else ""))
                continue
            area, level = hit
            f = latest.loc[(area, c)]
            rows.append(dict(region_id=r, commodity=c, kt_per_capita=float(f["kg_per_capita"]) / 1e6, level=level,
                             area_id=area, year=int(f["year"]),
                             approximate=bool(f["approximate"]) or level != "region" or not russian,
                             source=f["source"]))
    return pd.DataFrame(rows).set_index(["region_id", "commodity"])


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
    regional statistics where the dataset has them; for a region without a row, its share of what the country's
    national total (FAOSTAT) leaves after the regions that have one — split by population
    (:func:`regional_population`) over the country's regions without a row that farm: cities of republican or
    federal status (:data:`planner.settings.CITY_REGIONS`: Astana, Almaty, Shymkent, …) grow next to nothing and
    get no share — flagged approximate. A country whose regional rows already add up to its total (within 0.1%:
    rounding) leaves nothing to split: a region it omits on purpose (Russia's Far-North subjects grow no grain)
    produces nothing."""
    p = dataset.production[dataset.production["commodity"].isin(commodities)]
    p = p.sort_values("year").groupby(["area_id", "area_level", "commodity"], as_index=False).tail(1)
    reg = dataset.regions.set_index("region_id")
    every = p[(p["area_level"] == "region") & p["area_id"].isin(reg.index)]
    regional = every[every["area_id"].isin(region_ids)]
    have = set(zip(every["area_id"], every["commodity"], strict=True))
    covered = every.assign(country=reg["country_id"].reindex(every["area_id"]).to_numpy()).groupby(
        ["country", "commodity"])["quantity_kt"].sum()
    pop = regional_population(dataset).where(lambda s: ~s.index.isin(CITY_REGIONS), 0.0)
    national = p[p["area_level"] == "country"].set_index(["area_id", "commodity"])["quantity_kt"]
    rows = []
    for c in commodities:
        missing = [r for r in reg.index if (r, c) not in have]
        pool = pop.reindex(missing).groupby(reg["country_id"].reindex(missing)).sum()
        for r in region_ids:
            cid = reg.at[r, "country_id"]
            if (r, c) in have or (cid, c) not in national.index or pd.isna(pop.get(r)):
                continue
            total = float(national[(cid, c)])
            rest = total - float(covered.get((cid, c), 0.0))
            rest = rest if rest > 1e-3 * total else 0.0  # the regions' own rows hold it all, up to rounding
            share = float(pop[r]) / float(pool[cid]) if pool.get(cid) else 0.0
            rows.append({"area_id": r, "commodity": c, "quantity_kt": rest * share, "approximate": True})
    cols = ["area_id", "commodity", "quantity_kt", "approximate"]
    return pd.concat([regional[cols], pd.DataFrame(rows, columns=cols)], ignore_index=True)


def feed_demand_kt(dataset: Dataset, region_ids: list[str] | None = None) -> pd.DataFrame:
    """Grain used as livestock feed per region, thousand tonnes a year (see the module docstring).

    Indexed by ``region_id`` (over ``region_ids``, every region when None); columns ``feed_kt``, ``level``
    (``region``: the region's own figure; ``split``: its meat-weighted share of the national remainder; ``none``:
    no figure, 0), ``year``, ``approximate`` and ``source``. The split key is the latest meat production of each
    Russian region (:func:`regional_production`, itself a split of the national total where the region has no
    figure); the shares sum to the national figure over all of Russia's regions.
    """
    reg = dataset.regions.set_index("region_id")
    ids = list(reg.index) if region_ids is None else list(region_ids)
    table = dataset.tables.get("feed_demand")
    empty = pd.DataFrame({"feed_kt": 0.0, "level": "none", "year": None, "approximate": False, "source": ""},
                         index=pd.Index(ids, name="region_id"))
    if table is None or table.empty:
        return empty
    t = table[table["commodity"] == "grain"].sort_values("year").groupby("area_id").tail(1).set_index("area_id")
    ru = list(reg.index[reg["country_id"] == "RU"])
    own = t[t.index.isin(ru)]
    out = empty.copy()
    for r in own.index.intersection(out.index):
        out.loc[r, ["feed_kt", "level", "year", "approximate", "source"]] = [
            float(own.at[r, "quantity_kt"]), "region", int(own.at[r, "year"]), bool(own.at[r, "approximate"]),
            own.at[r, "source"]]
    if "RU" in t.index:
        rest = max(float(t.at["RU", "quantity_kt"]) - float(own["quantity_kt"].sum()), 0.0)
        others = [r for r in ru if r not in own.index]
        meat = regional_production(dataset, others, ["meat"]).set_index("area_id")["quantity_kt"].astype(float)
        meat = meat.groupby(level=0).sum().reindex(others).fillna(0.0)
        if meat.sum() > 0:
            share = meat / meat.sum()
            for r in [r for r in others if r in out.index]:
                out.loc[r, ["feed_kt", "level", "year", "approximate", "source"]] = [
                    rest * float(share[r]), "split", int(t.at["RU", "year"]), True,
                    f"{t.at['RU', 'source']}; split by the region's meat production (approximate)"]
    out["feed_kt"] = out["feed_kt"].astype(float)
    return out


def production_use_kt(dataset: Dataset, region_ids: list[str] | None = None) -> pd.DataFrame:
    """Produce used in production (seed, non-food processing, feed of groups other than grain) per region and
    group, thousand tonnes a year (see the module docstring).

    Indexed by (``region_id``, ``commodity``) over ``region_ids`` (every region when None) and the groups with a
    national figure; columns ``use_kt`` (the sum of the uses of the latest year of each), ``approximate`` (always
    true for a Russian region with a share: the split is by production, itself partly derived) and ``source``.
    A region's share of the national figure is its share of Russia's production of the group
    (:func:`regional_production`); regions outside Russia get 0.
    """
    reg = dataset.regions.set_index("region_id")
    ids = list(reg.index) if region_ids is None else list(region_ids)
    table = dataset.tables.get("production_use")
    cols = ["use_kt", "approximate", "source"]
    if table is None or table.empty:
        return pd.DataFrame(columns=cols, index=pd.MultiIndex.from_tuples([], names=["region_id", "commodity"]))
    latest = table.sort_values("year").groupby(["commodity", "use"]).tail(1)
    ru = list(reg.index[reg["country_id"] == "RU"])
    rows = []
    for c, uses in latest.groupby("commodity", sort=True):
        total = float(uses["quantity_kt"].sum())
        source = "; ".join(f"{u.use} {u.quantity_kt:,.0f} kt ({u.year}): {u.source}" for u in uses.itertuples())
        prod = regional_production(dataset, ru, [c]).groupby("area_id")["quantity_kt"].sum().astype(float)
        share = prod / prod.sum() if prod.sum() > 0 else prod * 0.0
        for r in ids:
            kt = total * float(share.get(r, 0.0))
            rows.append((r, c, kt, kt > 0, f"{source}; split by the region's production (approximate)" if kt else ""))
    out = pd.DataFrame(rows, columns=["region_id", "commodity", *cols]).set_index(["region_id", "commodity"])
    out["use_kt"] = out["use_kt"].astype(float)
    return out


def regional_balance(dataset: Dataset, region_ids: list[str], commodities: list[str],
                     params: ParameterSet, basis: str = "actual") -> pd.DataFrame:
    """Production, demand and surplus (thousand tonnes a year) per region and commodity group.

    Demand is food on ``basis`` plus, for grain, livestock feed (``feed_kt``, :func:`feed_demand_kt`), plus the
    production use of every group (``use_kt``: seed, processing, other feed; :func:`production_use_kt`); food is on
    ``basis`` (``actual`` or ``norm``, :func:`demand_kt_per_capita`). ``approximate`` is true where
    the production figure or the population is flagged approximate; ``demand_approximate`` where the per-capita
    figure is (``demand_level`` says where it came from), the feed figure is, or a production use is added;
    ``production_kt`` is NaN where the dataset has no regional figure.
    """
    regions = dataset.regions.set_index("region_id").loc[region_ids].copy()
    regions["population"] = regional_population(dataset).reindex(regions.index)
    latest = regional_production(dataset, region_ids, commodities).set_index(["area_id", "commodity"])
    per_capita = demand_kt_per_capita(dataset, params, region_ids, basis)
    feed_table = feed_demand_kt(dataset, region_ids)
    feed, feed_approx = feed_table["feed_kt"], feed_table["approximate"]
    uses = production_use_kt(dataset, region_ids)
    rows = []
    for rid, reg in regions.iterrows():
        pop = reg["population"]
        pop_approx = (bool(reg["population_approximate"]) if pd.notna(reg["population_approximate"])
                      else reg["country_id"] != "RU")
        for c in commodities:
            have = (rid, c) in latest.index
            p = latest.loc[(rid, c)] if have else None
            pc = per_capita.loc[(rid, c)]
            fed = float(feed.get(rid, 0.0)) if c == "grain" else 0.0
            used = float(uses.at[(rid, c), "use_kt"]) if (rid, c) in uses.index else 0.0
            demand = float(pop) * pc["kt_per_capita"] + fed + used if pd.notna(pop) else float("nan")
            production = float(p["quantity_kt"]) if have else float("nan")
            rows.append(dict(
                region_id=rid, name_ru=reg["name_ru"], name_en=reg["name_en"],
                federal_district=reg["federal_district"], commodity=c,
                production_kt=production, demand_kt=demand, feed_kt=fed, use_kt=used,
                surplus_kt=production - demand,
                approximate=(have and bool(p["approximate"])) or pop_approx,
                demand_basis=basis, demand_level=pc["level"],
                demand_approximate=bool(pc["approximate"]) or (fed > 0 and bool(feed_approx.get(rid, False)))
                or used > 0,
            ))
    return pd.DataFrame(rows)
