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


def test_cli_sweep_writes_named_robustness_chart_and_workbook(tmp_path):
    runner = CliRunner()
    out = tmp_path / "sweep"
    res = runner.invoke(app, ["sweep", str(ROOT / "scenarios" / "ncfd_baseline.yaml"), "--vary",
                              "traditional_handling_rub_per_t=uniform(2500,3500)", "--samples", "4", "-o", str(out),
                              "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # --json: the whole stdout is the document
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["samples"] == doc["samples"] == 4 and "objective" in summary["percentiles"]
    assert len(pd.read_csv(out / "samples.csv", encoding="utf-8-sig")) == 4
    raw = (out / "robustness.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM (Excel on Russian Windows)
    rob = pd.read_csv(out / "robustness.csv", encoding="utf-8-sig")
    assert list(rob.columns) == ["site_id / id площадки", "площадка", "site", "region / субъект",
                                 "open share, % of samples / доля выборок, %"]
    sta = rob.set_index("site_id / id площадки").loc["ru_sta_orc"]
    assert "Невинномысск" in sta["площадка"] and sta["region / субъект"] == "RU-STA"
    assert sta["open share, % of samples / доля выборок, %"] == 100.0  # an existing centre is forced open
    assert (out / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"robustness", "percentiles", "samples"} <= set(pd.ExcelFile(out / "sweep.xlsx").sheet_names)
    assert "HiGHS" in (out / "run.log").read_text(encoding="utf-8")  # the workers' solver logs, not the console
    assert "Running HiGHS" not in res.output
    res = runner.invoke(app, ["sweep", str(ROOT / "scenarios" / "ncfd_baseline.yaml")])
    assert res.exit_code == 1 and "nothing varies" in res.output


def test_compare_matches_sites_by_identity_not_position():
    """Summaries written before stable ids: cand_012 is Кизляр in A and Новороссийск in B, so it is one site
    closed and another opened, never one site kept."""
    from planner.compare import compare_summaries

    def summary(cid: str, ru: str, en: str, region: str, size: str) -> dict:
        return {"scenario": "x", "status": "optimal", "objective": 1e9,
                "centres": [{"id": cid, "name_ru": ru, "name_en": en, "region": region, "existing": False,
                             "size": size, "throughput_t": 1000.0},
                            {"id": "ru_sta_orc", "name_ru": "ОРЦ", "name_en": "centre", "region": "RU-STA",
                             "existing": True, "size": "existing" if size == "small" else "existing+small",
                             "throughput_t": 5.0}]}

    doc = compare_summaries(summary("cand_012", "Кизляр", "Kizlyar", "RU-DA", "small"),
                            summary("cand_012", "Новороссийск", "Novorossiysk", "RU-KDA", "large"))
    change = {c["id"]: c["change"] for c in doc["centres"]}
    assert change == {"kizlyar": "closed in B", "novorossiysk": "opened in B", "ru_sta_orc": "resized"}


def test_compare_upper_lars_closed_answers_what_armenia_loses(tmp_path):
    """Two scenario files run now: the first screen says what Armenia (through Upper Lars) sells and buys in each
    run; -o writes compare.json (= the --json stdout), compare.xlsx and compare.html with both maps."""
    out = tmp_path / "cmp"
    res = CliRunner().invoke(app, ["compare", str(ROOT / "scenarios" / "eaeu_crossborder.yaml"),
                                   str(ROOT / "scenarios" / "eaeu_upper_lars_closed.yaml"), "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc == json.loads((out / "compare.json").read_text(encoding="utf-8"))
    am = next(c for c in doc["trade_by_country"] if c["country"] == "AM")
    upper_lars = next(m for m in doc["trade_by_market"] if m["market"] == "am_yerevan")
    assert am["imports_a_t"] > 0 and am["imports_b_t"] == pytest.approx(0.0, abs=1e-6)  # Armenia's sales stop
    assert upper_lars["imports_change_t"] == pytest.approx(-upper_lars["imports_a_t"])
    lars = next(c for c in doc["trade_by_crossing"] if c["crossing"] == "ru_ge_upper_lars")
    assert "am_yerevan" in lars["markets"] and lars["imports_b_t"] == pytest.approx(0.0, abs=1e-6)
    assert lars["imports_change_t"] <= -am["imports_a_t"] + 1e-6  # all Armenia's trade crossed at Upper Lars
    first_screen = "\n".join(res.stderr.splitlines()[:25])
    assert "Armenia / Армения" in first_screen and f"{-am['imports_a_t']:+,.0f}" in first_screen
    assert "Upper Lars" in first_screen and "Верхний Ларс" in first_screen
    ids = [c["id"] for c in doc["centres"]]
    assert len(ids) == len(set(ids)) and not any(i.startswith("cand_") for i in ids)
    html_text = (out / "compare.html").read_text(encoding="utf-8")
    assert html_text.count("data:image/png;base64,") == 2 and "Армения" in html_text
    assert (out / "a" / "map.png").is_file() and (out / "b" / "map.png").is_file()
    assert "Верхний Ларс" in html_text
    assert {"headline", "trade_by_country", "trade_by_market", "trade_by_crossing", "centres"} <= set(
        pd.ExcelFile(out / "compare.xlsx").sheet_names)


def test_cli_compare_of_run_folders(tmp_path):
    runner = CliRunner()
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, name in ((a, "ncfd_baseline.yaml"), (b, "ncfd_expansion.yaml")):
        assert runner.invoke(app, ["run", str(ROOT / "scenarios" / name), "-o", str(folder)]).exit_code == 0
    res = runner.invoke(app, ["compare", str(a), str(b)])
    assert res.exit_code == 0, res.output
    assert "ncfd_baseline" in res.output and "ncfd_expansion" in res.output and "opened in B" in res.output
    res = runner.invoke(app, ["compare", str(a), str(b), "--json"])
    doc = json.loads(res.stdout)
    kept = {c["id"] for c in doc["centres"] if c["change"] in ("kept", "resized")}
    assert {"ru_sta_orc", "ru_kb_orc"} <= kept
    assert all(c["existing"] is False for c in doc["centres"] if c["change"] == "opened in B")
    res = runner.invoke(app, ["compare", str(tmp_path), str(b)])
    assert res.exit_code == 1 and "summary.json" in res.output
