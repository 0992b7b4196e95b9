"""The embedded dataset: what planners rely on being in it, and the treatments of the raw files' traps."""

from __future__ import annotations

import pytest

from planner.settings import COMMODITY_KEYS, NCFD_REGIONS


def test_every_russian_federal_subject_with_district_and_population(dataset):
    ru = dataset.regions[dataset.regions["country_id"] == "RU"]
    assert len(ru) == 85
    assert ru["federal_district"].notna().all()
    assert (ru["population"] > 0).all()
    assert 140e6 < ru["population"].sum() < 150e6
    assert set(ru.loc[ru["federal_district"] == "NCFD", "region_id"]) == NCFD_REGIONS
    assert ru.groupby("federal_district").size().to_dict() == {
        "CFD": 18, "NWFD": 11, "SFD": 8, "NCFD": 7, "VFD": 14, "UFD": 6, "SibFD": 10, "FEFD": 11}


def test_crimea_sevastopol_and_baikonur_treatment(dataset):
    reg = dataset.regions.set_index("region_id")
    for rid, iso in (("RU-CR", "UA-43"), ("RU-SEV", "UA-40")):
        assert reg.at[rid, "federal_district"] == "SFD"
        assert reg.at[rid, "iso_3166_2"] == iso
        assert reg.at[rid, "centroid_method"] == "label_point"
    assert not reg.index.str.contains("BAY").any()
    assert "Байконур" not in set(dataset.cities.loc[dataset.cities["country_id"] == "RU", "name_ru"])


def test_kazakhstan_uses_current_units_and_splits_almaty(dataset):
    kz = dataset.regions[dataset.regions["country_id"] == "KZ"].set_index("region_id")
    assert len(kz) == 20
    assert {"KZ-10", "KZ-33", "KZ-62", "KZ-79", "KZ-19", "KZ-75", "KZ-71"} <= set(kz.index)
    assert kz.at["KZ-75", "unit_type"] == "City" and kz.at["KZ-19", "unit_type"] == "Region"
    cities = dataset.cities.set_index("name_en")
    assert cities.at["Karagandy", "region_id"] == "KZ-35"
    assert cities.at["Semey", "region_id"] == "KZ-10"
    assert cities.at["Almaty", "region_id"] == "KZ-75"


def test_partner_countries_admin1_and_eaeu_flag(dataset):
    countries = dataset.countries.set_index("country_id")
    assert set(countries.index[countries["eaeu_member"]]) == {"RU", "BY", "KZ", "AM", "KG"}
    have = set(dataset.regions["country_id"])
    assert {"KZ", "KG", "AM", "BY", "UZ", "TJ", "GE", "AZ", "CN"} <= have
    cn = dataset.regions[dataset.regions["country_id"] == "CN"]
    assert list(cn["region_id"]) == ["CN-XJ"]


def test_cities_thresholds_regions_and_flags(dataset):
    c = dataset.cities
    assert (c.loc[c["country_id"] == "RU", "population"] >= 10_000).all()
    assert (c.loc[c["country_id"] != "RU", "population"] >= 15_000).all()
    assert len(c[c["country_id"] == "RU"]) > 900
    assert (c.loc[c["country_id"] == "AZ", "region_assignment"] == "nearest_label_point").all()
    moscow = c[c["name_ru"] == "Москва"].iloc[0]
    assert moscow["name_en"] == "Moscow" and moscow["region_id"] == "RU-MOW"
    assert c.loc[c["name_en"] == "Yerevan", "name_ru"].iloc[0] == "Ереван"
    # GeoNames city districts (Yerevan's Arabkir, Tashkent's Yunusobod) are folded into their city
    assert not c["name_en"].isin(["Arabkir", "Yunusobod", "Chilanzar"]).any()


def test_production_covers_south_of_russia_and_partners(dataset):
    p = dataset.production
    south = set(dataset.regions.loc[dataset.regions["federal_district"].isin(["NCFD", "SFD"]), "region_id"])
    reg = p[p["area_level"] == "region"]
    assert {(r, c) for r in south for c in COMMODITY_KEYS} <= set(zip(reg["area_id"], reg["commodity"], strict=True))
    assert reg["source"].str.len().gt(10).all()
    nat = p[p["area_level"] == "country"].set_index(["area_id", "commodity"])["quantity_kt"]
    assert nat[("KZ", "grain")] > 10_000  # Kazakhstan harvests well over 10 Mt of grain
    assert nat[("UZ", "vegetables")] > nat[("AM", "vegetables")]
    stav, dag = reg.set_index(["area_id", "commodity"])["quantity_kt"][[("RU-STA", "grain"), ("RU-DA", "grain")]]
    assert stav > 5 * dag  # Stavropol is the grain region of the district


def test_agricultural_shares_match_the_edb_check(dataset):
    s = dataset.agri_shares.set_index("region_id")
    reg = dataset.regions.set_index("region_id")
    ncfd = sorted(NCFD_REGIONS)
    weights = reg.loc[ncfd, "population"]
    share = (s.loc[ncfd, "employment_share_pct"] * weights).sum() / weights.sum()
    assert 14 <= share <= 22, share  # EDB 2019: about 18% of the NCFD's employed work in agriculture
    assert (s.loc[ncfd, "employment_lq"] > 1).all()
    assert s.at["RU", "employment_lq"] == 1.0


def test_existing_centres_and_crossings(dataset):
    centres = dataset.existing_centres
    ru = centres[centres["country"] == "RU"]
    assert set(ru["region_id"]) == {"RU-IN", "RU-KB", "RU-STA", "RU-DA", "RU-KC"}
    assert set(centres.loc[centres["country"] == "KZ", "city_en"].str.split(" ").str[0]) == {
        "Astana", "Almaty", "Karaganda", "Aktobe"}
    x = dataset.border_crossings
    pairs = {frozenset((a, b)) for a, b in zip(x["country_a"], x["country_b"], strict=True)}
    for pair in (("RU", "KZ"), ("RU", "GE"), ("GE", "AM"), ("RU", "AZ"), ("RU", "BY"), ("KZ", "KG"),
                 ("KZ", "UZ"), ("KZ", "CN")):
        assert frozenset(pair) in pairs
    assert (x.loc[x["crossing_id"] == "ru_ge_upper_lars", "mode"] == "road").all()
    assert len(x[(x["country_a"] == "RU") & (x["country_b"] == "KZ")]) >= 4


def test_docs_describe_every_table_and_field():
    from pathlib import Path

    from planner.data.schema import TABLES

    doc = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text(encoding="utf-8")
    for name, (model, _) in TABLES.items():
        assert f"`{name}.csv`" in doc, name
        for field in model.model_fields:
            assert f"`{field}`" in doc, f"{name}.{field}"


def test_partner_admin1_regions_have_polygons_named_in_both_languages(dataset):
    """Every first-level region of KZ, BY, AM, KG, UZ and TJ in the regions table has a valid polygon on the base map,
    with its Russian and English names and ISO code; schematic outlines say so; the file stays small."""
    import json

    from shapely.geometry import shape

    from planner.settings import EMBEDDED_DATA_DIR

    path = EMBEDDED_DATA_DIR / "partner_admin1.geojson"
    assert path.stat().st_size < 3_000_000
    feats = {f["properties"]["region_id"]: f for f in json.loads(path.read_text(encoding="utf-8"))["features"]}
    reg = dataset.regions
    want = reg[reg["country_id"].isin(["KZ", "BY", "AM", "KG", "UZ", "TJ"])].set_index("region_id")
    assert len(want) == 65 and set(want.index) <= set(feats)
    for rid, row in want.iterrows():
        p = feats[rid]["properties"]
        assert p["name_ru"] == row["name_ru"] and p["name_en"] == row["name_en"], rid
        assert any("а" <= ch.lower() <= "я" for ch in p["name_ru"]), rid
        assert p["name_en"][0].isascii() and not any("а" <= ch.lower() <= "я" for ch in p["name_en"]), rid
        assert p["iso_3166_2"] == row["iso_3166_2"] and p["country_id"] == row["country_id"]
        assert "Natural Earth" in p["source"] and "public domain" in p["licence"]
        geom = shape(feats[rid]["geometry"])
        assert geom.is_valid and geom.area > 0, rid
        assert geom.buffer(0.05).contains(shape({"type": "Point", "coordinates": [row["lon"], row["lat"]]})) or \
            p["approximate"], rid  # the region's own point lies in its outline unless the outline is schematic
    # units Natural Earth predates are drawn, and flagged as schematic
    for rid in ("KZ-10", "KZ-33", "KZ-62", "KZ-79"):
        assert feats[rid]["properties"]["approximate"] and "approximate" in feats[rid]["properties"]["notes"]
    assert not feats["BY-HM"]["properties"]["approximate"]
    # the Kazakh outlines tile the country without overlaps (areas on an equal-area projection, km²)
    import geopandas as gpd

    kz = gpd.GeoSeries([shape(f["geometry"]) for r, f in feats.items() if r.startswith("KZ-")], crs=4326)
    kz = kz.to_crs("+proj=aea +lat_1=42 +lat_2=52 +lon_0=67 +datum=WGS84")
    assert kz.area.sum() / 1e6 == pytest.approx(kz.union_all().area / 1e6, rel=0.01)
    assert 2.6e6 < kz.area.sum() / 1e6 < 2.8e6  # Kazakhstan: about 2.72 million km² (approximate, as commonly cited)


def test_crimea_and_sevastopol_outlines_are_natural_earths_not_schematic():
    """The maps draw Crimea and Sevastopol from Natural Earth's admin-1 units (no schematic disk, not approximate):
    Sevastopol's outline is about its legal area (864 km²) and touches the sea on its west, not a 20 km circle."""
    import geopandas as gpd

    from planner.data.loader import embedded_path

    g = gpd.read_file(embedded_path("ru_crimea_sevastopol").with_suffix(".geojson")).set_index("region_id")
    assert set(g.index) == {"RU-CR", "RU-SEV"} and not g["approximate"].astype(bool).any()
    km2 = g.to_crs(6933).area / 1e6
    assert 650 < km2["RU-SEV"] < 950 and 25_000 < km2["RU-CR"] < 27_500
    # a schematic disk of radius 20 km has the isoperimetric ratio of a circle (4πA/P² = 1); a real outline does not
    sev = g.to_crs(6933).geometry["RU-SEV"]
    assert 4 * 3.14159 * sev.area / sev.length ** 2 < 0.6
    assert g.geometry["RU-SEV"].intersects(g.geometry["RU-CR"].buffer(0.02))
