"""The usage part the app enters: idle disconnect, usage accounting and the daily budget (issue 15).

``async with UsagePart(session, table, config.limits, config.behaviour.idle(), state=...)``:

* loads the day totals from the state file and saves them every few seconds and on exit;
* is the session's ``connect_guard``: while a ``[limits]`` entry holds, every connect (button,
  wake word, socket, autoconnect, reconnect) is refused with the limit's message and status
  ``closed``, and the status LED shows its ``limit`` pattern (:class:`LimitReached`);
* follows the session's notices (speech, responses, speaking, status) and the command table's
  commands, and runs one timer task: idle → disconnect (``{"event": "idle"}``, status
  ``disconnected``); a limit reached → closed with 1000, ``ErrorNotice("limit", …)``, status
  ``closed``; a new local day or a raised limit → ``LimitReached(None)``;
* after each ``response.done``: one log line with its tokens and ``{"event": "usage", ...}``;
* registers the ``usage`` command (socket and MQTT) and adds ``usage`` to the MQTT state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from ..commands import Command, CommandTable
from ..realtime.events import Usage
from ..realtime.notices import (
    LimitReached,
    MuteChanged,
    Notice,
    ResponseStarted,
    ResponseUsage,
    SpeakingChanged,
    StatusChanged,
    TextNotice,
    TranscriptNotice,
    UserSpeech,
)
from ..realtime.status import TransportStatus
from ..session import RealtimeSession
from .budget import LimitHit
from .ledger import Clock, Monotonic, UsageLedger, local_clock
from .meter import Stop, UsageMeter
from .report import day_json, format_response_log, usage_event, usage_json
from .settings import IdleSettings, LimitsSection
from .store import UsageStore
from .tokens import TokenUsage

log = logging.getLogger("device.usage")

#: Longest sleep of the timer task: saves, day changes and raised limits are seen this soon.
TICK_S = 1.0
#: Commands that only read: a kiosk polling ``status`` does not keep a conversation alive.
READ_ONLY = frozenset({"status", "subscribe", "usage"})


class StateView(Protocol):
    """Where the part adds its piece of the MQTT state (:class:`device.mqtt.part.DeviceState`)."""

    def add(self, source: Callable[[], Mapping[str, Any]]) -> None: ...


def tokens_of(usage: Usage) -> TokenUsage:
    """The codec's typed ``response.usage`` as the ledger counts it."""
    i, o = usage.input, usage.output
    return TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens or usage.input_tokens + usage.output_tokens,
        input_audio_tokens=i.audio_tokens,
        input_text_tokens=i.text_tokens,
        input_image_tokens=i.image_tokens,
        cached_tokens=i.cached_tokens,
        cached_audio_tokens=i.cached.audio_tokens,
        cached_text_tokens=i.cached.text_tokens,
        cached_image_tokens=i.cached.image_tokens,
        output_audio_tokens=o.audio_tokens,
        output_text_tokens=o.text_tokens,
    )


def limit_name(hit: LimitHit) -> str:
    """``limits.daily_output_audio_tokens`` → ``daily_output_audio_tokens`` (the notice's)."""
    return hit.key.removeprefix("limits.")


class UsagePart:
    def __init__(
        self,
        session: RealtimeSession,
        table: CommandTable,
        limits: LimitsSection,
        idle: IdleSettings,
        *,
        state: StateView | None = None,
        store: UsageStore | None = None,
        clock: Clock = local_clock,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.session = session
        self.table = table
        self.idle = idle
        self.store = store if store is not None else UsageStore()
        self._clock, self._monotonic = clock, monotonic
        self.meter = UsageMeter(self.store.load(clock, monotonic), limits, idle.idle_disconnect_s)
        self._state = state
        self._changed = asyncio.Event()
        self._shown: str | None = None
        self._stopping = False
        self._responding = self._speaking = False
        self._previous = session.status
        self._audio_seen = (session.stats.audio_bytes_sent, session.stats.audio_bytes_received)
        self._tasks: set[asyncio.Task[None]] = set()
        self._off: list[Callable[[], None]] = []

    @property
    def ledger(self) -> UsageLedger:
        return self.meter.ledger

    # ------------------------------------------------------------------ life

    async def __aenter__(self) -> UsagePart:
        self.session.connect_guard = self.guard
        self._off.append(self.session.subscribe(self.on_notice))
        self.table.register(Command("usage", "today's and the last 7 days' usage", self._usage))
        self.table.watch_commands(self._on_command)
        if self._state is not None:
            self._state.add(self.state)
        self._show_limit()
        self._spawn(self._timer())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for off in self._off:
            off()
        self.session.connect_guard = None
        self._pull_audio()
        self.meter.ledger.disconnected()
        self.store.save(self.meter.ledger)

    def reconfigure(self, limits: LimitsSection, idle: IdleSettings) -> None:
        """SIGHUP: the new limits and idle time apply at once (a raised limit clears)."""
        self.idle = idle
        self.meter.reconfigure(limits, idle.idle_disconnect_s)
        self._changed.set()

    # ------------------------------------------------------------------ the surfaces

    def guard(self) -> str | None:
        """The session's connect guard."""
        hit = self.meter.refuse_connect()
        self._show_limit(hit)
        return str(hit) if hit is not None else None

    async def _usage(self, _: CommandTable, __: Mapping[str, Any]) -> dict[str, Any]:
        self.meter.ledger.accrue()
        return {"ok": True, **usage_json(self.meter.ledger, self._clock(), self.meter.budget)}

    def state(self) -> dict[str, Any]:
        """``usage`` in the MQTT state: today's totals."""
        now = self._clock()
        return {"usage": day_json(now.date(), self.meter.ledger.today(now))}

    # ------------------------------------------------------------------ what happens

    def _on_command(self, name: str) -> None:
        if name not in READ_ONLY:
            self.meter.on_activity()
            self._changed.set()

    @property
    def limit_shown(self) -> str | None:
        """The daily limit that holds now (its config key's last part), if any."""
        return self._shown

    def on_button(self, action: str) -> None:
        """A button action: activity; a held talk button is the user speaking."""
        if action in ("begin_turn", "end_turn"):
            self.meter.on_user_speaking(action == "begin_turn")
        else:
            self.meter.on_activity()
        self._changed.set()

    def on_notice(self, notice: Notice) -> None:
        m = self.meter
        match notice:
            case StatusChanged(status):
                self._on_status(status)
            case UserSpeech(speaking):
                m.on_user_speaking(speaking)
            case ResponseStarted():
                self._responding = True
                m.on_model_talking(True)
            case SpeakingChanged(speaking):
                self._speaking = speaking
                m.on_model_talking(speaking or self._responding)
            case ResponseUsage(_, usage):
                self._response_done(usage)
            case MuteChanged() | TranscriptNotice() | TextNotice():
                m.on_activity()
            case _:
                return
        self._changed.set()

    def _on_status(self, status: TransportStatus) -> None:
        previous, self._previous = self._previous, status
        if status is TransportStatus.CONNECTED:
            self.meter.on_connected(new_conversation=previous is not TransportStatus.RECONNECTING)
        elif status is TransportStatus.RECONNECTING:
            self._pull_audio()
            self.meter.on_disconnected(conversation_over=False)
        elif status in (TransportStatus.DISCONNECTED, TransportStatus.CLOSED):
            self._pull_audio()
            self._responding = self._speaking = False
            self.meter.on_disconnected()

    def _response_done(self, usage: Usage | None) -> None:
        self._pull_audio()
        self._responding = False
        tokens = tokens_of(usage) if usage is not None else None
        hit = self.meter.on_response_done(tokens)
        self.meter.on_model_talking(self._speaking)
        now = self._clock()
        if tokens is not None:
            log.info("%s", format_response_log(tokens, self.meter.ledger.today(now)))
            self.table.publish(usage_event(tokens, self.meter.ledger, now))
        if hit is not None and self.session.status.active:
            self._spawn(self._stop(Stop("limit", hit)))

    def _pull_audio(self) -> None:
        stats = self.session.stats
        sent, received = self._audio_seen
        self._audio_seen = (stats.audio_bytes_sent, stats.audio_bytes_received)
        if stats.audio_bytes_sent > sent:
            self.meter.on_audio_sent(stats.audio_bytes_sent - sent)
        if stats.audio_bytes_received > received:
            self.meter.on_audio_received(stats.audio_bytes_received - received)

    # ------------------------------------------------------------------ the timer

    async def _timer(self) -> None:
        while True:
            self._changed.clear()
            wake = self.meter.wake_at()
            timeout = TICK_S if wake is None else min(TICK_S, wake - self._monotonic())
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.005, timeout)):
                    await self._changed.wait()
            await self.tick()

    async def tick(self) -> None:
        """What the timer does: stop for idle or a limit, show a cleared limit, save."""
        self._pull_audio()
        if self.session.status.active:
            stop = self.meter.check()
            if stop is not None:
                await self._stop(stop)
        if self._shown is not None:
            self._show_limit()
        self.store.maybe_save(self.meter.ledger, self._monotonic())

    async def _stop(self, stop: Stop) -> None:
        if self._stopping or not self.session.status.active:
            return
        self._stopping = True
        try:
            await self._end(stop)
        finally:
            self._stopping = False

    async def _end(self, stop: Stop) -> None:
        if stop.limit is not None:
            log.warning("usage limit reached: %s", stop.limit)
            # Announced first: by the time the status says closed, every listener (LED,
            # control socket, MQTT) knows why; the LED shows it once the session is inactive.
            self._show_limit(stop.limit)
            await self.session.close_with_error("limit", str(stop.limit))
            self.store.save(self.meter.ledger)
            return
        seconds = self.meter.idle.idle_s
        log.info("idle for %g s: disconnecting", seconds)
        self.table.publish({"event": "idle", "idle_s": seconds})
        if self.idle.forget_on_idle:
            await self.session.forget()
        else:
            await self.session.disconnect()

    def _show_limit(self, hit: LimitHit | None = None) -> None:
        """Announce ``LimitReached`` when the limit that holds changes (LED, ``limit`` event)."""
        if hit is None:
            hit = self.meter.refuse_connect()
        name = limit_name(hit) if hit is not None else None
        if name != self._shown:
            self._shown = name
            self.session.announce(LimitReached(name))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name="usage")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
