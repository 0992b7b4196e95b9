"""OR-Library facility-location instances as :class:`NetworkProblem` s of the same model the scenarios use.

Formats (Beasley's OR-Library; see ``../shared/README.md``):

- CFLP/UFLP (``cap41`` … ``capc``): ``n m``; n lines ``capacity fixed_cost`` (``capa``-``capc`` carry the word
  ``capacity``, replaced by a number); per customer ``demand`` then n numbers, the cost of serving **all** of
  that customer's demand from each site. Customers may be split between sites.
- p-median (``pmed1`` … ``pmed40``): a graph (``nodes edges p`` then the edges); each node is a customer of
  weight 1 and a free candidate site; exactly p sites open; costs are shortest-path distances, which the caller
  computes from the graph and passes in (:func:`geo.orlib.pmedian_distances`): this layer reads no graphs.

The mapping onto the general model: one commodity; one supply row holding all demand with zero-cost inbound
arcs to every site; one size module per site (its capacity and fixed cost); outbound arcs with the per-tonne
cost ``c_ij / d_j``; no direct channel and no unmet-demand slack.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from optimization.problem import NetworkProblem, Options, ProblemError

UNCAPACITATED = 2147483647.0
COMMODITY = "goods"


def _tokens(path: Path, capacity: float | None) -> list[str]:
    text = path.read_text()
    if "capacity" in text:
        if capacity is None:
            raise ProblemError(f"{path.name}: the file's capacities read 'capacity'; give --capacity N "
                               "(e.g. 8000 for capa8000) or --uncapacitated")
        text = text.replace("capacity", repr(float(capacity)))
    return text.split()


def read_cflp(path: str | Path, capacity: float | None = None, uncapacitated: bool = False) -> NetworkProblem:
    """A capacitated (or, with ``uncapacitated``, uncapacitated) facility-location instance."""
    path = Path(path)
    tok = _tokens(path, UNCAPACITATED if uncapacitated and capacity is None else capacity)
    try:
        n, m = int(tok[0]), int(tok[1])
        pos = 2
        cap = np.empty(n)
        fixed = np.empty(n)
        for i in range(n):
            cap[i], fixed[i] = float(tok[pos]), float(tok[pos + 1])
            pos += 2
        demand = np.empty(m)
        cost = np.empty((m, n))
        for j in range(m):
            demand[j] = float(tok[pos])
            cost[j] = np.array(tok[pos + 1:pos + 1 + n], dtype=float)
            pos += 1 + n
    except (IndexError, ValueError) as exc:
        raise ProblemError(f"{path.name}: not an OR-Library CFLP file ({exc})") from None
    if uncapacitated:
        cap[:] = UNCAPACITATED
    total = float(demand.sum())
    cap = np.minimum(cap, total)  # a site never needs more than all demand; keeps coefficients tame
    served = np.flatnonzero(demand > 0)
    sites = pd.DataFrame({"site_id": [f"s{i + 1}" for i in range(n)], "existing": False, "group": "all"})
    modules = pd.DataFrame({"site_id": sites["site_id"], "module_id": "single", "capacity_t": cap,
                            "fixed_cost": fixed, "capital_cost": fixed})
    supplies = pd.DataFrame({"supply_id": ["source"], "commodity": [COMMODITY], "quantity_t": [total],
                             "storage_loss": [0.0], "value_per_t": [0.0]})
    demands = pd.DataFrame({"demand_id": [f"c{j + 1}" for j in served], "commodity": COMMODITY,
                            "quantity_t": demand[served], "penalty_per_t": np.nan, "is_exit": False,
                            "price_per_t": np.nan})
    inbound = pd.DataFrame({"supply_id": "source", "site_id": sites["site_id"], "commodity": COMMODITY,
                            "cost_per_t": 0.0, "loss": 0.0})
    jj, ii = np.meshgrid(served, np.arange(n), indexing="ij")
    outbound = pd.DataFrame({"site_id": [f"s{i + 1}" for i in ii.ravel()],
                             "demand_id": [f"c{j + 1}" for j in jj.ravel()], "commodity": COMMODITY,
                             "cost_per_t": (cost[jj, ii] / demand[jj]).ravel(), "loss": 0.0})
    direct = pd.DataFrame(columns=["supply_id", "demand_id", "commodity", "cost_per_t", "loss"])
    name = path.stem + (f"{int(capacity)}" if capacity is not None and not uncapacitated else "")
    return NetworkProblem([COMMODITY], supplies, sites, modules, demands, inbound, outbound, direct,
                          Options(), name=name)


def read_pmedian(path: str | Path, dist: pd.DataFrame | np.ndarray) -> NetworkProblem:
    """A p-median instance: p from the file's header, exactly p free sites, and the caller's square matrix of
    shortest-path distances between the graph's nodes (e.g. :func:`geo.orlib.pmedian_distances`; a DataFrame's
    index names the nodes, an array's rows are nodes 1..n)."""
    path = Path(path)
    tokens = path.read_text().split(maxsplit=3)
    n, p = int(tokens[0]), int(tokens[2])
    nodes = list(dist.index) if isinstance(dist, pd.DataFrame) else None
    dist = np.asarray(dist, dtype=float)
    if dist.shape != (n, n):
        raise ProblemError(f"{path.name}: the distance matrix has shape {dist.shape}; the graph has {n} nodes")
    if not np.isfinite(dist).all():
        raise ProblemError(f"{path.name}: the graph is not connected")
    return pmedian_problem(dist, p, path.stem, nodes)


def pmedian_problem(dist: np.ndarray, p: int, name: str, nodes: list | None = None) -> NetworkProblem:
    """A p-median problem from a square distance matrix: every node a unit customer and a free candidate."""
    n = dist.shape[0]
    nodes = list(nodes) if nodes is not None else list(range(1, n + 1))
    sites = pd.DataFrame({"site_id": [f"v{k}" for k in nodes], "existing": False, "group": "all"})
    modules = pd.DataFrame({"site_id": sites["site_id"], "module_id": "single", "capacity_t": float(n),
                            "fixed_cost": 0.0, "capital_cost": 0.0})
    supplies = pd.DataFrame({"supply_id": ["source"], "commodity": [COMMODITY], "quantity_t": [float(n)],
                             "storage_loss": [0.0], "value_per_t": [0.0]})
    demands = pd.DataFrame({"demand_id": [f"c{k}" for k in nodes], "commodity": COMMODITY, "quantity_t": 1.0,
                            "penalty_per_t": np.nan, "is_exit": False, "price_per_t": np.nan})
    inbound = pd.DataFrame({"supply_id": "source", "site_id": sites["site_id"], "commodity": COMMODITY,
                            "cost_per_t": 0.0, "loss": 0.0})
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    outbound = pd.DataFrame({"site_id": sites["site_id"].to_numpy()[ii.ravel()],
                             "demand_id": demands["demand_id"].to_numpy()[jj.ravel()], "commodity": COMMODITY,
                             "cost_per_t": dist[ii, jj].ravel(), "loss": 0.0})
    direct = pd.DataFrame(columns=["supply_id", "demand_id", "commodity", "cost_per_t", "loss"])
    return NetworkProblem([COMMODITY], supplies, sites, modules, demands, inbound, outbound, direct,
                          Options(p=p), name=name)


def read_optima(path: str | Path) -> dict[str, float]:
    """Known optima from an OR-Library ``opt`` file: instance name (without ``.txt``) → objective."""
    out = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0].removesuffix(".txt")] = float(parts[1])
    return out
