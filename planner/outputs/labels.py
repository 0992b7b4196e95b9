"""Names, units and number formats shared by every output file: one column catalogue, RU beside EN.

A column key (``throughput_t``) is what the CSV and GeoPackage files carry (the unit is its suffix); the
catalogue gives each key its Russian and English label, its unit and its decimals, which the workbook's
headers and the report use. Nothing here computes a figure; it only names and formats them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from planner.settings import COMMODITY_BY_KEY


@dataclass(frozen=True)
class Column:
    """One output column: Russian and English label, unit (RU / EN, empty for text) and decimals shown."""

    ru: str
    en: str
    unit_ru: str = ""
    unit_en: str = ""
    decimals: int | None = None

    def header(self) -> str:
        """Bilingual header with unit, e.g. ``Пропускная способность, т / Throughput, t``."""
        ru = f"{self.ru}, {self.unit_ru}" if self.unit_ru else self.ru
        en = f"{self.en}, {self.unit_en}" if self.unit_en else self.en
        return f"{ru} / {en}"


def _t(ru: str, en: str, d: int = 0) -> Column:
    return Column(ru, en, "т в год", "t a year", d)


def _mrub(ru: str, en: str, d: int = 1) -> Column:
    return Column(ru, en, "млн руб.", "million RUB", d)


def _pct(ru: str, en: str, d: int = 2) -> Column:
    return Column(ru, en, "%", "%", d)


def _rpt(ru: str, en: str, d: int = 0) -> Column:
    return Column(ru, en, "руб./т", "RUB/t", d)


COLUMNS: dict[str, Column] = {
    # identities and names
    "site_id": Column("Код ОРЦ", "site id"), "name_ru": Column("Название", "name (Russian)"),
    "name_en": Column("Название (англ.)", "name (English)"),
    "region_id": Column("Код региона", "region id"), "region_ru": Column("Регион", "region (Russian)"),
    "region_en": Column("Регион (англ.)", "region (English)"),
    "country_id": Column("Код страны", "country id"), "country_ru": Column("Страна", "country (Russian)"),
    "country_en": Column("Страна (англ.)", "country (English)"),
    "status_ru": Column("Статус", "status (Russian)"), "status_en": Column("Статус (англ.)", "status (English)"),
    "store_type": Column("Тип (код)", "store type id"), "store_type_ru": Column("Тип объекта", "store type (Russian)"),
    "store_type_en": Column("Тип объекта (англ.)", "store type (English)"),
    "size": Column("Размер (код)", "size id"), "size_ru": Column("Размер", "size (Russian)"),
    "size_en": Column("Размер (англ.)", "size (English)"),
    "capacity_status": Column("Источник мощности", "capacity source"),
    "commodity": Column("Код группы", "commodity group id"),
    "commodity_ru": Column("Группа продукции", "commodity group (Russian)"),
    "commodity_en": Column("Группа продукции (англ.)", "commodity group (English)"),
    "stage": Column("Код стадии", "stage id"), "stage_ru": Column("Стадия", "stage (Russian)"),
    "stage_en": Column("Стадия (англ.)", "stage (English)"),
    "kind": Column("Код вида потока", "flow kind id"), "kind_ru": Column("Вид потока", "flow kind (Russian)"),
    "kind_en": Column("Вид потока (англ.)", "flow kind (English)"),
    "from_id": Column("Откуда (код)", "from id"), "from_ru": Column("Откуда", "from (Russian)"),
    "from_en": Column("Откуда (англ.)", "from (English)"),
    "to_id": Column("Куда (код)", "to id"), "to_ru": Column("Куда", "to (Russian)"),
    "to_en": Column("Куда (англ.)", "to (English)"),
    "market_id": Column("Код рынка", "market id"), "market_ru": Column("Внешний рынок", "outside market (Russian)"),
    "market_en": Column("Внешний рынок (англ.)", "outside market (English)"),
    "direction_ru": Column("Направление", "direction (Russian)"),
    "direction_en": Column("Направление (англ.)", "direction (English)"),
    "crossing_id": Column("Код пункта пропуска", "crossing id"),
    "crossing_ru": Column("Пункт пропуска", "border crossing (Russian)"),
    "crossing_en": Column("Пункт пропуска (англ.)", "border crossing (English)"),
    "mode": Column("Вид транспорта", "mode"), "open": Column("Открыт", "open"),
    "existing": Column("Действующий", "existing"), "approximate": Column("Приблизительно", "approximate"),
    "corridor_id": Column("Код коридора", "corridor id"), "corridor_ru": Column("Коридор", "corridor (Russian)"),
    "corridor_en": Column("Коридор (англ.)", "corridor (English)"),
    "component_ru": Column("Статья", "component (Russian)"), "component_en": Column("Статья (англ.)", "component"),
    "parameter": Column("Параметр", "parameter"), "unit": Column("Единица", "unit"),
    "source": Column("Источник", "source"), "basis_ru": Column("Основание", "basis (Russian)"),
    "basis_en": Column("Основание (англ.)", "basis (English)"),
    # quantities
    "capacity_t": _t("Мощность", "capacity"), "throughput_t": _t("Грузооборот", "throughput"),
    "held_t": _t("Хранение (сезонное)", "held in storage"),
    "utilisation_pct": _pct("Загрузка", "utilisation", 0),
    "tonnes_t": _t("Объём", "tonnes"), "lost_t": _t("Потери в пути", "lost in transit"),
    "cost_rub_per_t": _rpt("Затраты", "cost"),
    "baseline_t": _t("Потери без сети ОРЦ", "losses, traditional channel"),
    "network_t": _t("Потери с сетью ОРЦ", "losses with the network"),
    "saved_t": _t("Сбережено", "saved"), "reduction_pct": _pct("Снижение потерь", "loss reduction"),
    "saved_value_mrub": _mrub("Стоимость сбережённого", "value saved"),
    "production_t": _t("Производство", "production"), "demand_t": _t("Потребление", "demand"),
    "surplus_t": _t("Избыток (+) / дефицит (−)", "surplus (+) / deficit (−)"),
    "consumer_price_base_rub_per_t": _rpt("Потребительская цена без сети", "consumer price, traditional"),
    "consumer_price_network_rub_per_t": _rpt("Потребительская цена с сетью", "consumer price, network"),
    "consumer_price_change_pct": _pct("Изменение потребительской цены", "consumer price change", 3),
    "farm_price_base_rub_per_t": _rpt("Цена производителя без сети", "farm-gate price, traditional"),
    "farm_price_network_rub_per_t": _rpt("Цена производителя с сетью", "farm-gate price, network"),
    "farm_price_change_pct": _pct("Изменение цены производителя", "farm-gate price change", 3),
    "consumption_base_t": _t("Потребление без сети", "consumption, traditional"),
    "consumption_network_t": _t("Потребление с сетью", "consumption, network"),
    "consumer_surplus_change_mrub": _mrub("Изменение излишка потребителей", "consumer surplus change", 2),
    "producer_surplus_change_mrub": _mrub("Изменение излишка производителей", "producer surplus change", 2),
    "value_mrub": _mrub("Сумма", "amount"),
    "capital_mrub": _mrub("Капитальные вложения", "capital"),
    "public_cofinancing_mrub": _mrub("Господдержка", "public co-financing"),
    "investor_capital_mrub": _mrub("Капитал инвестора", "investor's capital"),
    "revenue_mrub": _mrub("Выручка в год", "revenue a year"),
    "opex_mrub": _mrub("Операционные затраты в год", "opex a year"),
    "operating_result_mrub": _mrub("Операционный результат в год", "operating result a year"),
    "npv_mrub": _mrub("ЧДД инвестора", "investor NPV"),
    "npv_glut_mrub": _mrub("ЧДД в годы избытка", "NPV, glut years"),
    "npv_short_mrub": _mrub("ЧДД в годы недорода", "NPV, short years"),
    "payback_years": Column("Срок окупаемости", "payback", "лет", "years", 1),
    "km": Column("Длина", "length", "км", "km", 1), "hours": Column("Время", "time", "ч", "h", 2),
    "typical_delay_h": Column("Типичное ожидание", "typical delay", "ч", "h", 1),
    "extra_delay_h": Column("Дополнительное ожидание", "extra delay", "ч", "h", 1),
    "lat_deg": Column("Широта", "latitude", "°", "°", 4), "lon_deg": Column("Долгота", "longitude", "°", "°", 4),
    "value": Column("Значение", "value", "", "", None),
}

SIZE_NAMES: dict[str, tuple[str, str]] = {
    "existing": ("действующий", "existing"), "small": ("малый", "small"), "medium": ("средний", "medium"),
    "large": ("крупный", "large"),
}
KIND_NAMES: dict[str, tuple[str, str]] = {
    "inbound": ("от производителя в ОРЦ", "farm to centre"), "outbound": ("из ОРЦ потребителю", "centre to market"),
    "direct": ("напрямую (традиционный канал)", "direct (traditional channel)"),
}
STAGE_NAMES: dict[str, tuple[str, str]] = {
    "farm_storage": ("хранение у производителя", "farm storage"), "transport": ("перевозка", "transport"),
    "wholesale_storage": ("оптовое хранение", "wholesale storage"),
    "retail_distribution": ("розничная торговля", "retail distribution"),
}
COST_NAMES: dict[str, tuple[str, str]] = {
    "fixed (capital + operating)": ("постоянные (капитал и содержание)", "fixed (capital + operating)"),
    "transport and handling": ("перевозка и обработка", "transport and handling"),
    "imports (purchases)": ("импорт (закупки)", "imports (purchases)"),
    "unmet demand penalty": ("штраф за неудовлетворённый спрос", "unmet demand penalty"),
    "export revenue (negative cost)": ("выручка от вывоза (со знаком минус)", "export revenue (negative cost)"),
    "seasonal margin (negative cost)": ("сезонная наценка (со знаком минус)", "seasonal margin (negative cost)"),
}
DIRECTION_NAMES: dict[str, tuple[str, str]] = {"import": ("ввоз", "import"), "export": ("вывоз", "export")}
def commodity_names(key: str) -> tuple[str, str]:
    """Russian and English name of a commodity group (the key itself where it is not a known group)."""
    c = COMMODITY_BY_KEY.get(key)
    return (c.name_ru, c.name_en) if c else (key, key)


def pair(mapping: dict[str, tuple[str, str]], key: str) -> tuple[str, str]:
    """``mapping[key]`` or the key twice."""
    return mapping.get(key, (key, key))


def clean_number(value: float | None, decimals: int) -> float | None:
    """``value`` rounded to ``decimals`` with ``-0.0`` and solver noise (|x| below half the last digit) made 0;
    None for missing or non-finite values."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    r = round(v, decimals)
    return 0.0 if r == 0 else r


def fmt(value: float | None, decimals: int = 0, sign: bool = False, unit: str = "") -> str:
    """A number for a reader: thin-space thousands (Russian style), comma decimals, no ``-0``, a true minus
    sign; ``sign`` puts ``+`` before positives; ``unit`` follows after a no-break space. ``—`` for missing."""
    v = clean_number(value, decimals)
    if v is None:
        return "—"
    body = f"{abs(v):,.{decimals}f}".replace(",", "\u202f").replace(".", ",")
    prefix = "−" if v < 0 else ("+" if sign and v > 0 else "")
    text = prefix + body
    return f"{text}\u00a0{unit}" if unit else text


def rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """Each catalogued numeric column rounded to its decimals (``-0.0`` made 0); other columns untouched."""
    out = frame.copy()
    for col in out.columns:
        spec = COLUMNS.get(col)
        if spec is None or spec.decimals is None or not pd.api.types.is_numeric_dtype(out[col]):
            continue
        if pd.api.types.is_bool_dtype(out[col]):
            continue
        out[col] = out[col].astype(float).round(spec.decimals) + 0.0
        if spec.decimals == 0:
            out[col] = out[col].astype("Int64")
    return out
