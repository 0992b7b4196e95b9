"""Scenarios and the parameter registry: valid files load, bad ones name the field and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.balance import regional_balance
from planner.parameters import PARAMETERS, ParameterSet
from planner.scenario import ScenarioError, load_scenario
from planner.settings import COMMODITY_KEYS, LOSS_STAGES

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_library_scenario_loads_and_selects_ncfd(dataset):
    sc = load_scenario(ROOT / "scenarios" / "ncfd_expansion.yaml")
    assert sorted(sc.region_ids(dataset)) == sorted(
        ["RU-DA", "RU-IN", "RU-KB", "RU-KC", "RU-SE", "RU-CE", "RU-STA"])
    assert set(sc.commodities) <= set(COMMODITY_KEYS) and sc.objective.p == 8


def test_unknown_key_is_an_error_with_line_and_suggestion(tmp_path):
    p = write(tmp_path, "name: a\nscope:\n  federal_districts: [NCFD]\ncomodities: [grain]\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    msg = str(exc.value)
    assert "line 4" in msg and "comodities" in msg and "'commodities'" in msg


def test_bad_commodity_and_district_name_the_field(tmp_path):
    p = write(tmp_path, "name: a\nscope:\n  federal_districts: [NCFO]\ncommodities: [grain, grapes]\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    msg = str(exc.value)
    assert "line 3" in msg and "scope.federal_districts" in msg and "NCFD" in msg
    assert "line 4" in msg and "commodities.1" in msg and "grapes" in msg


def test_parameter_overrides_checked_against_registry(tmp_path):
    p = write(tmp_path, "name: a\nparameters:\n  road_sped_kmh: 50\n")
    with pytest.raises(ScenarioError, match="road_speed_kmh"):
        load_scenario(p)
    p = write(tmp_path, "name: a\nparameters:\n  road_speed_kmh: -3\n")
    with pytest.raises(ScenarioError, match="below the minimum"):
        load_scenario(p)
    p = write(tmp_path, "name: a\nlosses:\n  vegetables:\n    distribution: 140\n")
    with pytest.raises(ScenarioError, match="0-100"):
        load_scenario(p)


def test_unknown_region_in_scope(tmp_path, dataset):
    sc = load_scenario(write(tmp_path, "name: a\nscope:\n  regions: [RU-STAV]\n"))
    with pytest.raises(ScenarioError, match="RU-STA"):
        sc.region_ids(dataset)


def test_yaml_syntax_error_names_the_line(tmp_path):
    with pytest.raises(ScenarioError, match=r"s\.yaml, line 2: not valid YAML"):
        load_scenario(write(tmp_path, "name: a\nscope: : [x]\n"))
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "missing.yaml")


def test_registry_entries_have_units_sources_and_admissible_defaults():
    for p in PARAMETERS:
        assert p.unit and len(p.source) > 20 and p.description
        assert p.check(p.default) == p.default


def test_loss_table_defaults_and_overrides(dataset):
    ps = ParameterSet(dataset.loss_rates)
    assert ps.loss_pct("grain", "postharvest_handling_storage") == 4.0  # FAO 2011, cereals, Europe incl. Russia
    assert ps.loss_pct("vegetables", "distribution") == 10.0
    ps2 = ParameterSet(dataset.loss_rates, loss_overrides={"vegetables": {"distribution": 6.5}})
    assert ps2.loss_pct("vegetables", "distribution") == 6.5
    assert set(ps.loss_table()["stage"]) <= set(LOSS_STAGES)
    central_asia = ParameterSet(dataset.loss_rates, fao_region="North Africa, West and Central Asia")
    assert central_asia.loss_pct("fruit_berries", "distribution") == 15.0


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parameter_check_accepts_exactly_the_admissible_range(value):
    p = PARAMETERS[0]
    if p.minimum <= value <= p.maximum:
        assert p.check(value) == value
    else:
        with pytest.raises(ValueError, match=p.name):
            p.check(value)


def test_balance_demand_is_population_times_norm(dataset):
    ps = ParameterSet(dataset.loss_rates)
    bal = regional_balance(dataset, ["RU-STA"], ["potatoes", "grain"], ps, "norm").set_index("commodity")
    pop = dataset.regions.set_index("region_id").at["RU-STA", "population"]
    # potatoes: the norm's food plus the region's seed and processing (its share of Russia's)
    assert bal.at["potatoes", "use_kt"] > 0
    assert bal.at["potatoes", "demand_kt"] == pytest.approx(pop * 90 / 1e6 + bal.at["potatoes", "use_kt"])
    norm = dataset.consumption_norms.set_index("commodity").at["grain", "kg_per_capita_year"]
    # grain: the norm's food (flour equivalent as grain) plus the region's livestock feed
    from planner.balance import feed_demand_kt

    feed = feed_demand_kt(dataset, ["RU-STA"]).at["RU-STA", "feed_kt"]
    assert feed > 0 and bal.at["grain", "feed_kt"] == pytest.approx(feed)
    assert bal.at["grain", "demand_kt"] == pytest.approx(pop * norm / 0.73 / 1e6 + feed)
    assert bal.at["potatoes", "feed_kt"] == 0
    assert bal.at["grain", "surplus_kt"] > 0


def test_published_json_schema_is_current():
    import json

    from planner.scenario import scenario_json_schema

    published = json.loads((ROOT / "docs" / "scenario-schema.json").read_text(encoding="utf-8"))
    assert published == scenario_json_schema(), "run `planner schema -o docs/scenario-schema.json`"
    doc = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    from planner.scenario import Scenario

    for field in Scenario.model_fields:
        assert f"`{field}" in doc, field
