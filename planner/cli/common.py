"""Pieces every ``planner`` command shares: consoles, the default scenario, error exits without tracebacks, JSON mode,
and site names given on the command line.

Only typer, rich and the standard library load with this module (``planner --help`` answers without pandas,
Pyomo or the geo stack); the dataset and scenario modules are imported by the functions that use them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from planner.settings import PACKAGE_DIR

if TYPE_CHECKING:
    from planner.data.loader import Dataset
    from planner.scenario import Scenario

console = Console(width=140)
"""Tables and notes: standard output, or standard error while a ``--json`` command runs (:func:`json_mode`)."""
err_console = Console(stderr=True, width=140)
"""Errors and the live progress line: always standard error."""

DEFAULT_SCENARIO = PACKAGE_DIR.parent / "scenarios" / "ncfd_expansion.yaml"
"""The scenario commands use when none is given (the README's run command runs it)."""


def fail(message: str) -> typer.Exit:
    """Print an error on stderr and return the exit (code 1) for the caller to raise."""
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, markup=True)
    return typer.Exit(code=1)


@contextlib.contextmanager
def json_mode(active: bool) -> Iterator[None]:
    """While ``active``, :data:`console` writes to standard error, so standard output carries only the JSON
    document a command prints with :func:`emit_json` (a caller can ``json.loads`` the whole of it)."""
    before = console.stderr
    console.stderr = active or before
    try:
        yield
    finally:
        console.stderr = before


def emit_json(doc: object) -> None:
    """Print ``doc`` as one JSON document, on one line, on standard output (NaN and infinities as null, UTF-8
    names kept)."""
    import json

    from planner.summary import clean_json

    typer.echo(json.dumps(clean_json(json.loads(json.dumps(doc, default=_default))), ensure_ascii=False))


def _default(value: object) -> object:
    """JSON for numpy scalars and other number-likes (as float), else their text."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


def load_data(overrides: dict[str, Path | str | None]) -> Dataset:
    """The dataset with the given user tables, or a clean exit naming every problem."""
    from planner.data.loader import DataValidationError, load_dataset

    try:
        return load_dataset({k: v for k, v in overrides.items() if v is not None})
    except DataValidationError as exc:
        raise fail(str(exc)) from None


def scenario_or_fail(path: Path) -> Scenario:
    """A validated scenario, or a clean exit naming the field and line."""
    from planner.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        raise fail(str(exc)) from None


def split_list(text: str | None) -> list[str] | None:
    """A comma-separated option as a list of its non-empty items (None when the option is not given)."""
    return None if text is None else [c.strip() for c in text.split(",") if c.strip()]
