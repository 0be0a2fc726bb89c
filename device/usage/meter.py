"""One object for the app to feed: :class:`UsageMeter` ties the ledger, the budget and the idle
policy together and tells the app when to wake and why to stop. Pure: no I/O, no asyncio.

The app forwards what happens (connected, audio, speech, responses, commands), arms ONE timer
at :meth:`UsageMeter.wake_at` (monotonic seconds; re-read it after every call that changes
state), and calls :meth:`UsageMeter.check` when it fires. A :class:`Stop` means disconnect:
``reason == "idle"`` (status ``disconnected``, the ``idle`` event) or ``"limit"`` (close 1000,
status ``closed`` with ``str(stop.limit)`` as the error, the limit LED pattern). Saving the
ledger is the app's: ``store.maybe_save(meter.ledger, monotonic())`` on its periodic tick, and
``store.save(meter.ledger)`` after a stop and at shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ..realtime.pcm import BYTES_PER_S
from .budget import Budget, LimitHit
from .idle import IdleTimer
from .ledger import UsageLedger
from .settings import LimitsSection
from .tokens import TokenUsage

#: Bytes per second of the realtime audio: 24 kHz mono PCM16.
PCM16_24K_BYTES_PER_S = BYTES_PER_S


@dataclass(frozen=True, slots=True)
class Stop:
    reason: Literal["idle", "limit"]
    #: The limit reached (``reason == "limit"``); its str() is the error to show.
    limit: LimitHit | None = None


class UsageMeter:
    def __init__(self, ledger: UsageLedger, limits: LimitsSection, idle_s: float) -> None:
        self.ledger = ledger
        self.budget = Budget(limits)
        self.idle = IdleTimer(idle_s)
        #: When the current conversation began (wall clock), ``None`` when there is none.
        self.conversation_started_at: datetime | None = None

    def reconfigure(self, limits: LimitsSection, idle_s: float) -> None:
        """SIGHUP: new limits apply at once (a raised limit allows connecting again)."""
        self.budget = Budget(limits)
        self.idle.idle_s = idle_s

    # ------------------------------------------------------------------ connection

    def refuse_connect(self) -> LimitHit | None:
        """Before any connect (button, wake word, socket, autoconnect, reconnect)."""
        return self.budget.allows_connect(self.ledger, self.ledger.clock())

    def on_connected(self, new_conversation: bool = True) -> None:
        """Status ``connected``. ``new_conversation=False`` for a reconnect of the same one
        (its time still counts toward ``max_session_minutes``)."""
        if new_conversation or self.conversation_started_at is None:
            self.conversation_started_at = self.ledger.clock()
        self.ledger.connected()
        self.idle.start(self.ledger.monotonic())

    def on_disconnected(self, conversation_over: bool = True) -> None:
        """The websocket closed (``conversation_over=False`` while ``reconnecting``)."""
        self.ledger.disconnected()
        self.idle.stop()
        if conversation_over:
            self.conversation_started_at = None

    # ------------------------------------------------------------------ what happens

    def on_audio_sent(self, nbytes: int) -> None:
        """Microphone PCM sent (``input_audio_buffer.append``)."""
        self.ledger.add_audio_sent(nbytes / PCM16_24K_BYTES_PER_S)

    def on_audio_received(self, nbytes: int) -> None:
        """Model PCM received (an audio delta): also model activity for the idle countdown."""
        self.ledger.add_audio_received(nbytes / PCM16_24K_BYTES_PER_S)
        self.idle.activity(self.ledger.monotonic())

    def on_user_speaking(self, speaking: bool) -> None:
        """``speech_started`` (True) / ``speech_stopped`` (False)."""
        self.idle.user_speaking(speaking, self.ledger.monotonic())

    def on_model_talking(self, talking: bool) -> None:
        """Response created or audio playing (True) / response done and playback drained, or
        cancelled (False)."""
        self.idle.model_talking(talking, self.ledger.monotonic())

    def on_activity(self) -> None:
        """A command (socket, button, wake word) or other model activity."""
        self.idle.activity(self.ledger.monotonic())

    def on_response_done(self, usage: TokenUsage | None) -> LimitHit | None:
        """``response.done``: its usage is counted; a limit reached now is returned (and
        latched) so the app stops at once: the overrun is at most this response."""
        self.ledger.add_response(usage)
        self.idle.activity(self.ledger.monotonic())
        return self._limit()

    # ------------------------------------------------------------------ timers

    def wake_at(self) -> float | None:
        """Monotonic time to call :meth:`check`, or ``None`` (nothing pending)."""
        moments = [m for m in (self.idle.deadline, self._budget_wake()) if m is not None]
        return min(moments) if moments else None

    def check(self) -> Stop | None:
        """Whether to disconnect now: a limit (latched in the ledger), or idle."""
        limit = self._limit()
        if limit is not None:
            return Stop("limit", limit)
        if self.idle.expired(self.ledger.monotonic()):
            return Stop("idle")
        return None

    def _limit(self) -> LimitHit | None:
        hit = self.budget.check(self.ledger, self.conversation_started_at, self.ledger.clock())
        if hit is not None:
            self.ledger.latch_limit(hit.key, hit.limit)
        return hit

    def _budget_wake(self) -> float | None:
        if not self.ledger.is_connected:
            return None
        now = self.ledger.clock()
        at = self.budget.next_check(self.ledger, self.conversation_started_at, now)
        if at is None:
            return None
        return self.ledger.monotonic() + max(0.0, (at - now).total_seconds())
