"""ALSA speaker playback of the model's 24 kHz mono s16le audio, with honest played positions.

:class:`AlsaPlayback` implements :class:`device.realtime.sink.AudioSink`. The event loop only
touches an in-memory queue (``play``, ``interrupt``, ``played_ms`` and ``is_playing`` never call
into ALSA); a daemon writer thread owns the PCM:

* it opens the PCM once at :meth:`AlsaPlayback.start` (a fresh stream over the pulse plugin can
  stall ~1 s, so never per response) and keeps it open; a missing or lost device is reported to
  ``on_fault`` (on the event loop) once per outage and retried with backoff 0.5 s → 5 s; audio
  arriving while the device is missing is discarded and counted in ``stats.dropped_ms``. A lost
  device is noticed while idle too: ``avail()`` is polled every 0.25 s and a negative errno other
  than ``-EPIPE`` (pyalsaaudio returns e.g. ``-ENODEV`` rather than raising) counts as lost;
* a reopened device counts as recovered (``"recovered"`` fault, backoff back to 0.5 s) only once
  a write has succeeded: right after the reopen the writer writes one period of silence to prove
  it. A device that opens and then fails at once stays faulted, and the backoff keeps doubling;
* it resamples 24 kHz → device rate with a streaming soxr resampler, copies mono to every
  device channel and writes whole periods, only when ``avail()`` has room, so a write never
  blocks and an :meth:`~AlsaPlayback.interrupt` is acted on (``pcm.drop()``) within
  microseconds, well inside one period;
* jitter buffer: an idle stream starts an item only once ``start_threshold_ms`` of it are
  queued, another item follows it, it is an earcon, or no audio arrived for that long (a short
  final chunk). Between items nothing is padded: when the queue runs dry the stream runs dry
  too (a stream that empties at the end of an item is a normal stop, not an underrun).
  ``stats.underruns`` counts writes that found the stream run dry in the middle of an item
  (``-EPIPE``), after which the stream is re-prepared and the write repeated.

Played position: frames written for an item minus frames still queued in ALSA
(``buffer_size - avail``), sampled by the writer after every ALSA call and extrapolated on the
monotonic clock between samples (never past what was written). Earcons play with item id
``"earcon"`` and never count toward a model item.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..realtime.errors import ConfigError
from .capture import BACKOFF_CAP_S, BACKOFF_START_S, MODEL_RATE, AudioFault

log = logging.getLogger("device.audio.playback")

#: Item id used for earcons; never reported by :meth:`AlsaPlayback.interrupt`.
EARCON = "earcon"
#: ALSA periods per buffer (160 ms at 20 ms periods): how long the writer thread may be kept
#: from running (GIL, a busy Pi) before the speaker runs dry. It adds no latency: our jitter
#: buffer decides when playback starts, and an interrupt drops whatever ALSA holds.
PERIODS = 8
#: A writer that has not come round its loop for this long counts as wedged.
STALL_S = 3.0
#: Played positions remembered for this many finished items.
_REMEMBER_ITEMS = 64
_EPIPE = -32
_EMPTY: np.ndarray[Any, Any] = np.zeros(0, dtype=np.int16)


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
    #: ``time.perf_counter_ns()`` when the writer last silenced the PCM for an interrupt.
    last_drop_ns: int = 0


class _Segment:
    """Device frames ``[start, end)`` of the write stream that belong to ``item``."""

    __slots__ = ("end", "item", "start")

    def __init__(self, item: str, start: int, end: int) -> None:
        self.item = item
        self.start = start
        self.end = end


class AlsaPlayback:
    """The speaker; an :class:`~device.realtime.sink.AudioSink`. See the module docstring.

    ::

        playback = AlsaPlayback(PlaybackConfig(device="plughw:CARD=Speaker"))
        playback.start()
        playback.play("item_1", pcm24k)       # from the event loop; never blocks
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
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # ---- shared state, guarded by _lock
        self._pending: deque[tuple[str, np.ndarray[Any, Any], int]] = deque()
        self._pending_samples = 0
        self._last_play = 0.0
        self._gen = 0
        self._drop_requested = False
        self._written = 0  # device frames handed to ALSA that still count
        self._queued = 0  # frames in ALSA at the last snapshot
        self._snap_t = 0.0
        self._segments: deque[_Segment] = deque()
        self._played: OrderedDict[str, int] = OrderedDict()  # frames of retired segments
        self._faulted = False
        self._crashed = False
        self._backoff = BACKOFF_START_S  # writer thread only
        self._deadline = 0.0
        self._last_item: str | None = None  # item of the last frames written
        self._last_underrun_log = 0.0
        self._last_drop_log = -10.0
        self._max_samples = config.max_buffer_ms * MODEL_RATE // 1000
        self._start_timeout_s = max(config.start_threshold_ms, 2 * config.period_ms) / 1000

    # ================================================================ event loop side

    def start(self) -> None:
        """Start the writer thread, which opens the PCM (and retries while it is missing)."""
        if self._thread is not None:
            return
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        self._deadline = time.monotonic() + STALL_S + BACKOFF_CAP_S
        self._thread = threading.Thread(
            target=self._run, name=f"playback:{self.config.device}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the writer thread (it drops what is queued and closes the PCM)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(1.0)
            if thread.is_alive():
                log.warning("playback thread for %r did not stop in time", self.config.device)

    def alive(self) -> bool:
        """False once the writer crashed or hung; retrying a missing device counts as alive."""
        if self._crashed or self._stop.is_set():
            return False
        if self._thread is None:
            return True
        return self._thread.is_alive() and time.monotonic() < self._deadline

    @property
    def faulted(self) -> bool:
        """True while the device is missing and the writer is retrying."""
        return self._faulted

    def play(self, item_id: str, pcm: bytes) -> None:
        """Queue 24 kHz mono s16le ``pcm`` of ``item_id``; audio beyond ``max_buffer_ms``
        (or while the device is missing) is dropped and counted."""
        n = len(pcm) // 2
        if n == 0:
            return
        t = time.perf_counter_ns() if self.latencies_ns is not None else 0
        samples = np.frombuffer(pcm, dtype="<i2", count=n)
        with self._lock:
            room = 0 if self._faulted else self._max_samples - self._pending_samples
            if n > room:
                self.stats.dropped_ms += (n - max(room, 0)) * 1000 // MODEL_RATE
                now = time.monotonic()
                if not self._faulted and now - self._last_drop_log >= 5.0:
                    self._last_drop_log = now
                    log.warning(
                        "model audio arrives faster than %r plays it: buffer full (%d ms), "
                        "%d ms dropped so far",
                        self.config.device,
                        self.config.max_buffer_ms,
                        self.stats.dropped_ms,
                    )
                if room <= 0:
                    return
                samples = samples[:room]
                n = room
            self._pending.append((item_id, samples, t))
            self._pending_samples += n
            self._last_play = time.monotonic()
        self._wake.set()

    def play_earcon(self, pcm: bytes) -> None:
        """Play a short cue; it never counts toward a model item."""
        self.play(EARCON, pcm)

    def interrupt(self) -> tuple[str, int] | None:
        """Silence now: discard the queue, have the writer ``drop()`` the PCM.

        Returns ``(item_id, played_ms)`` of the model item sounding (or next to sound), or
        ``None`` when no model audio was queued or sounding.
        """
        with self._lock:
            pos = self._position()
            sounding: str | None = None
            for seg in self._segments:
                if seg.end > pos and seg.item != EARCON:
                    sounding = seg.item
                    break
            if sounding is None:
                for item, _, _ in self._pending:
                    if item != EARCON:
                        sounding = item
                        break
            self._forget_stream_locked(pos)  # everything up to pos was heard; the rest is gone
            self._pending.clear()
            self._pending_samples = 0
            self._gen += 1
            self._drop_requested = True
            self.stats.interrupts += 1
            result = None
            if sounding is not None:
                result = (sounding, self._played.get(sounding, 0) * 1000 // self.config.rate)
        self._wake.set()
        return result

    def played_ms(self, item_id: str) -> int:
        """Milliseconds of ``item_id`` that have left the speaker (0 if unknown)."""
        with self._lock:
            frames = self._item_frames(item_id, self._position())
        return frames * 1000 // self.config.rate

    def is_playing(self) -> bool:
        """True while audio is queued here or still sounding in ALSA."""
        with self._lock:
            return bool(self._pending) or self._position() < self._written

    # ================================================================ accounting (locked)

    def _position(self) -> int:
        """Device frames of the write stream that have been played (estimate, lock held)."""
        queued = self._queued
        base = self._written - queued
        if queued > 0:
            base += min(queued, int((time.monotonic() - self._snap_t) * self.config.rate))
        return base

    def _item_frames(self, item: str, pos: int) -> int:
        frames = self._played.get(item, 0)
        for seg in self._segments:
            if seg.item == item and seg.start < pos:
                frames += min(seg.end, pos) - seg.start
        return frames

    def _retire(self, item: str, frames: int) -> None:
        played = self._played
        played[item] = played.get(item, 0) + frames
        played.move_to_end(item)
        while len(played) > _REMEMBER_ITEMS:
            played.popitem(last=False)

    # ================================================================ writer thread

    def _fault(self, kind: str, message: str) -> None:
        self.stats.faults += 1
        if kind == "recovered":
            log.info("%s", message)
        else:
            log.error("%s", message)
        fault = AudioFault(self.config.device, message, kind)
        if self.on_fault is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.on_fault, fault)

    def _run(self) -> None:
        try:
            self._writer()
        except BaseException as exc:
            self._crashed = True
            self._fault("crashed", f"playback thread for {self.config.device!r} crashed: {exc!r}")
            log.exception("playback thread crashed")

    def _open(self) -> Any:
        import alsaaudio

        c = self.config
        return alsaaudio.PCM(
            type=alsaaudio.PCM_PLAYBACK,
            mode=alsaaudio.PCM_NORMAL,
            device=c.device,
            rate=c.rate,
            channels=c.channels,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=c.period_frames,
            periods=PERIODS,
        )

    def _writer(self) -> None:
        import alsaaudio

        c = self.config
        self._backoff = BACKOFF_START_S
        while not self._stop.is_set():
            self._deadline = time.monotonic() + STALL_S + BACKOFF_CAP_S
            self.stats.open_attempts += 1
            try:
                pcm = self._open()
            except alsaaudio.ALSAAudioError as exc:
                with self._lock:
                    self._discard_pending_locked()
                    first = not self._faulted
                    self._faulted = True
                if first:
                    self._fault("missing", f'playback device "{c.device}" not available: {exc}')
                self._retry_later()
                continue
            try:
                if self._faulted:
                    # Nothing reaches a faulted device (play() discards), so prove it with a
                    # period of silence before reporting it recovered.
                    self._probe(pcm)
                self._write_loop(pcm)
            except alsaaudio.ALSAAudioError as exc:
                with self._lock:
                    first = not self._faulted
                    self._faulted = True
                    self._discard_pending_locked()
                    self._forget_stream_locked()
                if first:
                    self._fault("lost", f'playback device "{c.device}" failed: {exc}')
                else:  # opened again but still failing: the outage goes on
                    log.debug("playback device %r still failing: %s", c.device, exc)
            finally:
                with contextlib.suppress(Exception):
                    pcm.drop()
                with contextlib.suppress(Exception):
                    pcm.close()
            self._retry_later()  # the dead PCM is closed first

    def _retry_later(self) -> None:
        """Wait the backoff (0.5 s doubling to 5 s; it only restarts once audio has moved)."""
        backoff = self._backoff
        self._deadline = time.monotonic() + backoff + STALL_S
        self._stop.wait(backoff)
        self._backoff = min(backoff * 2, BACKOFF_CAP_S)

    def _audio_moved(self) -> None:
        """A write succeeded on the open PCM: the device works (again)."""
        self._backoff = BACKOFF_START_S
        if self._faulted:
            with self._lock:
                self._faulted = False
            self._fault("recovered", f'playback device "{self.config.device}" recovered')

    def _probe(self, pcm: Any) -> None:
        """Write one period of silence to a reopened device; raise if it accepts none."""
        import alsaaudio

        silence = np.zeros((self.config.period_frames, self.config.channels), dtype=np.int16)
        written = int(pcm.write(silence))
        if written == _EPIPE:  # pyalsaaudio has re-prepared the stream: once more
            written = int(pcm.write(silence))
        if written <= 0:
            raise alsaaudio.ALSAAudioError(f"device accepts no audio (write returned {written})")
        self._audio_moved()

    def _discard_pending_locked(self) -> None:
        if self._pending_samples:
            self.stats.dropped_ms += self._pending_samples * 1000 // MODEL_RATE
        self._pending.clear()
        self._pending_samples = 0

    def _forget_stream_locked(self, pos: int | None = None) -> None:
        """The PCM is gone (or dropped): what it held counts as heard up to the estimate
        (``pos``, default now), no further."""
        if pos is None:
            pos = self._position()
        while self._segments:
            seg = self._segments.popleft()
            if seg.start < pos:
                self._retire(seg.item, min(seg.end, pos) - seg.start)
        self._written = pos
        self._queued = 0
        self._last_item = None

    def _write_loop(self, pcm: Any) -> None:
        import alsaaudio

        c = self.config
        rate = c.rate
        channels = c.channels
        period = c.period_frames
        period_s = c.period_ms / 1000
        in_chunk = MODEL_RATE * c.period_ms // 1000
        max_chunk = 2 * in_chunk
        buffer_size = int(pcm.info()["buffer_size"])
        threshold = MODEL_RATE * c.start_threshold_ms // 1000
        resampler: Any = None
        if rate != MODEL_RATE:
            import soxr

            resampler = soxr.ResampleStream(MODEL_RATE, rate, 1, dtype="int16", quality="LQ")
        # Reused output buffer: interleaved device frames.
        out = np.zeros((period * 4 + 64, channels), dtype=np.int16)
        carry_n = 0  # frames in ``out`` not yet written
        carry_item = ""
        tail = False
        carry_gen = -1
        carry_t = 0
        fed_item: str | None = None  # item whose samples are inside the resampler
        active = False  # frames are queued in ALSA (not dropped, not run dry)
        lock = self._lock
        wake = self._wake
        stats = self.stats
        latencies = self.latencies_ns
        while not self._stop.is_set():
            self._deadline = time.monotonic() + STALL_S
            with lock:
                drop = self._drop_requested
                self._drop_requested = False
                gen = self._gen
            if drop:
                pcm.drop()
                stats.last_drop_ns = time.perf_counter_ns()
                active = False
                if resampler is not None:
                    resampler.clear()
                fed_item = None
                carry_n = 0
                with lock:
                    if gen == self._gen:
                        self._queued = 0
                        self._snap_t = time.monotonic()
                    self._last_item = None
                continue
            avail = int(pcm.avail())
            now = time.monotonic()
            if avail < 0:
                if avail != _EPIPE:
                    # pyalsaaudio returns snd_pcm_avail()'s errors instead of raising them,
                    # e.g. -ENODEV once a USB speaker is unplugged: the device is lost.
                    raise alsaaudio.ALSAAudioError(
                        f"{os.strerror(-avail)} [{c.device}] (avail() returned {avail})"
                    )
                active = False  # ran dry (XRUN); the next write re-prepares
            # After drop() avail() is stale until the next write: nothing is queued then.
            queued = max(0, buffer_size - avail) if active else 0
            with lock:
                if gen != self._gen:
                    continue
                self._queued = min(queued, self._written)
                self._snap_t = now
                pos = self._written - self._queued
                segs = self._segments
                while segs and segs[0].end <= pos:
                    seg = segs.popleft()
                    self._retire(seg.item, seg.end - seg.start)
                # Pick the next chunk of 24 kHz audio unless one is waiting to be written.
                chunk: np.ndarray[Any, Any] | None = None
                if carry_n == 0 and self._pending:
                    item, samples, t_play = self._pending[0]
                    idle = queued == 0
                    if (
                        not idle
                        or item == EARCON
                        or self._head_samples(item) >= threshold
                        or now - self._last_play >= self._start_timeout_s
                    ):
                        # Up to two periods per write: each write through the pulse plugin
                        # costs about as much as the audio it carries (measured), and the
                        # audio waits in ALSA instead of here, so latency is unchanged.
                        if len(samples) > max_chunk:
                            chunk = samples[:max_chunk]
                            self._pending[0] = (item, samples[max_chunk:], t_play)
                        else:
                            chunk = samples
                            self._pending.popleft()
                        self._pending_samples -= len(chunk)
                        carry_item, carry_gen, carry_t = item, gen, t_play
                        tail = False
                waiting = bool(self._pending)
                if (
                    chunk is None
                    and carry_n == 0
                    and fed_item is not None
                    and not waiting
                    and now - self._last_play >= self._start_timeout_s
                ):
                    # The item has ended: flush the resampler's last few milliseconds.
                    chunk = _EMPTY
                    carry_item, carry_gen, carry_t = fed_item, gen, 0
                    tail = True  # the stream has normally run dry by now: not an underrun
            if chunk is not None:
                if resampler is None:
                    mono = chunk
                elif chunk is _EMPTY:
                    mono = resampler.resample_chunk(chunk, last=True)
                    resampler.clear()
                    fed_item = None
                else:
                    mono = resampler.resample_chunk(chunk, last=False)
                    fed_item = carry_item
                carry_n = len(mono)
                if carry_n > len(out):
                    out = np.zeros((carry_n, channels), dtype=np.int16)
                out[:carry_n] = mono[:, None]
                if carry_n == 0:
                    continue
            if carry_n == 0:
                # Nothing to write: wait for play(), interrupt(), or the start timeout. While
                # ALSA drains, the position is projected on the clock (_position), so look at
                # avail() again only around when the buffer should run out: every wake-up
                # costs CPU (an avail() through the pulse plugin is not cheap).
                if waiting:
                    timeout = period_s / 2
                elif queued:
                    timeout = min(max(queued / rate - period_s, period_s / 2), 0.2)
                else:
                    timeout = 0.25
                wake.wait(timeout)
                wake.clear()
                continue
            if carry_gen != self._gen:
                carry_n = 0
                continue
            if active and 0 <= avail < carry_n:
                wake.wait(min((carry_n - avail) / rate, period_s))
                wake.clear()
                continue
            data = out[:carry_n]
            written = int(pcm.write(data))
            if written == _EPIPE:
                # The stream ran dry (pyalsaaudio has re-prepared it); repeat the write.
                if carry_item == self._last_item and carry_item != EARCON and not tail:
                    stats.underruns += 1
                    if now - self._last_underrun_log >= 1.0:
                        self._last_underrun_log = now
                        log.warning(
                            "playback underrun on %r (%d so far)", c.device, stats.underruns
                        )
                with lock:
                    if gen == self._gen:
                        self._forget_stream_locked()
                written = int(pcm.write(data))
            if written <= 0:
                continue
            active = True
            if latencies is not None and carry_t:
                latencies.append(time.perf_counter_ns() - carry_t)
            with lock:
                if gen == self._gen:
                    start = self._written
                    self._written = start + written
                    self._queued += written
                    self._snap_t = time.monotonic()
                    segs = self._segments
                    if segs and segs[-1].item == carry_item and segs[-1].end == start:
                        segs[-1].end = start + written
                    else:
                        segs.append(_Segment(carry_item, start, start + written))
                    self._last_item = carry_item
            stats.written_frames += written
            if written < carry_n:
                out[: carry_n - written] = out[written:carry_n]
                carry_n -= written
                carry_t = 0
            else:
                carry_n = 0

    def _head_samples(self, item: str) -> int:
        """Queued samples of ``item`` at the head of the queue, stopping at the next item."""
        total = 0
        for it, samples, _ in self._pending:
            if it != item:
                return 1 << 30  # another item follows: the head one is complete
            total += len(samples)
        return total
