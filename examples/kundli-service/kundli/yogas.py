"""Pattern detection (yogas) on a sidereal chart. Each rule is documented in docs/overview.md."""

from __future__ import annotations

from dataclasses import dataclass

from .astro import Chart

KENDRAS = (1, 4, 7, 10)
# Own and exaltation signs (0 = Aries) for the five Mahapurusha planets.
_DIGNITY = {
    "Mars": ("Ruchaka", {0, 7, 9}),
    "Mercury": ("Bhadra", {2, 5}),
    "Jupiter": ("Hamsa", {8, 11, 3}),
    "Venus": ("Malavya", {1, 6, 11}),
    "Saturn": ("Sasa", {9, 10, 6}),
}
_MANGLIK_HOUSES = (1, 2, 4, 7, 8, 12)
_VISIBLE = ("Moon", "Mars", "Mercury", "Jupiter", "Venus", "Saturn")


@dataclass(frozen=True)
class Yoga:
    name: str
    planets: tuple[str, ...]
    description: str


def _distance(from_sign: int, to_sign: int) -> int:
    """Sign distance counted inclusively (same sign = 1)."""
    return (to_sign - from_sign) % 12 + 1


def detect(chart: Chart) -> list[Yoga]:
    sign = {p.planet: p.sign for p in chart.positions}
    found: list[Yoga] = []
    if _distance(sign["Moon"], sign["Jupiter"]) in KENDRAS:
        found.append(Yoga("Gajakesari", ("Jupiter", "Moon"), "Jupiter in a kendra from the Moon"))
    if sign["Sun"] == sign["Mercury"]:
        found.append(Yoga("Budhaditya", ("Sun", "Mercury"), "Sun and Mercury in the same sign"))
    if sign["Moon"] == sign["Mars"]:
        found.append(Yoga("Chandra-Mangala", ("Moon", "Mars"), "Moon and Mars in the same sign"))
    neighbours = {(sign["Moon"] + 1) % 12, (sign["Moon"] - 1) % 12}
    if not any(sign[p] in neighbours for p in _VISIBLE if p != "Moon"):
        found.append(Yoga("Kemadruma", ("Moon",), "no planet in the 2nd or 12th sign from the Moon"))
    for planet, (name, dignified) in _DIGNITY.items():
        if sign[planet] in dignified and chart.house(planet) in KENDRAS:
            found.append(Yoga(name, (planet,), f"{planet} in its own or exaltation sign in a kendra"))
    if chart.house("Mars") in _MANGLIK_HOUSES:
        found.append(Yoga("Mangal Dosha", ("Mars",), "Mars in house 1, 2, 4, 7, 8 or 12 from the ascendant"))
    rahu = chart.position("Rahu").longitude
    arcs = [(chart.position(p).longitude - rahu) % 360 for p in ("Sun",) + _VISIBLE]
    if all(a < 180 for a in arcs) or all(a > 180 for a in arcs):
        found.append(Yoga("Kala Sarpa", ("Rahu", "Ketu"), "all planets on one side of the Rahu-Ketu axis"))
    return found
