"""The report's grouped bar charts: one bar per region (or stage) and group, at the figure's value, with
Russian and English labels."""

from __future__ import annotations

import pandas as pd
import pytest

from planner.outputs import charts


@pytest.fixture
def captured(monkeypatch):
    figs = []

    def keep(fig):
        figs.append(fig)
        return b"png"

    monkeypatch.setattr(charts, "_png", keep)
    return figs


def _bars(ax) -> dict[str, list[float]]:
    """Bar widths by legend label."""
    return {c.get_label(): [p.get_width() for p in c.patches] for c in ax.containers}


def test_price_chart_draws_each_group_for_each_region_at_its_change(captured):
    prices = pd.DataFrame({
        "region_id": ["RU-DA", "RU-DA", "RU-STA"], "region_ru": ["Дагестан", "Дагестан", "Ставрополь"],
        "region_en": ["Dagestan", "Dagestan", "Stavropol"], "commodity": ["fruit", "potatoes", "fruit"],
        "commodity_ru": ["Фрукты", "Картофель", "Фрукты"], "commodity_en": ["Fruit", "Potatoes", "Fruit"],
        "consumer_price_change_pct": [-1.5, -0.25, -3.0]})
    assert charts.price_chart(prices) == b"png"
    ax = captured[0].axes[0]
    assert _bars(ax) == {"Фрукты / Fruit": [-1.5, -3.0], "Картофель / Potatoes": [-0.25, 0.0]}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Дагестан / Dagestan", "Ставрополь / Stavropol"]


def test_loss_chart_shows_tonnes_saved_by_stage_in_thousand_tonnes(captured):
    by_group = pd.DataFrame({"commodity_ru": ["Фрукты"], "commodity_en": ["Fruit"],
                             "baseline_t": [5000.0], "network_t": [4000.0]})
    by_stage = pd.DataFrame({
        "stage": ["transport", "storage", "transport"], "stage_ru": ["перевозка", "хранение", "перевозка"],
        "stage_en": ["transport", "storage", "transport"], "commodity": ["fruit", "fruit", "vegetables"],
        "commodity_ru": ["Фрукты", "Фрукты", "Овощи"], "commodity_en": ["Fruit", "Fruit", "Vegetables"],
        "saved_t": [1500.0, -200.0, 300.0]})
    assert charts.loss_chart(by_group, by_stage) == b"png"
    stages_ax = captured[0].axes[1]
    assert _bars(stages_ax) == {"Фрукты / Fruit": [1.5, -0.2], "Овощи / Vegetables": [0.3, 0.0]}
    assert [t.get_text() for t in stages_ax.get_yticklabels()] == ["перевозка\ntransport", "хранение\nstorage"]
