"""The share-through-centres curve on Kazakhstan's pilots: each point is its own solved plan, targets the network
cannot reach are kept and flagged, the pilots' share is marked, and a run writes the CSV and the chart."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from optimization.run import optimize
from optimization.solve import SolverOptions
from planner.economics.share_curve import HEADERS, share_curve, write_share_curve
from planner.execute import execute_scenario
from planner.pipeline import build_problem
from planner.scenario import ScenarioError, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
SHARES = [0.0, 0.2, 1.0]


@pytest.fixture(scope="module")
def pilots():
    return load_scenario(ROOT / "scenarios" / "kazakhstan_pilots.yaml")


@pytest.fixture(scope="module")
def curve(pilots, dataset) -> pd.DataFrame:
    return share_curve(pilots, dataset, SHARES, time_limit_s=60)


def _all(curve: pd.DataFrame, point: str = "curve") -> pd.DataFrame:
    return curve[(curve["commodity"] == "all") & (curve["point"] == point)].set_index("share_target_pct")


def test_each_point_is_the_plan_solved_at_its_share(curve, pilots, dataset):
    c = _all(curve)
    assert list(c.index) == [0.0, 20.0, 100.0]  # every target kept, none dropped
    reached = c[c["reachable"]]
    assert (reached["share_achieved_pct"] >= reached.index - 1e-6).all()
    # the 20% point is the scenario solved with min_share_through_centres = 0.2 on its own, not an interpolation
    sc = pilots.model_copy(update={"objective": pilots.objective.model_copy(
        update={"min_share_through_centres": 0.2})})
    planned = build_problem(sc, dataset)
    res = optimize(planned.problem, SolverOptions(time_limit=60, rel_gap=sc.solver.gap))
    f = res.flows[res.flows["kind"] != "outbound"]
    share = 100 * f.loc[f["kind"] == "inbound", "tonnes"].sum() / f["tonnes"].sum()
    assert c.at[20.0, "share_achieved_pct"] == pytest.approx(share, abs=0.5)
    # a larger share through centres cuts more of the losses than the cost-optimal plan does
    assert c.at[20.0, "loss_network_t"] < c.at[0.0, "loss_network_t"]


def test_a_share_the_network_cannot_carry_is_reported_not_dropped(curve):
    c = _all(curve)
    full = c.loc[100.0]
    # 13 candidate sites cannot carry all of Kazakhstan's produce: the model meets 100% only by rationing
    assert not full["reachable"]
    assert full["unmet_t"] > 0.005 * 1e6 or full["unsold_t"] > 0.005 * 1e6
    assert bool(c.at[0.0, "reachable"]) and c.at[0.0, "unmet_t"] < 1.0


def test_the_pilots_share_is_marked_and_below_the_cost_optimal_plan(curve):
    p = _all(curve, "existing")
    assert len(p) == 1 and int(p["centres_open"].iat[0]) == 4 and int(p["new_centres"].iat[0]) == 0
    assert 0 < p["share_achieved_pct"].iat[0] < _all(curve).at[0.0, "share_achieved_pct"]
    by_group = curve[(curve["point"] == "existing") & (curve["commodity"] != "all")]
    assert set(by_group["commodity"]) == {"potatoes", "vegetables", "fruit_berries"}


def test_the_curve_files_carry_units_in_both_languages(curve, tmp_path):
    csv, png = write_share_curve(curve, tmp_path, "test")
    raw = csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    back = pd.read_csv(csv, encoding="utf-8-sig")
    assert list(back.columns) == [HEADERS[c] for c in curve.columns]
    assert "доля через ОРЦ, %" in HEADERS["share_achieved_pct"] and "т в год" in HEADERS["loss_network_t"]
    assert png.stat().st_size > 10_000


def test_the_scenario_switch_is_validated_by_name():
    with pytest.raises(ScenarioError, match="outputs.share_curve"):
        parse_scenario({"name": "x", "outputs": {"share_curve": [0.1, 1.5]}})
    with pytest.raises(ScenarioError, match="outputs.bogus"):
        parse_scenario({"name": "x", "outputs": {"bogus": 1}})
    assert parse_scenario({"name": "x"}).outputs.share_curve is None


def test_a_run_with_the_switch_writes_the_curve(pilots, dataset, tmp_path):
    sc = pilots.model_copy(update={"outputs": pilots.outputs.model_copy(update={"share_curve": [0.0]})})
    out = execute_scenario(sc, dataset, output=tmp_path)
    assert (tmp_path / "share_curve.csv").is_file() and (tmp_path / "share_curve.png").is_file()
    assert {r["point"] for r in out.summary["share_curve"]} == {"curve", "existing"}
    assert out.share_curve is not None and len(out.share_curve) == 8  # (3 groups + all) × 2 points


def test_the_planned_network_of_24_keeps_the_pilots_and_the_named_regions(dataset):
    from planner.pipeline import run_scenario

    sc = load_scenario(ROOT / "scenarios" / "kazakhstan_network24.yaml")
    assert sc.outputs.share_curve is None and sc.objective.p == 24
    planned, res = run_scenario(sc, dataset)
    assert res.objective is not None
    opened = res.sites[res.sites["open"]]
    assert len(opened) == 24
    assert {"kz_ast_orc", "kz_ala_orc", "kz_kar_orc", "kz_akt_orc"} <= set(opened["site_id"])
    region = planned.candidates.set_index("candidate_id")["region_id"]
    assert {"KZ-79", "KZ-19", "KZ-31"} <= set(opened["site_id"].map(region))
