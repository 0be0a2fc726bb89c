"""ALSA microphone capture → 20 ms frames of 24 kHz mono s16le for the realtime model.

A daemon thread owns the PCM: it opens the device, reads one period at a time (the blocking ALSA
calls never run on the event loop), downmixes to mono, converts S32_LE to S16, resamples to
24 kHz with a streaming soxr resampler and cuts the result into exact 20 ms frames (960 bytes).
Frames reach the event loop through ``loop.call_soon_threadsafe`` into a bounded deque; when
the consumer stalls the oldest frames are dropped and counted.

Faults never raise into the application:

* overrun (``read`` returns ``-EPIPE``): pyalsaaudio has already re-prepared the stream; the
  overrun is counted and logged at most once per second. Overruns are not sent to ``on_fault``.
* device missing at start or lost mid-session (``ALSAAudioError``): ``on_fault`` receives an
  :class:`AudioFault` (kind ``"missing"`` or ``"lost"``) naming the device, and the thread
  retries with exponential backoff (0.5 s doubling to 5 s); when the device is back a
  ``"recovered"`` fault follows. ``on_fault`` always runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..realtime.errors import ConfigError

log = logging.getLogger("device.audio.capture")

#: The model's audio rate.
MODEL_RATE = 24000
#: Samples (and bytes) in one 20 ms model frame.
FRAME_SAMPLES = MODEL_RATE * 20 // 1000
FRAME_BYTES = FRAME_SAMPLES * 2
#: Retry backoff after a device error: first wait and cap, in seconds.
BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 5.0
#: A reading thread that has not returned from ``read`` for this long counts as wedged.
STALL_S = 3.0

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

    def __post_init__(self) -> None:
        if self.fmt not in _FORMATS:
            raise ConfigError(f"audio.format: expected S16_LE or S32_LE, got {self.fmt!r}")
        if self.channels < 1:
            raise ConfigError(f"audio.channels: expected >= 1, got {self.channels}")
        if self.rate < 8000:
            raise ConfigError(f"audio.rate: expected >= 8000, got {self.rate}")
        if self.period_ms < 1 or self.max_queue_frames < 1:
            raise ConfigError("audio.period_ms and max_queue_frames must be positive")

    @property
    def period_frames(self) -> int:
        return self.rate * self.period_ms // 1000


@dataclass(frozen=True)
class AudioFault:
    """Something went wrong (or right again) with an audio device.

    ``kind`` is ``"missing"`` (could not open), ``"lost"`` (failed mid-session),
    ``"recovered"`` (open again after a fault) or ``"crashed"`` (the audio thread died).
    """

    device: str
    message: str
    kind: str

    def __str__(self) -> str:
        return self.message


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

    Pure computation, no ALSA: the capture thread and the benchmark share it.
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
    """Microphone frames as an async iterator; see the module docstring for the threading.

    ::

        capture = AlsaCapture(CaptureConfig(device="plughw:CARD=Mic"), on_fault=print)
        async for frame in capture.frames():   # 960 bytes = 20 ms of 24 kHz mono s16le
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
        #: Called on the event loop with each frame instead of queueing it for
        #: :meth:`frames` (start the thread with :meth:`start`): one hop less per frame.
        self.on_frame = on_frame
        self.stats = CaptureStats()
        #: With ``measure=True``: ns from ``read`` returning to the frame being queued.
        self.latencies_ns: deque[int] | None = deque(maxlen=100_000) if measure else None
        self._queue: deque[bytes] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._deadline = 0.0
        self._crashed = False
        self._faulted = False
        self._last_overrun_log = 0.0

    # ---------------------------------------------------------------- public surface

    @property
    def faulted(self) -> bool:
        """True while the device is missing and the thread is retrying."""
        return self._faulted

    async def frames(self) -> AsyncIterator[bytes]:
        """Yield 20 ms frames until :meth:`aclose`; starts the capture thread on first use."""
        self._start()
        wakeup = self._wakeup
        assert wakeup is not None
        queue = self._queue
        while not self._closed:
            if queue:
                yield queue.popleft()
                continue
            wakeup.clear()
            await wakeup.wait()
        while queue:
            yield queue.popleft()

    def alive(self) -> bool:
        """False once the thread has crashed or a ``read`` has hung for ``STALL_S`` seconds.

        Retrying a missing device counts as alive. Before the first :meth:`frames` it is True.
        """
        if self._closed or self._crashed:
            return False
        if self._thread is None:
            return True
        return self._thread.is_alive() and time.monotonic() < self._deadline

    async def aclose(self) -> None:
        """Stop the thread (it closes the PCM) and end :meth:`frames`."""
        self._closed = True
        self._stop.set()
        if self._wakeup is not None:
            self._wakeup.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            # Poll rather than join in the default executor: a wedged ALSA read must not make
            # the interpreter wait for an executor thread at exit.
            deadline = time.monotonic() + 2.0
            while thread.is_alive() and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            if thread.is_alive():
                log.warning("capture thread for %r did not stop in time", self.config.device)

    # ---------------------------------------------------------------- event loop side

    def start(self) -> None:
        """Start capturing (on the running event loop) without iterating :meth:`frames`."""
        self._start()

    def _start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._deadline = time.monotonic() + STALL_S + BACKOFF_CAP_S
        self._thread = threading.Thread(
            target=self._run, name=f"capture:{self.config.device}", daemon=True
        )
        self._thread.start()

    def _deliver(self, frames: list[bytes], t_read: int) -> None:
        on_frame = self.on_frame
        if on_frame is not None:
            for frame in frames:
                on_frame(frame)
            self.stats.frames += len(frames)
            if self.latencies_ns is not None:
                self.latencies_ns.extend([time.perf_counter_ns() - t_read] * len(frames))
            return
        queue = self._queue
        limit = self.config.max_queue_frames
        for frame in frames:
            if len(queue) >= limit:
                queue.popleft()
                self.stats.dropped += 1
            queue.append(frame)
        self.stats.frames += len(frames)
        if self.latencies_ns is not None:
            dt = time.perf_counter_ns() - t_read
            self.latencies_ns.extend([dt] * len(frames))
        assert self._wakeup is not None
        self._wakeup.set()

    def _fault(self, kind: str, message: str) -> None:
        self.stats.faults += 1
        fault = AudioFault(self.config.device, message, kind)
        if kind == "recovered":
            log.info("%s", message)
        else:
            log.error("%s", message)
        if self.on_fault is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self.on_fault, fault)

    # ---------------------------------------------------------------- capture thread

    def _run(self) -> None:
        try:
            self._loop_forever()
        except BaseException as exc:  # the thread must report, not vanish silently
            self._crashed = True
            self._fault("crashed", f"capture thread for {self.config.device!r} crashed: {exc!r}")
            log.exception("capture thread crashed")

    def _open(self) -> Any:
        import alsaaudio

        c = self.config
        fmt = alsaaudio.PCM_FORMAT_S16_LE if c.fmt == "S16_LE" else alsaaudio.PCM_FORMAT_S32_LE
        return alsaaudio.PCM(
            type=alsaaudio.PCM_CAPTURE,
            mode=alsaaudio.PCM_NORMAL,
            device=c.device,
            rate=c.rate,
            channels=c.channels,
            format=fmt,
            periodsize=c.period_frames,
            periods=4,
        )

    def _loop_forever(self) -> None:
        import alsaaudio

        c = self.config
        dsp = CaptureDSP(c.rate, c.fmt, c.channels)
        backoff = BACKOFF_START_S
        stop = self._stop
        loop = self._loop
        assert loop is not None
        while not stop.is_set():
            self._deadline = time.monotonic() + STALL_S + BACKOFF_CAP_S
            self.stats.open_attempts += 1
            try:
                pcm = self._open()
            except alsaaudio.ALSAAudioError as exc:
                if not self._faulted:
                    self._faulted = True
                    self._fault("missing", f'capture device "{c.device}" not available: {exc}')
                self._deadline = time.monotonic() + backoff + STALL_S
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_CAP_S)
                continue
            if self._faulted:
                self._faulted = False
                self._fault("recovered", f'capture device "{c.device}" recovered')
            backoff = BACKOFF_START_S
            dsp.reset()
            try:
                self._read_loop(pcm, dsp, loop)
            except alsaaudio.ALSAAudioError as exc:
                self._faulted = True
                self._fault("lost", f'capture device "{c.device}" failed: {exc}')
                self._deadline = time.monotonic() + backoff + STALL_S
                stop.wait(backoff)
            finally:
                with contextlib.suppress(Exception):
                    pcm.close()

    def _read_loop(self, pcm: Any, dsp: CaptureDSP, loop: asyncio.AbstractEventLoop) -> None:
        stop = self._stop
        stats = self.stats
        period_s = self.config.period_ms / 1000
        while not stop.is_set():
            # The first read of a fresh stream may take a while (pulse needs ~2 s here).
            self._deadline = time.monotonic() + STALL_S + period_s
            n, data = pcm.read()
            t_read = time.perf_counter_ns()
            stats.reads += 1
            if n < 0:
                stats.overruns += 1
                now = time.monotonic()
                if now - self._last_overrun_log >= 1.0:
                    self._last_overrun_log = now
                    log.warning(
                        "capture overrun on %r (%d so far)", self.config.device, stats.overruns
                    )
                continue
            if n == 0:
                stop.wait(period_s / 4)
                continue
            frames = dsp.process(data)
            if frames:
                try:
                    loop.call_soon_threadsafe(self._deliver, frames, t_read)
                except RuntimeError:  # event loop closed: nobody is listening any more
                    return
