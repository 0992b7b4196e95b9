"""Shared fixtures: the embedded dataset, the default parameters, the corridor network, the default scenario
planned and run once per session, and a helper that writes a modified copy of an embedded table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from planner.data.loader import Dataset, embedded_path, load_dataset
from planner.network import corridor_graph
from planner.parameters import ParameterSet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _estimates_answer_in_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests of what an estimate answers get the answer, not a 202 handover, however loaded the machine: the
    window in which an estimate without ``?wait`` is answered in the request (PLANNER_ESTIMATE_SYNC_S, 5 s in
    service) is raised to the estimate deadline; the handover's own tests set it low."""
    monkeypatch.setenv("PLANNER_ESTIMATE_SYNC_S", "120")


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return load_dataset()


@pytest.fixture(scope="session")
def params(dataset: Dataset) -> ParameterSet:
    """The registry's defaults with the dataset's loss table (no scenario overrides)."""
    return ParameterSet(dataset.loss_rates)


@pytest.fixture(scope="session")
def G(dataset: Dataset, params: ParameterSet):
    """The embedded road and rail corridor network at the default parameters (tests must not modify it)."""
    return corridor_graph(dataset, params)


@pytest.fixture(scope="session")
def ncfd_planned(dataset: Dataset):
    """The default scenario (``ncfd_expansion``) built into its siting problem (tests must not modify it)."""
    from planner.pipeline import build_problem
    from planner.scenario import load_scenario

    return build_problem(load_scenario(ROOT / "scenarios" / "ncfd_expansion.yaml"), dataset)


@pytest.fixture(scope="session")
def ncfd_run(dataset: Dataset):
    """The default scenario (``ncfd_expansion``) run end to end once per session (tests must not modify it)."""
    from planner.execute import execute_scenario
    from planner.scenario import load_scenario

    return execute_scenario(load_scenario(ROOT / "scenarios" / "ncfd_expansion.yaml"), dataset)


@pytest.fixture(autouse=True)
def _runs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's runs write their files (``PLANNER_RUNS_DIR``, a worker's run folder) under its own temporary
    folder, never into the checkout; servers and workers a test starts inherit it."""
    monkeypatch.setenv("PLANNER_RUNS_DIR", str(tmp_path / "runs"))


SMALL_RUN = {"name": "api_small", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["vegetables"],
             "objective": {"p": 6}, "solver": {"time_limit_s": 60}}
"""A small scenario (the North Caucasus, vegetables, six centres) solved in about a second."""


@pytest.fixture(scope="session")
def small_run_files(tmp_path_factory: pytest.TempPathFactory, dataset: Dataset) -> Path:
    """The folder of files a worker writes for :data:`SMALL_RUN` (``planner.outputs.write_outputs``, the command
    line's writer), written once per session; tests copy it into a stored run's folder (:func:`with_files`)."""
    from planner.execute import execute_scenario
    from planner.outputs import write_outputs
    from planner.scenario import parse_scenario

    sc = parse_scenario(SMALL_RUN, source="scenario")
    out = execute_scenario(sc, dataset)
    folder = tmp_path_factory.mktemp("small_run")
    write_outputs(folder, out.planned, out.result, out.summary, dataset, sc.region_ids(dataset), out.losses,
                  out.prices, out.investor, force=True)
    return folder


def with_files(run_id: str, files: Path) -> str:
    """Copy a run folder's files (``small_run_files``) into ``PLANNER_RUNS_DIR/<run_id>/``, where the run's worker
    would have written them; returns ``run_id``."""
    import shutil

    from api.limits import runs_dir

    shutil.copytree(files, runs_dir() / run_id)
    return run_id


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A test client of the service on a fresh SQLite file (runs stay queued: no job manager), with no limit
    overridden from the environment: ``(client, planner key header, viewer key header, database URL)``."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.db import create_key

    for var in ("PLANNER_MAX_BODY", "PLANNER_MAX_QUEUE", "PLANNER_MAX_RUNS_PER_KEY", "PLANNER_MAX_TIME_LIMIT_S",
                "PLANNER_SCENARIOS", "PLANNER_TILE_URL", "PLANNER_TILE_ATTRIBUTION"):
        monkeypatch.delenv(var, raising=False)
    url = f"sqlite:///{tmp_path / 'api.db'}"
    _, planner_key = create_key("planner", url=url)
    _, viewer_key = create_key("viewer", url=url)
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        yield tc, {"X-API-Key": planner_key}, {"X-API-Key": viewer_key}, url


@pytest.fixture
def edited_table(tmp_path: Path) -> Callable[..., Path]:
    """Write a copy of an embedded table after applying ``edit`` (a function of the DataFrame); return its path."""

    def make(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame], suffix: str = ".csv") -> Path:
        frame = pd.read_csv(embedded_path(name), dtype=str, keep_default_na=False)
        out = tmp_path / f"{name}_edited{suffix}"
        edit(frame).to_csv(out, index=False)
        return out

    return make


def stored_run(url: str, summary: dict) -> str:
    """A succeeded run whose stored result holds ``summary`` (as a worker writes it), dated a day back so the
    runs a test makes itself stay the newest in the run list."""
    from datetime import timedelta

    from api.db import DEFAULT_ORG, RunRecord, now, session

    with session(url) as s:
        result = {"summary": summary, "tables": {}, "geojson": {"type": "FeatureCollection", "features": []}}
        run = RunRecord(scenario_id=None, scenario={"name": summary["scenario"]}, status="succeeded",
                        progress="done", result=result, created=now() - timedelta(days=1),
                        finished=now() - timedelta(days=1), org=DEFAULT_ORG)
        s.add(run)
        s.commit()
        return run.id


def cross_border_summary(name: str, centres: list[tuple[str, str, str, str]], armenia_t: float,
                          georgia_t: float) -> dict:
    """A run of the North Caucasus trading with Armenia and Georgia (both through Upper Lars) and the rest of
    Russia: ``centres`` as (id, Russian name, English name, size); tonnes a year each partner sells the scope."""
    markets = [("am_yerevan", "Армения (Ереван) через Верхний Ларс", "Armenia (Yerevan) via Upper Lars", "AM",
                "border"), ("ge_tbilisi", "Грузия (Тбилиси)", "Georgia (Tbilisi)", "GE", "border"),
               ("ru_rest", "Остальная Россия (Москва)", "Rest of Russia (Moscow)", "RU", "rest_of_russia")]
    return {"scenario": name, "status": "optimal", "objective": 2.0e9, "gap": 0.001,
            "centres": [{"id": cid, "name_ru": ru, "name_en": en, "region": "RU-STA", "country": "RU",
                         "existing": cid.startswith("ru_"), "size": size, "throughput_t": 1000.0}
                        for cid, ru, en, size in centres],
            "outside_markets": [{"id": m, "name_ru": ru, "name_en": en, "country": c, "kind": k}
                                for m, ru, en, c, k in markets],
            "imports_by_exit_t": {"am_yerevan": {"fruit_berries": armenia_t}, "ge_tbilisi": {"vegetables": georgia_t},
                                  "ru_rest": {}},
            "exports_by_exit_t": {"am_yerevan": {}, "ge_tbilisi": {}, "ru_rest": {"potatoes": 5000.0}},
            "cost_breakdown": {"transport and handling": 1.5e9}, "loss_reduction_pct": {"vegetables": 10.0},
            "price_change_pct": {"vegetables": -1.0}}


@pytest.fixture
def cross_border_runs() -> Callable[[str], tuple[str, str]]:
    """Two succeeded runs stored in the API database at a URL: A trades with Armenia and Georgia through Upper
    Lars, B does not (its partners sell it nothing); the Stavropol centre grows, Pyatigorsk closes, Nalchik opens.
    Returns their ids."""
    def seed(url: str) -> tuple[str, str]:
        a = stored_run(url, cross_border_summary("lars_open", [
            ("ru_sta_orc", "ОРЦ Ставрополь", "Stavropol centre", "existing"),
            ("pyatigorsk", "Пятигорск", "Pyatigorsk", "small")], armenia_t=1200.0, georgia_t=800.0))
        b = stored_run(url, cross_border_summary("lars_closed", [
            ("ru_sta_orc", "ОРЦ Ставрополь", "Stavropol centre", "existing+small"),
            ("nalchik", "Нальчик", "Nalchik", "large")], armenia_t=0.0, georgia_t=0.0))
        return a, b

    return seed
