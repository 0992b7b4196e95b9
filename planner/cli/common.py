"""Pieces every ``planner`` command shares: consoles, the default scenario, and error exits without tracebacks."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from planner.data.loader import Dataset, DataValidationError, load_dataset
from planner.scenario import Scenario, ScenarioError, load_scenario
from planner.settings import PACKAGE_DIR

console = Console(width=140)
err_console = Console(stderr=True, width=140)

DEFAULT_SCENARIO = PACKAGE_DIR.parent / "scenarios" / "ncfd_expansion.yaml"
"""The scenario commands use when none is given (the README's run command runs it)."""


def fail(message: str) -> typer.Exit:
    """Print an error on stderr and return the exit (code 1) for the caller to raise."""
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, markup=True)
    return typer.Exit(code=1)


def load_data(overrides: dict[str, Path | str | None]) -> Dataset:
    """The dataset with the given user tables, or a clean exit naming every problem."""
    try:
        return load_dataset({k: v for k, v in overrides.items() if v is not None})
    except DataValidationError as exc:
        raise fail(str(exc)) from None


def scenario_or_fail(path: Path) -> Scenario:
    """A validated scenario, or a clean exit naming the field and line."""
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        raise fail(str(exc)) from None
