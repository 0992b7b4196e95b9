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
from planner.pipeline import PlannedProblem
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
