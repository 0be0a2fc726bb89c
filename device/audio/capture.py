"""ALSA microphone capture → 20 ms frames of 24 kHz mono s16le for the realtime model.

The PCM is read on the event loop, driven by its poll descriptors: ALSA (or the plugin) marks
its descriptor readable when a period is ready, ``loop.add_reader`` wakes the loop, and a
non-blocking ``read`` takes what is there. So no thread wakes up per period and no frame hops
between threads; the only blocking ALSA call, opening the device, runs in a short-lived thread.
Each period is downmixed to mono, converted from S32_LE to S16 when needed, resampled to 24 kHz
with a streaming soxr resampler and cut into exact 20 ms frames (960 bytes), which go to the
listeners (:mod:`device.audio.fanout`): ``listen(rate, callback)`` for cheap callbacks on the
loop (``on_frame`` is one at 24 kHz), :meth:`AlsaCapture.frames` for a bounded queue that a slow
consumer overflows on its own (oldest frames dropped and counted). Each listener picks its rate
(24 kHz for the session, 16 kHz for a wake-word model); each rate is resampled once per frame.
The ALSA buffer holds about ``BUFFER_MS`` of audio, so a busy event loop delays frames rather
than losing them.

Faults never raise into the application:

* overrun (``read`` returns ``-EPIPE``: the loop was away longer than the buffer): pyalsaaudio
  has already re-prepared the stream and the next read restarts it; the overrun is counted and
  logged at most once per second. Overruns are not sent to ``on_fault``.
* device missing at start or lost mid-session (``ALSAAudioError``): the shared
  :class:`~device.audio.supervisor.FaultSupervisor` policy. ``on_fault`` receives an
  :class:`AudioFault` (kind ``"missing"`` or ``"lost"``) naming the device, once per outage, and
  capture retries with exponential backoff (0.5 s doubling to 5 s); when the device is back and
  has delivered audio (the first read with frames, not merely a successful open) a
  ``"recovered"`` fault follows and the backoff restarts at 0.5 s. A device that opens and then
  fails at once stays faulted and is retried ever more slowly, without recovered/lost pairs.
  ``on_fault`` always runs on the event loop.
* a device that stops delivering without an error for ``STALL_S``, or an unexpected exception:
  :meth:`AlsaCapture.alive` turns False (the service's watchdog then lets systemd restart it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..realtime.errors import ConfigError
from ..realtime.pcm import FRAME_BYTES
from ..realtime.pcm import RATE as MODEL_RATE
from .fanout import FrameQueue, MicFanout, Unsubscribe
from .pcmreader import MAX_EMPTY_WAKES, MAX_READS_PER_WAKE, STALL_S, PcmReader, open_off_loop
from .supervisor import BACKOFF_CAP_S, BACKOFF_START_S, AudioFault, FaultSupervisor

log = logging.getLogger("device.audio.capture")

__all__ = [
    "BACKOFF_CAP_S",
    "BACKOFF_START_S",
    "MAX_EMPTY_WAKES",
    "MAX_READS_PER_WAKE",
    "MODEL_RATE",
    "STALL_S",
    "AlsaCapture",
    "AudioFault",
    "CaptureConfig",
    "CaptureDSP",
    "CaptureStats",
    "open_off_loop",
]

#: Audio the ALSA capture buffer holds: how long the event loop may be busy before an overrun.
BUFFER_MS = 200

_FORMATS = {"S16_LE": 2, "S32_LE": 4}


@dataclass(frozen=True)
class CaptureConfig:
    """What to open: ALSA PCM name, hardware rate, sample format, channels, period length."""

    device: str = "default"
    rate: int = 48000
    fmt: str = "S16_LE"
    channels: int = 1
    period_ms: int = 20
    #: Frames (20 ms each) held for a slow consumer before the oldest are dropped.
    max_queue_frames: int = 50

    @property
    def periods(self) -> int:
        """ALSA buffer length in periods: about ``BUFFER_MS``, at least 4."""
        return max(4, math.ceil(BUFFER_MS / self.period_ms))

    def __post_init__(self) -> None:
        if self.fmt not in _FORMATS:
            raise ConfigError(f"audio.format: expected S16_LE or S32_LE, got {self.fmt!r}")
        if self.channels < 1:
            raise ConfigError(f"audio.channels: expected >= 1, got {self.channels}")
        if self.rate < 8000:
            raise ConfigError(f"audio.rate: expected >= 8000, got {self.rate}")
        if self.period_ms < 1:
            raise ConfigError(f"audio.period_ms: expected >= 1, got {self.period_ms}")
        if self.max_queue_frames < 1:
            raise ConfigError(
                f"capture max_queue_frames: expected >= 1, got {self.max_queue_frames}"
            )

    @property
    def period_frames(self) -> int:
        return self.rate * self.period_ms // 1000


@dataclass
class CaptureStats:
    """Counters of one :class:`AlsaCapture`."""

    frames: int = 0
    dropped: int = 0
    overruns: int = 0
    faults: int = 0
    reads: int = 0
    open_attempts: int = 0


class CaptureDSP:
    """Device periods (interleaved S16_LE/S32_LE) → exact 20 ms frames of 24 kHz mono s16le.

    Pure computation, no ALSA: capture and the benchmark share it.
    """

    def __init__(self, rate: int, fmt: str, channels: int) -> None:
        self.rate = rate
        self.channels = channels
        self.dtype = np.dtype("<i2") if fmt == "S16_LE" else np.dtype("<i4")
        self._resampler: Any = None
        if rate != MODEL_RATE:
            import soxr

            # LQ is steady per chunk (HQ buffers and bursts) and ample for speech.
            self._resampler = soxr.ResampleStream(rate, MODEL_RATE, 1, dtype="int16", quality="LQ")
        self._pending = bytearray()

    def process(self, data: bytes) -> list[bytes]:
        """Feed one period of raw device audio; return the complete frames it finished."""
        samples: np.ndarray[Any, np.dtype[np.signedinteger[Any]]] = np.frombuffer(
            data, dtype=self.dtype
        )
        ch = self.channels
        if ch > 1:
            samples = samples[: len(samples) - len(samples) % ch].reshape(-1, ch)
            if self.dtype.itemsize == 2:
                mono = samples.sum(axis=1, dtype=np.int32) // ch
            else:
                mono = (samples.sum(axis=1, dtype=np.int64) // ch) >> 16
            pcm = mono.astype(np.int16)
        elif self.dtype.itemsize == 4:
            pcm = (samples >> 16).astype(np.int16)
        else:
            pcm = samples
        if self._resampler is not None:
            pcm = self._resampler.resample_chunk(pcm, last=False)
        buf = self._pending
        buf += pcm.tobytes() if pcm.dtype == np.int16 else pcm.astype(np.int16).tobytes()
        if len(buf) < FRAME_BYTES:
            return []
        n = len(buf) // FRAME_BYTES * FRAME_BYTES
        out = [bytes(buf[i : i + FRAME_BYTES]) for i in range(0, n, FRAME_BYTES)]
        del buf[:n]
        return out

    def reset(self) -> None:
        """Forget partial frames and resampler state (after a device reopen)."""
        self._pending.clear()
        if self._resampler is not None:
            self._resampler.clear()


class AlsaCapture:
    """Microphone frames to listeners at their own rates; see the module docstring.

    ::

        capture = AlsaCapture(CaptureConfig(device="plughw:CARD=Mic"), on_fault=print)
        stop = capture.listen(16000, detector.feed)   # 640-byte frames, on the loop
        capture.start()
        async for frame in capture.frames():          # 960 bytes = 20 ms of 24 kHz mono s16le
            ...
        await capture.aclose()
    """

    def __init__(
        self,
        config: CaptureConfig,
        *,
        on_fault: Callable[[AudioFault], None] | None = None,
        on_frame: Callable[[bytes], object] | None = None,
        measure: bool = False,
    ) -> None:
        self.config = config
        self.on_fault = on_fault
        self.stats = CaptureStats()
        #: With ``measure=True``: ns from ``read`` returning to the frame being handed on.
        self.latencies_ns: deque[int] | None = deque(maxlen=100_000) if measure else None
        #: The listeners (see :mod:`device.audio.fanout`).
        self.fanout = MicFanout(config.device)
        #: ``on_frame`` is simply the first listener at 24 kHz.
        self.on_frame = on_frame
        if on_frame is not None:
            self.fanout.listen(MODEL_RATE, on_frame)
        self._sup = FaultSupervisor(
            "capture", config.device, self._report, start_s=BACKOFF_START_S, cap_s=BACKOFF_CAP_S
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._queues: list[FrameQueue] = []
        self._deadline = 0.0
        self._last_overrun_log = 0.0

    # ---------------------------------------------------------------- public surface

    @property
    def faulted(self) -> bool:
        """True while the device is missing and capture is retrying."""
        return self._sup.faulted

    def listen(self, rate: int, callback: Callable[[bytes], object]) -> Unsubscribe:
        """Call ``callback(frame)`` on the event loop with each 20 ms frame of mono s16le at
        ``rate`` Hz (``rate // 50`` samples); returns a function that unsubscribes. The callback
        must be cheap; a raising one is logged and kept (see :mod:`device.audio.fanout`)."""
        return self.fanout.listen(rate, callback)

    def start(self) -> None:
        """Start capturing (call on the running event loop) without iterating :meth:`frames`."""
        if self._task is not None or self._closed:
            return
        self._loop = asyncio.get_running_loop()
        self._deadline = time.monotonic() + STALL_S + BACKOFF_CAP_S
        self._task = self._loop.create_task(self._supervise(), name=f"capture:{self.config.device}")

    async def frames(
        self, rate: int = MODEL_RATE, max_frames: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Yield 20 ms frames at ``rate`` until :meth:`aclose`; starts capturing on first use.

        A bounded queue listener: a consumer that falls behind by more than ``max_frames``
        (default ``config.max_queue_frames``) loses its oldest frames (``stats.dropped``),
        and no other listener notices."""
        queue = self.fanout.queue(rate, max_frames or self.config.max_queue_frames, self._dropped)
        self._queues.append(queue)
        self.start()
        if self._closed:
            queue.close()
        try:
            async for frame in queue:
                yield frame
        finally:
            queue.close()
            if queue in self._queues:
                self._queues.remove(queue)

    def alive(self) -> bool:
        """False once capture has crashed, or an open device has delivered nothing for
        ``STALL_S``. Retrying a missing device counts as alive; so does not having started."""
        if self._closed or self._sup.crashed_for_good:
            return False
        if self._task is None:
            return True
        return not self._task.done() and time.monotonic() < self._deadline

    async def aclose(self) -> None:
        """Stop reading, close the PCM and end :meth:`frames`."""
        self._closed = True
        for queue in list(self._queues):
            queue.close()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            # wait() neither raises the task's CancelledError nor swallows one aimed at us.
            await asyncio.wait([task])

    # ---------------------------------------------------------------- supervision

    def _report(self, fault: AudioFault) -> None:
        self.stats.faults += 1
        if self.on_fault is not None and self._loop is not None:
            self._loop.call_soon(self.on_fault, fault)

    def _dropped(self) -> None:
        self.stats.dropped += 1

    async def _supervise(self) -> None:
        await self._sup.watch(self._open_and_read_forever())

    async def _open_and_read_forever(self) -> None:
        import alsaaudio

        c = self.config
        dsp = CaptureDSP(c.rate, c.fmt, c.channels)
        sup = self._sup
        while not self._closed:
            self._deadline = time.monotonic() + STALL_S + BACKOFF_CAP_S
            self.stats.open_attempts += 1
            try:
                pcm = await open_off_loop(self._open, f"open:{c.device}")
            except alsaaudio.ALSAAudioError as exc:
                sup.failed("missing", str(exc))
                await self._retry_later()
                continue
            dsp.reset()
            self.fanout.reset()
            try:
                await PcmReader(self, pcm, dsp).run()
            except alsaaudio.ALSAAudioError as exc:
                sup.failed("lost", str(exc))
            finally:
                with contextlib.suppress(Exception):
                    pcm.close()
            await self._retry_later()  # the dead PCM is closed first

    async def _retry_later(self) -> None:
        delay = self._sup.next_delay()
        self._deadline = time.monotonic() + delay + STALL_S
        await asyncio.sleep(delay)

    def _open(self) -> Any:
        import alsaaudio

        c = self.config
        fmt = alsaaudio.PCM_FORMAT_S16_LE if c.fmt == "S16_LE" else alsaaudio.PCM_FORMAT_S32_LE
        return alsaaudio.PCM(
            type=alsaaudio.PCM_CAPTURE,
            mode=alsaaudio.PCM_NONBLOCK,
            device=c.device,
            rate=c.rate,
            channels=c.channels,
            format=fmt,
            periodsize=c.period_frames,
            periods=c.periods,
        )

    # ---------------------------------------------------------------- delivery

    def _deliver(self, frames: list[bytes], t_read: int) -> None:
        self.fanout.deliver(frames)
        self.stats.frames += len(frames)
        if self.latencies_ns is not None:
            self.latencies_ns.extend([time.perf_counter_ns() - t_read] * len(frames))

    def _overrun(self) -> None:
        stats = self.stats
        stats.overruns += 1
        now = time.monotonic()
        if now - self._last_overrun_log >= 1.0:
            self._last_overrun_log = now
            log.warning("capture overrun on %r (%d so far)", self.config.device, stats.overruns)
