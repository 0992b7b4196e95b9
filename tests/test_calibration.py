"""Outside markets' reference prices: calibrated on the marginal trader at the recorded trade, not on a median
farm of the whole scope (``planner.trade.DeliveredCosts``)."""

from __future__ import annotations

import numpy as np

from planner.trade import DeliveredCosts, reference_price


def _costs(cost, production, demand):
    return DeliveredCosts(*(np.asarray(a, dtype=float) for a in (cost, production, demand)))


def test_the_marginal_exporter_is_the_one_whose_surplus_completes_the_record():
    d = _costs([3000.0, 1000.0, 2000.0, 500.0], production=[5, 5, 5, 0], demand=[0, 0, 0, 7])
    assert list(d.surplus) == [5, 5, 5, 0] and list(d.deficit) == [0, 0, 0, 7]
    assert d.marginal(0.0) == 1000.0  # no recorded trade: the nearest region with a surplus is indifferent
    assert d.marginal(5.0) == 1000.0
    assert d.marginal(7.0) == 2000.0
    assert d.marginal(15.0) == 3000.0
    assert d.marginal(1e9) == 3000.0  # more than the surplus: the dearest region that has one


def test_the_marginal_importer_is_the_deficit_region_that_completes_the_record():
    d = _costs([3000.0, 1000.0, 2000.0, 500.0], production=[15, 15, 0, 0], demand=[10, 10, 4, 7])
    assert list(d.surplus) == [5, 5, 0, 0] and list(d.deficit) == [0, 0, 4, 7]
    assert d.marginal(-5.0) == 500.0  # the nearest deficit region covers 5 t of purchases
    assert d.marginal(-9.0) == 2000.0
    # a record beyond every deficit: demand stands in (the scope buys what it also grows)
    assert d.marginal(-100.0) == 3000.0


def test_a_market_nearer_the_surplus_gets_a_lower_price_for_the_same_record():
    """Two markets with the same record: the one next to the surplus regions pays them less (P0 = v + d), and a
    market whose nearest regions are short buys at a higher price (P0 = v + m − d) than one far from them."""
    near = _costs([500.0, 4000.0], production=[10, 10], demand=[0, 0])
    far = _costs([4000.0, 8000.0], production=[10, 10], demand=[0, 0])
    assert reference_price(20000.0, near.marginal(5.0), 5.0, 0, 0) < reference_price(20000.0, far.marginal(5.0),
                                                                                         5.0, 0, 0)
    short_near = _costs([300.0, 6000.0], production=[0, 10], demand=[10, 0])
    short_far = _costs([6000.0, 300.0], production=[0, 10], demand=[10, 0])
    assert (reference_price(20000.0, short_near.marginal(-5.0), -5.0, 0, 0, 1000.0)
            > reference_price(20000.0, short_far.marginal(-5.0), -5.0, 0, 0, 1000.0))
