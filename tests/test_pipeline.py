"""Scenarios through the whole pipeline: scenario → data → geo → optimization → summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.pipeline import annual_fixed_cost, build_problem, run_scenario
from planner.scenario import ScenarioError, load_scenario, parse_scenario
from planner.settings import NCFD_REGIONS
from planner.summary import summarize

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def default_run(dataset):
    sc = load_scenario(ROOT / "scenarios" / "ncfd_expansion.yaml")
    planned, result = run_scenario(sc, dataset)
    return sc, planned, result


def test_default_scenario_opens_p_centres_keeping_the_existing_ones(default_run):
    sc, planned, result = default_run
    assert result.status == "optimal"
    assert len(result.open_sites) == sc.objective.p
    existing = set(planned.candidates.loc[planned.candidates["existing"], "candidate_id"])
    assert existing <= set(result.open_sites)
    assert {g.split("|")[0] for g in result.sites.loc[result.sites["open"], "group"]} <= NCFD_REGIONS


def test_per_region_and_district_limits(dataset):
    sc = parse_scenario({"name": "x", "commodities": ["vegetables", "fruit_berries"],
                         "objective": {"p": 7, "max_per_region": {"RU-DA": 1}, "min_per_region": {"NCFD": 7}}})
    planned, result = run_scenario(sc, dataset)
    regions = [g.split("|")[0] for g in result.sites.loc[result.sites["open"], "group"]]
    assert result.status == "optimal" and len(regions) == 7 and regions.count("RU-DA") <= 1


def test_default_scenario_balances_tonnes(default_run, dataset):
    _, planned, result = default_run
    pb = planned.problem
    farms = pb.supplies["supply_id"].str.startswith("farm:")
    produced = pb.supplies.loc[farms, "quantity_t"].sum()
    f = result.flows
    shipped = f.loc[(f["kind"] != "outbound") & f["from_id"].str.startswith("farm:"), "tonnes"].sum()
    assert shipped + result.unsold["unsold_t"].sum() == pytest.approx(produced, rel=1e-6)
    markets = result.service[~result.service["is_exit"]]
    assert (markets["delivered_t"] + markets["unmet_t"]).sum() == pytest.approx(markets["quantity_t"].sum(), rel=1e-6)
    # demand = population × the scenario's per-capita consumption (actual by default) + seed and processing,
    # region by region
    from planner.balance import demand_kt_per_capita, production_use_kt

    per_capita = demand_kt_per_capita(dataset, planned.params, sorted(NCFD_REGIONS), "actual")["kt_per_capita"]
    uses = production_use_kt(dataset, sorted(NCFD_REGIONS))["use_kt"]
    pop = dataset.regions.set_index("region_id").loc[sorted(NCFD_REGIONS), "population"]
    expected = sum((pop[r] * per_capita[(r, "potatoes")] + uses[(r, "potatoes")]) * 1e3 for r in pop.index)  # kt → t
    assert markets.groupby("commodity")["quantity_t"].sum()["potatoes"] == pytest.approx(expected)


def test_summary_names_centres_in_both_languages(default_run):
    sc, planned, result = default_run
    s = summarize(sc, planned, result)
    json.dumps(s, ensure_ascii=False, default=float)
    assert len(s["centres"]) == sc.objective.p
    assert all(c["name_ru"] and c["name_en"] for c in s["centres"])
    assert all(0 <= c["utilisation"] <= 1 + 1e-9 for c in s["centres"])
    assert s["cost_breakdown"]["fixed (capital + operating)"] > 0


def test_arcs_are_sparse_and_channels_differ(default_run):
    _, planned, _ = default_run
    pb = planned.problem
    n_sup, n_sites = pb.supplies["supply_id"].nunique(), len(pb.sites)
    assert len(pb.inbound) <= n_sup * n_sites * len(pb.commodities)
    # the traditional channel loses more per tonne than farm -> centre -> market
    assert pb.direct["loss"].mean() > pb.inbound["loss"].mean()
    assert pb.direct["loss"].mean() > pb.outbound["loss"].mean()


def test_annualised_fixed_cost():
    from planner.parameters import ParameterSet

    class P(dict):
        def __getitem__(self, k):
            return {"discount_rate_pct": 10.0, "centre_lifetime_years": 25.0, "centre_fixed_opex_pct": 4.0}[k]

    crf = 0.1 * 1.1**25 / (1.1**25 - 1)
    assert annual_fixed_cost(1e9, P()) == pytest.approx(1e9 * (crf + 0.04))
    assert ParameterSet  # registry import stays valid


def test_unknown_exit_and_region_limits_are_named(dataset):
    sc = parse_scenario({"name": "x", "exits": [{"town": "Атлантида"}]})
    with pytest.raises(ScenarioError, match="Атлантида"):
        build_problem(sc, dataset)
    sc = parse_scenario({"name": "x", "objective": {"max_per_region": {"RU-ZZ": 1}}})
    with pytest.raises(ScenarioError, match="RU-ZZ"):
        build_problem(sc, dataset)


def test_cli_run_json_and_bad_scenario(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(ROOT / "scenarios" / "ncfd_expansion.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)  # stdout is the JSON document and nothing else (tables went to stderr)
    assert s["status"] == "optimal" and s["scenario"] == "ncfd_expansion"
    assert "Supply-demand balance" in res.stderr and "Supply-demand balance" not in res.stdout
    assert "Running HiGHS" not in res.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nobjective:\n  p: -1\n", encoding="utf-8")
    res = runner.invoke(app, ["run", str(bad)])
    assert res.exit_code == 1 and "objective.p" in res.output and "line 3" in res.output


def test_run_writes_every_output_and_never_overwrites(tmp_path):
    import pandas as pd

    out = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(ROOT / "scenarios" / "ncfd_expansion.yaml"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    from planner.outputs import FILES

    assert {p.name for p in out.iterdir()} == set(FILES) | {"run.log", "ranges.csv", "interdistrict_flows.csv",
                                                           "distribution_by_region.csv"}
    log = (out / "run.log").read_text(encoding="utf-8")
    assert "HiGHS" in log and "Solving report" in log  # the solver's lines went to the log
    assert "Solving report" not in res.output and "Coefficient ranges" not in res.output
    # the run ends by saying where the report, map and workbook are
    tail = res.output[res.output.rindex("Wrote"):]
    for name in ("report.html", "map.png", "results.xlsx", "run.log"):
        assert str(out / name) in tail.replace("\n", ""), name
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key in ("scenario", "status", "objective", "gap", "centres", "cost_breakdown", "loss_tonnes_baseline",
                "loss_tonnes_network", "loss_reduction_pct", "price_change_pct", "runtime_seconds"):
        assert key in s, key
    assert {"id", "name_ru", "name_en", "region", "country", "size", "utilisation"} <= set(s["centres"][0])
    assert len(pd.read_csv(out / "sites.csv")) == len(s["centres"])
    assert set(pd.ExcelFile(out / "results.xlsx").sheet_names) >= {"summary", "sites", "flows", "losses", "prices"}
    html_text = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html_text and "ncfd_expansion" in html_text
    layers = {f["properties"]["layer"] for f in json.loads((out / "network.geojson").read_text())["features"]}
    assert layers == {"region", "corridor", "centre", "flow", "trade"}  # trade: its sales to the rest of Russia
    before = (out / "summary.json").read_bytes()
    res = runner.invoke(app, ["run", str(ROOT / "scenarios" / "ncfd_expansion.yaml"), "-o", str(out)])
    assert res.exit_code == 1 and "--force" in res.output
    assert (out / "summary.json").read_bytes() == before


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml")
                                         if not p.name.startswith("federal_")))
def test_every_library_scenario_runs_from_the_cli(name):
    """Every library scenario but the federal ones (85 regions, minutes each: their own slow suite,
    tests/test_federal_scenarios.py)."""
    text = (ROOT / "scenarios" / name).read_text(encoding="utf-8")
    assert text.startswith("#"), "every library scenario opens with a comment saying what it answers"
    res = CliRunner().invoke(app, ["run", str(ROOT / "scenarios" / name), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["status"] in ("optimal", "feasible") and s["centres"]


def test_extends_merges_and_reports_errors_where_they_are(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("name: base\nscope: {federal_districts: [NCFD]}\ncommodities: [vegetables]\nobjective: {p: 7}\n",
                    encoding="utf-8")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: child\nobjective: {force_existing: false}\n", encoding="utf-8")
    sc = load_scenario(child)
    assert sc.objective.p == 7 and sc.objective.force_existing is False and sc.commodities == ["vegetables"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: base.yaml\nname: bad\nobjective: {pp: 3}\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bad\.yaml, line 3: field 'objective\.pp'.*'p'"):
        load_scenario(bad)
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\nname: loop\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="circular"):
        load_scenario(loop)


def test_an_infeasible_scenario_exits_non_zero_with_the_reason(tmp_path):
    bad = tmp_path / "infeasible.yaml"
    bad.write_text("name: infeasible\nscope: {regions: [RU-STA]}\ncommodities: [vegetables]\n"
                   "objective: {p: 0, force_existing: true}\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["run", str(bad)])
    assert res.exit_code == 2
    assert "infeasible" in res.output and "forced sites" in res.output and "Traceback" not in res.output


def test_solver_linking_changes_rows_not_the_optimum(dataset):
    """The scenario's solver.linking picks the linking rows; solved to a zero gap, every choice gives the same
    optimum (they are formulations of the same problem), and a wrong choice is refused naming the field."""
    base = {"name": "x", "commodities": ["vegetables", "fruit_berries"], "objective": {"p": 5}}
    objectives = {}
    for linking in ("all", "pairs", "none"):
        sc = parse_scenario({**base, "solver": {"gap": 0.0, "linking": linking}})
        planned, result = run_scenario(sc, dataset)
        assert planned.problem.options.strong_linking == linking
        assert result.status == "optimal"
        objectives[linking] = result.objective
    assert objectives["pairs"] == pytest.approx(objectives["all"], rel=1e-6)
    assert objectives["none"] == pytest.approx(objectives["all"], rel=1e-6)
    with pytest.raises(ScenarioError, match="linking"):
        parse_scenario({**base, "solver": {"linking": "tight"}})


def test_solver_start_reaches_the_same_optimum_and_is_reported(dataset):
    """The scenario's solver.start picks the warm start; the optimum does not depend on it, the result says which
    start HiGHS got, and a wrong choice is refused naming the field."""
    base = {"name": "x", "commodities": ["vegetables", "fruit_berries"], "objective": {"p": 5}}
    results = {}
    for start in ("greedy", "dive", "none"):
        _, result = run_scenario(parse_scenario({**base, "solver": {"gap": 0.0, "start": start}}), dataset)
        assert result.status == "optimal"
        results[start] = result
    assert results["greedy"].start["method"] == "greedy"
    assert results["dive"].start["method"] in ("dive", "greedy") and "merged_cost_dive" in results["dive"].start
    assert results["none"].start["method"] == "none"
    for start in ("dive", "none"):
        assert results[start].objective == pytest.approx(results["greedy"].objective, rel=1e-6)
    with pytest.raises(ScenarioError, match="start"):
        parse_scenario({**base, "solver": {"start": "random"}})
