"""The parameter registry: every model parameter with its unit, default and source, in one place.

Geo, optimization and economics read parameters only through :class:`ParameterSet`, which starts from these
defaults and applies a scenario's overrides, so every number a run uses can be traced to a unit and a source.
The loss table (share lost per commodity group and supply-chain stage) is part of the registry: its defaults
come from the FAO 2011 regional loss shares shipped in the dataset (``loss_rates`` table).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from planner.settings import COMMODITY_BY_KEY, COMMODITY_KEYS, LOSS_STAGES


@dataclass(frozen=True)
class Parameter:
    """One scalar model parameter: name, unit, default, admissible range and where the default comes from."""

    name: str
    unit: str
    default: float
    source: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    low: float | None = None
    """Low end of the range the sources cite (None: no cited range; the default is then a point figure or an
    assumption). Every default with a cited range is its central value (docs/economics.md, ranges)."""
    high: float | None = None
    """High end of the cited range."""

    def check(self, value: float) -> float:
        """Return ``value`` as float if it lies in the admissible range, else raise ValueError naming the parameter."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name}: expected a number in {self.unit}, got {value!r}") from None
        if v != v:  # NaN
            raise ValueError(f"{self.name}: expected a number in {self.unit}, got NaN")
        if self.minimum is not None and v < self.minimum:
            raise ValueError(f"{self.name}: {v} {self.unit} is below the minimum {self.minimum}")
        if self.maximum is not None and v > self.maximum:
            raise ValueError(f"{self.name}: {v} {self.unit} is above the maximum {self.maximum}")
        return v


ASSUMPTION = "project assumption (no published figure found); override with the planner's own value"

PARAMETERS: tuple[Parameter, ...] = (
    Parameter("road_speed_kmh", "km/h", 65.0,
              "project assumption: average speed of a laden truck while driving on trunk roads, below the limits "
              "of ПДД РФ п. 10.3 (trucks over 3.5 t: 70 km/h outside built-up areas, 90 km/h on motorways; "
              "pdd-check.ru/punkt-10-3) for towns, grades and traffic; with the 9 h a day of driving of Приказ "
              "Минтранса № 424 от 16.10.2020 it gives about 585 km a day (issue #14 puts a day's run at 550-650 km, "
              "not checked)",
              "road DRIVING speed: road km / this = driving hours; the drivers' rest is added per trip on the "
              "path's driving hours (geo.matrix.road_rest_hours), not in this speed", 10, 120),
    Parameter("rail_speed_kmh", "km/h", 25.0,
              "project assumption: average through-speed of freight wagons including yard time (RZhD reports "
              "a 'wagon route speed' of the same order; figure not checked)",
              "average rail freight speed used to turn rail km into hours", 5, 120),
    Parameter("road_circuity_factor", "ratio", 1.25,
              "range 1.2-1.4 for road networks reported by Ballou, Rahardja & Sakai (2002), Transportation "
              "Research A 36(9); 1.25 chosen by the project",
              "road km per geodesic (straight-line) km where a segment's road length is not published", 1.0, 3.0),
    Parameter("grain_per_flour_equivalent", "t grain / t flour", 1.0 / 0.73,
              "flour extraction rate about 0.72-0.75 (milling practice); 0.73 used, flagged approximate",
              "converts the bread-products norm (flour equivalent) into grain", 1.0, 2.0),
    Parameter("melon_share_of_vegetables_pct", "% of «овощи и бахчевые»", 10.0,
              "approximate: about 11 kg of food melons per person a year (a 1.58-1.6 Mt harvest, Rosselkhozbank's "
              "centre of industry expertise via inthepress.ru/press/p454383.html; watermelons ~6.5 kg, "
              "finansist-kras.ru) against Rosstat's 105-108 kg of «овощи и продовольственные бахчевые»; the share "
              "the consumption_actual rows already take out (docs/data.md); higher in the melon-growing south",
              "share of food melons and gourds in the Ministry of Health norm's «овощи и бахчевые» (140 kg): taken "
              "out of the norm on demand_basis: norm, so that vegetable demand, like production, excludes melons "
              "(Доля бахчевых в норме «овощи и бахчевые»)", 0, 50),
    Parameter("demand_growth_pct_per_year", "% per year", 0.0, ASSUMPTION,
              "growth of per-capita demand applied to every commodity group", -20, 20),
    Parameter("discount_rate_pct", "% per year", 10.0, ASSUMPTION,
              "the investor's real discount rate for annualising capital and for NPV", 0, 50),
    Parameter("social_discount_rate_pct", "% per year", 5.0,
              "project assumption: the order of the social discount rates used in public cost-benefit appraisal "
              "(3-7% real; e.g. 5% in the European Commission's Guide to Cost-Benefit Analysis of Investment "
              "Projects, 2014, for cohesion countries), not a Russian rule; replace with the ministry's own",
              "real discount rate of the public case (net social benefit), separate from the investor's", 0, 50,
              low=3.0, high=7.0),
    Parameter("public_cofinancing_max_pct", "% of capital cost", 50.0,
              "scenario switch: the usual cap on all public co-financing of a project in Russian cluster and "
              "industrial-park support rules (shared/research/centre-economics.md); 100 switches it off",
              "upper bound of the public share of a centre's capital cost (all instruments together)", 0, 100),
)
SMALL_LOT_RANGE = ("; the range runs from 0 (households' produce eaten at home or sold locally, what leaves a "
                   "region goes in full loads) to the households' share of production (all of it leaves in small "
                   "lots); the default is its centre")
RECALLED_PRICE = ("approximate: order of Rosstat average producer prices 2023 as recalled, not checked "
                  "against the table; replace with «Средние цены производителей сельхозпродукции»")
TRANSIT_LOSS = ("project assumption: share of a perishable load lost per day in transit without a cold chain; "
                "no published per-day figure found (FAO 2011 gives per-stage shares only)")

GEO_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("road_tariff_rub_per_tkm", "RUB per tonne-km", 4.0,
              "approximate: long-haul truck rates in Russia 2023 of roughly 60-90 RUB per vehicle-km for a 20 t "
              "load (freight exchange quotes as recalled, not checked)", "road haulage tariff", 0, 100),
    Parameter("rail_tariff_rub_per_tkm", "RUB per tonne-km", 2.0,
              "approximate: order of the RZhD tariff (Price List 10-01) plus wagon rental for farm cargo, "
              "recalled, not checked", "rail freight tariff", 0, 100),
    Parameter("transshipment_cost_rub_per_t", "RUB per tonne", 300.0, ASSUMPTION,
              "handling cost of moving a tonne between road and rail at a station", 0, 10_000),
    Parameter("transshipment_hours", "hours", 12.0, ASSUMPTION,
              "time to move a load between road and rail at a station", 0, 240),
    Parameter("border_fee_rub_per_t_eaeu", "RUB per tonne", 0.0,
              "no customs duties or customs clearance inside the EAEU customs union (EAEU Treaty 2014)",
              "fee per tonne at a crossing between two EAEU members", 0, 100_000),
    Parameter("border_fee_rub_per_t_other", "RUB per tonne", 150.0, ASSUMPTION,
              "clearance and brokerage fee per tonne at a crossing with a non-member (duties are a "
              "scenario's tariff, not this fee)", 0, 100_000),
    *(Parameter(f"value_rub_per_t_{c}", "RUB per tonne", v, RECALLED_PRICE,
                f"farm-gate value of {c}, prices the produce lost in transit and storage", 0, 10_000_000)
      for c, v in (("grain", 12_000.0), ("potatoes", 20_000.0), ("vegetables", 30_000.0),
                   ("fruit_berries", 50_000.0), ("milk", 30_000.0), ("meat", 150_000.0))),
    *(Parameter(f"transit_loss_pct_per_day_{c}", "% per day", v, TRANSIT_LOSS,
                f"share of {c} lost per day in transit (0 for non-perishable groups)", 0, 100)
      for c, v in (("grain", 0.0), ("potatoes", 0.3), ("vegetables", 1.5), ("fruit_berries", 1.5),
                   ("milk", 3.0), ("meat", 1.0))),
)
DEFLATED = ("brought to end-2024 prices with Rosstat's December-on-December CPI (a consumer index standing in for a "
            "construction deflator, flagged approximate; docs/economics.md)")
DC_CAPITAL = ("central value of the published multi-temperature distribution centres, 94-214k RUB per tonne of "
              "storage: Simferopol ОРЦ 6 bn RUB for 75 kt (ru24.net 2022) and Ipatovo vegetable hub ~1 bn RUB for "
              "7 kt (tomahnousfarm.org 2019, low confidence), " + DEFLATED + "; 154k RUB/t × the module's storage "
              "(its throughput / centre_storage_turns_per_year); no economies of scale assumed (the published "
              "projects show none)")
DC_STORAGE_KT = {"small": 10.0, "medium": 25.0, "large": 50.0}
DC_CAPITAL_KRUB_PER_T = (94.0, 154.0, 214.0)
"""Low, central and high capital of a distribution centre per tonne of storage, thousand RUB (DC_CAPITAL)."""
"""Storage of the distribution-centre modules, thousand t (throughput / 2 turns): the capital figures' base."""

CENTRE_PARAMETERS: tuple[Parameter, ...] = (
    *(Parameter(f"module_{size}_capacity_kt", "thousand tonnes a year", cap,
                "project assumption: module sizes of the order of the documented North Caucasus centres (6.5-30 kt "
                "of storage, Nevinnomyssk 30 kt, TASS 2023) at centre_storage_turns_per_year",
                f"throughput of a {size} multi-temperature distribution centre (store type dc)", 0, 10_000)
      for size, cap in (("small", 20.0), ("medium", 50.0), ("large", 100.0))),
    *(Parameter(f"module_{size}_capital_mrub", "million RUB", DC_CAPITAL_KRUB_PER_T[1] * st, DC_CAPITAL,
                f"capital cost of a {size} multi-temperature distribution centre (store type dc, {st:g} kt of "
                "storage)", 0, 1_000_000, low=DC_CAPITAL_KRUB_PER_T[0] * st, high=DC_CAPITAL_KRUB_PER_T[2] * st)
      for size, st in DC_STORAGE_KT.items()),
    Parameter("store_capital_krub_per_t", "thousand RUB per tonne of storage", 51.0,
              "central value of the published potato and vegetable stores, 12-90k RUB per tonne of storage: "
              "Lukhovitsy stage 1, 224 M RUB for 18 kt (360.ru 2025); Arzgir, 40 M RUB for 2 kt (news.1777.ru "
              "2017); Kolomna, 96 M RUB for 2.5 kt (360.ru 2025); Chechnya, 231.9 M RUB for 4 kt (expertsouth.ru "
              "2018); " + DEFLATED,
              "capital of a potato and vegetable store (store type store) per tonne of storage", 0, 10_000,
              low=12.0, high=90.0),
    Parameter("ca_store_capital_krub_per_t", "thousand RUB per tonne of storage", 228.0,
              "Nevinnomyssk fruit centre, a controlled-atmosphere store: 6.0-6.5 bn RUB for 30 kt (TASS via "
              "fagps.ru; kavkaz.rbc.ru 2023-24), 200-217k RUB/t at 2023 prices, 219-237k at end-2024 prices "
              "(CPI 2024 9.52%); central value 228; one project only",
              "capital of a controlled-atmosphere fruit store (store type ca_fruit) per tonne of storage", 0, 10_000,
              low=219.0, high=237.0),
    Parameter("elevator_capital_krub_per_t", "thousand RUB per tonne of storage", 11.5,
              "turnkey grain elevator of 10 kt: 80-150 M RUB of capital by equipment, region and automation "
              "(technikonprom.ru, 'Элеватор под ключ', read 2026, mid-2020s prices; a builder's figure), 8-15k RUB "
              "per tonne; central value 11.5; approximate (an older project plan, 240 M RUB for 35 kt, opsar.ru, "
              "undated, is 6.9k)",
              "capital of a grain elevator (store type elevator) per tonne of storage", 0, 10_000,
              low=8.0, high=15.0),
    Parameter("elevator_storage_turns_per_year", "turns a year", 1.0,
              "project assumption, approximate: an elevator holds the harvest until it is sold through the season, "
              "like a long-term store (store_storage_turns_per_year); no published throughput per tonne found",
              "annual throughput of a grain elevator per tonne of its storage", 1, 12),
    Parameter("support_cap_elevator_krub_per_t", "thousand RUB per tonne of storage", 0.0,
              "project assumption: the compensation caps found (Minselkhoz orders No 550/309/625) are for fruit, "
              "potato and vegetable stores and distribution centres; none found for grain elevators, so none is "
              "counted",
              "largest compensation per tonne of storage of a grain elevator (store type elevator)", 0, 10_000),
    Parameter("store_storage_turns_per_year", "turns a year", 1.0,
              "inference, not a published figure (shared/research/centre-economics.md): a long-term store turns "
              "its stock once a season (potato and cooled vegetable stores hold Sep-May, Moscow oblast ministry "
              "2022; CA fruit stores to the next harvest, glavagronom.ru 2024); it has no cross-dock part",
              "annual throughput of a store (types store and ca_fruit) per tonne of its storage", 1, 12),
    Parameter("centre_storage_turns_per_year", "turns a year", 2.0,
              "project assumption: long-term stores turn their stock about once a season (potato and cooled "
              "vegetable stores hold Sep-May, Moscow oblast ministry 2022; CA fruit stores to the next harvest, "
              "glavagronom.ru 2024) while the sorting and cross-dock part of a centre passes more; no published "
              "throughput per tonne of storage was found",
              "annual throughput of a centre per tonne of its storage capacity (turns an existing centre's "
              "documented storage into throughput)", 1, 12),
    Parameter("existing_centre_capacity_kt", "thousand tonnes of storage", 10.0,
              "project assumption for existing centres whose capacity is not published (flagged in the outputs); "
              "of the order of the documented North Caucasus stores (6.5-30 kt)",
              "storage capacity taken for an existing centre without a documented figure", 0, 1_000),
    Parameter("centre_lifetime_years", "years", 25.0, ASSUMPTION, "economic life for annualising capital", 1, 100),
    Parameter("centre_fixed_opex_pct", "% of capital a year", 4.0, ASSUMPTION,
              "fixed operating cost of an open centre", 0, 100),
    Parameter("centre_handling_rub_per_t", "RUB per tonne", 1_500.0, ASSUMPTION,
              "receiving, sorting, storage and dispatch cost per tonne through a centre", 0, 100_000),
    Parameter("traditional_handling_rub_per_t", "RUB per tonne", 3_000.0, ASSUMPTION,
              "handling and intermediaries' cost per tonne in the traditional farm-to-market channel", 0, 100_000),
    Parameter("part_load_markup_pct", "% of freight", 60.5,
              "c27.su intercity truck price list (Yekaterinburg, undated, read 2026-12-06): 30 RUB/km for a 5 t truck, "
              "38 for 10 t and 46 for 11-14 t, i.e. 6.0 against 3.8 and 3.7 RUB per tonne-km at full load (+58% and "
              "+63%); a 1.5 t Gazel costs 13.3 RUB per tonne-km (+250%, the far end, not this parameter's range)",
              "consolidation: extra freight per tonne, as a share of the full-load freight, that a small lot pays "
              "on its first leg (from the farm to a market, an outside market or a centre) in a 5 t truck instead "
              "of the full truck or wagon a centre despatches; charged on the small-lot share of each group "
              "(small_lot_share_pct_*)", 0, 1_000, low=58.0, high=63.0),
    *(Parameter(f"small_lot_share_pct_{c}", "% of what leaves a farm", v / 2, src + SMALL_LOT_RANGE,
                f"share of {c} leaving a farm node in small lots, paying part_load_markup_pct on its first leg",
                0, 100, low=0.0, high=v)
      for c, v, src in (
          ("potatoes", 59.0, "Rosstat 2023 (at 1 Nov 2023) as quoted by id-marketing.ru: households' share of the "
                             "potato harvest 59%"),
          ("vegetables", 50.0, "Rosstat 2023 (at 1 Nov 2023) as quoted by id-marketing.ru: households' share of "
                               "the vegetable harvest 50%"),
          ("fruit_berries", 62.0, "approximate: Rosstat 2022 as quoted by primorye24.ru, agricultural "
                                  "organisations 1.5 of more than 4 Mt of fruit and berries, so 62% or less "
                                  "outside them (households and peasant farms together; households alone not "
                                  "found, so this is an upper bound)"),
          ("grain", 1.0, "Rosstat 2021 as quoted by agrotime.info: agricultural organisations 68.5%, peasant "
                         "farms 30.3%, households the remaining ≈1% of grain"),
          ("milk", 0.0, "no national split by farm category found (one regional figure: Irkutsk oblast 2023, "
                        "households 53.6%); consolidation not credited for milk"),
          ("meat", 0.0, "no national split by farm category found (Irkutsk oblast 2023: households 32.7%); "
                        "consolidation not credited for meat"))),
    Parameter("centre_loss_factor", "ratio", 0.5,
              "project assumption (no measured figure found). The ОРЦ subprogramme's own aim was «потери продукции — "
              "на 60%» lower (Агроинвестор on the 2014-15 subprogramme, agroinvestor.ru/regions/article/23353), a "
              "factor of 0.4 — a target, not a measurement; docs/model.md shows the plans at 0.25 and 1.0",
              "share of the FAO post-harvest and distribution losses that remains in the centre channel "
              "(cold storage, sorting, quicker sale); the sites and the objective lean on it (docs/model.md, "
              "sensitivity table)", 0, 1),
    Parameter("unmet_penalty_factor", "× value per tonne", 10.0,
              "project assumption: above any import parity the outside markets offer (at most "
              "outside_purchase_price_cap × their reference price plus freight), so demand goes unmet only where no "
              "route or no supply is left; the sensitivity table shows the answer does not follow it",
              "penalty per tonne of unmet demand (the choke price of a market cut off), as a multiple of the "
              "commodity's value", 0, 1000),
    Parameter("outside_elasticity_partner", "ratio (absolute)", 2.0,
              "project assumption of the order of Armington trade elasticities for farm products (about 1-4 in "
              "the GTAP literature, e.g. Hertel et al. 2007, 'How confident can we be of CGE-based assessments of "
              "Free Trade Agreements?', Economic Modelling 24(4); not checked for these partners)",
              "elasticity of a partner market's net excess demand for the scope's produce at its reference "
              "(docs/economics.md, outside markets); the objective's level leans on it (docs/model.md, sensitivity "
              "table)", 0.1, 50),
    Parameter("outside_elasticity_rest_of_russia", "ratio (absolute)", 5.0,
              "project assumption: the national market is several times the scope, so its excess demand for the "
              "scope's produce is more elastic than a partner's",
              "elasticity of the rest of Russia's net excess demand for the scope's produce; the objective's level "
              "leans on it (docs/model.md, sensitivity table)", 0.1, 50),
    Parameter("outside_step_pct", "% of the reference price", 2.5,
              "numerical setting: at 2.5, halving or doubling it moves no Russian regional library objective by 1% "
              "(docs/model.md, sensitivity table); the Kazakh scenarios, whose net objective is small beside their "
              "outside trade, set 0.625 (from 2.5 halving moved kazakhstan_pilots by -1.4%)",
              "price span of one step of an outside market's curve (finer steps, a larger model)", 0.1, 50),
    Parameter("outside_purchase_price_cap", "× reference price", 3.0, ASSUMPTION,
              "highest price, relative to its reference, at which an outside market still sells to the scope",
              1.1, 100),
    Parameter("outside_unrecorded_trade_kt", "thousand tonnes a year", 10.0, ASSUMPTION,
              "trade volume an outside market's curve is scaled on where no trade of the group is recorded", 0,
              10_000),
)
STORED = ("potatoes", "vegetables", "fruit_berries")
SPREAD_SOURCE = {
    "potatoes": ("Rosstat retail prices via news (RIA, Kommersant): about 30 RUB/kg at the late-September 2023 "
                 "harvest and 30.98 in April 2024 (+3%, a glut year); 44 at the September 2024 harvest and 85.4 at "
                 "the end of April 2025 (+94%, a short year)"),
    "vegetables": ("Rosstat retail prices via forpostsevastopol (2024): December to June carrots +62.8%, beetroot "
                   "+92.3% (their mean, 77%, for the short end); the glut end (10%) is a project assumption by "
                   "analogy with potatoes, not a published figure"),
    "fruit_berries": ("Rosstat retail prices via forpostsevastopol (2024): apples December to June +30% (the high "
                      "end); the low end (10%) is a project assumption"),
}
STORAGE_PARAMETERS: tuple[Parameter, ...] = (
    *(Parameter(f"storage_months_{c}", "months", v,
                "modern potato and cooled vegetable stores hold September to May, 8-9 months (Moscow oblast "
                "ministry 2022; Rosagromarket); CA fruit stores to the next harvest (glavagronom.ru 2024); the "
                "months here are those from harvest to the spring sale",
                f"months a stored tonne of {c} is held for the off-season", 1, 12)
      for c, v in (("potatoes", 8.0), ("vegetables", 7.0), ("fruit_berries", 7.0))),
    *(Parameter(f"storage_weight_loss_pct_{c}", "% of the stored tonnes", v,
                "official natural weight-loss norms for a cooled store, September-April: potatoes 5.0%, beetroot "
                "6.4%, carrots 8.6% (Minpromtorg order No 252 of 01.03.2013); fruit: project assumption of the "
                "same order. This is the seasonal storage stage; handling losses of every tonne through a centre "
                "stay in the FAO post-harvest share × centre_loss_factor (docs/economics.md)",
                f"share of stored {c} lost over the season in a modern store", 0, 100, low=lo, high=hi)
      for c, v, lo, hi in (("potatoes", 5.0, None, None), ("vegetables", 7.5, 6.4, 8.6),
                           ("fruit_berries", 5.0, None, None))),
    *(Parameter(f"seasonal_spread_low_pct_{c}", "% of the harvest price", lo,
                SPREAD_SOURCE[c], f"harvest-to-spring price rise of {c} in a glut year", 0, 500)
      for c, lo in (("potatoes", 3.0), ("vegetables", 10.0), ("fruit_berries", 10.0))),
    *(Parameter(f"seasonal_spread_high_pct_{c}", "% of the harvest price", hi,
                SPREAD_SOURCE[c], f"harvest-to-spring price rise of {c} in a short year", 0, 500)
      for c, hi in (("potatoes", 94.0), ("vegetables", 77.0), ("fruit_berries", 30.0))),
    Parameter("storage_financing_rate_pct", "% per year", 16.0,
              "approximate: the cost of financing the stock at today's rates; preferential storage loans subsidise "
              "half the key rate, the borrower paying up to about 10% at a key rate of 16% (priazovka.ru; "
              "dairynews.ru 2024; not checked against the Bank of Russia's current rate)",
              "interest on the value of the stock held for the season", 0, 100),
    Parameter("storage_variable_cost_rub_per_t_month", "RUB per tonne-month", 150.0, ASSUMPTION,
              "energy and handling of a stored tonne per month (the store's fixed cost is in the module's opex)",
              0, 10_000),
    Parameter("seasonal_steps", "steps", 20.0,
              "numerical setting: steps of the off-season market's falling net spread (docs/model.md)",
              "steps of the off-season market's curve", 1, 200),
)
ELASTICITY = ("project assumption of the order reported for food demand in Russia and the CIS (own-price "
              "elasticities of roughly -0.2 to -0.8 for staples, fruit and vegetables); no single cited estimate — "
              "replace with the ministry's own")

ECONOMICS_PARAMETERS: tuple[Parameter, ...] = (
    *(Parameter(f"demand_elasticity_{c}", "ratio", v, ELASTICITY, f"own-price elasticity of demand for {c}", -10, 0)
      for c, v in (("grain", -0.2), ("potatoes", -0.3), ("vegetables", -0.5), ("fruit_berries", -0.7),
                   ("milk", -0.4), ("meat", -0.6))),
    *(Parameter(f"supply_elasticity_{c}", "ratio", 0.3, "project assumption: short-run supply response of farm "
                "output within a season", f"own-price elasticity of supply for {c}", 0, 10)
      for c in ("grain", "potatoes", "vegetables", "fruit_berries", "milk", "meat")),
    Parameter("price_pass_through", "ratio", 0.7, ASSUMPTION,
              "share of a chain-cost saving that reaches prices (1 = perfect competition)", 0, 1),
    Parameter("centre_tariff_rub_per_t", "RUB per tonne", 2_000.0, ASSUMPTION,
              "handling tariff a centre charges per tonne (its revenue)", 0, 100_000),
    Parameter("support_compensation_pct", "% of eligible capital cost", 22.5,
              "federal compensation of part of the direct costs of building or modernising agro-industrial "
              "storage and wholesale distribution centres: 20-25% of eligible cost (Minselkhoz via 1prime 2022: "
              "'up to 25%'; Vedomosti 2017: 20-35% by type), Minselkhoz order No 625 of 18.07.2023 (replacing "
              "No 550 of 29.11.2018); the central value of 20-25%",
              "share of a new centre's capital the federal compensation pays", 0, 100, low=20.0, high=25.0),
    Parameter("support_cap_krub_per_t", "thousand RUB per tonne of storage", 84.0,
              "cap on the compensation per tonne of capacity for fruit and berry stores, Minselkhoz order No 309 "
              "of 25.05.2022 amending order No 550 (potato stores 21.0; vegetable stores 15-37 by equipment); "
              "the fruit-store cap is taken for a multi-temperature centre, flagged approximate",
              "largest compensation per tonne of storage capacity of a distribution centre or a fruit store "
              "(store types dc and ca_fruit)", 0, 10_000),
    Parameter("support_cap_store_krub_per_t", "thousand RUB per tonne of storage", 26.0,
              "cap on the compensation per tonne of capacity for vegetable stores, 15-37k RUB by equipment "
              "(fagps.ru / agropit.ru 2024, the federal project on vegetable and potato growing), potato stores "
              "21.0 (Minselkhoz order No 309 of 25.05.2022 amending No 550); central value of 15-37",
              "largest compensation per tonne of storage of a potato and vegetable store (store type store)",
              0, 10_000, low=15.0, high=37.0),
    Parameter("preferential_loan_rate_pct", "% per year", 7.5,
              "preferential investment loans to agro-industrial borrowers, 2-15 years (Government decree No 1528 "
              "of 29.12.2016; docs.cntd.ru): the borrower paid at most 5% as adopted, the bank compensated at the "
              "key rate (Minselkhoz via bfm.ru 2016; stav-ikc.ru); under the 2024 rules half the key rate is "
              "subsidised for stores, the borrower paying up to about 10% at a key rate of 16% (priazovka.ru; "
              "dairynews.ru 2024); central value of 5-10",
              "interest the borrower pays on a preferential investment loan", 0, 100, low=5.0, high=10.0),
    Parameter("market_loan_rate_pct", "% per year", 18.5,
              "approximate: the key rate of 16% quoted with the 2024 rules (priazovka.ru; dairynews.ru 2024) plus "
              "the 2.5 percentage points of the project-finance formula 'key rate + 2.5%' (Government decree "
              "No 1044 of 11.10.2014, via samaraonline24.ru); not checked against the Bank of Russia's current "
              "rate or banks' quotes",
              "interest on an investment loan at market terms (the preferential loan's counterfactual)", 0, 100),
    Parameter("preferential_loan_years", "years", 8.5,
              "investment loans of 2 to 15 years under Government decree No 1528 of 29.12.2016 (docs.cntd.ru); "
              "central value of 2-15",
              "term of the preferential investment loan, repaid in equal instalments (annuity)", 1, 30,
              low=2.0, high=15.0),
    Parameter("preferential_loan_share_pct", "% of the investor's capital", 80.0,
              "project assumption: the share of the investor's capital (after public support) a bank lends; no "
              "published limit found in decree No 1528",
              "share of the investor's capital financed by the preferential loan", 0, 100),
)


@dataclass(frozen=True)
class StoreType:
    """A kind of centre a site may be built as: names, the groups it may take (None: all), and the registry
    parameters of its capital, storage turns and support cap (docs/economics.md, store types)."""

    key: str
    name_ru: str
    name_en: str
    groups: tuple[str, ...] | None
    turns: str
    support_cap: str
    capital_per_t: str | None
    """Capital per tonne of storage (thousand RUB); None: the per-size ``module_<size>_capital_mrub``."""


STORE_TYPES: dict[str, StoreType] = {t.key: t for t in (
    StoreType("dc", "многотемпературный оптово-распределительный центр", "multi-temperature distribution centre",
              ("potatoes", "vegetables", "fruit_berries"), "centre_storage_turns_per_year", "support_cap_krub_per_t",
              None),
    StoreType("store", "картофеле- и овощехранилище", "potato and vegetable store", ("potatoes", "vegetables"),
              "store_storage_turns_per_year", "support_cap_store_krub_per_t", "store_capital_krub_per_t"),
    StoreType("ca_fruit", "фруктохранилище с регулируемой газовой средой", "controlled-atmosphere fruit store",
              ("fruit_berries",), "store_storage_turns_per_year", "support_cap_krub_per_t",
              "ca_store_capital_krub_per_t"),
    StoreType("elevator", "элеватор (зернохранилище)", "grain elevator", ("grain",),
              "elevator_storage_turns_per_year", "support_cap_elevator_krub_per_t", "elevator_capital_krub_per_t"),
)}
"""Store types a new site may be built as. Loss factors, opex share and handling cost are the same for every type:
no source found gives them by type (docs/economics.md). Grain passes a centre only through an elevator; milk and
meat through none (no dairy or meat module with a cited capital per tonne is modelled: they travel the traditional
way, :data:`CENTRE_GROUPS`)."""

CENTRE_GROUPS: frozenset[str] = frozenset(k for t in STORE_TYPES.values() for k in (t.groups or ()))
"""The commodity groups some store type takes: the only groups that may pass through a centre."""

PARAMETERS = PARAMETERS + GEO_PARAMETERS + CENTRE_PARAMETERS + STORAGE_PARAMETERS + ECONOMICS_PARAMETERS
PARAMETER_BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """A ' Did you mean ...?' hint for a misspelt key, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class ParameterSet:
    """Parameter values for one run: registry defaults, the dataset's loss table, and a scenario's overrides.

    ``overrides`` maps parameter names to values; ``loss_overrides`` maps commodity → stage → loss share in %.
    Unknown names and out-of-range values raise ValueError naming the parameter.
    """

    def __init__(self, loss_rates: pd.DataFrame, fao_region: str = "Europe incl. Russia",
                 overrides: Mapping[str, float] | None = None,
                 loss_overrides: Mapping[str, Mapping[str, float]] | None = None):
        self.fao_region = fao_region
        self.values: dict[str, float] = {p.name: p.default for p in PARAMETERS}
        self.sources: dict[str, str] = {p.name: p.source for p in PARAMETERS}
        for name, value in (overrides or {}).items():
            if name not in PARAMETER_BY_NAME:
                raise ValueError(f"parameters.{name}: unknown parameter.{suggest(name, list(PARAMETER_BY_NAME))}")
            self.values[name] = PARAMETER_BY_NAME[name].check(value)
            self.sources[name] = "scenario override"
        self._loss = self._loss_table(loss_rates, fao_region)
        for commodity, stages in (loss_overrides or {}).items():
            if commodity not in COMMODITY_BY_KEY:
                raise ValueError(f"losses.{commodity}: unknown commodity group.{suggest(commodity, COMMODITY_KEYS)}")
            for stage, pct in stages.items():
                if stage not in LOSS_STAGES:
                    raise ValueError(f"losses.{commodity}.{stage}: unknown stage.{suggest(stage, LOSS_STAGES)}")
                v = Parameter(f"losses.{commodity}.{stage}", "%", 0, "", "", 0, 100).check(pct)
                self._loss[(commodity, stage)] = (v, "scenario override")

    @staticmethod
    def _loss_table(loss_rates: pd.DataFrame, fao_region: str) -> dict[tuple[str, str], tuple[float, str]]:
        rows = loss_rates[loss_rates["fao_region"] == fao_region]
        if rows.empty:
            raise ValueError(f"loss_rates: no rows for FAO region {fao_region!r}")
        by_group = {(r.fao_group, r.stage): (float(r.loss_pct), str(r.source)) for r in rows.itertuples()}
        table = {}
        for key, c in COMMODITY_BY_KEY.items():
            for stage in LOSS_STAGES:
                if (c.fao_group, stage) in by_group:
                    table[(key, stage)] = by_group[(c.fao_group, stage)]
        return table

    def with_values(self, values: Mapping[str, float]) -> ParameterSet:
        """A copy with some scalar values replaced (checked against the registry, source "range end"); the loss
        table is shared. For re-evaluating a fixed plan at another value (planner.economics.ranges)."""
        other = copy.copy(self)
        other.values = dict(self.values)
        other.sources = dict(self.sources)
        for name, value in values.items():
            if name not in PARAMETER_BY_NAME:
                raise ValueError(f"parameters.{name}: unknown parameter.{suggest(name, list(PARAMETER_BY_NAME))}")
            other.values[name] = PARAMETER_BY_NAME[name].check(value)
            other.sources[name] = "range end"
        return other

    def __getitem__(self, name: str) -> float:
        if name not in self.values:
            raise KeyError(f"unknown parameter {name!r}.{suggest(name, list(self.values))}")
        return self.values[name]

    def loss_pct(self, commodity: str, stage: str) -> float:
        """Share (in %) of what enters ``stage`` that is lost, for a commodity group; 0 where FAO gives none."""
        if commodity not in COMMODITY_BY_KEY:
            raise KeyError(f"unknown commodity group {commodity!r}.{suggest(commodity, COMMODITY_KEYS)}")
        return self._loss.get((commodity, stage), (0.0, ""))[0]

    def part_load_share(self, commodity: str) -> float:
        """Consolidation: the extra freight on a group's first leg from a farm, as a share of its full-load freight
        (``part_load_markup_pct`` × ``small_lot_share_pct_<group>``, both in %). A centre's despatch pays none."""
        return self["part_load_markup_pct"] / 100.0 * self[f"small_lot_share_pct_{commodity}"] / 100.0

    def loss_table(self) -> pd.DataFrame:
        """The loss table in use: commodity, stage, loss share in %, and its source."""
        return pd.DataFrame(
            [(c, s, v, src) for (c, s), (v, src) in sorted(self._loss.items())],
            columns=["commodity", "stage", "loss_pct", "source"],
        )

    def table(self) -> pd.DataFrame:
        """The scalar parameters in use: name, value, unit, source, and the cited range (low, high; NaN where none)."""
        nan = float("nan")
        return pd.DataFrame(
            [(p.name, self.values[p.name], p.unit, self.sources[p.name], nan if p.low is None else p.low,
              nan if p.high is None else p.high) for p in PARAMETERS],
            columns=["name", "value", "unit", "source", "low", "high"],
        )
