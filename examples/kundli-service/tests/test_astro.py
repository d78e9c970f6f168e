from datetime import datetime, timedelta, timezone

import pytest

from kundli import astro

EQUINOX_2000 = datetime(2000, 3, 20, 7, 35, tzinfo=timezone.utc)


def tropical(planet, moment):
    return astro._tropical_longitude(planet, astro.julian_day(moment))


def test_julian_day_of_j2000():
    assert astro.julian_day(datetime(2000, 1, 1, 12, tzinfo=timezone.utc)) == pytest.approx(2451545.0)


def test_sun_at_the_march_equinox_is_at_zero_degrees():
    assert min(tropical("Sun", EQUINOX_2000), 360 - tropical("Sun", EQUINOX_2000)) < 0.1


def test_sun_at_the_june_solstice_is_at_ninety_degrees():
    assert tropical("Sun", datetime(2000, 6, 21, 1, 48, tzinfo=timezone.utc)) == pytest.approx(90, abs=0.1)


def test_full_moon_is_opposite_the_sun():
    # Full moon of 2000-03-20 04:44 UTC.
    moment = datetime(2000, 3, 20, 4, 44, tzinfo=timezone.utc)
    elongation = (tropical("Moon", moment) - tropical("Sun", moment)) % 360
    assert elongation == pytest.approx(180, abs=1.0)


def test_jupiter_saturn_conjunction_of_2000():
    moment = datetime(2000, 5, 28, tzinfo=timezone.utc)
    assert abs(tropical("Jupiter", moment) - tropical("Saturn", moment)) < 1.0


def test_ascendant_at_the_equator_when_aries_culminates_is_cancer():
    # When the local sidereal time is 0h, the ascendant at the equator is 90 degrees.
    jd = astro.julian_day(EQUINOX_2000)
    gmst = (280.46061837 + 360.98564736629 * (jd - astro.J2000)) % 360
    assert astro.ascendant_tropical(jd, 0.0, -gmst) == pytest.approx(90, abs=0.05)


def test_chart_has_every_planet_in_range_with_opposite_nodes():
    chart = astro.calculate(datetime(1990, 8, 15, 4, 30, tzinfo=timezone.utc), 28.61, 77.21)
    assert [p.planet for p in chart.positions] == list(astro.PLANETS)
    assert all(0 <= p.longitude < 360 for p in chart.positions)
    rahu, ketu = chart.position("Rahu"), chart.position("Ketu")
    assert (ketu.longitude - rahu.longitude) % 360 == pytest.approx(180)
    assert rahu.retrograde and ketu.retrograde
    assert 1 <= chart.house("Sun") <= 12
    assert 0 <= chart.position("Moon").nakshatra < 27


def test_saturn_retrograde_in_august_1990():
    chart = astro.calculate(datetime(1990, 8, 15, tzinfo=timezone.utc), 0, 0)
    assert chart.position("Saturn").retrograde
    assert not chart.position("Sun").retrograde


def test_ayanamsa_systems_differ_and_precess():
    jd = astro.julian_day(EQUINOX_2000)
    assert astro.ayanamsa(jd, "raman") < astro.ayanamsa(jd, "lahiri")
    assert astro.ayanamsa(jd + 36525) - astro.ayanamsa(jd) == pytest.approx(astro.PRECESSION_DEG_PER_CENTURY)


def test_naive_or_out_of_range_moments_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        astro.calculate(datetime(2000, 1, 1), 0, 0)
    with pytest.raises(ValueError, match="validity"):
        astro.calculate(datetime(2051, 1, 1, tzinfo=timezone.utc), 0, 0)


def test_calculation_is_stable_across_timezones():
    moment = datetime(1990, 8, 15, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    a = astro.calculate(moment, 28.61, 77.21)
    b = astro.calculate(moment.astimezone(timezone.utc), 28.61, 77.21)
    assert a.positions == b.positions and a.ascendant == b.ascendant
