"""Border crossings: each crossing's delay (hours) and charge per tonne reach the trip's hours and freight
(geo.network.crossing_fee, geo.matrix.trip_matrix), and closing or delaying a crossing moves a trip's cost the
right way (issue #14, item 4: «give each crossing a delay and a cost per tonne»)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo.costs import time_cost_rub_per_t_hour
from geo.matrix import trip_matrix
from geo.network import BorderState, build_corridor_graph, mode_subgraph
from planner.data.loader import read_table
from planner.network import corridor_graph

DERBENT, BAKU = "road:RU:Дербент", "road:AZ:Баку"
ASTRAKHAN, ATYRAU = "road:RU:Астрахань", "road:KZ:Атырау"
VLADIKAVKAZ, YEREVAN = "road:RU:Владикавказ", "road:AM:Ереван"


class _Params:
    """The registry's parameters with a few replaced (geo reads parameters by name only)."""

    def __init__(self, base, **changed: float) -> None:
        self.base, self.changed = base, changed

    def __getitem__(self, name: str) -> float:
        return self.changed[name] if name in self.changed else self.base[name]


def _graph(dataset, params, crossings: pd.DataFrame | None = None, borders=None):
    x = dataset.border_crossings if crossings is None else crossings
    return build_corridor_graph(dataset.corridors, x, dataset.countries, dataset.cities, params, borders)


def _road_trip(G, o, d, params, commodity=None):
    return trip_matrix(mode_subgraph(G, "road"), [o], [d], params, commodity, return_crossings=True)


def _edge_fees(G, crossing_id: str) -> set[float]:
    """The charges per tonne on the network's edges through one crossing."""
    return {d["fee_rub_per_t"] for _, _, d in G.edges(data=True) if d.get("crossing_id") == crossing_id}


def test_every_crossing_has_a_delay_and_a_charge_per_tonne(dataset, params, G):
    x = dataset.border_crossings
    assert (x["typical_delay_h"] >= 0).all()
    own = x[x["fee_rub_per_t"].notna()]
    assert (own["fee_source"].str.len() > 20).all()
    fees = dict(zip(x["crossing_id"], x["fee_rub_per_t"], strict=True))
    # the Upper Lars and Yarag-Kazmalyar charge comes from the crossings table, not the registry's default
    assert fees["ru_ge_upper_lars"] > 0 and fees["ru_az_yarag_kazmalyar"] > 0
    assert fees["ru_ge_upper_lars"] != params["border_fee_rub_per_t_other"]
    for cid in ("ru_ge_upper_lars", "ru_az_yarag_kazmalyar", "ru_kz_karaozek"):
        assert _edge_fees(G, cid) == {fees[cid]}
    # a crossing without its own fee takes the registry default for its bloc
    assert _edge_fees(G, "ge_am_sadakhlo") == {params["border_fee_rub_per_t_other"]}


def test_the_crossing_fee_reaches_the_trip_freight(dataset, params):
    x = dataset.border_crossings.copy()
    base = _road_trip(_graph(dataset, params, x), DERBENT, BAKU, params)
    assert base.crossings[(DERBENT, BAKU)] == ["ru_az_yarag_kazmalyar"]
    x.loc[x["crossing_id"] == "ru_az_yarag_kazmalyar", "fee_rub_per_t"] += 500.0
    dear = _road_trip(_graph(dataset, params, x), DERBENT, BAKU, params)
    assert dear.freight.at[DERBENT, BAKU] == pytest.approx(base.freight.at[DERBENT, BAKU] + 500.0)
    assert dear.km.at[DERBENT, BAKU] == pytest.approx(base.km.at[DERBENT, BAKU])
    # a scenario's fee replaces the table's
    set_ = _road_trip(_graph(dataset, params, x, {"ru_az_yarag_kazmalyar": BorderState(fee_rub_per_t=0.0)}),
                      DERBENT, BAKU, params)
    fee = float(x.loc[x["crossing_id"] == "ru_az_yarag_kazmalyar", "fee_rub_per_t"].iloc[0])
    assert set_.freight.at[DERBENT, BAKU] == pytest.approx(dear.freight.at[DERBENT, BAKU] - fee)


def test_no_charge_inside_the_eaeu_whatever_the_non_member_default(dataset, params):
    cheap = _road_trip(_graph(dataset, params), ASTRAKHAN, ATYRAU, params)
    dear_default = _Params(params, border_fee_rub_per_t_other=5_000.0)
    same = _road_trip(_graph(dataset, dear_default), ASTRAKHAN, ATYRAU, dear_default)
    assert cheap.crossings[(ASTRAKHAN, ATYRAU)] == ["ru_kz_karaozek"]
    assert same.freight.at[ASTRAKHAN, ATYRAU] == pytest.approx(cheap.freight.at[ASTRAKHAN, ATYRAU])
    assert cheap.freight.at[ASTRAKHAN, ATYRAU] == pytest.approx(
        cheap.km.at[ASTRAKHAN, ATYRAU] * params["road_tariff_rub_per_tkm"])


def test_a_delay_adds_hours_and_costs_perishables_more(dataset, params):
    base_g = _graph(dataset, params)
    slow_g = _graph(dataset, params, borders={"ru_ge_upper_lars": BorderState(extra_delay_h=48.0)})
    for commodity in ("fruit_berries", "grain"):
        base = _road_trip(base_g, VLADIKAVKAZ, YEREVAN, params, commodity)
        slow = _road_trip(slow_g, VLADIKAVKAZ, YEREVAN, params, commodity)
        assert "ru_ge_upper_lars" in slow.crossings[(VLADIKAVKAZ, YEREVAN)]
        assert slow.hours.at[VLADIKAVKAZ, YEREVAN] == pytest.approx(base.hours.at[VLADIKAVKAZ, YEREVAN] + 48.0)
        assert slow.freight.at[VLADIKAVKAZ, YEREVAN] == pytest.approx(base.freight.at[VLADIKAVKAZ, YEREVAN])
        extra = slow.cost.at[VLADIKAVKAZ, YEREVAN] - base.cost.at[VLADIKAVKAZ, YEREVAN]
        assert extra == pytest.approx(48.0 * time_cost_rub_per_t_hour(params, commodity))
    assert time_cost_rub_per_t_hour(params, "fruit_berries") > time_cost_rub_per_t_hour(params, "grain")


def test_closing_a_crossing_raises_the_trip_cost_or_cuts_it_off(dataset, params, G):
    o, d = "road:RU:Махачкала", BAKU
    open_ = trip_matrix(G, [o], [d], params, "vegetables", return_crossings=True)
    assert "ru_az_yarag_kazmalyar" in open_.crossings[(o, d)]
    closed_g = corridor_graph(dataset, params, {"ru_az_yarag_kazmalyar": BorderState(open=False)})
    closed = trip_matrix(closed_g, [o], [d], params, "vegetables", return_crossings=True)
    assert closed.cost.at[o, d] > open_.cost.at[o, d]  # the rail crossing at Samur, dearer door to door
    assert closed.crossings[(o, d)] == ["ru_az_samur_rail"]
    both = corridor_graph(dataset, params, {"ru_az_yarag_kazmalyar": BorderState(open=False),
                                            "ru_az_samur_rail": BorderState(open=False)})
    assert np.isinf(trip_matrix(both, [o], [d], params, "vegetables").cost.at[o, d])


def test_a_fee_without_its_source_is_refused(tmp_path):
    src = read_table("border_crossings")
    bad = src.copy()
    bad.loc[bad["crossing_id"] == "ge_am_sadakhlo", "fee_rub_per_t"] = 99.0
    bad.loc[bad["crossing_id"] == "ge_am_sadakhlo", "fee_source"] = None
    path = tmp_path / "crossings.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(Exception, match="fee_source"):
        read_table("border_crossings", path)
