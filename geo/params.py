"""What geo needs of a run's parameters: named numbers, looked up by name."""

from __future__ import annotations

from typing import Protocol


class Params(Protocol):
    """Named numeric parameters: anything with ``params[name] -> float`` that raises KeyError for an unknown
    name (a ``dict[str, float]``, or the planner's ``ParameterSet``). The names geo reads (tariffs, speeds,
    fees, values and transit losses per commodity group) are those of the planner's parameter registry."""

    def __getitem__(self, name: str, /) -> float: ...
