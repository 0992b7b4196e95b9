"""The scenario: what a planner asks the tool, as a YAML file validated by a pydantic schema.

A scenario names its scope (countries, federal districts, regions), the commodity groups, parameter overrides
(checked against the parameter registry), loss-table overrides, and optionally the user's own data tables.
Unknown keys are errors. Errors name the field and, for files, the line.

Every number is finite (``NaN`` and ``Infinity`` are refused) and bounded: the bounds below are the service's
limits (project settings, not published figures) that keep one scenario from pinning the machine; parameter values
keep the registry's ranges. Scenario files are read as UTF-8 text of at most ``MAX_FILE_BYTES`` with at most
``MAX_YAML_NODES`` values once YAML aliases are expanded, and duplicate keys are refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from planner.data.loader import Dataset
from planner.data.schema import TABLES, CommodityKey
from planner.parameters import PARAMETER_BY_NAME, ParameterSet, suggest
from planner.settings import COMMODITY_KEYS, FEDERAL_DISTRICT_CODES, LOSS_STAGES


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the field (and line, for files) and what to fix.
    ``loc``: the field's path in the document where it is known apart from the message (a duplicated key's,
    ``("objective", "p")``; the value aliases expand past the limit), else ``()``; ``line``: the line (from 1)
    of a YAML problem, else None."""

    def __init__(self, message: str, loc: tuple = (), line: int | None = None):
        super().__init__(message)
        self.loc = tuple(loc)
        self.line = line


# Service limits (project settings chosen to bound one run's time and memory; not published figures).
MAX_TIME_LIMIT_S = 86_400.0
"""Longest solver time limit a scenario may ask for, seconds (one day; the API caps it lower, docs/api.md)."""
MAX_THREADS = 64
"""Most solver threads a scenario may ask for."""
MAX_COUNT = 10_000
"""Largest count of centres (objective.p, per-region minimum or maximum)."""
MAX_PER_REGION = 100
"""Most new candidate sites per region."""
MAX_DISTANCE_KM = 2_000.0
"""Largest candidate spacing, snapping or nearby-city distance, km."""
MAX_LIST = 500
"""Most items in a scope list, an exits list or an uncertainty mapping."""
MAX_TEXT = 5_000
"""Longest title or description, characters."""
MAX_FILE_BYTES = 1 << 20
"""Largest scenario file read, bytes (1 MiB)."""
MAX_YAML_NODES = 100_000
"""Most YAML values in a scenario file once its aliases are expanded ("billion laughs" guard)."""

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
_MODEL = ConfigDict(extra="forbid", allow_inf_nan=False)


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (error messages never echo a whole input)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def no_duplicates(items: list[Any], what: str) -> None:
    """Raise a ``duplicate_item`` error whose ``ctx.index`` is the position of the first repeated item."""
    seen = set()
    for i, x in enumerate(items):
        if x in seen:
            raise PydanticCustomError("duplicate_item", "{what} {item} listed more than once",
                                      {"what": what, "item": short(x), "index": i})
        seen.add(x)


def error_loc(err: dict) -> tuple:
    """A pydantic error's location down to the item: a ``duplicate_item`` error points at the repeated item, a
    ``one_of`` error (give exactly one of several fields) at the field its context names."""
    loc = tuple(err["loc"])
    if err.get("type") == "duplicate_item" and "index" in (err.get("ctx") or {}):
        loc += (err["ctx"]["index"],)
    elif err.get("type") == "one_of" and "field" in (err.get("ctx") or {}):  # which of several fields to give
        loc += (err["ctx"]["field"],)
    return loc


def bad_values(data: Any, loc: tuple = ()) -> list[tuple[tuple, str]]:
    """Locations and reasons of values no scenario may hold: non-finite numbers (NaN, ±Infinity, overflowing
    literals such as 1e309) and text that is not valid Unicode (lone surrogates), in keys and values."""
    out: list[tuple[tuple, str]] = []
    stack: list[tuple[Any, tuple]] = [(data, loc)]
    while stack:
        v, where = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            out.append((where, f"expected a finite number, got {v}"))
        elif isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                out.append((where, "text is not valid Unicode (a lone surrogate code point)"))
        elif isinstance(v, dict):
            for k, x in v.items():
                if isinstance(k, str):
                    try:
                        k.encode("utf-8")
                    except UnicodeEncodeError:
                        out.append(((*where, short(k)), "key is not valid Unicode (a lone surrogate code point)"))
                        continue
                stack.append((x, (*where, k)))
        elif isinstance(v, list | tuple):
            stack.extend((x, (*where, i)) for i, x in enumerate(v))
    return sorted(out, key=lambda e: [str(p) for p in e[0]])


class Scope(BaseModel):
    """Where the scenario plans: the union of the listed countries, federal districts and regions."""

    model_config = _MODEL

    countries: list[str] = Field(default_factory=list, description="ISO 3166-1 alpha-2 codes", examples=[["RU"]])
    federal_districts: list[str] = Field(default_factory=list, description="Russian federal district codes",
                                         examples=[["NCFD"]])
    regions: list[str] = Field(default_factory=list, description="region ids (ISO 3166-2)",
                               examples=[["RU-STA", "RU-KB"]])
    min_agri_lq: float | None = Field(
        None, ge=0, le=100, description="keep only the regions whose agriculture location quotient (the region's "
                                        "agricultural share ÷ Russia's, agri_shares table) is at least this value; "
                                        "with no list given, among all regions that have one (e.g. 1.0: regions "
                                        "specialised in agriculture)", examples=[1.0])
    agri_lq_basis: Literal["employment", "value_added"] = Field(
        "employment", description="the share the location quotient is taken on: employment (ОКВЭД2 section A "
                                  "share of the employed) or value_added (its share of gross regional value added)")

    @field_validator("countries", "federal_districts", "regions")
    @classmethod
    def _short_unique(cls, v: list[str]) -> list[str]:
        if len(v) > MAX_LIST:
            raise ValueError(f"at most {MAX_LIST} items, got {len(v)}")
        no_duplicates(v, "code")
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> Scope:
        if not (self.countries or self.federal_districts or self.regions or self.min_agri_lq is not None):
            raise ValueError("the scope is empty: list countries, federal_districts or regions, or give "
                             "min_agri_lq")
        return self

    @field_validator("federal_districts")
    @classmethod
    def _known_districts(cls, v: list[str]) -> list[str]:
        for fd in v:
            if fd not in FEDERAL_DISTRICT_CODES:
                raise ValueError(f"unknown federal district {short(fd)}; valid: {sorted(FEDERAL_DISTRICT_CODES)}"
                                 + suggest(fd[:100], sorted(FEDERAL_DISTRICT_CODES)))
        return v


class BorderSetting(BaseModel):
    """A scenario's state for one border crossing (see the border_crossings table for ids)."""

    model_config = _MODEL

    open: bool = Field(True, description="false closes the crossing (e.g. Upper Lars closed)")
    extra_delay_h: float = Field(0.0, ge=0, le=720, description="hours added to the typical delay (at most 720, "
                                                               "30 days)")
    fee_rub_per_t: float | None = Field(None, ge=0, le=PARAMETER_BY_NAME["border_fee_rub_per_t_other"].maximum,
                                        description="fee per tonne replacing the registry default, RUB/t (the "
                                                    "registry's range of border fees)")


class CandidateSettings(BaseModel):
    """How candidate sites are chosen: generated along the corridors, or read from a file."""

    model_config = _MODEL

    min_spacing_km: float = Field(30.0, ge=0, le=MAX_DISTANCE_KM, description="minimum distance between "
                                                                               "candidates, km")
    max_per_region: int = Field(4, ge=0, le=MAX_PER_REGION, description="new candidates per region at most")
    max_snap_km: float = Field(30.0, ge=0, le=MAX_DISTANCE_KM, description="farthest a site may lie from the "
                                                                           "network, km")
    include_existing: bool = True
    include_junctions: bool = True
    include_rail_stations: bool = True
    include_towns: bool = True
    nearby_km: float = Field(0.0, ge=0, le=MAX_DISTANCE_KM,
                             description="also cities off the network within this many km of a road node (0: network "
                                         "towns only)")
    nearby_min_population: int = Field(20_000, ge=0, le=100_000_000,
                                       description="smallest nearby city considered, persons")
    file: str | None = Field(None, description="CSV/GeoJSON of candidates (candidate_id, name_ru, name_en, lat, lon)")


class Exit(BaseModel):
    """An outside market the scope trades with: the rest of Russia, a port or a partner country, named by its id
    in the ``outside_markets`` table (``market``) or by a network town. Its price, duties and recorded trade come
    from the dataset (docs/economics.md); the fields below override them for this scenario."""

    model_config = _MODEL

    market: str | None = Field(None, description="id in the outside_markets table", examples=["az_baku"])
    town: str | None = Field(None, description="town on the network (Russian or English name); defaults to the "
                                               "market's town", examples=["Москва"])
    kind: Literal["rest_of_russia", "port", "border"] = "rest_of_russia"
    price_pct_of_value: float | None = Field(None, ge=0, le=1000, allow_inf_nan=False,
                                             description="reference price at the market, % of farm-gate value "
                                                         "(empty: calibrated, docs/economics.md)")
    tariff_export_pct: float | None = Field(None, ge=0, le=500, allow_inf_nan=False,
                                            description="duty the market levies on the scope's produce, % ad "
                                                        "valorem (empty: the agreement in force)")
    balancing: bool | None = Field(None, description="the wider market that closes the scope's balance: its "
                                                     "reference trade is the scope's own surplus or deficit "
                                                     "(empty: true for the rest of Russia, false otherwise)")
    tariff_import_pct: float | None = Field(None, ge=0, le=500, allow_inf_nan=False,
                                            description="duty on the market's produce entering the scope, % ad "
                                                        "valorem (empty: the agreement in force)")

    @model_validator(mode="after")
    def _named(self) -> Exit:
        if self.market is None and self.town is None:
            raise ValueError("give the outside market's id (market) or a network town (town)")
        return self


DEFAULT_EXITS = [Exit(market="ru_rest"), Exit(market="port_novorossiysk"), Exit(market="port_makhachkala"),
                 Exit(market="port_astrakhan")]


class NetworkSettings(BaseModel):
    """Which arcs the model gets. Every channel has the same reach: a place keeps arcs to its ``k_nearest``
    partners of each kind by delivered cost (farm → market, farm → centre, centre → market, in both directions of
    each list); outside markets reach every farm, centre and market. No distance cut-off differs between the
    traditional channel and the centres (docs/model.md, sensitivity table)."""

    model_config = _MODEL

    k_nearest: int = Field(12, ge=1, le=1000, description="arcs from each place to its k cheapest partners of each "
                                                         "kind (the same k for every channel)")
    traditional_to_exits: bool = Field(True, description="traditional traders may also haul farm produce to the "
                                                         "outside markets (false: only centres reach them)")

    @model_validator(mode="before")
    @classmethod
    def _removed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("service_km", "direct_km"):
                if key in data:
                    raise ValueError(f"network.{key} was removed: every channel now has the same reach, set by "
                                     "network.k_nearest; delete the key")
        return data


class ObjectiveSettings(BaseModel):
    """What the optimizer minimises and the constraints a planner can switch on."""

    model_config = _MODEL

    type: Literal["cost", "loss"] = Field("cost", description="cost: total annual cost; loss: tonnes lost "
                                                              "within budget_mrub")
    p: int | None = Field(None, ge=0, le=MAX_COUNT, description="exactly this many centres open (existing "
                                                                "included)")
    budget_mrub: float | None = Field(None, ge=0, le=1e9, description="cap on capital cost of opened centres, "
                                                                      "million RUB")
    force_existing: bool = Field(True, description="existing centres stay open (false: they may close)")
    min_per_region: dict[str, Count] = Field(default_factory=dict, description="region id or federal district code "
                                                                             "-> at least N centres")
    max_per_region: dict[str, Count] = Field(default_factory=dict, description="region id or federal district code "
                                                                             "-> at most N centres")
    min_share_through_centres: float | None = Field(None, ge=0, le=1,
                                                    description="fraction of shipped produce passing centres")
    min_regions: int | None = Field(None, ge=0, le=MAX_COUNT,
                                    description="centres open in at least this many different regions (existing "
                                                "included)")
    coverage_hours: float | None = Field(
        None, gt=0, le=720, description="coverage rule: every covered region (coverage_min_agri_lq) has an open "
                                        "centre within this many hours of its farm node (door-to-door road or rail "
                                        "hours, drivers' rest included), h")
    coverage_min_agri_lq: float | None = Field(
        None, ge=0, le=100, description="the regions the coverage rule covers: those in scope whose agriculture "
                                        "location quotient (scope.agri_lq_basis) is at least this value (empty: "
                                        "every region in scope with production)")

    @model_validator(mode="after")
    def _coverage_needs_hours(self) -> ObjectiveSettings:
        if self.coverage_min_agri_lq is not None and self.coverage_hours is None:
            raise ValueError("coverage_min_agri_lq selects the regions of the coverage rule: set coverage_hours too")
        return self


class SolverSettings(BaseModel):
    """HiGHS settings: time limit (seconds), relative gap, threads, which linking rows the model carries, and
    the warm start."""

    model_config = _MODEL

    time_limit_s: float = Field(120.0, gt=0, le=MAX_TIME_LIMIT_S, description="wall-clock limit of the solve, "
                                                                              "seconds (a number, never null)")
    gap: float = Field(0.005, ge=0, le=1)
    threads: int | None = Field(None, ge=1, le=MAX_THREADS, description="solver threads (empty: HiGHS decides)")
    linking: Literal["all", "pairs", "outbound", "none"] = Field(
        "all", description="strong linking rows x ≤ U·y: on every arc (all), one per place pair summed over "
                           "commodity groups (pairs), centre → market only (outbound), or only the aggregated "
                           "capacity rows (none: smallest model, weakest bound; see docs/model.md)")
    start: Literal["auto", "greedy", "dive", "none"] = Field(
        "auto", description="warm start handed to HiGHS: the greedy add/drop (greedy), an LP dive on the model "
                            "with commodity groups merged (dive; for large multi-commodity networks), auto (the "
                            "dive from 50,000 arcs with several groups, else the greedy) or none; see docs/model.md")


class OutputSettings(BaseModel):
    """Extra outputs a run computes and writes beside the standard files."""

    model_config = ConfigDict(extra="forbid")

    share_curve: list[float] | None = Field(
        None, min_length=1, description="target shares of shipped produce handled by centres (fractions 0-1): each "
                                        "is solved as its own plan (objective.min_share_through_centres) and "
                                        "estimated for losses and prices; the run writes share_curve.csv and "
                                        "share_curve.png (docs/economics.md)", examples=[[0.0, 0.1, 0.2, 0.5, 1.0]])
    share_curve_time_limit_s: float = Field(60.0, gt=0, description="time limit of each share point's solve, s")

    @field_validator("share_curve")
    @classmethod
    def _fractions(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            bad = [x for x in v if not 0.0 <= x <= 1.0]
            if bad:
                raise ValueError(f"shares are fractions within 0-1 (0.2 = 20%), got {bad}")
        return v


class Scenario(BaseModel):
    """A planning scenario (see docs/scenarios.md for every field with its unit)."""

    model_config = _MODEL

    extends: str | None = Field(None, description="a scenario file this one varies (path relative to this "
                                                  "file); only the differences are written here")
    name: str = Field(pattern=r"^[a-z0-9_\-]+$", max_length=100, description="short id used for run folders",
                      examples=["ncfd_expansion"])
    title_ru: str | None = Field(None, max_length=MAX_TEXT, description="title in Russian")
    title_en: str | None = Field(None, max_length=MAX_TEXT, description="title in English")
    description: str | None = Field(None, max_length=MAX_TEXT)
    scope: Scope = Field(default_factory=lambda: Scope(federal_districts=["NCFD"]))
    commodities: list[CommodityKey] = Field(default_factory=lambda: list(COMMODITY_KEYS), min_length=1)
    demand_basis: Literal["actual", "norm"] = Field(
        "actual", description="per-capita demand: actual = Rosstat's actual consumption (resource balances; the "
                              "region's figure, else its federal district's, else Russia's; vegetables exclude "
                              "melons); norm = the Ministry of Health rational norm (order No 614; vegetables less "
                              "melons at melon_share_of_vegetables_pct, 10%)")
    parameters: dict[str, float] = Field(default_factory=dict,
                                         description="overrides of the parameter registry, by name")
    losses: dict[str, dict[str, float]] = Field(default_factory=dict,
                                                description="loss-table overrides: commodity -> stage -> %")
    borders: dict[str, BorderSetting] = Field(default_factory=dict,
                                              description="border states by crossing id, e.g. ru_ge_upper_lars")
    candidates: CandidateSettings = Field(default_factory=CandidateSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    objective: ObjectiveSettings = Field(default_factory=ObjectiveSettings)
    solver: SolverSettings = Field(default_factory=SolverSettings)
    exits: list[Exit] = Field(default_factory=lambda: list(DEFAULT_EXITS), max_length=MAX_LIST)
    uncertainty: dict[str, str] = Field(default_factory=dict,
                                        description="what a sweep varies: parameter -> uniform(a,b) | "
                                                    "normal(mean,sd) | triangular(lo,mode,hi) | choice(..) | grid(..)",
                                        examples=[{"road_tariff_rub_per_tkm": "uniform(3, 5)"}],
                                        max_length=MAX_LIST)
    data: dict[str, str] = Field(default_factory=dict,
                                 description="user tables replacing embedded ones: table name -> CSV/GeoJSON path")
    outputs: OutputSettings = Field(default_factory=OutputSettings,
                                    description="extra outputs of a run (share_curve: losses and prices against the "
                                                "share handled by centres)")

    @field_validator("commodities")
    @classmethod
    def _unique_commodities(cls, v: list[str]) -> list[str]:
        no_duplicates(v, "commodity group")
        return v

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, v: dict[str, float]) -> dict[str, float]:
        for name, value in v.items():
            if name not in PARAMETER_BY_NAME:
                raise ValueError(f"unknown parameter {short(name)}.{suggest(name[:100], list(PARAMETER_BY_NAME))}")
            PARAMETER_BY_NAME[name].check(value)
        return v

    @field_validator("losses")
    @classmethod
    def _known_losses(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for commodity, stages in v.items():
            if commodity not in COMMODITY_KEYS:
                raise ValueError(f"unknown commodity group {short(commodity)}."
                                 f"{suggest(commodity[:100], COMMODITY_KEYS)}")
            for stage, pct in stages.items():
                if stage not in LOSS_STAGES:
                    raise ValueError(f"{commodity}: unknown stage {short(stage)}.{suggest(stage[:100], LOSS_STAGES)}")
                if not 0 <= pct <= 100:
                    raise ValueError(f"{commodity}.{stage}: loss share must be within 0-100 %, got {pct}")
        return v

    @field_validator("uncertainty")
    @classmethod
    def _valid_uncertainty(cls, v: dict[str, str]) -> dict[str, str]:
        from planner.sweep import parse_vary

        parse_vary(v)
        return v

    @field_validator("data")
    @classmethod
    def _known_tables(cls, v: dict[str, str]) -> dict[str, str]:
        for table in v:
            if table not in TABLES:
                raise ValueError(f"unknown table {short(table)}; tables: {sorted(TABLES)}"
                                 f"{suggest(table[:100], list(TABLES))}")
        return v

    def region_ids(self, dataset: Dataset) -> list[str]:
        """The regions in scope, checked against the dataset; raises ScenarioError naming an unknown code."""
        regions = dataset.regions
        known = set(regions["region_id"])
        countries = set(dataset.countries["country_id"])
        for c in self.scope.countries:
            if c not in countries:
                raise ScenarioError(f"scope.countries: unknown country {short(c)}; known: {sorted(countries)}")
        for r in self.scope.regions:
            if r not in known:
                raise ScenarioError(f"scope.regions: unknown region {short(r)}.{suggest(r[:100], sorted(known))}")
        mask = (
            regions["country_id"].isin(self.scope.countries)
            | regions["federal_district"].isin(self.scope.federal_districts)
            | regions["region_id"].isin(self.scope.regions)
        )
        if not (self.scope.countries or self.scope.federal_districts or self.scope.regions):
            mask = regions["region_id"].isin(set(dataset.agri_shares["region_id"]))
        ids = regions.loc[mask, "region_id"].tolist()
        if self.scope.min_agri_lq is not None:
            lq = agri_location_quotients(dataset, self.scope.agri_lq_basis)
            ids = [r for r in ids if lq.get(r, float("nan")) >= self.scope.min_agri_lq]
            if not ids:
                raise ScenarioError(f"scope.min_agri_lq: no region of the scope has an agriculture location quotient "
                                    f"({self.scope.agri_lq_basis}) of at least {self.scope.min_agri_lq}")
        if not ids:
            raise ScenarioError("scope: selects no region; list countries, federal_districts or regions")
        return ids

    def covered_regions(self, dataset: Dataset) -> list[str]:
        """The regions the coverage rule covers (``objective.coverage_hours``): the scope's regions whose agriculture
        location quotient is at least ``objective.coverage_min_agri_lq`` (all of the scope's when it is empty);
        empty when the scenario sets no coverage rule."""
        if self.objective.coverage_hours is None:
            return []
        ids = self.region_ids(dataset)
        if self.objective.coverage_min_agri_lq is None:
            return ids
        lq = agri_location_quotients(dataset, self.scope.agri_lq_basis)
        return [r for r in ids if lq.get(r, float("nan")) >= self.objective.coverage_min_agri_lq]

    def parameter_set(self, dataset: Dataset) -> ParameterSet:
        """Registry defaults with this scenario's overrides, and the loss table of the scope's FAO region (the
        region of the scope's country; Russia's, "Europe incl. Russia", when the scope spans several)."""
        countries = set(dataset.regions.set_index("region_id").loc[self.region_ids(dataset), "country_id"])
        fao = dataset.countries.set_index("country_id")["fao_loss_region"]
        region = fao[countries.pop()] if len(countries) == 1 else fao["RU"]
        return ParameterSet(dataset.loss_rates, fao_region=region, overrides=self.parameters,
                            loss_overrides=self.losses)


def agri_location_quotients(dataset: Dataset, basis: str = "employment") -> dict[str, float]:
    """Region id → agriculture location quotient (the region's agricultural share of employment, or of gross value
    added with ``basis="value_added"``, divided by Russia's; dimensionless, > 1 = specialised in agriculture), from
    the ``agri_shares`` table. Regions without a row are absent."""
    col = {"employment": "employment_lq", "value_added": "grp_lq"}[basis]
    shares = dataset.agri_shares
    shares = shares[shares["region_id"] != "RU"]
    return {r: float(v) for r, v in zip(shares["region_id"], shares[col], strict=True) if v == v}


def dataset_errors(scenario: Scenario, dataset: Dataset) -> list[tuple[tuple, str]]:
    """What a scenario names that the dataset does not hold, each with the location of the offending item:
    unknown countries, regions, crossings, outside markets, region or district keys of the per-region counts, and
    counts the scope cannot hold (more centres than the existing ones plus ``candidates.max_per_region`` new ones
    per region in scope). Empty when the scenario can be built on ``dataset``."""
    errors: list[tuple[tuple, str]] = []
    regions = dataset.regions
    known_regions = set(regions["region_id"])
    known_countries = set(dataset.countries["country_id"])
    sc = scenario.scope
    for i, c in enumerate(sc.countries):
        if c not in known_countries:
            errors.append((("scope", "countries", i), f"unknown country {short(c)}; known: {sorted(known_countries)}"))
    for i, r in enumerate(sc.regions):
        if r not in known_regions:
            errors.append((("scope", "regions", i), f"unknown region {short(r)}." + suggest(r[:100],
                                                                                           sorted(known_regions))))
    crossings = set(dataset.border_crossings["crossing_id"])
    for cid in scenario.borders:
        if cid not in crossings:
            errors.append((("borders", cid), f"unknown border crossing {short(cid)}." + suggest(cid[:100],
                                                                                               sorted(crossings))))
    markets = set(dataset.outside_markets["market_id"])
    for i, e in enumerate(scenario.exits):
        if e.market is not None and e.market not in markets:
            errors.append((("exits", i, "market"), f"unknown outside market {short(e.market)}."
                           + suggest(e.market[:100], sorted(markets))))
    groups = known_regions | set(regions["federal_district"].dropna())
    for key in ("min_per_region", "max_per_region"):
        for rid in getattr(scenario.objective, key):
            if rid not in groups:
                errors.append((("objective", key, rid), f"unknown region or federal district {short(rid)}"))
    if errors:
        return errors
    try:
        in_scope = set(scenario.region_ids(dataset))
    except ScenarioError as exc:
        return [(("scope",), str(exc).removeprefix("scope: "))]
    existing = int(dataset.existing_centres["region_id"].isin(in_scope).sum())
    room = existing + len(in_scope) * scenario.candidates.max_per_region
    p = scenario.objective.p
    if p is not None and p > room:
        errors.append((("objective", "p"), f"{p} centres cannot open in a scope of {len(in_scope)} regions: at "
                       f"most {room} ({existing} existing + candidates.max_per_region "
                       f"{scenario.candidates.max_per_region} per region)"))
    if scenario.objective.min_regions is not None and scenario.objective.min_regions > len(in_scope):
        errors.append((("objective", "min_regions"), f"centres in {scenario.objective.min_regions} different regions "
                       f"cannot open in a scope of {len(in_scope)} regions"))
    if p is not None and scenario.objective.min_regions is not None and scenario.objective.min_regions > p:
        errors.append((("objective", "min_regions"), f"{scenario.objective.min_regions} different regions need at "
                       f"least as many centres, but objective.p is {p}"))
    for key in ("min_per_region", "max_per_region"):
        for rid, n in getattr(scenario.objective, key).items():
            if n > room:
                errors.append((("objective", key, rid), f"{n} is more centres than the scope can hold ({room})"))
    return errors


def scenario_json_schema() -> dict:
    """JSON Schema of a scenario file (pydantic), with the registry's parameter names listed for ``parameters``."""
    schema = Scenario.model_json_schema()
    schema["properties"]["parameters"]["propertyNames"] = {"enum": sorted(PARAMETER_BY_NAME)}
    schema["title"] = "ОРЦ planner scenario"
    return schema


def _line_of(node: yaml.Node, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at a pydantic error location (the deepest node that exists)."""
    line = node.start_mark.line + 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(key)), None)
            if match is None:
                key_node = next((k for k, _ in node.value if k.value == str(key)), None)
                return key_node.start_mark.line + 1 if key_node is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line


def parse_scenario(data: Any, source: str = "scenario", root: yaml.Node | None = None) -> Scenario:
    """Validate a scenario given as a mapping; raises ScenarioError naming each bad field (and line)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping of fields, got {type(data).__name__}")
    bad = bad_values(data)
    if bad:
        raise ScenarioError("\n".join(
            f"{source}{'' if root is None else f', line {_line_of(root, loc)}'}: field "
            f"'{'.'.join(str(p) for p in loc) or '(top level)'}': {msg}" for loc, msg in bad))
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = error_loc(err)
            field = ".".join(str(p) for p in loc) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                nested = {"scope": Scope, "candidates": CandidateSettings, "network": NetworkSettings,
                          "objective": ObjectiveSettings, "solver": SolverSettings, "outputs": OutputSettings}
                parent = nested.get(str(loc[0])) if len(loc) > 1 else Scenario
                if len(loc) == 3 and loc[0] == "borders":
                    parent = BorderSetting
                valid = sorted(parent.model_fields) if parent else []
                msg = f"unknown key; valid keys: {valid}" + suggest(str(loc[-1]), valid)
            elif err["type"] == "literal_error":
                msg = f"{msg}, got {short(err.get('input'))}"
            where = f"{source}, line {_line_of(root, loc)}" if root is not None else source
            lines.append(f"{where}: field '{field}': {msg}")
        raise ScenarioError("\n".join(lines)) from None


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""PyYAML's safe loader on libyaml's C parser where PyYAML was built with it (3–4 times faster to compose a large
document: docs/benchmarks.md, "YAML bodies"), else the pure-Python one; the constructor is Python's either way."""


class _StrictLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """PyYAML's safe loader that refuses duplicate keys in a mapping (YAML 1.2 forbids them; PyYAML keeps the
    last one silently), remembering the duplicated key's path (``duplicate_loc``) from the document's node paths
    (``paths``, :func:`_node_paths`)."""

    paths: dict[int, tuple] = {}
    duplicate_loc: tuple = ()

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if key in seen:
                self.duplicate_loc = (*self.paths.get(id(node), ()), key)
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {short(key)} (first at line {seen[key]})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _expanded_size(root: yaml.Node, limit: int, sizes: dict[int, int] | None = None) -> int:
    """Values in a YAML document once aliases are expanded, counted without expanding them; stops past ``limit``.
    ``sizes``, when given, receives each node's count (by node id)."""
    sizes = {} if sizes is None else sizes
    order: list[yaml.Node] = []
    stack: list[yaml.Node] = [root]
    while stack:  # post-order over the node graph (aliases share nodes), each node once
        node = stack.pop()
        if id(node) in sizes:
            continue
        order.append(node)
        sizes[id(node)] = -1
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(x for pair in node.value for x in pair)
    for node in reversed(order):
        if isinstance(node, yaml.SequenceNode):
            kids = node.value
        elif isinstance(node, yaml.MappingNode):
            kids = [x for pair in node.value for x in pair]
        else:
            kids = []
        sizes[id(node)] = min(limit + 1, 1 + sum(max(sizes[id(k)], 1) for k in kids))
    return sizes[id(root)]


def _node_paths(root: yaml.Node) -> dict[int, tuple]:
    """The path of each node of a YAML document (mapping keys by their text, list items by index), by node id;
    a node reached through several aliases keeps its first path."""
    paths: dict[int, tuple] = {id(root): ()}
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack.pop()
        here = paths[id(node)]
        if isinstance(node, yaml.SequenceNode):
            kids = [((*here, i), v) for i, v in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            kids = [((*here, k.value if isinstance(k, yaml.ScalarNode) else "?"), v) for k, v in node.value]
        else:
            continue
        for where, v in kids:
            if id(v) not in paths:
                paths[id(v)] = where
                stack.append(v)
    return paths


def _count_values(text: str, limit: int, source: str) -> None:
    """Refuse a document of more than ``limit`` values before its node tree is built: its parse events are counted
    (scalars, mappings, lists; an alias adds none here, :func:`_expanded_size` counts those), which costs a fifth
    of composing the tree (0.45 s against 2–4 s for 1 MiB of short list items; docs/benchmarks.md, "YAML bodies").
    ScenarioError naming the line and the field (path of mapping keys and list indices) where the count passed
    ``limit``; a syntax error is left to the loader that follows (its message names the line)."""
    scan = _SafeLoader(text)
    frames: list[list] = []  # per open collection: [is a mapping, expecting a key, its key or index so far]
    n = 0
    try:
        while scan.check_event():
            ev = scan.get_event()
            if isinstance(ev, yaml.CollectionEndEvent | yaml.DocumentEndEvent):
                if isinstance(ev, yaml.CollectionEndEvent) and frames:
                    frames.pop()
                    _value_done(frames)
                continue
            if not isinstance(ev, yaml.NodeEvent):
                continue
            if not isinstance(ev, yaml.AliasEvent):
                n += 1
                if n > limit:
                    where = tuple(f[2] for f in frames if f[2] is not None)
                    raise ScenarioError(f"{source}, line {ev.start_mark.line + 1}: more than {limit} values in the "
                                        "document; a scenario needs far fewer", loc=where,
                                        line=ev.start_mark.line + 1)
            top = frames[-1] if frames else None
            if top is not None and top[0] and top[1]:  # a mapping's key
                top[1], top[2] = False, ev.value if isinstance(ev, yaml.ScalarEvent) else "?"
                if isinstance(ev, yaml.CollectionStartEvent):
                    frames.append([isinstance(ev, yaml.MappingStartEvent), True, None])
                continue
            if isinstance(ev, yaml.CollectionStartEvent):
                frames.append([isinstance(ev, yaml.MappingStartEvent), True, None if isinstance(
                    ev, yaml.MappingStartEvent) else 0])
            else:
                _value_done(frames)
    except yaml.YAMLError:
        return
    finally:
        scan.dispose()


def _value_done(frames: list[list]) -> None:
    """A value of the innermost open collection is complete: a mapping now expects its next key, a list's index
    moves on."""
    if frames:
        top = frames[-1]
        if top[0]:
            top[1] = True
        else:
            top[2] += 1


def _heaviest(root: yaml.Node, sizes: dict[int, int]) -> tuple:
    """The path of mapping keys down to the value that holds most of a document's expanded size (where aliases
    blow it up), following mappings only."""
    loc: tuple = ()
    node = root
    while isinstance(node, yaml.MappingNode) and node.value:
        key, node = max(node.value, key=lambda kv: sizes.get(id(kv[1]), 0))
        loc += (key.value if isinstance(key, yaml.ScalarNode) else "?",)
    return loc


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """The document of a scenario file and its node tree; ScenarioError naming the file (and line) for a file
    that is missing, too large, not UTF-8, not YAML, with duplicate keys or with too many aliased values."""
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario file not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ScenarioError(f"{path}: scenario file of {size} bytes is over the limit of {MAX_FILE_BYTES} bytes")
    return parse_yaml(path.read_bytes(), str(path))


def parse_yaml(raw: bytes, source: str) -> tuple[Any, yaml.Node | None]:
    """A YAML scenario document given as bytes (a file's, or a request body's) and its node tree, under the limits
    of scenario files: UTF-8, at most ``MAX_YAML_NODES`` values once aliases are expanded (counted before they are
    expanded), each key once. ScenarioError starting with ``source`` (and the line) otherwise; the caller checks
    the size (``MAX_FILE_BYTES``) before reading."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{source}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                            "save it as UTF-8") from None
    loader = _StrictLoader(text)
    try:
        _count_values(text, MAX_YAML_NODES, source)
        root = loader.get_single_node()
        if root is None:
            return None, None
        sizes: dict[int, int] = {}
        n = _expanded_size(root, MAX_YAML_NODES, sizes)
        if n > MAX_YAML_NODES:
            raise ScenarioError(f"{source}: more than {MAX_YAML_NODES} values once YAML aliases are expanded; a "
                                "scenario needs far fewer (nested aliases, a 'billion laughs' document?)",
                                loc=_heaviest(root, sizes), line=root.start_mark.line + 1)
        loader.paths = _node_paths(root)
        return loader.construct_document(root), root
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{source}{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
                            loc=loader.duplicate_loc, line=mark.line + 1 if mark is not None else None) from None
    except RecursionError:
        raise ScenarioError(f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def _merge(base: dict, override: dict) -> dict:
    """Deep merge of scenario mappings: nested mappings merge, everything else (lists included) is replaced."""
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The scenario mapping of ``path`` with its ``extends:`` chain merged in (base first); relative paths in
    ``data:`` and ``candidates.file`` are made absolute relative to the file that names them."""
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ScenarioError(f"{path}: field 'extends': circular chain {chain}")
    data, root = _read_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario must be a mapping of fields, got {type(data).__name__}")

    def here(p: str) -> str:
        q = Path(p)
        return str(q if q.is_absolute() else (path.parent / q).resolve())

    data = dict(data)
    if isinstance(data.get("data"), dict):
        data["data"] = {k: here(v) if isinstance(v, str) else v for k, v in data["data"].items()}
    if isinstance(data.get("candidates"), dict) and isinstance(data["candidates"].get("file"), str):
        data["candidates"] = {**data["candidates"], "file": here(data["candidates"]["file"])}
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(f"{path}, line {_line_of(root, ('extends',))}: field 'extends': a file path")
    base = _resolve(Path(here(parent)), (*seen, path))
    base.pop("extends", None)
    merged = _merge(base, {k: v for k, v in data.items()})
    merged["extends"] = here(parent)
    return merged


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file (with its ``extends:`` chain); errors name the file, line and field.

    A field that fails validation is reported at its line in this file, or in the base file that set it."""
    path = Path(path)
    data, root = _read_yaml(path)
    if not isinstance(data, dict):
        return parse_scenario(data, source=str(path), root=root)
    merged = _resolve(path)
    try:
        return parse_scenario(merged, source=str(path), root=root)
    except ScenarioError:
        if "extends" not in data:
            raise
        # re-validate each file of the chain on its own keys to point at the file that holds the bad field
        parse_scenario(_merge({"name": "x"}, {k: v for k, v in data.items() if k != "extends"}), source=str(path),
                       root=root)
        load_scenario(Path(merged["extends"]))
        raise
