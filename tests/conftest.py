"""Shared fixtures: the embedded dataset and a helper that writes a modified copy of an embedded table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from planner.data.loader import Dataset, embedded_path, load_dataset


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return load_dataset()


@pytest.fixture
def edited_table(tmp_path: Path) -> Callable[..., Path]:
    """Write a copy of an embedded table after applying ``edit`` (a function of the DataFrame); return its path."""

    def make(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame], suffix: str = ".csv") -> Path:
        frame = pd.read_csv(embedded_path(name), dtype=str, keep_default_na=False)
        out = tmp_path / f"{name}_edited{suffix}"
        edit(frame).to_csv(out, index=False)
        return out

    return make
