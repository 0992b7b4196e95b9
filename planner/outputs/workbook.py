"""``results.xlsx``: the run's tables for analysts (openpyxl): a README sheet (what each sheet holds, units,
provenance), a summary sheet (headline figures, costs, losses, prices, investor view, balance), then one sheet
per table with bilingual headers (RU / EN with the unit), number formats, column widths, frozen header and
filters."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from planner.outputs.labels import COLUMNS, commodity_names

SHEETS: dict[str, tuple[str, str]] = {
    "sites": ("ОРЦ сети: размер, грузооборот, загрузка, показатели инвестора",
              "Opened centres: size, throughput, utilisation, investor figures"),
    "flows": ("Потоки: откуда, куда, группа, объём", "Flows: from, to, group, tonnes"),
    "losses": ("Потери по группам: без сети и с сетью", "Losses by group: traditional vs network"),
    "losses_by_stage": ("Потери по стадиям", "Losses by stage"),
    "losses_by_region": ("Потери по регионам", "Losses by region"),
    "prices": ("Цены по регионам", "Prices by region"),
    "trade": ("Ввоз и вывоз по внешним рынкам", "Imports and exports by outside market"),
    "balance": ("Баланс производства и потребления", "Supply-demand balance"),
    "costs": ("Годовые затраты по статьям", "Annual cost by component"),
}
"""Sheet name → (Russian, English) description, in workbook order after README and summary."""

OPTIONAL_SHEETS: dict[str, tuple[str, str]] = {
    "districts": ("По федеральным округам: потери, цены, чистая выгода",
                  "By federal district: losses, prices, net benefit"),
}
"""Sheets written only when the run has the table (``districts``: a scope spanning federal districts)."""

HEADER_FILL = PatternFill("solid", fgColor="DDE6F0")
BOLD = Font(bold=True)


def _number_format(decimals: int | None) -> str:
    if decimals is None:
        return "General"
    return "#,##0" if decimals == 0 else "#,##0." + "0" * decimals


def _write_table(ws, frame: pd.DataFrame, start_row: int = 1, filters: bool = True) -> int:
    """Write ``frame`` with bilingual headers at ``start_row``; returns the next free row."""
    cols = list(frame.columns)
    for j, c in enumerate(cols, start=1):
        spec = COLUMNS.get(c)
        cell = ws.cell(row=start_row, column=j, value=spec.header() if spec else c)
        cell.font, cell.fill = BOLD, HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for i, row in enumerate(frame.itertuples(index=False), start=start_row + 1):
        for j, (c, v) in enumerate(zip(cols, row, strict=True), start=1):
            if v is pd.NA or (isinstance(v, float) and v != v):
                v = None
            elif hasattr(v, "item"):
                v = v.item()
            cell = ws.cell(row=i, column=j, value=v)
            spec = COLUMNS.get(c)
            if spec is not None and spec.decimals is not None and isinstance(v, int | float) \
                    and not isinstance(v, bool):
                cell.number_format = _number_format(spec.decimals)
    for j, c in enumerate(cols, start=1):
        spec = COLUMNS.get(c)
        longest = max([len(str(x)) for x in frame[c].head(200)] + [8]) if not frame.empty else 8
        head = len(spec.header()) if spec else len(c)
        ws.column_dimensions[get_column_letter(j)].width = min(max(longest + 2, min(head, 28) * 0.6, 10), 48)
    ws.row_dimensions[start_row].height = 45
    end = start_row + len(frame)
    if filters and cols:
        ws.auto_filter.ref = f"A{start_row}:{get_column_letter(len(cols))}{max(end, start_row)}"
    return end + 2


def _summary_sheet(ws, summary: dict, t: dict[str, pd.DataFrame]) -> None:
    """Headline figures, then the small tables: costs, losses by group, prices by group, investor totals, balance."""
    h = summary.get("headline", {})
    ws.cell(row=1, column=1, value="Главное / Key figures").font = Font(bold=True, size=13)
    labels = {
        "loss_saved_t": ("Сбережено продукции", "produce saved", "т в год / t a year"),
        "loss_reduction_pct": ("Снижение потерь", "loss reduction", "%"),
        "loss_saved_value_mrub": ("Стоимость сбережённого", "value saved", "млн руб. в год / million RUB a year"),
        "net_social_benefit_mrub": ("Чистая общественная выгода", "net social benefit",
                                    "млн руб. в год / million RUB a year"),
        "social_npv_mrub": ("Общественный ЧДД", "social NPV", "млн руб. / million RUB"),
        "investor_npv_mrub": ("ЧДД инвестора (новые ОРЦ)", "investor NPV (new centres)", "млн руб. / million RUB"),
        "capital_new_mrub": ("Капитал новых ОРЦ", "capital of new centres", "млн руб. / million RUB"),
        "public_cofinancing_new_mrub": ("Господдержка", "public co-financing", "млн руб. / million RUB"),
        "public_support_pct": ("Доля господдержки", "public share", "%"),
        "centres_new": ("Новых ОРЦ", "new centres", "шт. / count"),
        "centres_existing": ("Действующих ОРЦ", "existing centres", "шт. / count"),
        "exports_t": ("Вывоз", "exports", "т в год / t a year"),
        "imports_t": ("Ввоз", "imports", "т в год / t a year"),
        "unmet_t": ("Неудовлетворённый спрос", "unmet demand", "т в год / t a year"),
    }
    rows = [(f"{ru} / {en}", h.get(k), unit) for k, (ru, en, unit) in labels.items() if k in h]
    for c, v in (h.get("consumer_price_change_pct") or {}).items():
        ru, en = commodity_names(c)
        rows.append((f"Потребительская цена: {ru} / consumer price: {en}", v, "% к традиционному каналу / vs "
                                                                              "traditional"))
    r = 2
    for name, value, unit in rows:
        ws.cell(row=r, column=1, value=name)
        cell = ws.cell(row=r, column=2, value=value)
        cell.number_format = "#,##0.000" if "%" in unit and "цена" in name else (
            "#,##0.00" if "%" in unit else "#,##0")
        ws.cell(row=r, column=3, value=unit)
        r += 1
    ws.column_dimensions["A"].width = 62
    ws.column_dimensions["B"].width = 18
    ws.column_dimensions["C"].width = 36
    for title, key in (("Годовые затраты / Annual cost", "costs"), ("Потери по группам / Losses by group", "losses"),
                       ("Цены по группам, с сетью к традиционному каналу / Prices by group, network vs traditional",
                        "prices"),
                       ("Взгляд инвестора / Investor's view", "investor"),
                       ("Баланс в регионах сценария / Balance in scope", "balance_total")):
        frame = t.get(key, pd.DataFrame())
        if key == "prices" and h.get("consumer_price_change_pct"):
            groups = list(h["consumer_price_change_pct"])
            frame = pd.DataFrame({"commodity_ru": [commodity_names(c)[0] for c in groups],
                                  "commodity_en": [commodity_names(c)[1] for c in groups],
                                  "consumer_price_change_pct": [h["consumer_price_change_pct"][c] for c in groups],
                                  "farm_price_change_pct": [(h.get("farm_price_change_pct") or {}).get(c)
                                                            for c in groups]})
        elif key == "prices":
            frame = pd.DataFrame()
        if key == "investor" and not t["sites"].empty:
            frame = t["sites"][["name_ru", "name_en", "status_ru", "capital_mrub", "public_cofinancing_mrub",
                                "revenue_mrub", "operating_result_mrub", "npv_mrub"]]
        if key == "balance_total" and not t["balance"].empty:
            frame = t["balance"].groupby(["commodity_ru", "commodity_en"], sort=False)[
                ["production_t", "demand_t", "surplus_t"]].sum(min_count=1).reset_index().round(0)
        if frame.empty:
            continue
        r += 1
        ws.cell(row=r, column=1, value=title).font = Font(bold=True, size=12)
        r = _write_table(ws, frame, r + 1, filters=False)
    ws.freeze_panes = "A2"


def _readme_sheet(ws, summary: dict) -> None:
    prov = summary.get("provenance") or {}
    lines = [
        ("Результаты расчёта сети ОРЦ / ОРЦ network run results", ""),
        ("Сценарий / scenario", summary.get("scenario")),
        ("Время расчёта / run time", prov.get("run_started")),
        ("Версия программы / software version", (prov.get("software") or {}).get("version")),
        ("Хэш сценария (SHA-256) / scenario hash", prov.get("scenario_sha256")),
        ("Хэш данных (SHA-256) / data hash", prov.get("data_sha256")),
        ("", ""),
        ("Единицы / units", "т в год = tonnes a year; млн руб. = million RUB; руб./т = RUB per tonne; % = per cent; "
                            "заголовки столбцов: русский / English, единица после запятой"),
        ("", ""),
        ("Лист / sheet", "Содержание / contents"),
        ("summary", "Главное: потери, цены, выгода, инвестор, баланс / key figures"),
    ]
    lines += [(name, f"{ru} / {en}") for name, (ru, en) in SHEETS.items()]
    lines += [(name, f"{ru} / {en}") for name, (ru, en) in OPTIONAL_SHEETS.items() if summary.get(name)]
    for i, (a, b) in enumerate(lines, start=1):
        ws.cell(row=i, column=1, value=a).font = BOLD if i in (1, 10) else Font()
        ws.cell(row=i, column=2, value=b)
    ws.column_dimensions["A"].width = 44
    ws.column_dimensions["B"].width = 110


def _bilingual(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """An optional sheet's table with its bilingual headers (the table module's own: RU / EN with units)."""
    if name == "districts":
        from planner.economics.districts import DISTRICT_COLUMNS

        return frame[list(DISTRICT_COLUMNS)].rename(columns=DISTRICT_COLUMNS)
    return frame


def write_workbook(path: Path, summary: dict, t: dict[str, pd.DataFrame]) -> Path:
    """Write ``results.xlsx``: README, summary, then :data:`SHEETS`, then the :data:`OPTIONAL_SHEETS` the run has."""
    wb = Workbook()
    _readme_sheet(wb.active, summary)
    wb.active.title = "README"
    _summary_sheet(wb.create_sheet("summary"), summary, t)
    for name in SHEETS:
        ws = wb.create_sheet(name)
        frame = t.get(name, pd.DataFrame())
        _write_table(ws, frame if not frame.empty else pd.DataFrame({"note": ["нет данных / no data"]}))
        ws.freeze_panes = "B2" if len(frame.columns) > 1 else "A2"
    for name in OPTIONAL_SHEETS:
        frame = t.get(name)
        if frame is None or frame.empty:
            continue
        ws = wb.create_sheet(name)
        _write_table(ws, _bilingual(name, frame))
        ws.freeze_panes = "D2"
    wb.save(path)
    return path
