"""Per-local-day usage totals, pure (no I/O): :class:`UsageLedger`.

The ledger is told what happened (a response's tokens, audio seconds sent and received, the
connection opening and closing) and adds it to the total of the local day it happened on.
Connected time is measured on the monotonic clock (a Pi without an RTC steps its wall clock
when NTP syncs) and attributed to days by the wall clock, split at local midnight.

Both clocks are injected so tests can move time and cross midnight: ``clock`` returns an aware
datetime whose own timezone defines the local day, ``monotonic`` returns seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from .tokens import TokenUsage

Clock = Callable[[], datetime]
Monotonic = Callable[[], float]

#: Days of history kept (today included).
KEEP_DAYS = 30


def local_clock() -> datetime:
    """Now, as an aware datetime in the system's local timezone."""
    return datetime.now().astimezone()


@dataclass(frozen=True, slots=True)
class DayTotals:
    """What one local day used."""

    tokens: TokenUsage = field(default_factory=TokenUsage)
    connected_s: float = 0.0
    audio_sent_s: float = 0.0
    audio_received_s: float = 0.0
    responses: int = 0
    #: Limits reached this day that stay reached until the day ends or the limit is raised:
    #: config key → the limit's value when it was reached.
    limits_hit: Mapping[str, float] = field(default_factory=dict)

    def to_mapping(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens.to_mapping(),
            "connected_s": round(self.connected_s, 3),
            "audio_sent_s": round(self.audio_sent_s, 3),
            "audio_received_s": round(self.audio_received_s, 3),
            "responses": self.responses,
            "limits_hit": dict(self.limits_hit),
        }

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> DayTotals:
        """Parse :meth:`to_mapping`'s output; :class:`ValueError` names what was wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object")
        seconds = {
            key: _number(data.get(key, 0), f"{where}.{key}")
            for key in ("connected_s", "audio_sent_s", "audio_received_s")
        }
        responses = data.get("responses", 0)
        if isinstance(responses, bool) or not isinstance(responses, int) or responses < 0:
            raise ValueError(f"{where}.responses: expected a whole number >= 0")
        hits = data.get("limits_hit", {})
        if not isinstance(hits, Mapping):
            raise ValueError(f"{where}.limits_hit: expected an object")
        return cls(
            tokens=TokenUsage.from_mapping(data.get("tokens"), f"{where}.tokens"),
            responses=responses,
            limits_hit={str(k): _number(v, f"{where}.limits_hit.{k}") for k, v in hits.items()},
            **seconds,
        )


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{where}: expected a number >= 0, got {value!r}")
    return float(value)


def next_midnight(moment: datetime) -> datetime:
    """The start of the local day after ``moment``'s (in ``moment``'s timezone)."""
    return datetime.combine(moment.date() + timedelta(days=1), dtime(), tzinfo=moment.tzinfo)


class UsageLedger:
    """Per-day totals for the last :data:`KEEP_DAYS` local days.

    ``revision`` grows with every change, so a store can tell whether there is anything to save.
    """

    def __init__(
        self,
        clock: Clock = local_clock,
        monotonic: Monotonic = time.monotonic,
        days: Mapping[date, DayTotals] | None = None,
        keep_days: int = KEEP_DAYS,
    ) -> None:
        self.clock = clock
        self.monotonic = monotonic
        self.keep_days = keep_days
        self.revision = 0
        self._days: dict[date, DayTotals] = dict(days or {})
        self._connected_since: float | None = None

    # ------------------------------------------------------------------ recording

    @property
    def is_connected(self) -> bool:
        return self._connected_since is not None

    def connected(self) -> None:
        """The websocket is open: connected time counts from now. Repeated calls are harmless."""
        if self._connected_since is None:
            self._connected_since = self.monotonic()

    def disconnected(self) -> None:
        """The websocket closed: the connected time so far is added and counting stops."""
        self.accrue()
        self._connected_since = None

    def accrue(self) -> None:
        """Add the connected time up to now to the day totals (the store does it before saving)."""
        if self._connected_since is None:
            return
        mono = self.monotonic()
        elapsed = max(0.0, mono - self._connected_since)
        self._connected_since = mono
        for day, seconds in _split_by_day(self.clock(), elapsed):
            self._update(day, connected_s=self._get(day).connected_s + seconds)

    def add_response(self, usage: TokenUsage | None) -> None:
        """A ``response.done``: one more response and its tokens (``None``: none reported)."""
        day = self.clock().date()
        current = self._get(day)
        tokens = current.tokens + usage if usage is not None else current.tokens
        self._update(day, tokens=tokens, responses=current.responses + 1)

    def add_audio_sent(self, seconds: float) -> None:
        """Microphone audio sent to the model."""
        if seconds > 0:
            day = self.clock().date()
            self._update(day, audio_sent_s=self._get(day).audio_sent_s + seconds)

    def add_audio_received(self, seconds: float) -> None:
        """Model audio received."""
        if seconds > 0:
            day = self.clock().date()
            self._update(day, audio_received_s=self._get(day).audio_received_s + seconds)

    def latch_limit(self, key: str, limit: float) -> None:
        """Remember that ``key`` (value ``limit``) was reached today (see :mod:`.budget`)."""
        day = self.clock().date()
        current = self._get(day)
        self._update(day, limits_hit={**current.limits_hit, key: float(limit)})

    # ------------------------------------------------------------------ reading

    def day(self, day: date, now: datetime | None = None) -> DayTotals:
        """The totals of ``day``, including connected time not yet accrued when it is today."""
        totals = self._get(day)
        if self._connected_since is None:
            return totals
        moment = now if now is not None else self.clock()
        pending = max(0.0, self.monotonic() - self._connected_since)
        extra = sum(s for d, s in _split_by_day(moment, pending) if d == day)
        return replace(totals, connected_s=totals.connected_s + extra) if extra else totals

    def today(self, now: datetime | None = None) -> DayTotals:
        moment = now if now is not None else self.clock()
        return self.day(moment.date(), moment)

    def recent(self, count: int = 7, now: datetime | None = None) -> list[tuple[date, DayTotals]]:
        """The last ``count`` days, today first (days without use are all zero)."""
        moment = now if now is not None else self.clock()
        today = moment.date()
        return [(d, self.day(d, moment)) for d in (today - timedelta(n) for n in range(count))]

    def days(self) -> Iterator[tuple[date, DayTotals]]:
        """Every stored day (accrued figures only), oldest first."""
        return iter(sorted(self._days.items()))

    # ------------------------------------------------------------------ persistence

    def to_mapping(self) -> dict[str, Any]:
        """The accrued totals as JSON-ready data (numbers and dates only)."""
        self._prune()
        return {"version": 1, "days": {d.isoformat(): t.to_mapping() for d, t in self.days()}}

    def load_mapping(self, data: Any) -> None:
        """Replace the stored days with ``to_mapping()`` output; :class:`ValueError` names what
        was wrong (the ledger is unchanged then)."""
        if not isinstance(data, Mapping) or data.get("version") != 1:
            raise ValueError('expected an object with "version": 1')
        raw = data.get("days")
        if not isinstance(raw, Mapping):
            raise ValueError('"days": expected an object')
        days: dict[date, DayTotals] = {}
        for key, value in raw.items():
            try:
                day = date.fromisoformat(key)
            except (TypeError, ValueError):
                raise ValueError(f"days: {key!r} is not a date (YYYY-MM-DD)") from None
            days[day] = DayTotals.from_mapping(value, f"days.{key}")
        self._days = days
        self._prune()
        self.revision += 1

    # ------------------------------------------------------------------ internals

    def _get(self, day: date) -> DayTotals:
        return self._days.get(day) or DayTotals()

    def _update(self, day: date, **changes: Any) -> None:
        self._days[day] = replace(self._get(day), **changes)
        self.revision += 1
        self._prune()

    def _prune(self) -> None:
        oldest = self.clock().date() - timedelta(days=self.keep_days - 1)
        for day in [d for d in self._days if d < oldest]:
            del self._days[day]


def _split_by_day(end: datetime, seconds: float) -> list[tuple[date, float]]:
    """``seconds`` that ended at ``end``, divided among the local days they fell on."""
    parts: list[tuple[date, float]] = []
    start = end - timedelta(seconds=seconds)
    while start.date() < end.date():
        midnight = next_midnight(start)
        parts.append((start.date(), (midnight - start).total_seconds()))
        start = midnight
    parts.append((end.date(), (end - start).total_seconds()))
    return [(d, s) for d, s in parts if s > 0]
