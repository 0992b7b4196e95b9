"""Stable site identities, ``planner candidates``, site names on the command line, a fast ``--help``, the live
progress line and the HiGHS banner kept off the console."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from geo.candidates import ambiguous_slugs, site_slug, town_ids
from planner.candidates import SiteNameError, candidate_sites, centre_towns, match_sites
from planner.cli import app
from planner.network import scenario_network
from planner.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _cands(name: str, dataset) -> pd.DataFrame:
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    return candidate_sites(sc, dataset, scenario_network(sc, dataset))


def test_site_slugs_are_readable_transliterations():
    assert site_slug("Пятигорск") == "pyatigorsk"
    assert site_slug("Минеральные Воды") == "mineralnye_vody"
    assert site_slug("Усть-Джегута") == "ust_dzheguta"
    assert site_slug("Ростов-на-Дону") == "rostov_na_donu"
    assert site_slug("Shache", "Shache") == "shache"  # a Latin "Russian" name (Chinese towns) keeps its letters
    assert site_slug("Əhmədbəyli", "Ahmadbeyli") == "ahmadbeyli"  # no Cyrillic: the English name


def test_repeated_town_names_carry_the_region_code():
    towns = [("Армавир", "Armavir", "RU-KDA"), ("Армавир", "Armavir", "AM-AV"), ("Кизляр", "Kizlyar", "RU-DA"),
             ("Кизляр", "Kizlyar", "RU-DA")]  # one town listed twice is not a repeat
    amb = ambiguous_slugs(towns)
    assert amb == {"armavir"}
    frame = pd.DataFrame(towns[1:3], columns=["name_ru", "name_en", "region_id"])
    assert town_ids(frame, amb) == ["armavir_am_av", "kizlyar"]


def test_ids_are_the_same_town_in_every_scenario(dataset):
    """A town's id names the same place whichever scenario lists it (cand_012 was Кизляр in one scenario and
    Новороссийск in another); existing centres keep their ids; ids are unique within a scenario."""
    seen: dict[str, tuple] = {}
    for name in ("ncfd_expansion", "south_russia_corridors", "eaeu_crossborder", "kazakhstan_pilots"):
        c = _cands(name, dataset)
        assert c["candidate_id"].is_unique
        assert not c["candidate_id"].str.match(r"^cand_\d+$").any()
        for r in c.itertuples():
            place = (r.name_ru, r.region_id, round(r.lat, 3), round(r.lon, 3))
            assert seen.setdefault(r.candidate_id, place) == place, r.candidate_id
        ex = c[c["existing"]]
        assert set(ex["candidate_id"]) <= set(dataset.existing_centres["centre_id"])
    assert {"pyatigorsk", "kizlyar", "ru_sta_orc"} <= set(seen)
    assert "armavir_ru_kda" in seen  # Армавир is also a town in Armenia: the region code goes into the id
    assert seen["pyatigorsk"][0] == "Пятигорск"


def test_sites_are_matched_by_id_or_name_with_did_you_mean(dataset):
    c = _cands("ncfd_expansion", dataset)
    towns = centre_towns(dataset)
    assert match_sites(c, ["Пятигорск", "MOZDOK", "ru_sta_orc", "пятигорск"], aliases=towns) == [
        "pyatigorsk", "mozdok", "ru_sta_orc"]
    assert match_sites(c, ["Невинномысск"], aliases=towns) == ["ru_sta_orc"]  # an existing centre by its town
    with pytest.raises(SiteNameError, match=r"--centres: no candidate site 'pyatigrsk'.*Did you mean 'pyatigorsk'"):
        match_sites(c, ["pyatigrsk"])
    with pytest.raises(SiteNameError, match="Atlantis"):
        match_sites(c, ["Atlantis"])


def test_candidates_command_lists_ids_and_both_names_and_json_is_the_whole_stdout():
    res = runner.invoke(app, ["candidates", str(ROOT / "scenarios" / "ncfd_expansion.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    rows = {r["id"]: r for r in doc["candidates"]}
    assert rows["pyatigorsk"]["name_ru"] == "Пятигорск" and rows["pyatigorsk"]["name_en"] == "Pyatigorsk"
    assert rows["pyatigorsk"]["region"] == "RU-STA" and rows["ru_sta_orc"]["existing"] is True
    assert all(r["corridors"] for r in doc["candidates"] if not r["existing"])
    res = runner.invoke(app, ["candidates", str(ROOT / "scenarios" / "ncfd_expansion.yaml")])
    assert res.exit_code == 0 and "pyatigorsk" in res.stdout and "Пятигорск" in res.stdout


def test_estimate_takes_names_and_refuses_an_unknown_one_naming_it():
    scen = str(ROOT / "scenarios" / "ncfd_expansion.yaml")
    res = runner.invoke(app, ["estimate", "losses", scen, "--centres", "ru_sta_orc,Pyatigrsk"])
    assert res.exit_code == 1
    assert "--centres" in res.output and "'Pyatigrsk'" in res.output and "pyatigorsk" in res.output
    by_name = runner.invoke(app, ["estimate", "losses", scen, "--centres", "невинномысск,Пятигорск", "--json"])
    by_id = runner.invoke(app, ["estimate", "losses", scen, "--centres", "ru_sta_orc,pyatigorsk", "--json"])
    assert by_name.exit_code == 0 and by_id.exit_code == 0, by_name.output
    a, b = json.loads(by_name.stdout), json.loads(by_id.stdout)
    assert a["centres"] == b["centres"] == ["ru_sta_orc", "pyatigorsk"]
    assert a["summary"] == b["summary"]


def test_help_loads_no_heavy_library():
    """``planner --help`` imports only the command line's light layer (the speed is measured in
    benchmarks/cli_startup.py, not here)."""
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom planner.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\n"
            "heavy = [m for m in ('pandas', 'pyomo', 'osmnx', 'matplotlib', 'geopandas', 'highspy', 'sklearn')"
            " if m in sys.modules]\nprint(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def test_progress_line_shows_time_limit_incumbent_bound_and_gap():
    from planner.cli.main import progress_text

    line = progress_text(12.4, 120, 2_000_000_000.0, 1_900_000_000.0)
    assert line == "solving 12 s of 120 s · incumbent 2,000.0 mln RUB/yr · bound 1,900.0 · gap 5.00%"
    assert progress_text(3, None, None, float("-inf")) == "solving 3 s · incumbent — · bound — · gap —"


def test_highs_banner_goes_to_the_log_not_the_console():
    code = ("from optimization.solve import capture_banner\nlines = []\n"
            "capture_banner(lines.append)\nimport highspy\nhighspy.Highs()\n"
            "print('LOGGED', any('HiGHS' in x for x in lines))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "Running HiGHS" not in out.stdout and "LOGGED True" in out.stdout


def test_live_line_follows_the_solve_from_the_log_and_callbacks():
    """The line shows the build phase until HiGHS's first log line, then the solve figures from the callbacks, then
    the economics phase once HiGHS reports its end; raw log lines never appear in it."""
    from planner.cli.main import SolveProgress

    p = SolveProgress(60)
    assert p.text().startswith("building the model")
    p.log("MIP has 714 rows; 2989 cols; 7544 nonzeros")
    p.update({"objective": 3e9, "bound": 2.7e9, "gap": None})
    line = p.text()
    assert "of 60 s" in line and "incumbent 3,000.0 mln RUB/yr" in line and "gap 10.00%" in line
    assert "MIP has" not in line
    p.log("Solving report")
    p.update({"objective": 1.0, "bound": 1.0})  # a later solve (pricing) does not overwrite the siting figures
    assert p.text().startswith("losses, prices") and p.last["objective"] == 3e9
