from datetime import datetime, timezone

from kundli import astro, compat, yogas


def chart_with(signs: dict[str, int], lagna: int = 0) -> astro.Chart:
    """A synthetic chart: each planet at 15 degrees into the given sign."""
    rahu = signs.get("Rahu", 6)
    signs = {**{p: 0 for p in astro.PLANETS}, **signs, "Rahu": rahu, "Ketu": (rahu + 6) % 12}
    positions = tuple(astro.Position(p, signs[p] * 30 + 15.0, p in ("Rahu", "Ketu")) for p in astro.PLANETS)
    return astro.Chart(datetime(2000, 1, 1, tzinfo=timezone.utc), 0, 0, "lahiri", lagna * 30 + 1.0, positions)


def names(chart):
    return {y.name for y in yogas.detect(chart)}


def test_gajakesari_budhaditya_and_chandra_mangala():
    chart = chart_with({"Moon": 0, "Jupiter": 3, "Mars": 0, "Sun": 5, "Mercury": 5, "Venus": 1, "Saturn": 2})
    assert {"Gajakesari", "Budhaditya", "Chandra-Mangala"} <= names(chart)


def test_kemadruma_when_the_moon_is_isolated():
    lonely = chart_with({"Moon": 0, "Mars": 4, "Mercury": 4, "Jupiter": 5, "Venus": 5, "Saturn": 6, "Sun": 1})
    assert "Kemadruma" in names(lonely)
    assert "Kemadruma" not in names(chart_with({"Moon": 0, "Venus": 1}))


def test_mahapurusha_needs_dignity_in_a_kendra():
    assert "Ruchaka" in names(chart_with({"Mars": 9}, lagna=0))       # exalted in the 10th
    assert "Ruchaka" not in names(chart_with({"Mars": 8}, lagna=0))
    assert "Hamsa" in names(chart_with({"Jupiter": 3}, lagna=0))


def test_mangal_dosha_and_kala_sarpa():
    assert "Mangal Dosha" in names(chart_with({"Mars": 6}, lagna=0))  # 7th house
    hemmed = chart_with({p: 1 for p in ("Sun", "Moon", "Mars", "Mercury", "Jupiter", "Venus", "Saturn")} | {"Rahu": 0})
    assert "Kala Sarpa" in names(hemmed)
    spread = chart_with({"Sun": 1, "Moon": 8, "Rahu": 0})
    assert "Kala Sarpa" not in names(spread)


def test_compatibility_scores_are_bounded_and_symmetric():
    a = chart_with({"Moon": 0, "Mars": 6})
    b = chart_with({"Moon": 4, "Mars": 2})
    ab, ba = compat.match(a, b), compat.match(b, a)
    assert 0 <= ab.score <= 1
    assert ab.points == ba.points
    assert set(ab.kootas) == set(compat.MAX_POINTS)
    assert not ab.manglik_match


def test_same_moon_sign_friends_and_nadi():
    a = chart_with({"Moon": 3})
    same = compat.match(a, a)
    assert same.kootas["graha_maitri"] == 5.0 and same.kootas["nadi"] == 0.0 and same.manglik_match
    assert compat._graha_maitri(4, 0) == 5.0       # Sun and Mars are mutual friends
    assert compat._bhakoot(0, 6) == 7.0             # 1/7 axis is auspicious
    assert compat._nadi(0, 1) == 8.0
