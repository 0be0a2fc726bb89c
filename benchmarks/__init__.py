"""Benchmarks: ``make bench`` (``python -m benchmarks``) prints one table of every figure.

Each module has ``rows()`` returning :class:`Row` objects and a ``main()`` for running it alone.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measured figure: median and p99 (or a single value), its target and the verdict."""

    name: str
    median: float
    p99: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    def cells(self) -> list[str]:
        verdict = {True: "yes", False: "**MISSED**", None: ""}[self.met]
        p99 = "" if self.p99 is None else _fmt(self.p99)
        return [self.name, _fmt(self.median), p99, self.unit, self.target, verdict, self.note]


def _fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), nearest-rank: p99 of 100 samples is the 99th."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else math.nan


HEADER = ["figure", "median", "p99", "unit", "target", "met", "note"]


def table(rows: Sequence[Row]) -> str:
    """A Markdown table of ``rows``."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)
