"""The federal network's views by place: produce flows between federal districts (the information system's view),
and who gains where (producer surplus by region beside its agricultural share).

**Inter-district flows.** Every tonne a farm (or an outside supplier) ships is followed to where it ends: on the
traditional channel the market it is hauled to; through a centre, the centre's outbound shipments of that group and
what it holds for the off-season (the off-season market is the centre's own), in proportion — a centre mixes what it
receives, so each origin's tonnes leave it in the centre's proportions of destinations. Tonnes are counted as they
leave the origin (t a year, before the losses on the way). Places are labelled by federal district (a region
outside Russia by its country code; an outside market by ``outside``), so the table has one row per origin
district, destination district and commodity group, with the tonnes without the network (the baseline routing:
today's centres, or none), with it, and the change.

**Distribution.** The change in producer surplus by region (the spatial price model's farm-gate price change ×
the mean of the quantities supplied before and after, :mod:`planner.economics.prices`), summed over groups, in
million RUB a year, beside the region's agricultural share of employment and of gross value added (%, the
``agri_shares`` table: Rosstat, year and approximate flag in the table) and the location quotients.

CSV writers: UTF-8 with BOM, headers in Russian and English with units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from optimization.results import NetworkResult
from planner.data.loader import Dataset
from planner.economics.welfare import seasonal_value_by_site, site_costs
from planner.pipeline import PlannedProblem, annuity_factor
from planner.settings import COMMODITY_BY_KEY, FEDERAL_DISTRICTS

OUTSIDE = "outside"
"""Label of the outside markets (other countries, ports, the rest of the country) in the inter-district table."""

DISTRICT_NAMES: dict[str, tuple[str, str]] = {
    **{fd.code: (fd.name_ru, fd.name_en) for fd in FEDERAL_DISTRICTS},
    OUTSIDE: ("внешние рынки (порты, граница, остальная страна)", "outside markets (ports, borders, rest of the "
                                                                   "country)"),
}

FLOW_COLUMNS = {
    "from_district": "Откуда (округ) / From (district)",
    "from_name_ru": "Откуда / From (RU)",
    "from_name_en": "From (EN)",
    "to_district": "Куда (округ) / To (district)",
    "to_name_ru": "Куда / To (RU)",
    "to_name_en": "To (EN)",
    "commodity": "Группа / Group",
    "commodity_ru": "Группа (RU)",
    "tonnes_without_network": "Без сети, т/год / Without the network, t/yr",
    "tonnes_with_network": "С сетью, т/год / With the network, t/yr",
    "change_t": "Изменение, т/год / Change, t/yr",
}
"""Columns of the inter-district table and their CSV headers (RU / EN, units)."""

DISTRIBUTION_COLUMNS = {
    "region_id": "Регион (код) / Region (id)",
    "name_ru": "Регион / Region (RU)",
    "name_en": "Region (EN)",
    "federal_district": "Округ / Federal district",
    "producer_surplus_change_mrub": "Изменение излишка производителей, млн руб./год / Producer surplus change, "
                                    "million RUB/yr",
    "agri_employment_share_pct": "Доля сельского хозяйства в занятости, % / Agriculture's share of employment, %",
    "agri_value_added_share_pct": "Доля сельского хозяйства в ВДС, % / Agriculture's share of value added, %",
    "employment_lq": "Коэффициент локализации (занятость) / Location quotient (employment)",
    "value_added_lq": "Коэффициент локализации (ВДС) / Location quotient (value added)",
    "agri_shares_approximate": "Доли приблизительны / Shares approximate",
}
"""Columns of the distributional table and their CSV headers (RU / EN, units)."""


def place_districts(planned: PlannedProblem, dataset: Dataset) -> dict[str, str]:
    """Model place id → district label: farms (``farm:<region>``), sites, markets (``market:<node>``) by the
    federal district of their region (a non-Russian region by its country code); outside suppliers and exits
    (``import:…``, ``exit:…``) as :data:`OUTSIDE`."""
    regions = dataset.regions.set_index("region_id")

    def district(rid) -> str:
        if rid not in regions.index:
            return OUTSIDE
        fd = regions.at[rid, "federal_district"]
        return fd if isinstance(fd, str) and fd else str(regions.at[rid, "country_id"])

    out: dict[str, str] = {}
    pb = planned.problem
    for sid in pb.supplies["supply_id"].unique():
        out[sid] = district(sid.removeprefix("farm:")) if sid.startswith("farm:") else OUTSIDE
    cand_region = dict(zip(planned.candidates["candidate_id"], planned.candidates["region_id"], strict=True))
    for sid in pb.sites["site_id"]:
        out[sid] = district(cand_region.get(sid))
    for did in pb.demands["demand_id"].unique():
        if did.startswith("market:"):
            node = did.removeprefix("market:")
            out[did] = district(planned.graph.nodes[node].get("region_id")) if node in planned.graph else OUTSIDE
        else:
            out[did] = OUTSIDE
    return out


def _origin_destination(result: NetworkResult, where: dict[str, str]) -> pd.Series:
    """Tonnes a year shipped from each origin district that end in each destination district, per group
    (a Series indexed by from_district, to_district, commodity; see the module docstring)."""
    f = result.flows
    parts: list[pd.DataFrame] = []
    if f is None or f.empty:
        return pd.Series(dtype=float)
    direct = f[f["kind"] == "direct"]
    parts.append(pd.DataFrame({"from": direct["from_id"].map(where), "to": direct["to_id"].map(where),
                               "commodity": direct["commodity"], "t": direct["tonnes"]}))
    inb, outb = f[f["kind"] == "inbound"], f[f["kind"] == "outbound"]
    dest = pd.DataFrame({"site": outb["from_id"], "commodity": outb["commodity"], "to": outb["to_id"].map(where),
                         "t": outb["tonnes"]})
    st = result.storage
    if st is not None and not st.empty:
        held = st[st["held_t"] > 0]
        dest = pd.concat([dest, pd.DataFrame({"site": held["site_id"], "commodity": held["commodity"],
                                              "to": held["site_id"].map(where), "t": held["held_t"]})],
                         ignore_index=True)
    if not inb.empty and not dest.empty:
        share = dest.groupby(["site", "commodity", "to"])["t"].sum()
        share = share / share.groupby(level=[0, 1]).transform("sum")
        share = share.rename("share").reset_index()
        src = pd.DataFrame({"site": inb["to_id"], "commodity": inb["commodity"], "from": inb["from_id"].map(where),
                            "t_in": inb["tonnes"]})
        od = src.merge(share, on=["site", "commodity"], how="inner")
        parts.append(pd.DataFrame({"from": od["from"], "to": od["to"], "commodity": od["commodity"],
                                   "t": od["t_in"] * od["share"]}))
    allf = pd.concat(parts, ignore_index=True)
    return allf.groupby(["from", "to", "commodity"])["t"].sum()


def interdistrict_flows(planned: PlannedProblem, dataset: Dataset, network: NetworkResult,
                        baseline: NetworkResult | None) -> pd.DataFrame:
    """Tonnes a year by commodity group between districts, without the network (``baseline``: the baseline
    routing; None: no baseline, its column NaN), with it (``network``, the solved plan) and the change
    (:data:`FLOW_COLUMNS`; the module docstring says how a centre's tonnes are followed). Every origin–destination
    pair with a flow in either is a row, flows inside a district included (``from_district == to_district``)."""
    where = place_districts(planned, dataset)
    net = _origin_destination(network, where).rename("tonnes_with_network")
    base = (_origin_destination(baseline, where) if baseline is not None and baseline.objective is not None
            else pd.Series(dtype=float)).rename("tonnes_without_network")
    table = pd.concat([base, net], axis=1)
    if table.empty:
        return pd.DataFrame(columns=list(FLOW_COLUMNS))
    table.index = table.index.set_names(["from_district", "to_district", "commodity"])
    table = table.reset_index()
    if baseline is None or baseline.objective is None:
        table["tonnes_without_network"] = np.nan
    else:
        table["tonnes_without_network"] = table["tonnes_without_network"].fillna(0.0)
    table["tonnes_with_network"] = table["tonnes_with_network"].fillna(0.0)
    table["change_t"] = table["tonnes_with_network"] - table["tonnes_without_network"]
    name = {k: v for k, v in DISTRICT_NAMES.items()}
    table["from_name_ru"] = [name.get(d, (d, d))[0] for d in table["from_district"]]
    table["from_name_en"] = [name.get(d, (d, d))[1] for d in table["from_district"]]
    table["to_name_ru"] = [name.get(d, (d, d))[0] for d in table["to_district"]]
    table["to_name_en"] = [name.get(d, (d, d))[1] for d in table["to_district"]]
    table["commodity_ru"] = [COMMODITY_BY_KEY[k].name_ru if k in COMMODITY_BY_KEY else k for k in table["commodity"]]
    keep = (table["tonnes_with_network"] > 1e-6) | (table["tonnes_without_network"].fillna(0) > 1e-6)
    return table.loc[keep, list(FLOW_COLUMNS)].sort_values(["commodity", "from_district", "to_district"]
                                                           ).reset_index(drop=True)


def write_interdistrict_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write :func:`interdistrict_flows` as CSV (UTF-8 with BOM, RU/EN headers with units); returns the path."""
    path = Path(path)
    table[list(FLOW_COLUMNS)].rename(columns=FLOW_COLUMNS).to_csv(path, index=False, encoding="utf-8-sig")
    return path


def surplus_by_region(prices_regions: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """The distributional table (:data:`DISTRIBUTION_COLUMNS`): per region of the price model
    (``PriceReport.regions``: region_id, producer_surplus_change_rub per group), the producer-surplus change
    summed over groups (million RUB a year) beside the region's agricultural share of employment and of value
    added (%) and its location quotients (NaN where the ``agri_shares`` table has no row), ordered by the
    employment share."""
    if prices_regions is None or prices_regions.empty:
        return pd.DataFrame(columns=list(DISTRIBUTION_COLUMNS))
    ps = prices_regions.groupby("region_id")["producer_surplus_change_rub"].sum() / 1e6
    regions = dataset.regions.set_index("region_id")
    shares = dataset.agri_shares.set_index("region_id")
    out = pd.DataFrame({"region_id": ps.index, "producer_surplus_change_mrub": ps.to_numpy(float)})
    out["name_ru"] = out["region_id"].map(regions["name_ru"])
    out["name_en"] = out["region_id"].map(regions["name_en"])
    fd = out["region_id"].map(regions["federal_district"])
    out["federal_district"] = fd.where(fd.notna(), out["region_id"].map(regions["country_id"]))
    out["agri_employment_share_pct"] = out["region_id"].map(shares["employment_share_pct"])
    out["agri_value_added_share_pct"] = out["region_id"].map(shares["grp_share_pct"])
    out["employment_lq"] = out["region_id"].map(shares["employment_lq"])
    out["value_added_lq"] = out["region_id"].map(shares["grp_lq"])
    out["agri_shares_approximate"] = out["region_id"].map(shares["approximate"])
    return (out[list(DISTRIBUTION_COLUMNS)].sort_values("agri_employment_share_pct", ascending=False)
            .reset_index(drop=True))


def write_distribution_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write :func:`surplus_by_region` as CSV (UTF-8 with BOM, RU/EN headers with units); returns the path."""
    path = Path(path)
    table[list(DISTRIBUTION_COLUMNS)].rename(columns=DISTRIBUTION_COLUMNS).to_csv(path, index=False,
                                                                                   encoding="utf-8-sig")
    return path


ALL_GROUPS = "all"
"""The ``commodity`` of a district's total row in the per-district table (every group together)."""

DISTRICT_COLUMNS = {
    "federal_district": "Округ (код) / Federal district (code)",
    "name_ru": "Округ / District (RU)",
    "name_en": "District (EN)",
    "commodity": "Группа / Group",
    "commodity_ru": "Группа (RU)",
    "production_t": "Производство, т/год / Production, t/yr",
    "loss_without_t": "Потери без сети, т/год / Losses without the network, t/yr",
    "loss_with_t": "Потери с сетью, т/год / Losses with the network, t/yr",
    "loss_saved_t": "Сокращение потерь, т/год / Losses avoided, t/yr",
    "loss_share_without_pct": "Доля потерь без сети, % производства / Loss share without, % of production",
    "loss_share_with_pct": "Доля потерь с сетью, % производства / Loss share with, % of production",
    "consumer_price_change_pct": "Изменение потребительской цены, % / Consumer price change, %",
    "farm_price_change_pct": "Изменение цены производителя, % / Farm-gate price change, %",
    "consumer_surplus_change_mrub": "Изменение излишка потребителей, млн руб./год / Consumer surplus change, "
                                    "million RUB/yr",
    "producer_surplus_change_mrub": "Изменение излишка производителей, млн руб./год / Producer surplus change, "
                                    "million RUB/yr",
    "seasonal_value_change_mrub": "Изменение ценности сезонного хранения, млн руб./год / Seasonal storage value "
                                  "change, million RUB/yr",
    "centre_cost_mrub": "Затраты на новые ОРЦ (аннуитет капитала + пост. расходы), млн руб./год / New centres' "
                        "cost (annualised capital + fixed opex), million RUB/yr",
    "net_benefit_mrub": "Чистая выгода, млн руб./год / Net benefit, million RUB/yr",
}
"""Columns of the per-district table and their CSV headers (RU / EN, units)."""


def scope_districts(region_ids: list[str], dataset: Dataset) -> list[str]:
    """The district labels a scope spans: federal district codes of its Russian regions, country codes of the
    others (sorted)."""
    reg = dataset.regions.set_index("region_id")
    out = set()
    for r in region_ids:
        if r not in reg.index:
            continue
        fd = reg.at[r, "federal_district"]
        out.add(fd if isinstance(fd, str) and fd else str(reg.at[r, "country_id"]))
    return sorted(out)


def _district_of_region(dataset: Dataset) -> dict[str, str]:
    reg = dataset.regions.set_index("region_id")
    fd = reg["federal_district"].where(reg["federal_district"].notna() & (reg["federal_district"] != ""),
                                      reg["country_id"])
    return fd.astype(str).to_dict()


def _site_costs(planned: PlannedProblem, result: NetworkResult) -> pd.Series:
    """Annualised capital (social rate) + fixed opex change of each site, RUB a year
    (:func:`planner.economics.welfare.site_costs`, annualised as the net social benefit does)."""
    p = planned.params
    annuity = annuity_factor(p["social_discount_rate_pct"], p["centre_lifetime_years"])
    c = site_costs(planned, result)
    return c["opex_rub"] + (c["capital_rub"] / annuity if annuity > 0 else 0.0)


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """Mean of ``values`` weighted by ``weights`` over the entries where both are finite and the weight positive (a
    region that neither produces nor consumes a group has no price change to weigh); NaN when none is."""
    ok = np.isfinite(values) & np.isfinite(weights) & (weights > 0)
    return float((values[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else np.nan


def district_table(planned: PlannedProblem, dataset: Dataset, network: NetworkResult,
                   baseline: NetworkResult | None, prices_regions: pd.DataFrame | None,
                   social: dict | None = None) -> pd.DataFrame:
    """Per federal district (a region outside Russia: its country), one row per commodity group and one total row
    (``commodity`` = :data:`ALL_GROUPS`), :data:`DISTRICT_COLUMNS`:

    - production (t a year, the farms of the district's regions);
    - losses without the network (``baseline``: the routing the inter-district table compares with — today's
      centres, or none) and with it (``network``), counted where they happen (the farm's or the centre's region,
      :func:`planner.economics.losses.stage_losses`), t a year and as a share of the district's production;
    - consumer and farm-gate price change (%, the price model's regions weighted by their consumption and
      production) and the change of consumer and producer surplus (million RUB a year), from ``prices_regions``
      (``PriceReport.regions``, against the same baseline);
    - on the total row: the change in the value of seasonal storage at the district's centres, the annualised
      capital and fixed opex of its new centres (as :func:`planner.economics.welfare.net_social_benefit` counts
      them) and the net benefit = consumer + producer surplus + seasonal value − centre cost.

    With ``social`` (the run's net social benefit), a last row ``federal_district`` = ``RU`` carries the
    national terms no district owns (import duty and the centres' kept margin) in its net benefit, so the net
    benefits of all rows sum to the national net social benefit."""
    from planner.economics.losses import stage_losses

    fd_of = _district_of_region(dataset)
    pb = planned.problem
    region = {s: s.removeprefix("farm:") for s in pb.supplies["supply_id"] if s.startswith("farm:")}
    region.update(dict(zip(planned.candidates["candidate_id"], planned.candidates["region_id"], strict=True)))
    farms = pb.supplies[pb.supplies["supply_id"].str.startswith("farm:")]
    prod = farms.assign(d=farms["supply_id"].str.removeprefix("farm:").map(fd_of)).groupby(
        ["d", "commodity"])["quantity_t"].sum()

    def lost(res: NetworkResult | None) -> pd.Series:
        if res is None or res.objective is None:
            return pd.Series(dtype=float)
        t = stage_losses(planned, res, region)
        t = t[t["region_id"] != "other"]
        return t.assign(d=t["region_id"].map(fd_of)).groupby(["d", "commodity"])["tonnes"].sum()

    l0, l1 = lost(baseline), lost(network)
    rows = []
    pr = prices_regions if prices_regions is not None and not prices_regions.empty else pd.DataFrame(
        columns=["region_id", "commodity"])
    pr = pr.assign(d=pr["region_id"].map(fd_of))
    sup_w = farms.assign(region_id=farms["supply_id"].str.removeprefix("farm:")).set_index(
        ["region_id", "commodity"])["quantity_t"]
    site_d = {s: fd_of.get(r) for s, r in zip(planned.candidates["candidate_id"], planned.candidates["region_id"],
                                              strict=True)}
    cost = _site_costs(planned, network)
    seas = seasonal_value_by_site(planned, network).sub(seasonal_value_by_site(planned, baseline), fill_value=0.0)
    cost_d = cost.groupby(cost.index.map(site_d)).sum() if len(cost) else pd.Series(dtype=float)
    seas_d = seas.groupby(seas.index.map(site_d)).sum() if len(seas) else pd.Series(dtype=float)
    districts = sorted(set(prod.index.get_level_values(0)) | set(pr["d"].dropna()))
    for d in districts:
        name = DISTRICT_NAMES.get(d, (d, d))
        tot: dict[str, float] = {"production_t": 0.0, "loss_without_t": 0.0, "loss_with_t": 0.0,
                                 "consumer_surplus_change_mrub": 0.0, "producer_surplus_change_mrub": 0.0}
        for k in pb.commodities:
            p_t = float(prod.get((d, k), 0.0))
            a = float(l0.get((d, k), 0.0)) if baseline is not None else np.nan
            b = float(l1.get((d, k), 0.0))
            g = pr[(pr["d"] == d) & (pr["commodity"] == k)]
            cp = fp = np.nan
            cs = ps = 0.0
            if not g.empty:
                cp = _weighted_mean(g["consumer_price_change_pct"].to_numpy(float),
                                    g["consumption_base_t"].to_numpy(float))
                fp = _weighted_mean(g["farm_price_change_pct"].to_numpy(float),
                                    np.array([float(sup_w.get((r, k), 0.0)) for r in g["region_id"]]))
                cs = float(g["consumer_surplus_change_rub"].sum()) / 1e6
                ps = float(g["producer_surplus_change_rub"].sum()) / 1e6
            rows.append({"federal_district": d, "name_ru": name[0], "name_en": name[1], "commodity": k,
                         "commodity_ru": COMMODITY_BY_KEY[k].name_ru if k in COMMODITY_BY_KEY else k,
                         "production_t": p_t, "loss_without_t": a, "loss_with_t": b, "loss_saved_t": a - b,
                         "loss_share_without_pct": 100 * a / p_t if p_t > 0 else np.nan,
                         "loss_share_with_pct": 100 * b / p_t if p_t > 0 else np.nan,
                         "consumer_price_change_pct": cp, "farm_price_change_pct": fp,
                         "consumer_surplus_change_mrub": cs, "producer_surplus_change_mrub": ps,
                         "seasonal_value_change_mrub": np.nan, "centre_cost_mrub": np.nan,
                         "net_benefit_mrub": np.nan})
            for key, v in (("production_t", p_t), ("loss_without_t", a), ("loss_with_t", b),
                           ("consumer_surplus_change_mrub", cs), ("producer_surplus_change_mrub", ps)):
                tot[key] += v
        sv, cc = float(seas_d.get(d, 0.0)) / 1e6, float(cost_d.get(d, 0.0)) / 1e6
        a, b, p_t = tot["loss_without_t"], tot["loss_with_t"], tot["production_t"]
        rows.append({"federal_district": d, "name_ru": name[0], "name_en": name[1], "commodity": ALL_GROUPS,
                     "commodity_ru": "все группы", "production_t": p_t, "loss_without_t": a, "loss_with_t": b,
                     "loss_saved_t": a - b, "loss_share_without_pct": 100 * a / p_t if p_t > 0 else np.nan,
                     "loss_share_with_pct": 100 * b / p_t if p_t > 0 else np.nan,
                     "consumer_price_change_pct": np.nan, "farm_price_change_pct": np.nan,
                     "consumer_surplus_change_mrub": tot["consumer_surplus_change_mrub"],
                     "producer_surplus_change_mrub": tot["producer_surplus_change_mrub"],
                     "seasonal_value_change_mrub": sv, "centre_cost_mrub": cc,
                     "net_benefit_mrub": tot["consumer_surplus_change_mrub"] + tot["producer_surplus_change_mrub"]
                     + sv - cc})
    if social is not None:
        unallocated = float(social.get("import_duty_change_mrub", 0.0)) + float(
            social.get("centre_margin_change_mrub", 0.0))
        rows.append({"federal_district": "RU", "name_ru": "Россия: не распределено по округам (пошлины, маржа ОРЦ)",
                     "name_en": "Russia: not allocated to districts (import duty, the centres' kept margin)",
                     "commodity": ALL_GROUPS, "commodity_ru": "все группы", "net_benefit_mrub": unallocated})
    return pd.DataFrame(rows, columns=list(DISTRICT_COLUMNS))


def write_district_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write :func:`district_table` as CSV (UTF-8 with BOM, RU/EN headers with units); returns the path."""
    path = Path(path)
    table[list(DISTRICT_COLUMNS)].rename(columns=DISTRICT_COLUMNS).to_csv(path, index=False, encoding="utf-8-sig")
    return path
