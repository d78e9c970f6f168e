"""Prometheus text exposition, parsed with prometheus_client's parser."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Scrape:
    families: dict[str, list[tuple[str, dict, float]]]     # family -> [(sample name, labels, value)]

    def value(self, sample: str, **labels) -> float | None:
        """Sum of a sample's values over series matching the labels (None if absent)."""
        found = [v for family in self.families.values() for name, lbls, v in family
                 if name == sample and all(lbls.get(k) == str(val) for k, val in labels.items())]
        return sum(found) if found else None

    def has(self, family: str) -> bool:
        return family in self.families or any(family == f"{name}_total" for name in self.families)


def parse(text: str) -> Scrape:
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = [(s.name, dict(s.labels), s.value) for s in family.samples]
    return Scrape(families)

