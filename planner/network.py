"""The corridor network of a dataset and a scenario: the geo layer's graph built from the dataset's tables, the
scenario's parameters and its border states (geo itself knows neither datasets nor scenarios)."""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from geo.network import BorderState, build_corridor_graph
from planner.data.loader import Dataset
from planner.parameters import ParameterSet
from planner.scenario import Scenario


def corridor_graph(dataset: Dataset, params: ParameterSet,
                   borders: Mapping[str, BorderState] | None = None) -> nx.MultiDiGraph:
    """The dataset's road and rail corridor network (:func:`geo.network.build_corridor_graph` on its corridors,
    border crossings, countries and cities) with these parameters and border states."""
    return build_corridor_graph(dataset.corridors, dataset.border_crossings, dataset.countries, dataset.cities,
                                params, borders)


def scenario_borders(scenario: Scenario) -> dict[str, BorderState]:
    """A scenario's border settings as the geo layer's :class:`BorderState` per crossing id."""
    return {cid: BorderState(b.open, b.extra_delay_h, b.fee_rub_per_t) for cid, b in scenario.borders.items()}


def scenario_network(scenario: Scenario, dataset: Dataset) -> nx.MultiDiGraph:
    """The embedded network with a scenario's parameters and border states."""
    return corridor_graph(dataset, scenario.parameter_set(dataset), scenario_borders(scenario))
