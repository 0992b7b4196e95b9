"""Read and validate the dataset's tables, embedded or supplied by the user, and check that their codes join.

Every problem is reported with the file, the row (the line number in a CSV, the feature number in a GeoJSON)
and the field, so a planner who swaps in an official statistics file can fix it without reading code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from geo.geodesy import geodesic_km
from planner.data.schema import TABLES, USER_TABLES, Row
from planner.settings import COMMODITIES, COMMODITY_KEYS, EMBEDDED_DATA_DIR, FEDERAL_DISTRICT_CODES, NCFD_REGIONS

MAX_PROBLEMS = 200


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is and what is wrong."""

    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f", row {self.row}" if self.row is not None else "")
        what = f"field '{self.field}': " if self.field else ""
        return f"{where}: {what}{self.message}"


class DataValidationError(ValueError):
    """Raised when a table does not match its schema or the tables do not join; lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:MAX_PROBLEMS])
        more = f"\n  ... and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        super().__init__(f"{len(problems)} data problem(s):\n{shown}{more}")


def embedded_path(name: str) -> Path:
    """Path of an embedded table's CSV file."""
    return EMBEDDED_DATA_DIR / f"{name}.csv"


def _read_records(path: Path) -> tuple[list[dict], int]:
    """Raw records of a CSV or GeoJSON file (all values as read) and the row number of the first record."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        return frame.to_dict("records"), 2
    if suffix in (".geojson", ".json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
            raise ValueError("expected a GeoJSON FeatureCollection")
        records = []
        for feat in doc.get("features", []):
            props = dict(feat.get("properties") or {})
            geom = feat.get("geometry") or {}
            if geom.get("type") == "Point" and "lat" not in props:
                props["lon"], props["lat"] = geom["coordinates"][:2]
            records.append(props)
        return records, 1
    raise ValueError(f"unsupported file type '{suffix}': give a .csv or .geojson file")


def _error_field(err: dict) -> tuple[str | None, str]:
    loc = err.get("loc") or ()
    msg = err.get("msg", "")
    if loc:
        value = err.get("input")
        shown = f" (got {value!r})" if value is not None and not isinstance(value, dict) else ""
        return str(loc[0]), msg + shown
    msg = msg.removeprefix("Value error, ")
    head, sep, tail = msg.partition(": ")
    if sep and head.isidentifier():
        return head, tail
    return None, msg


def read_table(name: str, path: Path | None = None) -> pd.DataFrame:
    """Read one table (embedded when ``path`` is None), validate every row, and return it as a DataFrame.

    Raises :class:`DataValidationError` naming the file, row and field of every problem.
    """
    schemas = TABLES | USER_TABLES
    if name not in schemas:
        raise DataValidationError([Problem(name, None, None, f"unknown table; known: {sorted(schemas)}")])
    model, key = schemas[name]
    path = Path(path) if path is not None else embedded_path(name)
    label = path.name if path.parent == EMBEDDED_DATA_DIR else str(path)
    if not path.is_file():
        raise DataValidationError([Problem(label, None, None, "file not found")])
    try:
        records, first_row = _read_records(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, KeyError, IndexError) as exc:
        raise DataValidationError([Problem(label, None, None, f"cannot read: {exc}")]) from None
    if not records:
        raise DataValidationError([Problem(label, None, None, "the table has no rows")])

    problems: list[Problem] = []
    columns = set(records[0])
    for fname, finfo in model.model_fields.items():
        if finfo.is_required() and fname not in columns:
            problems.append(Problem(label, None, fname, "required column is missing"))
    if problems:
        raise DataValidationError(problems)

    rows: list[Row] = []
    for i, rec in enumerate(records):
        try:
            rows.append(model.model_validate(rec))
        except ValidationError as exc:
            for err in exc.errors():
                fname, msg = _error_field(err)
                problems.append(Problem(label, first_row + i, fname, msg))
    if problems:
        raise DataValidationError(problems)

    frame = pd.DataFrame([r.model_dump() for r in rows])
    frame.attrs["file"] = label
    frame.attrs["first_row"] = first_row
    dup = frame.duplicated(subset=list(key), keep="first")
    for i in frame.index[dup]:
        values = ", ".join(f"{k}={frame.at[i, k]!r}" for k in key)
        problems.append(Problem(label, first_row + int(i), key[0], f"duplicate key ({values})"))
    if problems:
        raise DataValidationError(problems)
    return frame


@dataclass
class Dataset:
    """All tables of the dataset, validated and joined; ``files`` says which file each table came from."""

    tables: dict[str, pd.DataFrame]
    files: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    def regions_in(self, federal_district: str | None = None, country_id: str | None = None) -> pd.DataFrame:
        """Regions filtered by federal district code and/or country code."""
        r = self.tables["regions"]
        if federal_district is not None:
            r = r[r["federal_district"] == federal_district]
        if country_id is not None:
            r = r[r["country_id"] == country_id]
        return r


def _where(frame: pd.DataFrame, idx: int) -> tuple[str, int]:
    return frame.attrs.get("file", "?"), frame.attrs.get("first_row", 2) + int(idx)


def check_integrity(tables: Mapping[str, pd.DataFrame]) -> list[Problem]:
    """Check that the tables' codes join; returns the problems found (empty when the dataset is consistent)."""
    problems: list[Problem] = []
    countries = set(tables["countries"]["country_id"])
    regions = tables["regions"].set_index("region_id", drop=False)
    region_ids = set(regions.index)

    def bad(frame: pd.DataFrame, mask: pd.Series, fld: str, msg: str) -> None:
        for i in frame.index[mask]:
            f, r = _where(frame, i)
            problems.append(Problem(f, r, fld, msg.format(v=frame.at[i, fld], row=frame.loc[i])))

    reg = tables["regions"]
    bad(reg, ~reg["country_id"].isin(countries), "country_id", "unknown country {v!r} (not in countries)")

    cities = tables["cities"]
    bad(cities, ~cities["region_id"].isin(region_ids), "region_id", "unknown region {v!r} (not in regions)")
    known = cities["region_id"].isin(region_ids)
    mismatch = known & (cities["region_id"].map(regions["country_id"]) != cities["country_id"])
    bad(cities, mismatch, "country_id", "city's country {v!r} differs from the country of its region")

    ncfd = set(reg.loc[reg["federal_district"] == "NCFD", "region_id"])
    if ncfd != NCFD_REGIONS:
        missing, extra = sorted(NCFD_REGIONS - ncfd), sorted(ncfd - NCFD_REGIONS)
        problems.append(Problem(reg.attrs.get("file", "regions"), None, "federal_district",
                                f"North Caucasus FD must hold its seven regions; missing {missing}, extra {extra}"))

    prod = tables["production"]
    is_region = prod["area_level"] == "region"
    bad(prod, is_region & ~prod["area_id"].isin(region_ids), "area_id", "unknown region {v!r}")
    bad(prod, ~is_region & ~prod["area_id"].isin(countries), "area_id", "unknown country {v!r}")

    shares = tables["agri_shares"]
    bad(shares, ~shares["region_id"].isin(region_ids | {"RU"}), "region_id", "unknown region {v!r}")
    if "RU" not in set(shares["region_id"]):
        problems.append(Problem(shares.attrs.get("file", "agri_shares"), None, "region_id",
                                "a national row with region_id 'RU' is needed for location quotients"))

    for name in ("existing_centres", "wholesale_markets"):
        centres = tables[name]
        bad(centres, ~centres["region_id"].isin(region_ids), "region_id", "unknown region {v!r}")
        bad(centres, ~centres["country"].isin(countries), "country", "unknown country {v!r}")

    cross = tables["border_crossings"]
    for col in ("country_a", "country_b"):
        bad(cross, ~cross[col].isin(countries), col, "unknown country {v!r}")

    norms = set(tables["consumption_norms"]["commodity"])
    for c in COMMODITY_KEYS:
        if c not in norms:
            problems.append(Problem(tables["consumption_norms"].attrs.get("file", "consumption_norms"), None,
                                    "commodity", f"no consumption norm for commodity group {c!r}"))

    actual = tables["consumption_actual"]
    areas = {"RU"} | set(FEDERAL_DISTRICT_CODES) | set(reg.loc[reg["country_id"] == "RU", "region_id"])
    bad(actual, ~actual["area_id"].isin(areas), "area_id",
        "unknown area {v!r} (expected RU, a federal district code or a Russian region id)")

    problems.extend(_check_corridors(tables["corridors"], countries))

    loss = tables["loss_rates"]
    have = set(zip(loss["fao_region"], loss["fao_group"], strict=True))
    for fao_region in sorted(set(tables["countries"]["fao_loss_region"])):
        for c in COMMODITIES:
            if (fao_region, c.fao_group) not in have:
                problems.append(Problem(loss.attrs.get("file", "loss_rates"), None, "fao_group",
                                        f"no loss rates for {fao_region!r} / {c.fao_group!r} ({c.key})"))
    return problems


CIRCUITY_TOLERANCE = 0.98
"""A segment's published km may not fall below 98% of the geodesic distance (coordinates are town centres)."""


def _check_corridors(cor: pd.DataFrame, countries: set[str]) -> list[Problem]:
    """Corridor towns: known countries, positions 0..n without gaps, segment km not shorter than the straight line."""
    problems: list[Problem] = []
    file = cor.attrs.get("file", "corridors")
    for i in cor.index[~cor["country"].isin(countries)]:
        problems.append(Problem(*_where(cor, i), "country", f"unknown country {cor.at[i, 'country']!r}"))
    for cid, g in cor.groupby("corridor_id", sort=False):
        g = g.sort_values("seq")
        if list(g["seq"]) != list(range(len(g))):
            problems.append(Problem(file, None, "seq", f"corridor {cid!r}: positions must run 0..{len(g) - 1} "
                                                       f"without gaps, got {list(g['seq'])}"))
            continue
        gc = geodesic_km(g["lat"].to_numpy()[:-1], g["lon"].to_numpy()[:-1],
                          g["lat"].to_numpy()[1:], g["lon"].to_numpy()[1:])
        for (i, km), straight in zip(g["km_from_prev"].iloc[1:].items(), gc, strict=True):
            if pd.notna(km) and km < CIRCUITY_TOLERANCE * straight:
                problems.append(Problem(*_where(cor, i), "km_from_prev",
                                        f"corridor {cid!r}: {km} km to {cor.at[i, 'town_en']} is shorter than "
                                        f"the straight line ({straight:.0f} km)"))
    return problems


def _add_location_quotients(shares: pd.DataFrame) -> pd.DataFrame:
    """Location quotients: a region's agricultural share divided by Russia's (LQ > 1 = specialised)."""
    out = shares.copy()
    national = out.set_index("region_id").loc["RU"] if "RU" in set(out["region_id"]) else None
    for col, lq in (("employment_share_pct", "employment_lq"), ("grp_share_pct", "grp_lq")):
        base = national[col] if national is not None else None
        out[lq] = out[col] / base if base else float("nan")
    out.attrs.update(shares.attrs)
    return out


def load_dataset(overrides: Mapping[str, Path | str] | None = None) -> Dataset:
    """Load every table (the embedded one unless ``overrides`` names a user file for it) and check joins.

    Raises :class:`DataValidationError` listing every problem of every table.
    """
    overrides = {k: Path(v) for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(TABLES))
    if unknown:
        raise DataValidationError([Problem(u, None, None, f"unknown table; known: {sorted(TABLES)}")
                                   for u in unknown])
    if not overrides:
        return _embedded_dataset()
    return _load(tuple(sorted(overrides.items())))


@lru_cache(maxsize=1)
def _embedded_dataset() -> Dataset:
    return _load(())


def _load(overrides: tuple[tuple[str, Path], ...]) -> Dataset:
    paths = dict(overrides)
    tables: dict[str, pd.DataFrame] = {}
    problems: list[Problem] = []
    for name in TABLES:
        try:
            tables[name] = read_table(name, paths.get(name))
        except DataValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise DataValidationError(problems)
    problems = check_integrity(tables)
    if problems:
        raise DataValidationError(problems)
    tables["agri_shares"] = _add_location_quotients(tables["agri_shares"])
    files = {n: t.attrs.get("file", "") for n, t in tables.items()}
    return Dataset(tables=tables, files=files)
