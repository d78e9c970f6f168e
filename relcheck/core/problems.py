"""What a probe found wrong, as data: what was measured, how much, against which limit — rendered one way.

Problem("memory", "180 MiB", "<", "256 MiB")   ->  "memory 180 MiB < 256 MiB"
assert not problems, joined(problems)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    what: str
    measured: str
    relation: str  # how the measurement stands to the limit: "<", ">", "over"
    limit: str

    def __str__(self) -> str:
        return f"{self.what} {self.measured} {self.relation} {self.limit}"


def joined(problems, most: int = 0) -> str:
    """Problems as one line: "; "-separated (the first `most` of them when most > 0)."""
    shown = list(problems)[:most] if most else list(problems)
    return "; ".join(str(p) for p in shown)
