"""Every validation error path: a bad table is refused with its file, row and field named."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.data.loader import DataValidationError, load_dataset, read_table


def _problems(exc: pytest.ExceptionInfo[DataValidationError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def test_negative_population_names_file_row_and_field(edited_table):
    def edit(f):
        f.loc[3, "population"] = "-5"
        return f

    path = edited_table("regions", edit)
    with pytest.raises(DataValidationError) as exc:
        read_table("regions", path)
    (p,) = exc.value.problems
    assert p.file == str(path) and p.row == 5 and p.field == "population"
    assert "greater than or equal to 0" in p.message


def test_missing_required_column(edited_table):
    path = edited_table("production", lambda f: f.drop(columns=["quantity_kt"]))
    with pytest.raises(DataValidationError) as exc:
        read_table("production", path)
    assert exc.value.problems[0].field == "quantity_kt"
    assert "missing" in exc.value.problems[0].message


def test_non_numeric_and_unknown_commodity(edited_table):
    def edit(f):
        f.loc[0, "quantity_kt"] = "lots"
        f.loc[1, "commodity"] = "grapes"
        return f

    with pytest.raises(DataValidationError) as exc:
        read_table("production", edited_table("production", edit))
    fields = {(p.row, p.field) for p in exc.value.problems}
    assert fields == {(2, "quantity_kt"), (3, "commodity")}


def test_missing_required_value_and_bad_coordinate(edited_table):
    def edit(f):
        f.loc[0, "name_ru"] = ""
        f.loc[1, "lat"] = "95"
        return f

    with pytest.raises(DataValidationError) as exc:
        read_table("cities", edited_table("cities", edit))
    assert {(p.row, p.field) for p in exc.value.problems} == {(2, "name_ru"), (3, "lat")}


def test_russian_region_needs_a_known_federal_district(edited_table):
    def edit(f):
        f.loc[f["region_id"] == "RU-STA", "federal_district"] = "Южный"
        return f

    with pytest.raises(DataValidationError) as exc:
        read_table("regions", edited_table("regions", edit))
    (p,) = exc.value.problems
    assert p.field == "federal_district" and "RU-STA" not in p.message and "NCFD" in p.message


def test_duplicate_key(edited_table):
    import pandas as pd

    rows = {}

    def dup_first(f):
        rows["n"] = len(f)
        return pd.concat([f, f.iloc[[0]]], ignore_index=True)

    path = edited_table("border_crossings", dup_first)
    with pytest.raises(DataValidationError) as exc:
        read_table("border_crossings", path)
    assert "duplicate key" in exc.value.problems[0].message
    assert exc.value.problems[0].row == rows["n"] + 2  # the appended copy: header line + n rows + 1


def test_city_in_unknown_region_fails_the_join(edited_table):
    def edit(f):
        f.loc[0, "region_id"] = "RU-XX"
        return f

    with pytest.raises(DataValidationError) as exc:
        load_dataset({"cities": edited_table("cities", edit)})
    (msg,) = _problems(exc)
    assert "row 2" in msg and "region_id" in msg and "RU-XX" in msg


def test_ncfd_must_hold_its_seven_regions(edited_table):
    def edit(f):
        f.loc[f["region_id"] == "RU-IN", "federal_district"] = "SFD"
        return f

    with pytest.raises(DataValidationError) as exc:
        load_dataset({"regions": edited_table("regions", edit)})
    assert any("RU-IN" in m and "North Caucasus" in m for m in _problems(exc))


def test_production_of_unknown_region_and_missing_norm(edited_table):
    def prod(f):
        f.loc[0, "area_id"] = "RU-ZZZ"
        return f

    norms = edited_table("consumption_norms", lambda f: f[f["commodity"] != "milk"])
    with pytest.raises(DataValidationError) as exc:
        load_dataset({"production": edited_table("production", prod), "consumption_norms": norms})
    msgs = _problems(exc)
    assert any("RU-ZZZ" in m for m in msgs)
    assert any("'milk'" in m for m in msgs)


def test_unreadable_missing_and_empty_files(tmp_path):
    with pytest.raises(DataValidationError, match="file not found"):
        read_table("regions", tmp_path / "nope.csv")
    bad = tmp_path / "regions.xlsx"
    bad.write_text("x")
    with pytest.raises(DataValidationError, match="unsupported file type"):
        read_table("regions", bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("region_id,name_ru\n")
    with pytest.raises(DataValidationError, match="no rows"):
        read_table("regions", empty)
    with pytest.raises(DataValidationError, match="unknown table"):
        load_dataset({"farms": empty})


def test_user_override_replaces_the_embedded_table(edited_table, dataset):
    def edit(f):
        f.loc[(f["area_id"] == "RU-STA") & (f["commodity"] == "grain"), "quantity_kt"] = "9999"
        return f

    ds = load_dataset({"production": edited_table("production", edit)})
    p = ds.production.set_index(["area_id", "commodity"])["quantity_kt"]
    assert p[("RU-STA", "grain")] == 9999
    assert ds.files["production"].endswith("production_edited.csv")
    assert len(ds.cities) == len(dataset.cities)


def test_user_geojson_table_takes_point_coordinates(tmp_path, dataset):
    feats = []
    for r in dataset.existing_centres.to_dict("records"):
        props = {k: v for k, v in r.items() if k not in ("lat", "lon") and v == v and v is not None}
        feats.append({"type": "Feature", "properties": props,
                      "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]}})
    feats[0]["geometry"]["coordinates"] = [45.0, 43.5]
    path = tmp_path / "centres.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False))
    ds = load_dataset({"existing_centres": path})
    assert ds.existing_centres.iloc[0]["lat"] == 43.5


@settings(max_examples=25, deadline=None)
@given(st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False))
def test_any_negative_production_is_refused(tmp_path_factory, value):
    src = tmp_path_factory.mktemp("p") / "production.csv"
    header = "area_id,area_level,commodity,year,quantity_kt,source"
    src.write_text(f"{header}\nRU-STA,region,grain,2023,{value!r},x source\n")
    with pytest.raises(DataValidationError) as exc:
        read_table("production", src)
    assert exc.value.problems[0].field == "quantity_kt"
