"""The national scope's outlets and grain demand (issue #18, review of the first federal run): the Baltic and
Pacific ports and the China and Mongolia land borders as outside markets, the ports sharing the national balance by
their recorded grain exports, and livestock feed as grain demand in the siting model, the price model and the
balance."""

from __future__ import annotations

import pandas as pd
import pytest

from planner.balance import feed_demand_kt, production_use_kt, regional_balance, regional_production
from planner.data.loader import load_dataset
from planner.parameters import ParameterSet
from planner.pipeline import build_problem
from planner.scenario import Exit, parse_scenario
from planner.trade import OutsideMarket, balancing_shares, market_curves, resolve_markets

NATIONAL_OUTLETS = {"port_baltic": ("port", "RU", "Санкт-Петербург"), "port_vladivostok": ("port", "RU", "Владивосток"),
                    "cn_zabaykalsk": ("border", "CN", "Забайкальск"), "mn_kyakhta": ("border", "MN", "Кяхта")}


def test_the_national_outlets_are_outside_markets_with_sourced_trade(dataset):
    m = dataset.outside_markets.set_index("market_id")
    for mid, (kind, country, town) in NATIONAL_OUTLETS.items():
        assert (m.at[mid, "kind"], m.at[mid, "country_id"], m.at[mid, "town_ru"]) == (kind, country, town)
        assert len(m.at[mid, "source"]) > 5 and len(m.at[mid, "tariff_basis"]) > 5
    # outside the EAEU, China and Mongolia levy and pay duties; Russia's ports are Russian
    assert m.at["cn_zabaykalsk", "tariff_import_pct"] > 0 and m.at["mn_kyakhta", "tariff_export_pct"] > 0
    t = dataset.outside_trade[dataset.outside_trade["scope_country"] == "RU"].set_index(["market_id", "commodity"])
    # Russia sells grain and meat to China by land and buys its fruit and vegetables; Mongolia buys Russian wheat
    assert t.at[("cn_zabaykalsk", "grain"), "export_kt"] > 1000
    assert t.at[("cn_zabaykalsk", "meat"), "export_kt"] > 0
    for k in ("potatoes", "vegetables", "fruit_berries"):
        assert t.at[("cn_zabaykalsk", k), "import_kt"] > 0
    assert t.at[("mn_kyakhta", "grain"), "export_kt"] > 0
    assert t.loc[["cn_zabaykalsk", "mn_kyakhta"], "approximate"].all()
    # every Russian port has a grain-export weight with its source
    ports = m[(m["kind"] == "port") & (m["country_id"] == "RU")]
    assert {"port_novorossiysk", "port_baltic", "port_vladivostok"} <= set(ports.index)
    assert (ports["balance_weight_kt"] > 0).all()
    assert (ports["balance_weight_source"].str.len() > 20).all()


def test_a_weight_without_its_source_is_refused(tmp_path, dataset):
    from planner.data.loader import DataValidationError

    table = dataset.outside_markets.copy()
    table.loc[table["market_id"] == "port_baltic", "balance_weight_source"] = ""
    path = tmp_path / "outside_markets.csv"
    table.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="balance_weight_source"):
        load_dataset({"outside_markets": path})


def test_the_ports_share_the_national_balance_by_their_grain_exports(dataset):
    exits = [Exit(market=m) for m in ("port_novorossiysk", "port_astrakhan", "port_baltic", "port_vladivostok",
                                      "cn_zabaykalsk", "mn_kyakhta")]
    whole = resolve_markets(exits, dataset, "RU", lambda town, i: town, whole_country=True)
    ports = ["port_novorossiysk", "port_astrakhan", "port_baltic", "port_vladivostok"]
    assert sorted(o.market_id for o in whole if o.balancing) == sorted(ports)
    params = ParameterSet(dataset.loss_rates)
    delivered = {(o.market_id, "grain"): 1000.0 for o in whole}
    curves = market_curves(whole, ["grain"], params, {"grain": 60e6}, {"grain": 50e6}, delivered).set_index(
        "market_id")
    t = dataset.outside_trade.set_index(["market_id", "scope_country", "commodity"])
    recorded = 1000 * (t.at[("cn_zabaykalsk", "RU", "grain"), "export_kt"]
                       + t.at[("mn_kyakhta", "RU", "grain"), "export_kt"])
    # the land borders trade at their records; the ports carry the rest once, each by its grain exports
    assert curves.at["cn_zabaykalsk", "N0_t"] == pytest.approx(recorded - 150e3)
    assert curves.loc[ports, "N0_t"].sum() == pytest.approx(60e6 - recorded)
    w = dataset.outside_markets.set_index("market_id").loc[ports, "balance_weight_kt"]
    for p in ports:
        assert curves.at[p, "N0_t"] == pytest.approx((60e6 - recorded) * w[p] / w.sum())
    assert curves.at["port_novorossiysk", "N0_t"] > 10 * curves.at["port_vladivostok", "N0_t"]


def test_balancing_markets_without_weights_share_equally_and_a_missing_weight_takes_the_mean():
    def market(mid, weight):
        return OutsideMarket(mid, mid, mid, "RU", "port", mid, 0, 0, 0, 0, None, {}, True, weight)

    assert balancing_shares([market("a", None), market("b", None)]) == {"a": 0.5, "b": 0.5}
    shares = balancing_shares([market("a", 3.0), market("b", 1.0), market("c", None)])
    assert shares == pytest.approx({"a": 3 / 6, "b": 1 / 6, "c": 2 / 6})


# --- livestock feed ------------------------------------------------------------------------------------------------

def test_feed_demand_splits_the_national_figure_by_meat_production(dataset):
    f = feed_demand_kt(dataset)
    ru = list(dataset.regions_in(country_id="RU")["region_id"])
    national = float(dataset.feed_demand.set_index("area_id").at["RU", "quantity_kt"])
    assert f.loc[ru, "feed_kt"].sum() == pytest.approx(national)
    meat = regional_production(dataset, ru, ["meat"]).set_index("area_id")["quantity_kt"].astype(float).reindex(
        ru).fillna(0.0)
    ratio = f.loc[meat.index[meat > 0], "feed_kt"] / meat[meat > 0]
    assert ratio.max() == pytest.approx(ratio.min())
    assert (f.loc[meat.index[meat == 0], "feed_kt"] == 0).all()  # no livestock, no feed
    assert (f.loc[ru, "level"] == "split").all() and f.loc[ru, "approximate"].all()
    # Belgorod, Russia's largest meat producer, feeds the most grain; regions outside Russia have no figure
    assert f.loc[ru, "feed_kt"].idxmax() == "RU-BEL"
    kz = dataset.regions_in(country_id="KZ")["region_id"]
    assert (f.loc[kz, "feed_kt"] == 0).all() and (f.loc[kz, "level"] == "none").all()


def test_a_region_with_its_own_feed_figure_keeps_it(dataset, tmp_path):
    table = pd.concat([dataset.feed_demand, pd.DataFrame([{
        "area_id": "RU-BEL", "commodity": "grain", "year": 2023, "quantity_kt": 3000.0,
        "source": "a region's own figure (test)", "approximate": False, "notes": ""}])], ignore_index=True)
    path = tmp_path / "feed_demand.csv"
    table.to_csv(path, index=False)
    f = feed_demand_kt(load_dataset({"feed_demand": path}))
    assert f.at["RU-BEL", "feed_kt"] == 3000.0 and f.at["RU-BEL", "level"] == "region"
    assert not f.at["RU-BEL", "approximate"]
    ru = list(dataset.regions_in(country_id="RU")["region_id"])
    national = float(dataset.feed_demand.set_index("area_id").at["RU", "quantity_kt"])
    assert f.loc[ru, "feed_kt"].sum() == pytest.approx(national)  # the others share the remainder


def test_grain_demand_says_approximate_where_its_feed_figure_is(edited_table):
    """Feed split from the national figure is approximate, so grain demand on it is too, even where the food
    figure per head is not; a group without feed keeps the food figure's flag."""
    norms = edited_table("consumption_norms", lambda d: d.assign(approximate="false"))
    ds = load_dataset({"consumption_norms": norms})
    b = regional_balance(ds, ["RU-BEL"], ["grain"], ParameterSet(ds.loss_rates), basis="norm").set_index(
        "commodity")
    assert b.at["grain", "feed_kt"] > 0 and feed_demand_kt(ds).at["RU-BEL", "approximate"]
    assert b.at["grain", "demand_approximate"]
    moscow = regional_balance(ds, ["RU-MOW"], ["grain"], ParameterSet(ds.loss_rates), basis="norm").set_index(
        "commodity")  # a city without livestock: no feed, so the food figure's flag
    assert moscow.at["grain", "feed_kt"] == 0 and not moscow.at["grain", "demand_approximate"]


@pytest.fixture(scope="module")
def grain_scope(dataset):
    sc = parse_scenario({"name": "grain_feed", "scope": {"regions": ["RU-BEL", "RU-KRS", "RU-VOR"]},
                         "commodities": ["grain", "potatoes"], "candidates": {"max_per_region": 1}})
    return sc, build_problem(sc, dataset)


def test_grain_demand_carries_the_feed_in_the_siting_model_and_the_balance(dataset, grain_scope):
    sc, planned = grain_scope
    ids = sc.region_ids(dataset)
    feed = feed_demand_kt(dataset, ids)["feed_kt"]
    bal = regional_balance(dataset, ids, ["grain", "potatoes"], planned.params).set_index(["region_id", "commodity"])
    assert bal.xs("grain", level="commodity")["feed_kt"].to_numpy() == pytest.approx(feed.loc[ids].to_numpy())
    assert (bal.xs("potatoes", level="commodity")["feed_kt"] == 0).all()
    d = planned.problem.demands
    markets = d[~d["is_exit"].astype(bool)].groupby("commodity")["quantity_t"].sum()
    growth = 1 + planned.params["demand_growth_pct_per_year"] / 100
    # the model's markets hold food + feed, as the balance says, the feed at each region's farm node
    assert markets["grain"] == pytest.approx(1000 * bal.xs("grain", level="commodity")["demand_kt"].sum() * growth)
    assert markets["grain"] > 1000 * feed.loc[ids].sum() * growth
    farm_nodes = {planned.nodes[f"farm:{r}"] for r in ids}
    at_farms = d[(d["commodity"] == "grain") & d["demand_id"].str.removeprefix("market:").isin(farm_nodes)]
    assert at_farms["quantity_t"].sum() >= 1000 * feed.loc[ids].sum() * growth - 1e-6


# --- production uses: seed, processing, other feed ---------------------------------------------------------------

def test_production_use_splits_the_national_figure_by_the_groups_production(dataset):
    u = production_use_kt(dataset)
    ru = list(dataset.regions_in(country_id="RU")["region_id"])
    national = dataset.production_use.groupby("commodity")["quantity_kt"].sum()
    assert set(u.index.get_level_values("commodity")) == set(national.index) >= {"potatoes"}
    pot = u.xs("potatoes", level="commodity")
    assert pot.loc[ru, "use_kt"].sum() == pytest.approx(national["potatoes"])
    prod = regional_production(dataset, ru, ["potatoes"]).groupby("area_id")["quantity_kt"].sum().astype(float)
    grows = prod.index[prod > 0]
    ratio = pot.loc[grows, "use_kt"] / prod[grows]
    assert ratio.max() == pytest.approx(ratio.min())  # seed is planted where the crop grows
    assert pot.loc[grows, "approximate"].all() and pot.loc[grows, "source"].str.contains("split").all()
    kz = dataset.regions_in(country_id="KZ")["region_id"]
    assert (pot.loc[kz, "use_kt"] == 0).all()


def test_grain_fed_to_livestock_is_refused_in_production_use(edited_table):
    from planner.data.loader import DataValidationError

    path = edited_table("production_use", lambda d: pd.concat([d, d.head(1).assign(commodity="grain", use="feed")]))
    with pytest.raises(DataValidationError, match="feed_demand.csv"):
        load_dataset({"production_use": path})


def test_potato_demand_carries_its_seed_and_processing(dataset, grain_scope):
    """The siting model's potato markets hold food + seed + processing, as the balance says, the uses at each
    region's farm node; the price model's D0 is the same (test below)."""
    sc, planned = grain_scope
    ids = sc.region_ids(dataset)
    uses = production_use_kt(dataset, ids).xs("potatoes", level="commodity")["use_kt"]
    bal = regional_balance(dataset, ids, ["potatoes"], planned.params).set_index("region_id")
    assert bal.loc[ids, "use_kt"].to_numpy() == pytest.approx(uses.loc[ids].to_numpy()) and (uses > 0).all()
    assert bal["demand_approximate"].all()
    d = planned.problem.demands
    growth = 1 + planned.params["demand_growth_pct_per_year"] / 100
    pot = d[(d["commodity"] == "potatoes") & ~d["is_exit"].astype(bool)]
    assert pot["quantity_t"].sum() == pytest.approx(1000 * bal["demand_kt"].sum() * growth)
    farm_nodes = {planned.nodes[f"farm:{r}"] for r in ids}
    at_farms = pot[pot["demand_id"].str.removeprefix("market:").isin(farm_nodes)]
    assert at_farms["quantity_t"].sum() >= 1000 * uses.sum() * growth - 1e-6


def test_the_price_model_feeds_the_same_grain(dataset, grain_scope):
    from planner.economics.prices import _markets_and_costs

    sc, planned = grain_scope
    ids = sc.region_ids(dataset)
    feed = feed_demand_kt(dataset, ids)["feed_kt"]
    bal = regional_balance(dataset, ids, ["grain"], planned.params).set_index("region_id")
    markets, _ = _markets_and_costs(planned, dataset, sc, "grain", [])
    d0 = markets.set_index("market")["D0"]
    for r in ids:
        assert d0[r] == pytest.approx(1000 * bal.at[r, "demand_kt"])
        assert d0[r] > 1000 * feed[r]
    potatoes, _ = _markets_and_costs(planned, dataset, sc, "potatoes", [])
    pb = regional_balance(dataset, ids, ["potatoes"], planned.params).set_index("region_id")
    assert potatoes.set_index("market").loc[ids, "D0"].to_numpy() == pytest.approx(1000 * pb.loc[ids, "demand_kt"])


def test_a_countrys_ports_take_no_side_where_land_records_overfill_its_balance(dataset):
    """Russia's milk: a national deficit (production − demand) smaller than what Belarus is recorded to sell it.
    The ports that close a whole country's balance must not be set to export the difference (the review of the
    fourth federal run found 1.75 Mt of milk leaving through Novorossiysk); a neighbour that balances a partial
    scope keeps the remainder (Kazakhstan buys Russia's potatoes beyond its own surplus)."""
    exits = [Exit(market=m) for m in ("port_novorossiysk", "port_baltic", "by_minsk")]
    whole = resolve_markets(exits, dataset, "RU", lambda town, i: town, whole_country=True)
    params = ParameterSet(dataset.loss_rates)
    delivered = {(o.market_id, "milk"): 1000.0 for o in whole}
    t = dataset.outside_trade.set_index(["market_id", "scope_country", "commodity"])
    bought = 1000 * t.at[("by_minsk", "RU", "milk"), "import_kt"]
    deficit = -0.5 * bought
    curves = market_curves(whole, ["milk"], params, {"milk": deficit}, {"milk": 35e6}, delivered).set_index(
        "market_id")
    assert curves.at["by_minsk", "N0_t"] < -0.9 * bought  # Belarus trades at its record
    assert curves.at["port_novorossiysk", "N0_t"] == 0 and curves.at["port_baltic", "N0_t"] == 0
    # a deficit larger than the records: the ports bring in the rest, as before
    curves = market_curves(whole, ["milk"], params, {"milk": -2 * bought}, {"milk": 35e6}, delivered).set_index(
        "market_id")
    assert curves.loc[["port_novorossiysk", "port_baltic"], "N0_t"].sum() == pytest.approx(
        -2 * bought - curves.at["by_minsk", "N0_t"])
    # a neighbour balancing a partial scope keeps a remainder of the other sign
    partial = resolve_markets([Exit(market="ru_via_astrakhan", balancing=True), Exit(market="uz_tashkent")],
                              dataset, "KZ", lambda town, i: town)
    sold = 1000 * dataset.outside_trade.set_index(["market_id", "scope_country", "commodity"]).at[
        ("uz_tashkent", "KZ", "potatoes"), "export_kt"]
    curves = market_curves(partial, ["potatoes"], params, {"potatoes": 0.5 * sold}, {"potatoes": 2e6},
                           {(o.market_id, "potatoes"): 1000.0 for o in partial}).set_index("market_id")
    assert curves.at["ru_via_astrakhan", "N0_t"] == pytest.approx(-0.5 * sold)
