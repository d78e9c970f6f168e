"""Planet positions and ascendant from a documented simple model (no external ephemeris).

Model (see docs/overview.md):
- Sun and planets: JPL "Approximate Positions of the Planets" Keplerian elements (valid 1800-2050),
  heliocentric orbits made geocentric; accuracy about 0.1 degree for the Sun, up to a degree for the others.
- Moon: the 14 largest periodic terms of Meeus, Astronomical Algorithms ch. 47 (about 0.3 degree).
- Rahu: the mean lunar node; Ketu is opposite.
- Ascendant: from Greenwich mean sidereal time, the local longitude and the obliquity of the ecliptic.
- Sidereal (nirayana) longitudes subtract an ayanamsa; Lahiri by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

J2000 = 2451545.0
SIGNS = ("Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo",
         "Libra", "Scorpio", "Sagittarius", "Capricorn", "Aquarius", "Pisces")
NAKSHATRAS = ("Ashwini", "Bharani", "Krittika", "Rohini", "Mrigashira", "Ardra", "Punarvasu", "Pushya",
              "Ashlesha", "Magha", "Purva Phalguni", "Uttara Phalguni", "Hasta", "Chitra", "Swati",
              "Vishakha", "Anuradha", "Jyeshtha", "Mula", "Purva Ashadha", "Uttara Ashadha", "Shravana",
              "Dhanishta", "Shatabhisha", "Purva Bhadrapada", "Uttara Bhadrapada", "Revati")
PLANETS = ("Sun", "Moon", "Mars", "Mercury", "Jupiter", "Venus", "Saturn", "Rahu", "Ketu")
# Ayanamsa at J2000 in degrees; all precess at the same rate (Lahiri/Chitrapaksha, B.V. Raman, Krishnamurti).
AYANAMSA_J2000 = {"lahiri": 23.85306, "raman": 22.41028, "krishnamurti": 23.75944}
PRECESSION_DEG_PER_CENTURY = 1.3969713
VALID_FROM = datetime(1800, 1, 1, tzinfo=timezone.utc)
VALID_UNTIL = datetime(2050, 12, 31, 23, 59, 59, tzinfo=timezone.utc)

# a (au), e, I, L, longitude of perihelion, longitude of ascending node; then rates per Julian century.
_ELEMENTS = {
    "Mercury": ((0.38709927, 0.20563593, 7.00497902, 252.25032350, 77.45779628, 48.33076593),
                (0.00000037, 0.00001906, -0.00594749, 149472.67411175, 0.16047689, -0.12534081)),
    "Venus": ((0.72333566, 0.00677672, 3.39467605, 181.97909950, 131.60246718, 76.67984255),
              (0.00000390, -0.00004107, -0.00078890, 58517.81538729, 0.00268329, -0.27769418)),
    "Earth": ((1.00000261, 0.01671123, -0.00001531, 100.46457166, 102.93768193, 0.0),
              (0.00000562, -0.00004392, -0.01294668, 35999.37244981, 0.32327364, 0.0)),
    "Mars": ((1.52371034, 0.09339410, 1.84969142, -4.55343205, -23.94362959, 49.55953891),
             (0.00001847, 0.00007882, -0.00813131, 19140.30268499, 0.44441088, -0.29257343)),
    "Jupiter": ((5.20288700, 0.04838624, 1.30439695, 34.39644051, 14.72847983, 100.47390909),
                (-0.00011607, -0.00013253, -0.00183714, 3034.74612775, 0.21252668, 0.20469106)),
    "Saturn": ((9.53667594, 0.05386179, 2.48599187, 49.95424423, 92.59887831, 113.66242448),
               (-0.00125060, -0.00050991, 0.00193609, 1222.49362201, -0.41897216, -0.28867794)),
}
# Moon: (coefficient in degrees, multiples of D, M, M', F) — Meeus table 47.A, largest terms.
_MOON_TERMS = (
    (6.288774, 0, 0, 1, 0), (1.274027, 2, 0, -1, 0), (0.658314, 2, 0, 0, 0), (0.213618, 0, 0, 2, 0),
    (-0.185116, 0, 1, 0, 0), (-0.114332, 0, 0, 0, 2), (0.058793, 2, 0, -2, 0), (0.057066, 2, -1, -1, 0),
    (0.053322, 2, 0, 1, 0), (0.045758, 2, -1, 0, 0), (-0.040923, 0, 1, -1, 0), (-0.034720, 1, 0, 0, 0),
    (-0.030383, 0, 1, 1, 0), (0.015327, 2, 0, 0, -2),
)


@dataclass(frozen=True)
class Position:
    planet: str
    longitude: float      # sidereal, degrees [0, 360)
    retrograde: bool

    @property
    def sign(self) -> int:
        return int(self.longitude // 30)

    @property
    def nakshatra(self) -> int:
        return int(self.longitude // (360 / 27))


@dataclass(frozen=True)
class Chart:
    moment: datetime
    latitude: float
    longitude: float
    ayanamsa: str
    ascendant: float      # sidereal, degrees
    positions: tuple[Position, ...]

    @property
    def lagna_sign(self) -> int:
        return int(self.ascendant // 30)

    def position(self, planet: str) -> Position:
        return next(p for p in self.positions if p.planet == planet)

    def house(self, planet: str) -> int:
        """Whole-sign house (1-12) of a planet counted from the ascendant's sign."""
        return (self.position(planet).sign - self.lagna_sign) % 12 + 1


def julian_day(moment: datetime) -> float:
    """Julian day of an aware datetime."""
    utc = moment.astimezone(timezone.utc)
    return utc.timestamp() / 86400.0 + 2440587.5


def _norm(deg: float) -> float:
    return deg % 360.0


def _heliocentric(name: str, t: float) -> tuple[float, float, float]:
    base, rate = _ELEMENTS[name]
    a, e, incl, mean_long, peri, node = (b + r * t for b, r in zip(base, rate))
    arg_peri = math.radians(peri - node)
    mean_anomaly = math.radians(_norm(mean_long - peri + 180) - 180)
    ecc_anomaly = mean_anomaly + e * math.sin(mean_anomaly)
    for _ in range(10):
        delta = (ecc_anomaly - e * math.sin(ecc_anomaly) - mean_anomaly) / (1 - e * math.cos(ecc_anomaly))
        ecc_anomaly -= delta
        if abs(delta) < 1e-12:
            break
    xp = a * (math.cos(ecc_anomaly) - e)
    yp = a * math.sqrt(1 - e * e) * math.sin(ecc_anomaly)
    co, so = math.cos(arg_peri), math.sin(arg_peri)
    cn, sn = math.cos(math.radians(node)), math.sin(math.radians(node))
    ci, si = math.cos(math.radians(incl)), math.sin(math.radians(incl))
    x = (co * cn - so * sn * ci) * xp + (-so * cn - co * sn * ci) * yp
    y = (co * sn + so * cn * ci) * xp + (-so * sn + co * cn * ci) * yp
    z = (so * si) * xp + (co * si) * yp
    return x, y, z


def _tropical_longitude(planet: str, jd: float) -> float:
    """Geocentric ecliptic longitude of date, degrees."""
    t = (jd - J2000) / 36525.0
    if planet == "Moon":
        d = math.radians(297.8501921 + 445267.1114034 * t)
        m = math.radians(357.5291092 + 35999.0502909 * t)
        mp = math.radians(134.9633964 + 477198.8675055 * t)
        f = math.radians(93.2720950 + 483202.0175233 * t)
        lon = 218.3164477 + 481267.88123421 * t
        lon += sum(c * math.sin(kd * d + km * m + kmp * mp + kf * f) for c, kd, km, kmp, kf in _MOON_TERMS)
        return _norm(lon)
    if planet == "Rahu":
        return _norm(125.04452 - 1934.136261 * t)
    if planet == "Ketu":
        return _norm(125.04452 - 1934.136261 * t + 180.0)
    ex, ey, _ = _heliocentric("Earth", t)
    if planet == "Sun":
        x, y = -ex, -ey
    else:
        px, py, _ = _heliocentric(planet, t)
        x, y = px - ex, py - ey
    return _norm(math.degrees(math.atan2(y, x)) + PRECESSION_DEG_PER_CENTURY * t)


def ayanamsa(jd: float, system: str = "lahiri") -> float:
    return AYANAMSA_J2000[system] + PRECESSION_DEG_PER_CENTURY * (jd - J2000) / 36525.0


def ascendant_tropical(jd: float, latitude: float, longitude: float) -> float:
    """Tropical longitude of the rising point of the ecliptic."""
    t = (jd - J2000) / 36525.0
    gmst = 280.46061837 + 360.98564736629 * (jd - J2000) + 0.000387933 * t * t
    ramc = math.radians(_norm(gmst + longitude))
    eps = math.radians(23.439291 - 0.0130042 * t)
    phi = math.radians(latitude)
    return _norm(math.degrees(math.atan2(math.cos(ramc), -(math.sin(ramc) * math.cos(eps)
                                                             + math.tan(phi) * math.sin(eps)))))


def calculate(moment: datetime, latitude: float, longitude: float, system: str = "lahiri") -> Chart:
    """Sidereal chart for an aware datetime at a place (latitude north +, longitude east +)."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    if not VALID_FROM <= moment <= VALID_UNTIL:
        raise ValueError("moment outside the model's validity (1800-2050)")
    jd = julian_day(moment)
    aya = ayanamsa(jd, system)
    positions = []
    for planet in PLANETS:
        lon = _tropical_longitude(planet, jd)
        if planet in ("Rahu", "Ketu"):
            retrograde = True          # the mean node always moves backwards
        else:
            step = (_tropical_longitude(planet, jd + 0.5) - _tropical_longitude(planet, jd - 0.5) + 540) % 360 - 180
            retrograde = step < 0
        positions.append(Position(planet, round(_norm(lon - aya), 6), retrograde))
    asc = _norm(ascendant_tropical(jd, latitude, longitude) - aya)
    return Chart(moment, latitude, longitude, system, round(asc, 6), tuple(positions))
