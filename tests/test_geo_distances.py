"""Road km on the network against published road distances between regional capitals (issue #14, item 6).

The published figures, each with its source URL and the date it was read, are in
``docs/research-notes/capital_road_distances.csv`` (the program never reads that file; this test does). Every pair
must lie within :data:`TOLERANCE` of the network's least-km road path, or be listed there as a known exception
with its reason — and a known exception must really be one, so a fixed pair cannot hide behind a stale entry.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import capital_distances  # noqa: E402  (the script that writes docs/geo.md's tables reads the same file)

from geo.matrix import od_matrix  # noqa: E402
from geo.network import mode_subgraph  # noqa: E402

TOLERANCE = 0.15
"""Allowed relative gap between network road km and published road km: the network is corridor-level (town
centres, segment km partly great-circle × circuity estimates) and most published figures are rounded."""


def _published() -> pd.DataFrame:
    return capital_distances.published()


@pytest.fixture(scope="module")
def compared(G) -> pd.DataFrame:
    return capital_distances.published_against(mode_subgraph(G, "road"))


def test_the_table_names_its_sources():
    t = _published()
    assert len(t) >= 20
    assert (t["scope"] == "ncfd_sfd").sum() >= 10  # capital pairs of the North Caucasus and Southern FDs
    assert set(t["scope"]) <= {"ncfd_sfd", "eaeu", "corridor", "national"}
    assert (t["source_url"].str.len() > 5).all() and (t["source_note"].str.len() > 5).all()
    assert pd.to_datetime(t["read_on"], format="%Y-%m-%d").notna().all()
    assert set(t["approximate"]) <= {"true", "false"} and set(t["independent"]) <= {"true", "false"}
    assert (t["published_km"] > 0).all()
    assert not t.duplicated(["from_ru", "to_ru"]).any()


def test_every_published_pair_is_within_tolerance_or_a_known_exception(compared):
    ok = compared["known_exception"].str.strip() == ""
    off = compared[ok & ((compared["ratio"] - 1.0).abs() > TOLERANCE)]
    assert off.empty, "network km off the published km by more than 15%:\n" + off[
        ["from_en", "to_en", "network_km", "published_km", "ratio"]].to_string()


def test_known_exceptions_are_real_and_explained(compared):
    exc = compared[compared["known_exception"].str.strip() != ""]
    for r in exc.itertuples():
        assert len(r.known_exception) > 40, f"{r.from_en} – {r.to_en}: say why"
        assert abs(r.ratio - 1.0) > TOLERANCE, f"{r.from_en} – {r.to_en} is within tolerance now: drop the exception"


@pytest.mark.parametrize(("a", "b", "before", "share"), [
    ("Волгоград", "Ростов-на-Дону", 533.0, 0.9),  # via Kamensk-Shakhtinsky and the M-4 before the Shakhty link
    ("Атырау", "Уральск", 1584.0, 0.5),  # through Russia before the Atyrau – Oral road
    ("Майкоп", "Ставрополь", 441.0, 0.8),  # through Krasnodar before the А-160
    ("Астрахань", "Грозный", 646.0, 0.8),  # through Makhachkala before the Kizlyar – Grozny road
])
def test_added_links_shorten_the_detours(G, a, b, before, share):
    road = mode_subgraph(G, "road")
    ids = {n: d["country"] for n, d in road.nodes(data=True)}
    na = next(n for n in ids if n.endswith(f":{a}"))
    nb = next(n for n in ids if n.endswith(f":{b}"))
    km = od_matrix(road, [na], [nb], metric="distance").values.iat[0, 0]
    assert km < share * before


def test_mozdok_has_a_road_of_its_published_length(G):
    """North Ossetia's second town is reached by road (Vladikavkaz – Malgobek – Mozdok, 95 km published)."""
    road = mode_subgraph(G, "road")
    km = od_matrix(road, ["road:RU:Владикавказ"], ["road:RU:Моздок"], metric="distance").values.iat[0, 0]
    assert km == pytest.approx(95.0, abs=0.5)
