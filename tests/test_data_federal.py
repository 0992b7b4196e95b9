"""The federal dataset (issue #18, Data): all 85 subjects carry production, agricultural shares and demand, and
the regional production adds up to Russia's national figure.

The national figure for the four crop groups is FAOSTAT's (``../shared/data/faostat``, summed over the FAO items
of ``planner.data.build.FAO_CROPS``: grain = cereals + dry pulses; vegetables without melons, watermelons and
mushrooms; fruit and berries without grapes and nuts); FAOSTAT's shared file holds no livestock, so milk and
meat are checked against ``planner/data/sources/ru_national_totals.csv`` (the ministry's milk, a derived
slaughter-weight meat).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from planner.data.build import FAO_CROPS, FAOSTAT_YEAR, FAR_NORTH_REGIONS
from planner.settings import CITY_REGIONS, COMMODITY_KEYS

ROOT = Path(__file__).resolve().parents[1]
FAOSTAT = ROOT.parent / "shared" / "data" / "faostat" / "faostat_production_eaeu.csv"
NATIONAL_SOURCES = ROOT / "planner" / "data" / "sources" / "ru_national_totals.csv"
TOLERANCE = 0.02
"""The regions' sum may differ from the national figure by at most 2% (issue #18)."""


@pytest.fixture(scope="module")
def national_kt() -> dict[str, float]:
    """Russia's national production per group, thousand tonnes: FAOSTAT for crops, the sources file for milk/meat."""
    if not FAOSTAT.is_file():
        pytest.skip("../shared's FAOSTAT file is absent")
    fao = pd.read_csv(FAOSTAT)
    fao = fao[(fao["iso3"] == "RUS") & (fao["year"] == FAOSTAT_YEAR)]
    out = {c: fao[fao["crop_key"].isin(items)]["production_t"].sum() / 1000.0 for c, items in FAO_CROPS.items()}
    livestock = pd.read_csv(NATIONAL_SOURCES).set_index("commodity")["quantity_kt"]
    out.update({c: float(livestock[c]) for c in ("milk", "meat")})
    return out


@pytest.fixture(scope="module")
def ru_production(dataset) -> pd.DataFrame:
    """Russian regional production rows of the embedded dataset for the base year."""
    p = dataset.production
    ru_ids = set(dataset.regions.loc[dataset.regions["country_id"] == "RU", "region_id"])
    return p[(p["area_level"] == "region") & p["area_id"].isin(ru_ids) & (p["year"] == FAOSTAT_YEAR)]


def test_subjects_have_distinct_names(dataset):
    """A national table lists 85 subjects: no two may share an English or a Russian name (Natural Earth called
    Altai krai «Altai Republic» and Moscow oblast «Moscow»)."""
    ru = dataset.regions[dataset.regions["country_id"] == "RU"]
    assert ru["name_en"].is_unique and ru["name_ru"].is_unique
    assert ru.set_index("region_id").at["RU-ALT", "name_en"] == "Altai Krai"


def test_every_subject_has_every_group(dataset, ru_production):
    """All 85 subjects × six groups, except grain and fruit in the subjects wholly in the Far North."""
    ru_ids = set(dataset.regions.loc[dataset.regions["country_id"] == "RU", "region_id"])
    have = set(zip(ru_production["area_id"], ru_production["commodity"], strict=True))
    expected = {(r, c) for r in ru_ids for c in COMMODITY_KEYS
                if not (r in FAR_NORTH_REGIONS and c in ("grain", "fruit_berries"))}
    assert expected <= have, sorted(expected - have)[:10]


def test_regions_sum_to_the_national_figure_within_2_percent(ru_production, national_kt):
    total = ru_production.groupby("commodity")["quantity_kt"].sum()
    for c in COMMODITY_KEYS:
        assert abs(total[c] - national_kt[c]) <= TOLERANCE * national_kt[c], (c, total[c], national_kt[c])


def test_own_figures_do_not_exceed_the_national_figure_and_coverage_is_reported(ru_production, national_kt):
    """Rows derived by splitting the national total do not count: the own figures alone stay below the national
    figure, and ``docs/data.md`` states how many regions carry a figure of their own in each group."""
    own = ru_production[~ru_production["derived"]]
    doc = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    for c in COMMODITY_KEYS:
        own_c = own[own["commodity"] == c]
        assert own_c["quantity_kt"].sum() <= national_kt[c] * (1 + 1e-9), c
        assert f"| {c} | {len(own_c)} |" in doc, f"docs/data.md does not state the own-figure count for {c}"


def test_derived_rows_are_flagged_and_follow_the_key(dataset, ru_production):
    """A derived row is approximate, says where it comes from, and the split follows agricultural employment:
    a subject with more people working in agriculture gets more; cities of federal status get nothing."""
    d = ru_production[ru_production["derived"]]
    assert d["approximate"].all()
    assert d["source"].str.startswith("derived:").all()
    assert (d.loc[d["area_id"].isin(CITY_REGIONS), "quantity_kt"] == 0).all()
    shares = dataset.agri_shares.set_index("region_id")["employment_share_pct"]
    pop = dataset.regions.set_index("region_id")["population"]
    meat = d[d["commodity"] == "meat"].set_index("area_id")["quantity_kt"]
    key = (shares.reindex(meat.index) * pop.reindex(meat.index)).where(~meat.index.isin(CITY_REGIONS), 0.0)
    assert meat.rank().corr(key.rank()) > 0.99


def test_own_figures_are_sourced(ru_production):
    own = ru_production[~ru_production["derived"]]
    assert own["source"].str.len().gt(20).all()
    assert not own["source"].str.startswith("derived").any()


def test_agricultural_shares_for_all_85_subjects_with_location_quotients(dataset):
    s = dataset.agri_shares.set_index("region_id")
    ru_ids = set(dataset.regions.loc[dataset.regions["country_id"] == "RU", "region_id"])
    assert ru_ids <= set(s.index)
    assert s.loc[sorted(ru_ids), ["employment_share_pct", "grp_share_pct"]].notna().all().all()
    lq = s["employment_lq"]
    assert lq["RU-TAM"] > 2 and lq["RU-MOW"] < 0.2  # Tambov is an agricultural region, Moscow is not
    reg = dataset.regions.set_index("region_id")
    weighted = (s.loc[sorted(ru_ids), "employment_share_pct"] * reg.loc[sorted(ru_ids), "population"]).sum() \
        / reg.loc[sorted(ru_ids), "population"].sum()
    assert abs(weighted - s.at["RU", "employment_share_pct"]) < 1.5, weighted  # regions agree with the national row


def test_every_subject_gets_a_demand_figure_for_every_group(dataset, params):
    """Actual consumption where published, else the federal district's or Russia's, else the norm — all flagged."""
    from planner.balance import demand_kt_per_capita

    ru_ids = sorted(dataset.regions.loc[dataset.regions["country_id"] == "RU", "region_id"])
    d = demand_kt_per_capita(dataset, params, ru_ids, "actual")
    assert len(d) == len(ru_ids) * len(COMMODITY_KEYS)
    assert (d["kt_per_capita"] > 0).all()
    milk = d.xs("milk", level="commodity")["level"]
    assert set(milk[milk.index.isin(["RU-KRS", "RU-SMO"])]) == {"region"}  # the regions that publish their own
    assert set(milk[~milk.index.isin(["RU-KRS", "RU-SMO"])]) == {"national"}  # the rest take Russia's, flagged
    assert d.loc[(slice(None), "meat"), "approximate"].all()
    assert d.at[("RU-KRS", "potatoes"), "kt_per_capita"] * 1e6 == pytest.approx(100)


def test_wholesale_markets_beyond_the_north_caucasus(dataset):
    w = dataset.wholesale_markets.set_index("centre_id")
    assert {"ru_mow_food_city", "ru_spe_nart", "ru_ta_agroprompark", "ru_sve_orc_ural"} <= set(w.index)
    assert w.at["ru_mow_food_city", "status"] == "operating" and w.at["ru_mow_food_city", "region_id"] == "RU-MOW"
    assert not w["region_id"].isin(dataset.existing_centres["region_id"]).any()
    unconfirmed = w[w["status"] != "operating"]
    assert unconfirmed["notes"].str.contains("not confirmed|NOT confirmed|concept|Announcement", regex=True).all()


def test_a_national_scope_produces_the_national_total_and_no_far_north_grain(dataset):
    """What a run of the 85 subjects is given (``regional_production``) adds up to Russia's national figure in
    every group: a subject the table leaves out on purpose (the Far North grows no grain or fruit) produces
    nothing, rather than a population share of the national total on top of the regions that carry it all (the
    fourth federal run's review found 143.9 Mt of grain against 140.9 Mt)."""
    from planner.balance import regional_production

    ru = sorted(dataset.regions.loc[dataset.regions["country_id"] == "RU", "region_id"])
    got = regional_production(dataset, ru, list(COMMODITY_KEYS))
    national = dataset.production[dataset.production["area_id"] == "RU"].set_index("commodity")["quantity_kt"]
    for c, kt in got.groupby("commodity")["quantity_kt"].sum().items():
        assert kt == pytest.approx(float(national[c]), rel=1e-3), c
    far = got[got["area_id"].isin(FAR_NORTH_REGIONS) & got["commodity"].isin(["grain", "fruit_berries"])]
    assert far.empty or (far["quantity_kt"] == 0).all()
