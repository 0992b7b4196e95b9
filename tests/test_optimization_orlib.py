"""The model layer proven on OR-Library instances with known optima (solver gap 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo.orlib import pmedian_distances
from optimization.orlib import read_cflp, read_optima, read_pmedian
from optimization.run import optimize
from optimization.solve import SolverOptions
from planner.cli import app

ORLIB = Path(__file__).resolve().parents[2] / "shared" / "data" / "orlib"
pytestmark = pytest.mark.skipif(not ORLIB.is_dir(), reason="OR-Library files in ../shared are not present")

CFLP_OPT = read_optima(ORLIB / "cflp" / "opt.txt") if ORLIB.is_dir() else {}
UFLP_OPT = read_optima(ORLIB / "uflp" / "opt.txt") if ORLIB.is_dir() else {}
PMED_OPT = read_optima(ORLIB / "pmedian" / "opt.txt") if ORLIB.is_dir() else {}
EXACT = SolverOptions(rel_gap=0.0)


def _pmedian(name: str):
    """An OR-Library p-median instance, its shortest-path matrix from the geo layer."""
    path = ORLIB / "pmedian" / f"{name}.txt"
    return read_pmedian(path, pmedian_distances(path))


def test_opt_file_lists_the_37_cflp_instances():
    assert len(CFLP_OPT) == 37


@pytest.mark.parametrize("name", sorted(CFLP_OPT))
def test_cflp_optimum(name):
    res = optimize(read_cflp(ORLIB / "cflp" / f"{name}.txt"), EXACT)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(CFLP_OPT[name], rel=1e-6)
    used = res.sites[res.sites["open"]]
    assert (used["throughput_t"] <= used["capacity_t"] * (1 + 1e-9)).all()
    assert res.service["unmet_t"].max() < 1e-6


@pytest.mark.parametrize("name", [n for n in sorted(UFLP_OPT) if not n.startswith("cap") or n[3].isdigit()])
def test_uflp_optimum_small(name):
    res = optimize(read_cflp(ORLIB / "cflp" / f"{name}.txt", uncapacitated=True), EXACT)
    assert res.objective == pytest.approx(UFLP_OPT[name], rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["capa", "capb", "capc"])
def test_uflp_optimum_large(name):
    res = optimize(read_cflp(ORLIB / "uflp" / f"{name}.txt", uncapacitated=True), SolverOptions(rel_gap=0.0))
    assert res.objective == pytest.approx(UFLP_OPT[name], rel=1e-6)


@pytest.mark.parametrize("name", ["pmed1", "pmed2"])
def test_pmedian_optimum_small(name):
    res = optimize(_pmedian(name), EXACT)
    assert res.objective == pytest.approx(PMED_OPT[name], rel=1e-9)
    assert len(res.open_sites) == int((ORLIB / "pmedian" / f"{name}.txt").read_text().split()[2])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pmed3", "pmed4", "pmed5", "pmed6"])
def test_pmedian_optimum_more(name):
    res = optimize(_pmedian(name), EXACT)
    assert res.objective == pytest.approx(PMED_OPT[name], rel=1e-9)


@pytest.mark.parametrize("name", ["cap41", "cap71", "cap101", "cap131"])
def test_strong_and_aggregated_linking_give_the_same_optimum(name):
    strong = optimize(read_cflp(ORLIB / "cflp" / f"{name}.txt"), EXACT)
    for linking in (False, "pairs", "outbound"):
        pb = read_cflp(ORLIB / "cflp" / f"{name}.txt")
        pb.options.strong_linking = linking
        other = optimize(pb, EXACT)
        assert other.objective == pytest.approx(strong.objective, rel=1e-6), linking


@pytest.mark.parametrize("name", ["cap71", "cap131"])
def test_compiled_and_persistent_translations_agree(name):
    """Pyomo's standard-form compiler into highspy and Pyomo's persistent highs interface: same optimum, same
    sites, and the flows loaded back into the model satisfy it."""
    compiled = optimize(read_cflp(ORLIB / "cflp" / f"{name}.txt"), SolverOptions(rel_gap=0.0))
    persistent = optimize(read_cflp(ORLIB / "cflp" / f"{name}.txt"),
                          SolverOptions(rel_gap=0.0, interface="persistent"))
    assert compiled.objective == pytest.approx(CFLP_OPT[name], rel=1e-6)
    assert persistent.objective == pytest.approx(compiled.objective, rel=1e-9)
    assert sorted(compiled.open_sites) == sorted(persistent.open_sites)
    assert compiled.flows["tonnes"].sum() == pytest.approx(persistent.flows["tonnes"].sum(), rel=1e-6)


def test_unknown_interface_is_refused():
    with pytest.raises(ValueError, match="SolverOptions.interface"):
        optimize(read_cflp(ORLIB / "cflp" / "cap41.txt"), SolverOptions(interface="lp-file"))


def test_solve_orlib_cli_json():
    res = CliRunner().invoke(app, ["solve-orlib", str(ORLIB / "cflp" / "cap41.txt"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert {"instance", "objective", "status", "gap", "build_seconds", "solve_seconds", "open_sites"} <= set(out)
    assert out["status"] == "optimal" and out["objective"] == pytest.approx(CFLP_OPT["cap41"], rel=1e-6)


def test_solve_orlib_cli_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["solve-orlib", str(ORLIB / "cflp" / "capa.txt")])
    assert res.exit_code == 1 and "--capacity" in res.output
    bad = tmp_path / "bad.txt"
    bad.write_text("3 2\n10 x\n")
    res = runner.invoke(app, ["solve-orlib", str(bad)])
    assert res.exit_code == 1 and "not an OR-Library CFLP file" in res.output
    res = runner.invoke(app, ["solve-orlib", str(tmp_path / "none.txt")])
    assert res.exit_code == 1 and "not found" in res.output


def test_solver_log_streams_line_by_line_and_options_stay_untouched():
    lines: list[str] = []
    options = SolverOptions(rel_gap=0.0, log=lines.append)
    res = optimize(read_cflp(ORLIB / "cflp" / "cap41.txt"), options)
    assert res.status == "optimal"
    assert any("MIP" in line for line in lines) and all("\n" not in line for line in lines)
    assert any("Solving report" in line for line in lines)
    assert options.warm_start is None  # the greedy warm start is not written into the caller's options


@pytest.mark.parametrize("mode", ["before", "background"])
def test_a_completed_warm_start_reaches_highs_as_a_feasible_full_solution(monkeypatch, mode):
    """Large models get their greedy start completed by a fixed-binaries LP, before the MIP or beside it in a
    worker thread: HiGHS must accept it as feasible (before: its start check; background: a user solution,
    marked X in its log) and the optimum must not change."""
    import optimization.completion as completion
    from optimization.heuristic import greedy_sites, warm_start_values
    from optimization.model import build_model
    from optimization.solve import solve_model

    monkeypatch.setattr(completion, "COMPLETE_START_COLUMNS", 0)
    pb = read_cflp(ORLIB / "cflp" / "cap131.txt")
    lines: list[str] = []
    res = solve_model(build_model(pb), SolverOptions(rel_gap=0.0, log=lines.append, start_completion=mode,
                                                     start_wait=60.0,
                                                     warm_start=warm_start_values(pb, greedy_sites(pb))))
    assert res.status == "optimal" and res.objective == pytest.approx(CFLP_OPT["cap131"], rel=1e-6)
    assert res.start_used == 0 and res.start_costs[0] >= res.objective - 1e-6
    if mode == "before":
        assert any("Assessing feasibility of MIP solution" in line and line.endswith("feasible") for line in lines)
    else:
        assert any(line.lstrip().startswith("X ") for line in lines)


def test_a_start_completion_mode_that_does_not_exist_is_refused():
    from optimization.model import build_model
    from optimization.solve import solve_model

    with pytest.raises(ValueError, match="start_completion"):
        solve_model(build_model(read_cflp(ORLIB / "cflp" / "cap41.txt")), SolverOptions(start_completion="later"))
