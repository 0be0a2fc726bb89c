"""A settable clock for usage tests: wall time (aware, local day) and monotonic time move
together unless a test steps only one of them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

#: A local timezone that is not UTC, so "local day" and "UTC day" differ.
LOCAL = timezone(timedelta(hours=-5), "EST")


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.wall = start or datetime(2026, 12, 3, 9, 0, tzinfo=LOCAL)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds
