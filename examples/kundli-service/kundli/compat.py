"""Compatibility between two charts: a reduced Ashtakoota score on the Moon (docs/overview.md)."""

from __future__ import annotations

from dataclasses import dataclass

from .astro import Chart
from .yogas import detect

# Sign lords (0 = Aries) and natural friendships between lords.
_LORD = ("Mars", "Venus", "Mercury", "Moon", "Sun", "Mercury", "Venus", "Mars", "Jupiter", "Saturn",
         "Saturn", "Jupiter")
_FRIENDS = {
    "Sun": {"Moon", "Mars", "Jupiter"}, "Moon": {"Sun", "Mercury"}, "Mars": {"Sun", "Moon", "Jupiter"},
    "Mercury": {"Sun", "Venus"}, "Jupiter": {"Sun", "Moon", "Mars"}, "Venus": {"Mercury", "Saturn"},
    "Saturn": {"Mercury", "Venus"},
}
MAX_POINTS = {"tara": 3, "graha_maitri": 5, "bhakoot": 7, "nadi": 8}


@dataclass(frozen=True)
class Compatibility:
    kootas: dict[str, float]
    manglik_match: bool

    @property
    def points(self) -> float:
        return sum(self.kootas.values())

    @property
    def score(self) -> float:
        """Share of the maximum points, 0..1."""
        return round(self.points / sum(MAX_POINTS.values()), 4)


def _tara_good(from_n: int, to_n: int) -> bool:
    """Counting nakshatras from one Moon to the other, remainders 3, 5 and 7 (mod 9) are inauspicious."""
    return ((to_n - from_n) % 27 + 1) % 9 not in (3, 5, 7)


def _tara(n_a: int, n_b: int) -> float:
    return 1.5 * _tara_good(n_a, n_b) + 1.5 * _tara_good(n_b, n_a)


def _graha_maitri(sign_a: int, sign_b: int) -> float:
    a, b = _LORD[sign_a], _LORD[sign_b]
    if a == b:
        return 5.0
    return 2.5 * (b in _FRIENDS[a]) + 2.5 * (a in _FRIENDS[b])


def _bhakoot(sign_a: int, sign_b: int) -> float:
    return 0.0 if {(sign_b - sign_a) % 12 + 1, (sign_a - sign_b) % 12 + 1} & {2, 12, 5, 9, 6, 8} else 7.0


def _nadi_of(nakshatra: int) -> int:
    """Adi (0), Madhya (1) or Antya (2), assigned in the traditional zig-zag order."""
    return (0, 1, 2, 2, 1, 0)[nakshatra % 6]


def _nadi(n_a: int, n_b: int) -> float:
    return 0.0 if _nadi_of(n_a) == _nadi_of(n_b) else 8.0


def _manglik(chart: Chart) -> bool:
    return any(y.name == "Mangal Dosha" for y in detect(chart))


def match(a: Chart, b: Chart) -> Compatibility:
    moon_a, moon_b = a.position("Moon"), b.position("Moon")
    kootas = {
        "tara": _tara(moon_a.nakshatra, moon_b.nakshatra),
        "graha_maitri": _graha_maitri(moon_a.sign, moon_b.sign),
        "bhakoot": _bhakoot(moon_a.sign, moon_b.sign),
        "nadi": _nadi(moon_a.nakshatra, moon_b.nakshatra),
    }
    return Compatibility(kootas, _manglik(a) == _manglik(b))
