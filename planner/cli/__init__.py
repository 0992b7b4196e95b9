"""The ``planner`` command line (the top layer, beside :mod:`api`): ``app`` is the typer application.

Modules: :mod:`planner.cli.main` (the app; data, schema, validate, run), :mod:`planner.cli.api` (serve, keys),
:mod:`planner.cli.common` (shared pieces), :mod:`planner.cli.estimate`, :mod:`planner.cli.geo`,
:mod:`planner.cli.orlib`, :mod:`planner.cli.runs`. No other module of ``planner`` imports this package.
"""

from __future__ import annotations

from planner.cli.main import app

__all__ = ["app"]
