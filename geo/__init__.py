"""Corridor networks, distances, generalised costs and candidate sites (see geo/network.py for conventions)."""
