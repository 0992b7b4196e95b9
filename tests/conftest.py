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


@pytest.fixture
def edited_table(tmp_path: Path) -> Callable[..., Path]:
    """Write a copy of an embedded table after applying ``edit`` (a function of the DataFrame); return its path."""

    def make(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame], suffix: str = ".csv") -> Path:
        frame = pd.read_csv(embedded_path(name), dtype=str, keep_default_na=False)
        out = tmp_path / f"{name}_edited{suffix}"
        edit(frame).to_csv(out, index=False)
        return out

    return make
