"""The planner command: exit codes and what it prints for the dataset and the default scenario."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from planner.cli import app
from planner.data.loader import embedded_path

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_data_check_passes_on_embedded_tables():
    res = runner.invoke(app, ["data", "check"])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output and "cities" in res.output


def test_data_check_fails_on_a_bad_user_table(tmp_path):
    f = pd.read_csv(embedded_path("regions"), dtype=str, keep_default_na=False)
    f.loc[0, "lat"] = "north"
    bad = tmp_path / "regions.csv"
    f.to_csv(bad, index=False)
    res = runner.invoke(app, ["data", "check", "--regions", str(bad)])
    assert res.exit_code == 1
    assert "row 2" in res.output and "'lat'" in res.output
    assert "Traceback" not in res.output


def test_data_info_shows_ncfd_production():
    res = runner.invoke(app, ["data", "info"])
    assert res.exit_code == 0, res.output
    for rid in ("RU-DA", "RU-IN", "RU-KB", "RU-KC", "RU-SE", "RU-CE", "RU-STA"):
        assert rid in res.output
    assert "NCFD total" in res.output and "Северо-Кавказский" in res.output


def test_run_default_scenario_prints_balance():
    res = runner.invoke(app, ["run", str(ROOT / "scenarios" / "ncfd_expansion.yaml")])
    assert res.exit_code == 0, res.output
    assert "Supply-demand balance" in res.output


def test_validate_reports_bad_scenario_without_traceback(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nscope:\n  regions: [RU-NOPE]\n")
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 1
    assert "RU-NOPE" in res.output and "Traceback" not in res.output
