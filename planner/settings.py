"""Settings and fixed vocabularies in one place: paths, federal districts, countries, commodity groups.

Everything a user can change per scenario lives in the parameter registry (:mod:`planner.parameters`);
this module holds the vocabularies those parameters and the data tables are keyed by.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
EMBEDDED_DATA_DIR = PACKAGE_DIR / "data" / "embedded"
"""Folder of the dataset shipped with the package (CSV and GeoJSON tables, documented in docs/data.md)."""


@dataclass(frozen=True)
class FederalDistrict:
    """A Russian federal district (федеральный округ)."""

    code: str
    name_ru: str
    name_en: str


FEDERAL_DISTRICTS: tuple[FederalDistrict, ...] = (
    FederalDistrict("CFD", "Центральный федеральный округ", "Central Federal District"),
    FederalDistrict("NWFD", "Северо-Западный федеральный округ", "Northwestern Federal District"),
    FederalDistrict("SFD", "Южный федеральный округ", "Southern Federal District"),
    FederalDistrict("NCFD", "Северо-Кавказский федеральный округ", "North Caucasus Federal District"),
    FederalDistrict("VFD", "Приволжский федеральный округ", "Volga Federal District"),
    FederalDistrict("UFD", "Уральский федеральный округ", "Ural Federal District"),
    FederalDistrict("SibFD", "Сибирский федеральный округ", "Siberian Federal District"),
    FederalDistrict("FEFD", "Дальневосточный федеральный округ", "Far Eastern Federal District"),
)
FEDERAL_DISTRICT_CODES: frozenset[str] = frozenset(fd.code for fd in FEDERAL_DISTRICTS)

NCFD_REGIONS: frozenset[str] = frozenset({"RU-DA", "RU-IN", "RU-KB", "RU-KC", "RU-SE", "RU-CE", "RU-STA"})
"""The seven subjects of the North Caucasus Federal District (ISO 3166-2)."""


@dataclass(frozen=True)
class Commodity:
    """A commodity group the planner routes and whose losses it counts.

    ``fao_group`` keys the FAO (Gustavsson et al. 2011) loss table; ``perishable`` marks groups whose
    transport time costs a loss share per day (see the parameter registry).
    """

    key: str
    name_ru: str
    name_en: str
    fao_group: str
    perishable: bool


COMMODITIES: tuple[Commodity, ...] = (
    Commodity("grain", "зерно (зерновые и зернобобовые)", "grain and pulses", "cereals", False),
    Commodity("potatoes", "картофель", "potatoes", "roots_and_tubers", True),
    Commodity("vegetables", "овощи открытого и защищённого грунта", "vegetables (open field and greenhouse)",
              "fruits_and_vegetables", True),
    Commodity("fruit_berries", "плоды и ягоды", "fruit and berries", "fruits_and_vegetables", True),
    Commodity("milk", "молоко", "milk", "dairy", True),
    Commodity("meat", "скот и птица на убой (в убойном весе)", "meat (slaughter weight)", "meat", True),
)
COMMODITY_KEYS: tuple[str, ...] = tuple(c.key for c in COMMODITIES)
COMMODITY_BY_KEY: dict[str, Commodity] = {c.key: c for c in COMMODITIES}

EAEU_MEMBERS: frozenset[str] = frozenset({"RU", "BY", "KZ", "AM", "KG"})
"""Member states of the Eurasian Economic Union (ISO 3166-1 alpha-2)."""

FAO_LOSS_REGIONS: tuple[str, ...] = (
    "Europe incl. Russia",
    "North Africa, West and Central Asia",
    "Industrialized Asia",
)

LOSS_STAGES: tuple[str, ...] = (
    "agricultural_production",
    "postharvest_handling_storage",
    "processing_primary",
    "processing_secondary",
    "distribution",
    "consumption",
)
"""Supply-chain stages of the FAO 2011 loss table, in chain order."""


CITY_REGIONS: frozenset[str] = frozenset({"KZ-71", "KZ-75", "KZ-79", "RU-MOW", "RU-SPE", "RU-SEV", "BY-HM"})
"""Cities with the status of a region (Kazakhstan's cities of republican status Astana, Almaty and Shymkent;
Moscow, Saint Petersburg, Sevastopol; Minsk): where production is split from a national total they get no share
(they farm next to nothing); they keep their demand."""
