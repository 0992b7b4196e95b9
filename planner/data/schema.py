"""Row schemas of the dataset's tables: one pydantic model per table, with units in the field descriptions.

The loader validates every row of every table (embedded or a user's replacement) against these models, so a
user's official statistics file is held to exactly the same rules as the shipped one. ``docs/data.md`` lists
the same fields; :func:`table_fields` renders them for the docs and ``planner data info``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from planner.settings import COMMODITY_KEYS, FAO_LOSS_REGIONS, FEDERAL_DISTRICT_CODES

CommodityKey = Literal[COMMODITY_KEYS]  # type: ignore[valid-type]
Latitude = Field(ge=-90, le=90, description="latitude, decimal degrees WGS 84 (EPSG:4326)")
Longitude = Field(ge=-180, le=180, description="longitude, decimal degrees WGS 84 (EPSG:4326)")


class Row(BaseModel):
    """Common behaviour: empty CSV cells are missing values; extra columns are ignored; strings are stripped."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_missing(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (None if isinstance(v, str) and v.strip() == "" else v) for k, v in data.items()}
        return data


class CountryRow(Row):
    """A country of the planning area."""

    country_id: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code")
    iso3: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3 code")
    name_en: str
    name_ru: str
    eaeu_member: bool = Field(description="member of the Eurasian Economic Union")
    role: Literal["eaeu_member", "partner", "transit"]
    fao_loss_region: Literal[FAO_LOSS_REGIONS]  # type: ignore[valid-type]
    population: int | None = Field(None, ge=0, description="persons (GeoNames)")
    population_source: str | None = None


class RegionRow(Row):
    """An admin-1 unit: a Russian federal subject or a partner country's region."""

    region_id: str = Field(pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$", description="planner id (ISO 3166-2 where it exists)")
    iso_3166_2: str = Field(description="official ISO 3166-2 code")
    country_id: str = Field(pattern=r"^[A-Z]{2}$")
    name_ru: str
    name_en: str
    unit_type: str | None = None
    federal_district: str | None = Field(None, description="federal district code (Russia only)")
    lat: float = Latitude
    lon: float = Longitude
    centroid_method: Literal["polygon_centroid", "label_point", "admin_centre"]
    population: int | None = Field(None, ge=0, description="resident population, persons (Rosstat)")
    population_year: int | None = Field(None, ge=1990, le=2100, description="population as of 1 January of")
    population_approximate: bool | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _russian_rules(self) -> RegionRow:
        if self.country_id == "RU":
            if self.federal_district not in FEDERAL_DISTRICT_CODES:
                raise ValueError(
                    f"federal_district: Russian region needs one of {sorted(FEDERAL_DISTRICT_CODES)}, "
                    f"got {self.federal_district!r}"
                )
            if self.population is None:
                raise ValueError("population: required for Russian regions (Rosstat resident population)")
        return self


class CityRow(Row):
    """A demand node: a city with its population and region."""

    city_id: str
    name_ru: str
    name_en: str
    country_id: str = Field(pattern=r"^[A-Z]{2}$")
    region_id: str
    lat: float = Latitude
    lon: float = Longitude
    population: int = Field(gt=0, description="inhabitants, persons")
    is_region_capital: bool = False
    source: Literal["hflabs", "geonames", "user"] = "user"
    region_assignment: Literal["source_admin", "admin_code_vote", "nearest_label_point", "user"] = "user"
    name_ru_source: str | None = None
    name_en_source: str | None = None


class ProductionRow(Row):
    """Production of one commodity group in a region (Rosstat) or a country (FAOSTAT) in one year."""

    area_id: str = Field(description="region_id for area_level=region, country_id for area_level=country")
    area_level: Literal["region", "country"]
    commodity: CommodityKey
    year: int = Field(ge=1990, le=2100)
    quantity_kt: float = Field(ge=0, description="production, thousand tonnes per year")
    source: str = Field(min_length=3)
    approximate: bool = False
    derived: bool = Field(False, description="true: not a statistic but a split of the national total over the "
                                             "regions without a figure of their own (docs/data.md)")
    notes: str | None = None


class ConsumptionNormRow(Row):
    """Per-capita consumption of a commodity group, turning population into demand."""

    commodity: CommodityKey
    kg_per_capita_year: float = Field(gt=0, description="kilograms per person per year")
    basis: str | None = None
    source: str = Field(min_length=3)
    approximate: bool = False
    notes: str | None = None


class ConsumptionActualRow(Row):
    """Actual per-capita consumption of a commodity group (Rosstat) in Russia, a federal district or a region."""

    area_id: str = Field(pattern=r"^(RU(-[A-Z0-9]{1,3})?|[A-Za-z]{1,5}FD)$",
                         description="RU (Russia), a federal district code (NCFD, SFD, ...) or a Russian region id")
    commodity: CommodityKey = Field(description="the production table's group; vegetables EXCLUDE food melons")
    year: int = Field(ge=1990, le=2100)
    kg_per_capita: float = Field(gt=0, description="kilograms per person per year")
    basis: Literal["resource_balance", "household_survey"] = Field(
        description="resource_balance: Rosstat's food balances (used for demand); household_survey: the budget "
                    "survey (excludes food eaten out; kept for reference, never used for demand)")
    source: str = Field(min_length=3)
    approximate: bool = False
    notes: str | None = None


class FeedDemandRow(Row):
    """Grain used as livestock feed: Russia's national figure, or a region's own where one is published
    (:func:`planner.balance.feed_demand_kt` splits the national remainder over the other regions by their meat
    production)."""

    area_id: str = Field(pattern=r"^RU(-[A-Z0-9]{1,3})?$", description="RU (Russia) or a Russian region id")
    commodity: Literal["grain"] = Field(description="only grain is fed in this model")
    year: int = Field(ge=1990, le=2100, description="the year (season start) the figure refers to")
    quantity_kt: float = Field(gt=0, description="feed use, thousand tonnes a year")
    source: str = Field(min_length=3)
    approximate: bool = False
    notes: str | None = None


class AgriShareRow(Row):
    """Agriculture's share of employment and of gross regional product in a Russian region (or RU total)."""

    region_id: str
    year_employment: int | None = Field(None, ge=1990, le=2100)
    employment_share_pct: float | None = Field(None, ge=0, le=100, description="% of the employed")
    year_grp: int | None = Field(None, ge=1990, le=2100)
    grp_share_pct: float | None = Field(None, ge=0, le=100, description="% of gross value added")
    source: str = Field(min_length=3)
    approximate: bool = False
    notes: str | None = None


class CentreRow(Row):
    """An existing or pilot wholesale distribution centre (ОРЦ)."""

    centre_id: str
    name_ru: str
    name_en: str
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code")
    region_id: str
    city_ru: str
    city_en: str
    lat: float = Latitude
    lon: float = Longitude
    status: Literal["operating", "pilot", "planned", "under_construction"]
    capacity_kt: float | None = Field(None, ge=0, description="storage capacity (one-time), thousand tonnes; empty "
                                                              "where no figure is published")
    capacity_approximate: bool | None = Field(None, description="the capacity is a stage, a related store or "
                                                                "unconfirmed (see capacity_source)")
    capacity_source: str | None = Field(None, description="where the capacity figure comes from")
    opened: int | None = Field(None, ge=1990, le=2100)
    source: str = Field(min_length=3)
    site_confidence: Literal["documented", "city_only", "assumed_capital"]
    notes: str | None = None


class WholesaleMarketRow(CentreRow):
    """A wholesale food market, agro-hub or ОРЦ beyond the programme's existing centres (reference; not opened by
    the model unless a scenario lists it)."""

    kind: Literal["orc", "agro_hub", "wholesale_market"] = Field(
        description="orc: called an оптово-распределительный центр; agro_hub: a regional agro-park or logistics "
                    "centre for farm produce; wholesale_market: a wholesale food market")
    throughput_kt_year: float | None = Field(None, ge=0, description="announced throughput, thousand tonnes a "
                                                                     "year (a flow, not storage); empty if none")


class CrossingRow(Row):
    """A border crossing point with its typical delay."""

    crossing_id: str = Field(pattern=r"^[a-z0-9_]+$")
    name_ru: str
    name_en: str
    country_a: str = Field(pattern=r"^[A-Z]{2}$")
    country_b: str = Field(pattern=r"^[A-Z]{2}$")
    mode: Literal["road", "rail"]
    lat: float = Latitude
    lon: float = Longitude
    typical_delay_h: float = Field(ge=0, description="typical waiting and clearance time, hours")
    source: str = Field(min_length=3)
    approximate: bool = False
    notes: str | None = None
    fee_rub_per_t: float | None = Field(
        None, ge=0, description="official charges per tonne at the crossing (customs clearance fee of a truck load), "
        "RUB per tonne; empty = the registry's border_fee_rub_per_t_eaeu / _other")
    fee_source: str | None = Field(None, description="source and year of fee_rub_per_t (required with it)")

    @field_validator("country_b")
    @classmethod
    def _two_countries(cls, v: str, info: Any) -> str:
        if v == info.data.get("country_a"):
            raise ValueError("country_b must differ from country_a")
        return v

    @model_validator(mode="after")
    def _fee_has_a_source(self) -> CrossingRow:
        if self.fee_rub_per_t is not None and not (self.fee_source or "").strip():
            raise ValueError("fee_source: a fee_rub_per_t needs its source and year")
        return self


class OutsideMarketRow(Row):
    """An outside market the scope trades with: the rest of the country, a partner country or a port."""

    market_id: str = Field(pattern=r"^[a-z0-9_]+$")
    name_ru: str
    name_en: str
    country_id: str = Field(pattern=r"^[A-Z]{2}$", description="the market's country (RU for the rest of Russia "
                                                                  "and Russian ports)")
    kind: Literal["rest_of_russia", "port", "border"]
    town_ru: str = Field(description="the network town where the market is reached")
    tariff_export_pct: float = Field(ge=0, le=500, description="duty the market levies on the scope's produce, "
                                                               "% ad valorem")
    tariff_import_pct: float = Field(ge=0, le=500, description="duty levied on the market's produce entering the "
                                                               "scope, % ad valorem")
    tariff_basis: str = Field(min_length=3, description="the agreement or tariff schedule in force")
    source: str = Field(min_length=3)
    approximate: bool = False
    notes: str | None = None
    balance_weight_kt: float | None = Field(
        None, gt=0, description="a Russian port's grain exports, thousand tonnes a year: where a scope covers the "
                                "whole country its ports share the national balance in proportion to it "
                                "(planner/trade.py); blank: an equal share")
    balance_weight_source: str | None = Field(None, description="source and year of balance_weight_kt")

    @model_validator(mode="after")
    def _weight_has_a_source(self) -> OutsideMarketRow:
        if self.balance_weight_kt is not None and not (self.balance_weight_source or "").strip():
            raise ValueError("balance_weight_source: a balance_weight_kt needs its source and year")
        return self


class OutsideTradeRow(Row):
    """Recorded trade of a scope country with an outside market in one commodity group (reference quantities)."""

    market_id: str = Field(pattern=r"^[a-z0-9_]+$")
    scope_country: str = Field(pattern=r"^[A-Z]{2}$", description="the country whose trade this is")
    commodity: CommodityKey
    export_kt: float = Field(ge=0, description="the scope country's sales to the market, thousand tonnes a year")
    import_kt: float = Field(ge=0, description="the scope country's purchases from the market, thousand tonnes a "
                                               "year")
    period: str
    source: str = Field(min_length=3)
    approximate: bool = False
    notes: str | None = None


class LossRateRow(Row):
    """Share of food lost at one supply-chain stage (FAO 2011)."""

    fao_region: Literal[FAO_LOSS_REGIONS]  # type: ignore[valid-type]
    fao_group: Literal["cereals", "roots_and_tubers", "fruits_and_vegetables", "meat", "dairy"]
    stage: Literal[
        "agricultural_production", "postharvest_handling_storage", "processing_primary",
        "processing_secondary", "distribution", "consumption",
    ]
    loss_pct: float = Field(ge=0, le=100, description="% of what enters the stage")
    source: str = Field(min_length=3)


class CorridorRow(Row):
    """One town on a trunk road or railway corridor, in order; consecutive towns form the network's segments."""

    corridor_id: str = Field(pattern=r"^[a-z0-9_]+$")
    name_ru: str
    name_en: str
    mode: Literal["road", "rail"]
    seq: int = Field(ge=0, description="position along the corridor, 0, 1, 2, ...")
    town_ru: str
    town_en: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    lat: float = Latitude
    lon: float = Longitude
    km_from_prev: float | None = Field(None, ge=0, description="road or rail km from the previous town")
    km_source: str | None = Field(None, description="'published: <source>' or 'estimate'")
    notes: str | None = None


class ProductionUseRow(Row):
    """Farm produce used in production rather than eaten: seed, processing into non-food products (starch,
    alcohol), feed of groups other than grain — Russia's national figure from a resource balance
    (:func:`planner.balance.production_use_kt` splits it over the regions by their production of the group).
    Grain fed to livestock is not here: ``feed_demand`` holds it, split by meat production."""

    area_id: Literal["RU"] = Field(description="RU: Russia's national figure")
    commodity: Literal["grain", "potatoes", "vegetables", "fruit_berries", "milk", "meat"]
    use: Literal["seed", "processing", "feed"] = Field(description="seed, non-food processing or feed")
    year: int = Field(ge=1990, le=2100, description="the year (season start) the figure refers to")
    quantity_kt: float = Field(ge=0, description="use, thousand tonnes a year")
    source: str = Field(min_length=3)
    approximate: bool = False
    notes: str | None = None

    @model_validator(mode="after")
    def _grain_feed_elsewhere(self) -> ProductionUseRow:
        if self.commodity == "grain" and self.use == "feed":
            raise ValueError("grain fed to livestock belongs in feed_demand.csv (split by meat production), "
                             "not in production_use")
        return self


TABLES: dict[str, tuple[type[Row], tuple[str, ...]]] = {
    "countries": (CountryRow, ("country_id",)),
    "regions": (RegionRow, ("region_id",)),
    "cities": (CityRow, ("city_id",)),
    "production": (ProductionRow, ("area_id", "commodity", "year")),
    "consumption_norms": (ConsumptionNormRow, ("commodity",)),
    "consumption_actual": (ConsumptionActualRow, ("area_id", "commodity", "year", "basis")),
    "feed_demand": (FeedDemandRow, ("area_id", "commodity", "year")),
    "production_use": (ProductionUseRow, ("area_id", "commodity", "use", "year")),
    "agri_shares": (AgriShareRow, ("region_id",)),
    "existing_centres": (CentreRow, ("centre_id",)),
    "wholesale_markets": (WholesaleMarketRow, ("centre_id",)),
    "border_crossings": (CrossingRow, ("crossing_id",)),
    "loss_rates": (LossRateRow, ("fao_region", "fao_group", "stage")),
    "corridors": (CorridorRow, ("corridor_id", "seq")),
    "outside_markets": (OutsideMarketRow, ("market_id",)),
    "outside_trade": (OutsideTradeRow, ("market_id", "scope_country", "commodity")),
}
"""Every table of the dataset: its row model and the columns that must be unique together."""


class CandidateRow(Row):
    """A user-supplied candidate site for a centre."""

    candidate_id: str
    name_ru: str
    name_en: str
    lat: float = Latitude
    lon: float = Longitude
    region_id: str | None = None
    existing: bool = False


USER_TABLES: dict[str, tuple[type[Row], tuple[str, ...]]] = {
    "candidates": (CandidateRow, ("candidate_id",)),
}
"""Tables a user may supply that have no embedded counterpart."""


def table_fields(name: str) -> list[tuple[str, str, bool, str]]:
    """The fields of a table as (name, type, required, description) for documentation."""
    model, _ = TABLES[name]
    out = []
    for fname, f in model.model_fields.items():
        ann = getattr(f.annotation, "__name__", str(f.annotation)).replace("typing.", "")
        out.append((fname, ann, f.is_required(), f.description or ""))
    return out
