"""The report's charts (matplotlib, PNG bytes for inlining): cost breakdown, losses by group and stage, price
change by region. Every axis carries its unit; labels are Russian with English beside."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from planner.outputs.labels import fmt  # noqa: E402

GROUP_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")


def _ticks(ax, decimals: int = 0) -> None:
    """Russian-style numbers on the value axis (thin-space thousands, comma decimals, true minus)."""
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v, decimals)))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _grouped_barh(ax, table: pd.DataFrame, row: str, value: str, scale: float = 1.0) -> list:
    """One bar per commodity group within each ``row`` of ``table`` (long form: ``row``, ``commodity``,
    ``commodity_ru``, ``commodity_en``, ``value``), values divided by ``scale``, a zero line, legend labels
    Russian / English. Returns the rows in the order drawn (top to bottom)."""
    rows = list(dict.fromkeys(table[row]))
    groups = list(dict.fromkeys(table["commodity"]))
    h = 0.8 / max(len(groups), 1)
    ys = np.arange(len(rows))
    for i, g in enumerate(groups):
        part = table[table["commodity"] == g].set_index(row).reindex(rows)
        ax.barh(ys + i * h - 0.4 + h / 2, part[value].fillna(0) / scale, h,
                color=GROUP_COLOURS[i % len(GROUP_COLOURS)],
                label=f"{part['commodity_ru'].dropna().iloc[0]} / {part['commodity_en'].dropna().iloc[0]}")
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.6)
    ax.grid(axis="x", alpha=0.3)
    return rows


def cost_chart(costs: pd.DataFrame) -> bytes | None:
    """Horizontal bars of the annual cost components, million RUB a year (revenues negative)."""
    if costs.empty:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 0.45 * len(costs) + 1.0))
    labels = [f"{r.component_ru}\n{r.component_en}" for r in costs.itertuples()]
    vals = costs["value_mrub"].astype(float).to_numpy()
    ax.barh(labels, vals, color=["#b2182b" if v >= 0 else "#2166ac" for v in vals])
    ax.axvline(0, color="black", lw=0.6)
    ax.invert_yaxis()
    ax.set_xlabel("млн руб. в год / million RUB a year (затраты +, выручка − / costs +, revenue −)")
    ax.tick_params(labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    _ticks(ax)
    return _png(fig)


def loss_chart(by_group: pd.DataFrame, by_stage: pd.DataFrame) -> bytes | None:
    """Left: losses by group, traditional channel vs the network (thousand t a year); right: tonnes saved by
    stage and group (thousand t a year; negative = the network loses more at that stage)."""
    if by_group.empty:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    y = np.arange(len(by_group))
    a.barh(y - 0.2, by_group["baseline_t"] / 1000, 0.4, label="без сети ОРЦ / traditional", color="#bdbdbd")
    a.barh(y + 0.2, by_group["network_t"] / 1000, 0.4, label="с сетью ОРЦ / with the network", color="#1b9e77")
    a.set_yticks(y, [f"{r}\n{e}" for r, e in zip(by_group["commodity_ru"], by_group["commodity_en"], strict=True)],
                 fontsize=7)
    a.invert_yaxis()
    a.set_xlabel("потери, тыс. т в год / losses, thousand t a year", fontsize=8)
    a.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, frameon=False)
    a.grid(axis="x", alpha=0.3)
    stages = _grouped_barh(b, by_stage, "stage", "saved_t", 1000)
    names = by_stage.drop_duplicates("stage").set_index("stage")
    b.set_yticks(np.arange(len(stages)), [f"{names.loc[s, 'stage_ru']}\n{names.loc[s, 'stage_en']}" for s in stages],
                 fontsize=7)
    b.set_xlabel("сбережено, тыс. т в год / saved, thousand t a year", fontsize=8)
    b.legend(fontsize=6.5, loc="best")
    _ticks(a)
    _ticks(b, 1)
    fig.tight_layout()
    return _png(fig)


def price_chart(prices: pd.DataFrame) -> bytes | None:
    """Consumer price change by region and group against the traditional channel, %."""
    if prices.empty:
        return None
    n_regions = prices["region_id"].nunique()
    n_groups = prices["commodity"].nunique()
    fig, ax = plt.subplots(figsize=(7.2, 0.32 * n_regions * max(1, n_groups / 2) + 1.2))
    regions = _grouped_barh(ax, prices, "region_id", "consumer_price_change_pct")
    names = prices.drop_duplicates("region_id").set_index("region_id")
    ax.set_yticks(np.arange(len(regions)),
                  [f"{names.loc[r, 'region_ru']} / {names.loc[r, 'region_en']}" for r in regions], fontsize=7)
    ax.set_xlabel("изменение потребительской цены, % / consumer price change, % (с сетью против традиционного "
                  "канала / network vs traditional)", fontsize=7.5)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=1, frameon=False)
    _ticks(ax, 3)
    return _png(fig)
