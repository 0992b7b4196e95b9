"""Comparing runs, and sweeps on a distributed LocalCluster with worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.scenario import ScenarioError, load_scenario
from planner.sweep import SweepError, draw_samples, parse_vary, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def test_vary_specs_and_samples():
    spec = parse_vary({"road_tariff_rub_per_tkm": "uniform(3, 5)", "centre_loss_factor": "grid(0.4, 0.6)"})
    s = draw_samples(spec, 4, seed=1)
    assert len(s) == 8 and set(s["centre_loss_factor"]) == {0.4, 0.6}
    assert s["road_tariff_rub_per_tkm"].between(3, 5).all()
    assert draw_samples(spec, 4, seed=1).equals(s)  # a sweep is repeatable
    clipped = draw_samples(parse_vary({"centre_loss_factor": "normal(0.5, 5)"}), 50, seed=2)
    assert clipped["centre_loss_factor"].between(0, 1).all()  # the registry's range holds
    with pytest.raises(SweepError, match="road_tariff_rub_per_tkm"):
        parse_vary({"road_tarif": "uniform(1,2)"})
    with pytest.raises(SweepError, match="uniform"):
        parse_vary({"road_tariff_rub_per_tkm": "uniform(1)"})


def test_uncertainty_section_is_validated(tmp_path):
    p = tmp_path / "u.yaml"
    p.write_text("name: u\nuncertainty:\n  road_tariff_rub_per_tkm: lognormal(1, 2)\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="line 3.*uncertainty"):
        load_scenario(p)


def test_sweep_of_20_samples_runs_on_two_worker_processes():
    sc = load_scenario(ROOT / "scenarios" / "ncfd_baseline.yaml")
    draws = draw_samples(parse_vary({"road_tariff_rub_per_tkm": "uniform(3, 5)",
                                     "centre_loss_factor": "uniform(0.3, 0.7)"}), 20, seed=3)
    runs = run_sweep(sc.model_dump(exclude={"extends"}), draws, {}, n_workers=2)
    assert runs.attrs["workers"] >= 2
    assert len(runs) == 20 and (runs["status"] == "optimal").all()
    # lower centre loss factors cut more loss: the sweep's figures follow its inputs
    corr = runs["centre_loss_factor"].corr(runs["loss_reduction_pct_fruit_berries"])
    assert corr < 0


def test_cli_sweep_and_compare(tmp_path):
    runner = CliRunner()
    out = tmp_path / "sweep"
    res = runner.invoke(app, ["sweep", str(ROOT / "scenarios" / "ncfd_baseline.yaml"), "--vary",
                              "traditional_handling_rub_per_t=uniform(2500,3500)", "--samples", "4", "-o", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == 4 and "objective" in summary["percentiles"]
    assert len(pd.read_csv(out / "samples.csv")) == 4
    res = runner.invoke(app, ["sweep", str(ROOT / "scenarios" / "ncfd_baseline.yaml")])
    assert res.exit_code == 1 and "nothing varies" in res.output
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, name in ((a, "ncfd_baseline.yaml"), (b, "ncfd_expansion.yaml")):
        assert runner.invoke(app, ["run", str(ROOT / "scenarios" / name), "-o", str(folder)]).exit_code == 0
    res = runner.invoke(app, ["compare", str(a), str(b)])
    assert res.exit_code == 0, res.output
    assert "ncfd_baseline" in res.output and "ncfd_expansion" in res.output and "only B" in res.output
    res = runner.invoke(app, ["compare", str(tmp_path), str(b)])
    assert res.exit_code == 1 and "summary.json" in res.output
