"""Demand basis (#14 item 7): Rosstat's actual consumption by default, the Ministry of Health norm as a switch."""

from __future__ import annotations

import pandas as pd
import pytest

from planner.balance import demand_kt_per_capita, production_use_kt, regional_balance
from planner.data.loader import DataValidationError, load_dataset
from planner.pipeline import build_problem
from planner.scenario import ScenarioError, parse_scenario
from planner.settings import NCFD_REGIONS

NCFD = sorted(NCFD_REGIONS)
GROUPS = ["potatoes", "vegetables", "fruit_berries"]


def test_default_basis_is_actual_and_below_the_norm_for_ncfd(dataset, params):
    assert parse_scenario({"name": "x"}).demand_basis == "actual"
    actual = regional_balance(dataset, NCFD, GROUPS, params).groupby("commodity")["demand_kt"].sum()
    norm = regional_balance(dataset, NCFD, GROUPS, params, "norm").groupby("commodity")["demand_kt"].sum()
    assert actual["vegetables"] < 0.8 * norm["vegetables"]  # ~94.5 kg against the norm's 126 (both without melons)
    assert actual["fruit_berries"] < norm["fruit_berries"]
    assert actual["potatoes"] <= norm["potatoes"]


def test_norm_basis_is_the_norm_with_vegetables_net_of_melons(dataset, params):
    sc = parse_scenario({"name": "x", "commodities": GROUPS, "demand_basis": "norm"})
    pb = build_problem(sc, dataset).problem
    got = pb.demands[~pb.demands["is_exit"]].groupby("commodity")["quantity_t"].sum()
    norms = dataset.consumption_norms.set_index("commodity")["kg_per_capita_year"]
    pop = dataset.regions.set_index("region_id").loc[NCFD, "population"].sum()
    growth = 1 + params["demand_growth_pct_per_year"] / 100.0
    uses = production_use_kt(dataset, NCFD)["use_kt"].groupby(level="commodity").sum() * 1000  # seed, processing
    norms["vegetables"] *= 0.90  # the norm's «овощи и бахчевые» less food melons (10%), as production counts them
    for c in GROUPS:
        assert got[c] == pytest.approx((pop * norms[c] / 1000 + uses.get(c, 0.0)) * growth, rel=1e-12)
    per = demand_kt_per_capita(dataset, params, NCFD, "norm")
    assert (per["level"] == "norm").all()
    assert per.loc[("RU-STA", "grain"), "kt_per_capita"] == pytest.approx(norms["grain"] / 0.73 / 1e6)


def test_actual_basis_feeds_the_problem(dataset, params):
    pb = build_problem(parse_scenario({"name": "x", "commodities": GROUPS}), dataset).problem
    got = pb.demands[~pb.demands["is_exit"]].groupby("commodity")["quantity_t"].sum()
    per = demand_kt_per_capita(dataset, params, NCFD, "actual")["kt_per_capita"]
    pop = dataset.regions.set_index("region_id")["population"]
    growth = 1 + params["demand_growth_pct_per_year"] / 100.0
    uses = production_use_kt(dataset, NCFD)["use_kt"]
    for c in GROUPS:
        want = sum(pop[r] * per[(r, c)] * 1000 + uses.get((r, c), 0.0) * 1000 for r in NCFD) * growth
        assert got[c] == pytest.approx(want, rel=1e-9)


def test_region_figure_first_then_district_then_russia_flagged(dataset, params):
    per = demand_kt_per_capita(dataset, params, NCFD + ["KZ-71"])
    kb = per.loc[("RU-KB", "fruit_berries")]
    assert kb["level"] == "region" and kb["area_id"] == "RU-KB"
    assert kb["kt_per_capita"] * 1e6 == pytest.approx(126)
    da = per.loc[("RU-DA", "fruit_berries")]
    assert da["level"] == "federal_district" and da["area_id"] == "NCFD" and da["approximate"]
    pot = per.loc[("RU-STA", "potatoes")]
    assert pot["level"] == "national" and pot["area_id"] == "RU" and pot["approximate"]
    assert per.loc[("RU-IN", "vegetables"), "level"] == "region"
    assert per.loc[("KZ-71", "vegetables"), "level"] == "national"  # Russia's figure stands in, flagged
    assert per.loc[("KZ-71", "vegetables"), "approximate"]
    grain = per.loc[("RU-DA", "grain")]  # no actual figure for the group: the norm, flagged
    assert grain["level"] == "norm" and grain["approximate"]
    milk = per.loc[("RU-DA", "milk")]  # Russia's figure (federal round), flagged
    assert milk["level"] == "national" and milk["approximate"]


def test_actual_vegetables_exclude_melons(dataset):
    a = dataset.consumption_actual
    veg = a[a["commodity"] == "vegetables"]
    assert not veg.empty and veg["approximate"].all()
    assert veg["notes"].str.contains("melons").all()
    ru = veg[veg["area_id"] == "RU"].sort_values("year").iloc[-1]
    assert ru["kg_per_capita"] == pytest.approx(105 * 0.9)


def test_latest_year_wins_and_household_survey_is_ignored(dataset, params, edited_table):
    def edit(f: pd.DataFrame) -> pd.DataFrame:
        extra = pd.DataFrame([
            {"area_id": "RU-DA", "commodity": "potatoes", "year": "2030", "kg_per_capita": "40",
             "basis": "household_survey", "source": "test row", "approximate": "false", "notes": ""},
            {"area_id": "RU-DA", "commodity": "potatoes", "year": "2029", "kg_per_capita": "70",
             "basis": "resource_balance", "source": "test row", "approximate": "false", "notes": ""}])
        return pd.concat([f, extra], ignore_index=True)

    ds = load_dataset({"consumption_actual": edited_table("consumption_actual", edit)})
    row = demand_kt_per_capita(ds, params, ["RU-DA"]).loc[("RU-DA", "potatoes")]
    assert row["kt_per_capita"] * 1e6 == pytest.approx(70)
    assert row["level"] == "region" and not row["approximate"]


def test_bad_basis_is_refused_naming_the_field(dataset, params):
    with pytest.raises(ScenarioError, match="demand_basis"):
        parse_scenario({"name": "x", "demand_basis": "rational"})
    with pytest.raises(ValueError, match="demand_basis"):
        demand_kt_per_capita(dataset, params, NCFD, "rational")


def test_unknown_area_or_commodity_is_refused(edited_table):
    def bad_area(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[0, "area_id"] = "RU-XX"
        return f

    with pytest.raises(DataValidationError, match="area_id"):
        load_dataset({"consumption_actual": edited_table("consumption_actual", bad_area)})

    def bad_group(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[0, "commodity"] = "vegetables_and_melons"
        return f

    with pytest.raises(DataValidationError, match="commodity"):
        load_dataset({"consumption_actual": edited_table("consumption_actual", bad_group)})


def test_dagestan_vegetables_no_longer_mix_melons(dataset):
    p = dataset.production
    row = p[(p["area_id"] == "RU-DA") & (p["commodity"] == "vegetables")].sort_values("year").iloc[-1]
    assert row["quantity_kt"] < 1500  # the 2023 '1,5 млн т овощей и бахчевых' mixed melons in
    assert row["approximate"]
    assert "vegetables only" in row["source"] and "melons" in row["notes"]


def test_vegetable_demand_excludes_melons_on_either_basis(dataset, params):
    """Production counts vegetables without food melons; so does demand on both bases: the actual figures net of
    melons at 10%, the norm's 140 kg «овощи и бахчевые» at the same share (126 kg), and the balance says so."""
    from planner.balance import DEMAND_BASIS_TEXT

    per = demand_kt_per_capita(dataset, params, ["RU-STA"], "norm")
    assert per.loc[("RU-STA", "vegetables"), "kt_per_capita"] * 1e6 == pytest.approx(140 * 0.90)
    assert params["melon_share_of_vegetables_pct"] == 10.0
    assert per.loc[("RU-STA", "potatoes"), "kt_per_capita"] * 1e6 == pytest.approx(90.0)  # no other group changes
    assert "exclude melons" in DEMAND_BASIS_TEXT["norm"] and "exclude melons" in DEMAND_BASIS_TEXT["actual"]
    # a scenario may put the melons back (share 0): the norm's full 140 kg
    q = params.with_values({"melon_share_of_vegetables_pct": 0.0})
    veg = demand_kt_per_capita(dataset, q, ["RU-STA"], "norm").loc[("RU-STA", "vegetables"), "kt_per_capita"]
    assert veg * 1e6 == pytest.approx(140.0)
