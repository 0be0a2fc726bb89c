"""The daily budget, pure: which ``[limits]`` entry is reached, and when one will be.

* Token limits (``daily_output_audio_tokens``, ``daily_input_audio_tokens``) are known only when
  a ``response.done`` reports usage, so the app checks after each one: the day can end up over
  the limit by at most the response that was already in progress.
* Time limits (``daily_connected_minutes``, ``max_session_minutes``) grow while connected; the
  app arms a timer at :meth:`Budget.next_check` and checks when it fires, so they are never
  exceeded by more than the timer's lateness.

A reached limit stays reached for the rest of the local day (the daily totals say so, and
``max_session_minutes`` is latched in the ledger by the app): :meth:`Budget.allows_connect`
refuses with the same message until the day changes or the config raises (or removes) the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .ledger import DayTotals, UsageLedger, next_midnight
from .settings import LimitsSection

_WAIT = "connecting is refused until tomorrow or until the limit is raised"


@dataclass(frozen=True, slots=True)
class LimitHit:
    """A reached limit. ``str(hit)`` is the message for the user, the log and ``connect``."""

    #: The config key, e.g. ``limits.daily_output_audio_tokens``.
    key: str
    used: float
    limit: float
    message: str

    def __str__(self) -> str:
        return self.message


def _hit(key: str, used: float, limit: float, what: str) -> LimitHit:
    return LimitHit(key, used, limit, f"{key}: {what}; {_WAIT}")


def _minutes(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


class Budget:
    def __init__(self, limits: LimitsSection) -> None:
        self.limits = limits

    def check(
        self, ledger: UsageLedger, session_started_at: datetime | None, now: datetime
    ) -> LimitHit | None:
        """The first limit reached now, or ``None``. ``session_started_at`` is when the current
        conversation began (``None`` when not connected). After a hit the app disconnects and
        calls ``ledger.latch_limit(hit.key, hit.limit)``."""
        hit = self._daily(ledger.today(now))
        if hit is not None or session_started_at is None:
            return hit
        limit = self.limits.max_session_minutes
        if limit and (now - session_started_at).total_seconds() >= limit * 60:
            return self._session_hit(limit)
        return None

    def allows_connect(self, ledger: UsageLedger, now: datetime) -> LimitHit | None:
        """``None`` when a connection may start; otherwise the limit that forbids it, with the
        same message as when it was reached."""
        today = ledger.today(now)
        hit = self._daily(today)
        if hit is not None:
            return hit
        latched = today.limits_hit.get("limits.max_session_minutes")
        limit = self.limits.max_session_minutes
        if latched is not None and limit and limit <= latched:
            return self._session_hit(limit)
        return None

    def next_check(
        self, ledger: UsageLedger, session_started_at: datetime | None, now: datetime
    ) -> datetime | None:
        """When to call :meth:`check` again while connected: the moment the connected-minutes
        or session-minutes limit will be reached, or local midnight when the daily one would
        only be reached tomorrow (the new day's figures decide then). ``None`` when no time
        limit applies or nothing is connected."""
        if session_started_at is None:
            return None
        moments: list[datetime] = []
        daily = self.limits.daily_connected_minutes
        if daily:
            left = daily * 60 - ledger.today(now).connected_s
            at = now + _seconds(max(0.0, left))
            moments.append(min(at, next_midnight(now)))
        session = self.limits.max_session_minutes
        if session:
            moments.append(session_started_at + _seconds(session * 60))
        return min(moments) if moments else None

    def usage_of_limits(self, ledger: UsageLedger, now: datetime) -> dict[str, dict[str, float]]:
        """Each daily limit that is set: ``{key: {"used": …, "limit": …}}`` (for ``usage``)."""
        today = ledger.today(now)
        out: dict[str, dict[str, float]] = {}
        for key, used, limit in self._daily_figures(today):
            if limit:
                out[key] = {"used": round(used, 1), "limit": limit}
        return out

    # ------------------------------------------------------------------ internals

    def _daily_figures(self, today: DayTotals) -> list[tuple[str, float, float]]:
        lim = self.limits
        return [
            ("limits.daily_connected_minutes", today.connected_s / 60, lim.daily_connected_minutes),
            (
                "limits.daily_output_audio_tokens",
                today.tokens.output_audio_tokens,
                lim.daily_output_audio_tokens,
            ),
            (
                "limits.daily_input_audio_tokens",
                today.tokens.input_audio_tokens,
                lim.daily_input_audio_tokens,
            ),
        ]

    def _daily(self, today: DayTotals) -> LimitHit | None:
        for key, used, limit in self._daily_figures(today):
            if limit and used >= limit:
                if key == "limits.daily_connected_minutes":
                    what = f"{_minutes(limit)} of {_minutes(limit)} minutes connected today"
                else:
                    kind = "output" if "output" in key else "input"
                    what = f"{int(used)} of {int(limit)} {kind} audio tokens used today"
                return _hit(key, used, limit, what)
        return None

    def _session_hit(self, limit: float) -> LimitHit:
        what = f"a conversation reached the {_minutes(limit)}-minute limit today"
        return _hit("limits.max_session_minutes", limit, limit, what)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
