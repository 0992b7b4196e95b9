"""Build the base map's embedded layers (a maintainer's tool, called by :mod:`planner.data.build`; not used at
run time): the neighbouring countries and polygons for the Republic of Crimea and Sevastopol.

- ``ne_50m_countries.geojson``: Natural Earth 1:50m Admin 0 countries of the EAEU and its neighbours (public
  domain, naturalearthdata.com), simplified to 0.01° (about 1 km) for maps, with Russian names.
- ``ru_crimea_sevastopol.geojson``: the geoBoundaries Russian regions lack the two subjects. Their outline is
  Natural Earth's Russia polygon on the Crimean peninsula, less the geoBoundaries regions (the Taman tip).
  Sevastopol has no published polygon in the reference files: it is drawn schematically as the peninsula within
  :data:`SEVASTOPOL_SCHEMATIC_KM` of its Natural Earth label point, and Crimea as the rest; both are flagged
  ``approximate`` (for drawing only; no figure of the planner depends on them).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import Point, box
from shapely.ops import unary_union
from shapely.validation import make_valid

NEIGHBOUR_NAMES_RU: dict[str, str] = {
    "ARM": "Армения", "AZE": "Азербайджан", "BLR": "Беларусь", "CHN": "Китай", "GEO": "Грузия", "IRN": "Иран",
    "KAZ": "Казахстан", "KGZ": "Киргизия", "MNG": "Монголия", "RUS": "Россия", "TJK": "Таджикистан",
    "TKM": "Туркменистан", "TUR": "Турция", "UKR": "Украина", "UZB": "Узбекистан",
}
"""Russian short names of the countries in the Natural Earth extract (the forms of the ОКСМ classifier)."""

CRIMEA_BOX = (32.3, 44.2, 36.75, 46.3)
"""Lon/lat box around the Crimean peninsula (degrees), used to cut it out of the Russia polygon."""
SEVASTOPOL_SCHEMATIC_KM = 20.0
"""Radius of Sevastopol's schematic outline around its label point, km: a drawing choice (project assumption),
not the city's legal boundary."""
SIMPLIFY_DEG = 0.01
"""Simplification tolerance of the country outlines, degrees (about 1 km)."""


def build_neighbours(shared: Path) -> gpd.GeoDataFrame:
    """Natural Earth countries with ISO-3 code, English and Russian names, simplified and valid, EPSG:4326."""
    ne = gpd.read_file(shared / "boundaries/ne_50m_countries_eaeu.geojson").to_crs(4326)
    geom = ne.geometry.simplify(SIMPLIFY_DEG, preserve_topology=True).apply(make_valid)
    return gpd.GeoDataFrame({"iso3": ne["ADM0_A3"], "name_en": ne["NAME"],
                             "name_ru": ne["ADM0_A3"].map(NEIGHBOUR_NAMES_RU).fillna(ne["NAME"]),
                             "source": "Natural Earth 1:50m Admin 0 countries (public domain)"},
                            geometry=geom, crs=4326)


def build_crimea_sevastopol(shared: Path, regions: pd.DataFrame, boundaries: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Polygons of RU-CR and RU-SEV (see the module docstring), flagged approximate."""
    ne = gpd.read_file(shared / "boundaries/ne_50m_countries_eaeu.geojson").to_crs(4326)
    russia = ne.loc[ne["ADM0_A3"] == "RUS", "geometry"].iloc[0]
    near = [make_valid(g) for g in boundaries.geometry if g.intersects(box(*CRIMEA_BOX))]
    peninsula = make_valid(russia.intersection(box(*CRIMEA_BOX)).difference(unary_union(near)))
    parts = getattr(peninsula, "geoms", [peninsula])
    peninsula = max(parts, key=lambda g: g.area)
    sev = regions.set_index("region_id").loc["RU-SEV"]
    aeqd = f"+proj=aeqd +lat_0={sev['lat']} +lon_0={sev['lon']} +datum=WGS84 +units=m"
    disk = gpd.GeoSeries([Point(0, 0).buffer(SEVASTOPOL_SCHEMATIC_KM * 1000, 64)], crs=aeqd).to_crs(4326).iloc[0]
    sevastopol = make_valid(peninsula.intersection(disk))
    crimea = make_valid(peninsula.difference(disk))
    note = ("approximate: Natural Earth 1:50m Russia polygon on the Crimean peninsula; Sevastopol drawn "
            f"schematically within {SEVASTOPOL_SCHEMATIC_KM:g} km of its label point (not the legal boundary)")
    names = regions.set_index("region_id")
    return gpd.GeoDataFrame({"region_id": ["RU-CR", "RU-SEV"],
                             "name_ru": [names.loc["RU-CR", "name_ru"], names.loc["RU-SEV", "name_ru"]],
                             "name_en": [names.loc["RU-CR", "name_en"], names.loc["RU-SEV", "name_en"]],
                             "approximate": [True, True], "notes": [note, note]},
                            geometry=[crimea, sevastopol], crs=4326)
