"""ALSA speaker playback of the model's 24 kHz mono s16le audio, on the event loop.

:class:`AlsaPlayback` implements :class:`device.realtime.sink.AudioSink`. The bookkeeping (jitter
buffer, item segments, played position, interrupt) is :class:`~device.audio.playqueue.PlayQueue`;
this module is the thin ALSA writer under it, run on the event loop like capture:

* the PCM is opened non-blocking, once, at :meth:`AlsaPlayback.start` (the open runs in a
  short-lived thread: a fresh stream over the pulse plugin can stall ~1 s) and kept open;
* ``play()`` queues and schedules one ``pump`` on the loop; a pump asks ``avail()`` once and
  writes what fits (resampled 24 kHz → device rate by a streaming soxr resampler, mono copied to
  every channel). While ALSA holds more than ``LOW_WATER_S`` (100 ms; a reply arriving ahead
  of real time) nothing is written until a timer finds it down to that mark, then one write tops
  it up: a write through a plugin costs about the same whatever its length. When audio waits
  and ALSA is nearly full, the loop watches the PCM's poll descriptors
  (``add_reader``/``add_writer`` as the descriptors ask) and tops it up when it has room;
  otherwise nothing is watched, so an idle or draining speaker costs no wake-ups except a
  0.25 s ``avail()`` check that notices a lost device. A PCM whose descriptors cannot be polled
  (the null plugin) or keep waking with no room is topped up on a timer instead;
* ``interrupt()`` drops the PCM right there, on the loop: silence within microseconds;
* the ALSA buffer is ``PERIODS`` periods (160 ms at 20 ms): how long the loop may be busy before
  the speaker runs dry. It adds no latency: the jitter buffer decides when an item starts and an
  interrupt drops what ALSA holds;
* faults go through :class:`~device.audio.supervisor.FaultSupervisor` like capture's: a missing
  or lost device is reported once per outage and retried with backoff 0.5 s → 5 s, audio arriving
  meanwhile is discarded and counted in ``stats.dropped_ms``; a negative errno from ``avail()``
  other than ``-EPIPE`` (pyalsaaudio returns e.g. ``-ENODEV`` rather than raising) counts as
  lost; a reopened device is proven with a period of silence before it counts as recovered.
  ``stats.underruns`` counts writes that found the stream run dry in the middle of an item
  (``-EPIPE``); a stream that empties at the end of an item or a cue is a normal stop.

Cues (earcons) go through :meth:`AlsaPlayback.play_cue`; they count toward no item and
:meth:`AlsaPlayback.interrupt` never reports one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..realtime.errors import ConfigError
from ..realtime.pcm import BYTES_PER_S
from .pcmreader import open_off_loop
from .pcmwriter import STALL_S, PcmWriter
from .playqueue import CUE, PlayQueue
from .supervisor import BACKOFF_CAP_S, BACKOFF_START_S, AudioFault, FaultSupervisor

log = logging.getLogger("device.audio.playback")

#: ALSA periods per buffer (160 ms at 20 ms periods).
PERIODS = 8

__all__ = ["BACKOFF_CAP_S", "BACKOFF_START_S", "AlsaPlayback", "PlaybackConfig"]


@dataclass(frozen=True)
class PlaybackConfig:
    """What to open: ALSA PCM name, hardware rate and channels, period, jitter-buffer sizes."""

    device: str = "default"
    rate: int = 48000
    channels: int = 1
    period_ms: int = 20
    start_threshold_ms: int = 60
    max_buffer_ms: int = 30000

    def __post_init__(self) -> None:
        checks = (
            ("audio.playback_rate", self.rate, self.rate >= 8000, ">= 8000"),
            ("audio.playback_channels", self.channels, self.channels >= 1, ">= 1"),
            ("audio.period_ms", self.period_ms, self.period_ms >= 1, ">= 1"),
            (
                "audio.start_threshold_ms",
                self.start_threshold_ms,
                self.start_threshold_ms >= 0,
                ">= 0",
            ),
            (
                "audio.max_buffer_ms",
                self.max_buffer_ms,
                self.max_buffer_ms >= self.period_ms,
                f">= period_ms ({self.period_ms})",
            ),
        )
        for key, value, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{key}: expected {expected}, got {value}")

    @property
    def period_frames(self) -> int:
        return self.rate * self.period_ms // 1000


@dataclass
class PlaybackStats:
    """Counters of one :class:`AlsaPlayback`."""

    underruns: int = 0
    dropped_ms: int = 0
    written_frames: int = 0
    interrupts: int = 0
    faults: int = 0
    open_attempts: int = 0
    writes: int = 0
    wakeups: int = 0
    #: ``time.perf_counter_ns()`` when the PCM was last dropped for an interrupt.
    last_drop_ns: int = 0


class AlsaPlayback:
    """The speaker; an :class:`~device.realtime.sink.AudioSink`. See the module docstring.

    ::

        playback = AlsaPlayback(PlaybackConfig(device="plughw:CARD=Speaker"))
        playback.start()                       # on the running loop
        playback.play("item_1", pcm24k)        # never blocks
        playback.play_cue(earcon("connect"))   # a cue: never reported by interrupt()
        heard = playback.interrupt()           # ("item_1", 830) → conversation.item.truncate
        playback.close()
    """

    def __init__(
        self,
        config: PlaybackConfig,
        *,
        on_fault: Callable[[AudioFault], None] | None = None,
        measure: bool = False,
    ) -> None:
        self.config = config
        self.on_fault = on_fault
        self.stats = PlaybackStats()
        #: With ``measure=True``: ns from ``play()`` to the chunk's write returning.
        self.latencies_ns: deque[int] | None = deque(maxlen=100_000) if measure else None
        self.queue = PlayQueue(
            device_rate=config.rate,
            period_ms=config.period_ms,
            start_threshold_ms=config.start_threshold_ms,
            max_buffer_ms=config.max_buffer_ms,
        )
        self._sup = FaultSupervisor(
            "playback", config.device, self._report, start_s=BACKOFF_START_S, cap_s=BACKOFF_CAP_S
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._writer: PcmWriter | None = None
        self._closed = False
        self._deadline = 0.0
        self._last_drop_log = -10.0

    # ================================================================ the sink

    def start(self) -> None:
        """Open the PCM (and keep retrying while it is missing); call on the running loop."""
        if self._task is not None or self._closed:
            return
        self._loop = asyncio.get_running_loop()
        self._deadline = time.monotonic() + STALL_S + BACKOFF_CAP_S
        name = f"playback:{self.config.device}"
        self._task = self._loop.create_task(self._supervise(), name=name)

    def close(self) -> None:
        """Drop what is queued and close the PCM now (safe to call more than once)."""
        self._closed = True
        writer = self._writer
        if writer is not None:
            writer.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def aclose(self) -> None:
        """:meth:`close`, then wait for the writer task to end."""
        self.close()
        if self._task is not None:
            await asyncio.wait([self._task])

    def alive(self) -> bool:
        """False once playback crashed or hung; retrying a missing device counts as alive."""
        if self._sup.crashed_for_good or self._closed:
            return False
        if self._task is None:
            return True
        return not self._task.done() and time.monotonic() < self._deadline

    @property
    def faulted(self) -> bool:
        """True while the device is missing and playback is retrying."""
        return self._sup.faulted

    def play(self, item_id: str, pcm: bytes) -> None:
        """Queue 24 kHz mono s16le ``pcm`` of ``item_id``; audio beyond ``max_buffer_ms``
        (or while the device is missing) is dropped and counted. Cues go through
        :meth:`play_cue`."""
        self._push(item_id, pcm)

    def play_cue(self, pcm: bytes) -> None:
        """Play a short cue (earcon): it never counts toward a model item."""
        self._push(CUE, pcm)

    def interrupt(self) -> tuple[str, int] | None:
        """Silence now: discard the queue and drop the PCM. Returns ``(item_id, played_ms)``
        of the model item sounding (or next to sound), or ``None``; never a cue."""
        result = self.queue.interrupt()
        self.stats.interrupts += 1
        if self._writer is not None:
            self._writer.drop()
        return result

    def played_ms(self, item_id: str) -> int:
        """Milliseconds of ``item_id`` that have left the speaker (0 if unknown)."""
        return self.queue.played_ms(item_id)

    def is_playing(self) -> bool:
        """True while audio is queued here or still sounding in ALSA."""
        return self.queue.is_playing()

    # ================================================================ internals

    def _push(self, item: str, pcm: bytes) -> None:
        if not pcm:
            return
        if self._sup.faulted:
            self.stats.dropped_ms += len(pcm) * 1000 // BYTES_PER_S
            return
        t = time.perf_counter_ns() if self.latencies_ns is not None else 0
        dropped = self.queue.push(item, pcm, t)
        if dropped:
            self._count_dropped(dropped)
        if self._writer is not None:
            self._writer.kick()

    def _count_dropped(self, nbytes: int) -> None:
        self.stats.dropped_ms += nbytes * 1000 // BYTES_PER_S
        now = time.monotonic()
        if now - self._last_drop_log >= 5.0:
            self._last_drop_log = now
            log.warning(
                "model audio arrives faster than %r plays it: buffer full (%d ms), "
                "%d ms dropped so far",
                self.config.device,
                self.config.max_buffer_ms,
                self.stats.dropped_ms,
            )

    def _report(self, fault: AudioFault) -> None:
        self.stats.faults += 1
        if self.on_fault is not None and self._loop is not None:
            self._loop.call_soon(self.on_fault, fault)

    def _discard(self) -> None:
        self.stats.dropped_ms += self.queue.discard_pending()

    async def _supervise(self) -> None:
        await self._sup.watch(self._open_and_write_forever())

    async def _open_and_write_forever(self) -> None:
        import alsaaudio

        sup = self._sup
        while not self._closed:
            self._deadline = time.monotonic() + STALL_S + BACKOFF_CAP_S
            self.stats.open_attempts += 1
            try:
                pcm = await open_off_loop(self._open, f"open:{self.config.device}")
            except alsaaudio.ALSAAudioError as exc:
                self._discard()
                sup.failed("missing", str(exc))
                await self._retry_later()
                continue
            writer = PcmWriter(self, pcm)
            try:
                if sup.faulted:
                    writer.probe()  # nothing reached the faulted device: prove it works
                    sup.moved()
                self._writer = writer
                await writer.run()
            except alsaaudio.ALSAAudioError as exc:
                self._discard()
                self.queue.forget_stream()
                sup.failed("lost", str(exc))
            finally:
                self._writer = None
                writer.close()
            await self._retry_later()  # the dead PCM is closed first

    async def _retry_later(self) -> None:
        delay = self._sup.next_delay()
        self._deadline = time.monotonic() + delay + STALL_S
        await asyncio.sleep(delay)

    def _open(self) -> Any:
        import alsaaudio

        c = self.config
        return alsaaudio.PCM(
            type=alsaaudio.PCM_PLAYBACK,
            mode=alsaaudio.PCM_NONBLOCK,
            device=c.device,
            rate=c.rate,
            channels=c.channels,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=c.period_frames,
            periods=PERIODS,
        )
