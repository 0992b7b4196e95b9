"""Geodesic distance on the WGS84 ellipsoid (pyproj), the one geodesic helper shared by geo and the data layer."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from pyproj import Geod

WGS84 = Geod(ellps="WGS84")
"""The WGS84 ellipsoid's geodesic solver (Karney's algorithm via PROJ)."""


def geodesic_km(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> np.ndarray | np.float64:
    """Geodesic distance in km between points in decimal degrees on the WGS84 ellipsoid; arrays broadcast
    (scalars in, a scalar out)."""
    lat1, lon1, lat2, lon2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (lat1, lon1, lat2, lon2)))
    _, _, metres = WGS84.inv(lon1, lat1, lon2, lat2)
    return np.asarray(metres) / 1000.0
