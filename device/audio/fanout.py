"""The microphone fan-out: every 20 ms frame of 24 kHz mono s16le to each listener, at the
listener's own rate.

Listeners are grouped by rate; each rate other than 24 kHz has one streaming soxr resampler, fed
each frame once however many listeners share the rate, and its output is cut into exact 20 ms
frames (``rate // 50`` samples). A listener is either

* a **callback** (:meth:`MicFanout.listen`), called on the event loop with each frame. It must be
  cheap (copy, count, hand on). One that raises is **kept** (a detector tripping on one odd frame
  should not go deaf for good): the first failure is logged with its traceback, later ones at
  most once a minute with a count, and the other listeners still get the frame. One that takes
  longer than ``SLOW_LISTENER_S`` is named in a warning once, because it delays the loop;
* a **bounded queue** (:meth:`MicFanout.queue`, an async iterator) for a listener that does
  heavier work in its own task (or hands frames to a thread): when it falls behind, its oldest
  frames are dropped and counted, and nobody else notices.

The fan-out sends nothing anywhere by itself: the one listener that reaches the network is the
session's, and ``RealtimeSession.send_audio`` refuses every frame while muted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from ..realtime.pcm import RATE as MODEL_RATE

log = logging.getLogger("device.audio.capture")

#: A callback listener slower than this is reported once (it holds up the event loop).
SLOW_LISTENER_S = 0.005
#: After the first, a failing listener is logged at most this often.
FAILURE_LOG_S = 60.0
MIN_RATE = 8000
MAX_RATE = 192000

Unsubscribe = Callable[[], None]


class _Listener:
    __slots__ = ("callback", "failures", "last_log", "name", "slow_reported")

    def __init__(self, callback: Callable[[bytes], object], name: str) -> None:
        self.callback = callback
        self.name = name
        self.failures = 0
        self.last_log = 0.0
        self.slow_reported = False


class _RateGroup:
    """The listeners at one rate and the resampler feeding them."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.listeners: list[_Listener] = []
        self.frame_bytes = rate // 50 * 2
        self.pending = bytearray()
        self.resampler: Any = None
        if rate != MODEL_RATE:
            import soxr

            self.resampler = soxr.ResampleStream(MODEL_RATE, rate, 1, dtype="int16", quality="LQ")

    def convert(self, frame: bytes) -> list[bytes]:
        if self.resampler is None:
            return [frame]
        out = self.resampler.resample_chunk(np.frombuffer(frame, dtype="<i2"), last=False)
        buf = self.pending
        buf += out.astype("<i2", copy=False).tobytes()
        size = self.frame_bytes
        if len(buf) < size:
            return []
        n = len(buf) // size * size
        frames = [bytes(buf[i : i + size]) for i in range(0, n, size)]
        del buf[:n]
        return frames

    def reset(self) -> None:
        self.pending.clear()
        if self.resampler is not None:
            self.resampler.clear()


class FrameQueue:
    """A bounded queue listener: ``async for frame in q`` until :meth:`close`."""

    def __init__(self, max_frames: int, on_drop: Callable[[], None] | None = None) -> None:
        if max_frames < 1:
            raise ValueError(f"max_frames: expected >= 1, got {max_frames}")
        self.frames: deque[bytes] = deque()
        self.max_frames = max_frames
        #: Frames dropped because the consumer fell behind.
        self.dropped = 0
        self._on_drop = on_drop
        self._wakeup = asyncio.Event()
        self._closed = False
        self.unsubscribe: Unsubscribe = lambda: None

    def put(self, frame: bytes) -> None:
        frames = self.frames
        if len(frames) >= self.max_frames:
            frames.popleft()
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
        frames.append(frame)
        self._wakeup.set()

    def close(self) -> None:
        """Stop listening; the iterator ends after the frames already queued."""
        self._closed = True
        self.unsubscribe()
        self._wakeup.set()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        frames = self.frames
        try:
            while not self._closed:
                if frames:
                    yield frames.popleft()
                    continue
                self._wakeup.clear()
                await self._wakeup.wait()
            while frames:
                yield frames.popleft()
        finally:
            self.unsubscribe()


class MicFanout:
    """Frames of 24 kHz audio → listeners at their own rates (see the module docstring)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._groups: dict[int, _RateGroup] = {}

    def listen(self, rate: int, callback: Callable[[bytes], object]) -> Unsubscribe:
        """Call ``callback(frame)`` on the loop with each 20 ms frame at ``rate`` Hz
        (``rate // 50`` samples of mono s16le); returns the function that stops it."""
        if not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
            raise ValueError(f"listener rate: expected {MIN_RATE}..{MAX_RATE} Hz, got {rate!r}")
        group = self._groups.get(rate)
        if group is None:
            group = self._groups[rate] = _RateGroup(rate)
        listener = _Listener(callback, getattr(callback, "__qualname__", repr(callback)))
        group.listeners.append(listener)

        def unsubscribe() -> None:
            if listener in group.listeners:
                group.listeners.remove(listener)
            if not group.listeners and self._groups.get(rate) is group:
                del self._groups[rate]

        return unsubscribe

    def queue(
        self, rate: int, max_frames: int, on_drop: Callable[[], None] | None = None
    ) -> FrameQueue:
        """A bounded :class:`FrameQueue` listener at ``rate``; ``close()`` it when done."""
        q = FrameQueue(max_frames, on_drop)
        q.unsubscribe = self.listen(rate, q.put)
        return q

    def __len__(self) -> int:
        return sum(len(g.listeners) for g in self._groups.values())

    def rates(self) -> list[int]:
        return sorted(self._groups)

    def deliver(self, frames: list[bytes]) -> None:
        """Hand 24 kHz frames to every listener (each rate resampled once per frame)."""
        for group in list(self._groups.values()):
            for frame in frames:
                for out in group.convert(frame):
                    for listener in list(group.listeners):
                        self._call(listener, out)

    def reset(self) -> None:
        """Forget resampler state (the device was reopened: the stream is discontinuous)."""
        for group in self._groups.values():
            group.reset()

    def _call(self, listener: _Listener, frame: bytes) -> None:
        t = time.perf_counter()
        try:
            listener.callback(frame)
        except Exception:  # the listener's bug must not stop the microphone or the others
            listener.failures += 1
            now = time.monotonic()
            if listener.failures == 1:
                log.exception(
                    "mic listener %s (a consumer of %r) failed on a frame; it keeps listening",
                    listener.name,
                    self.device,
                )
                listener.last_log = now
            elif now - listener.last_log >= FAILURE_LOG_S:
                listener.last_log = now
                log.error(
                    "mic listener %s (a consumer of %r) has failed on %d frames",
                    listener.name,
                    self.device,
                    listener.failures,
                )
        spent = time.perf_counter() - t
        if spent > SLOW_LISTENER_S and not listener.slow_reported:
            listener.slow_reported = True
            log.warning(
                "mic listener %s took %.1f ms on the event loop; listeners must be cheap "
                "(use a queue listener for heavy work)",
                listener.name,
                spent * 1000,
            )
