"""The ALSA half of :class:`~device.audio.playback.AlsaPlayback`: one open non-blocking PCM,
written on the event loop from the :class:`~device.audio.playqueue.PlayQueue` (see the
playback module's docstring for the policy)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..realtime.pcm import RATE as MODEL_RATE
from .playqueue import CUE

if TYPE_CHECKING:
    from .playback import AlsaPlayback

log = logging.getLogger("device.audio.playback")

#: A writer that has not been pumped for this long counts as wedged.
STALL_S = 3.0
#: How often an idle speaker's ``avail()`` is checked (notices an unplugged device).
IDLE_CHECK_S = 0.25
#: While audio waits and ALSA holds more than this, the writer sleeps until ALSA is down to it
#: and then tops it up in one write: a write through a plugin (pulse, dmix) costs about the same
#: whatever its length (measured ~0.55 ms for 20, 40 or 100 ms through pulse), so a reply that
#: arrives ahead of real time is written in a few large writes instead of one per period. It is
#: also the least a busy loop can eat into before the speaker runs dry (80 ms did not suffice).
LOW_WATER_S = 0.1
#: Wake-ups in a row from the poll descriptors without room to write before they are
#: distrusted and the PCM is topped up on a timer.
MAX_EMPTY_WAKES = 64
_EPIPE = -32
_EMPTY: np.ndarray[Any, Any] = np.zeros(0, dtype=np.int16)


class PcmWriter:
    """One open PCM, written on the event loop until it fails (``run`` raises) or closes."""

    def __init__(self, owner: AlsaPlayback, pcm: Any) -> None:
        self.owner = owner
        self.pcm = pcm
        self.loop = asyncio.get_running_loop()
        self.failed: asyncio.Future[None] = self.loop.create_future()
        c = owner.config
        self.rate = c.rate
        self.channels = c.channels
        self.period = c.period_frames
        self.period_s = c.period_ms / 1000
        self.buffer_size = int(pcm.info()["buffer_size"])
        self.resampler: Any = None
        if c.rate != MODEL_RATE:
            import soxr

            self.resampler = soxr.ResampleStream(MODEL_RATE, c.rate, 1, dtype="int16", quality="LQ")
        self.fed_item: str | None = None  # item whose samples are inside the resampler
        self.carry: np.ndarray[Any, Any] | None = None  # device frames not yet written
        self.carry_item = CUE
        self.carry_t = 0
        self.tail = False  # the carry is the resampler's flush at an item's end
        self.active = False  # frames are queued in ALSA (not dropped, not run dry)
        self.scheduled = False
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self.descriptors: list[tuple[int, int]] = []
        self.pollable = True
        self.watching: list[tuple[int, bool]] = []  # (fd, is_writer)
        self.empty_wakes = 0
        self.room = 0  # ALSA's free frames after the last fill
        #: Frames left in ALSA when a stream that is ahead gets topped up (LOW_WATER_S).
        self.low = min(int(LOW_WATER_S * self.rate), self.buffer_size - 2 * self.period)

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        try:
            self.descriptors = list(self.pcm.polldescriptors())
        except Exception:
            self.descriptors = []
        self.pollable = bool(self.descriptors)
        self.pump()
        await self.failed

    def probe(self) -> None:
        """Write one period of silence to a reopened device; raise if it accepts none."""
        import alsaaudio

        silence = np.zeros((self.period, self.channels), dtype=np.int16)
        written = int(self.pcm.write(silence))
        if written == _EPIPE:  # pyalsaaudio has re-prepared the stream: once more
            written = int(self.pcm.write(silence))
        if written <= 0:
            raise alsaaudio.ALSAAudioError(f"device accepts no audio (write returned {written})")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stop_watching()
        self._cancel_timer()
        for call in (self.pcm.drop, self.pcm.close):
            with contextlib.suppress(Exception):
                call()
        if not self.failed.done():
            self.failed.set_result(None)

    def fail(self, exc: BaseException) -> None:
        self.stop_watching()
        self._cancel_timer()
        if not self.failed.done():
            self.failed.set_exception(exc)

    # ---------------------------------------------------------------- from the sink

    def kick(self) -> None:
        """New audio was queued: pump once, soon (one pump per burst of deltas)."""
        if not self.scheduled and not self.closed:
            self.scheduled = True
            self.loop.call_soon(self.pump)

    def drop(self) -> None:
        """Interrupt: silence the PCM now and forget what the resampler holds."""
        try:
            self.pcm.drop()
        except Exception as exc:
            self.fail(exc)
            return
        self.owner.stats.last_drop_ns = time.perf_counter_ns()
        self.active = False
        self.carry = None
        self.fed_item = None
        if self.resampler is not None:
            self.resampler.clear()
        self.stop_watching()
        self.kick()  # re-arm the idle check

    # ---------------------------------------------------------------- the pump

    def pump(self) -> None:
        self.scheduled = False
        if self.closed or self.failed.done():
            return
        self.owner.stats.wakeups += 1
        self.owner._deadline = time.monotonic() + STALL_S
        try:
            self._plan(self._fill())
        except Exception as exc:
            self.fail(exc)

    def _avail(self) -> int:
        import alsaaudio

        avail = int(self.pcm.avail())
        if avail < 0:
            if avail != _EPIPE:
                # pyalsaaudio returns snd_pcm_avail()'s errors instead of raising them,
                # e.g. -ENODEV once a USB speaker is unplugged: the device is lost.
                raise alsaaudio.ALSAAudioError(
                    f"{os.strerror(-avail)} [{self.owner.config.device}] (avail() returned {avail})"
                )
            self.active = False  # ran dry (XRUN); the next write re-prepares
            return self.buffer_size
        if not self.active:
            return self.buffer_size  # after a drop avail() is stale until the next write
        return avail

    def _fill(self) -> int:
        """Write what fits; returns frames written."""
        queue = self.owner.queue
        room = self._avail()
        queued = self.buffer_size - room
        queue.observe(queued)
        self.room = room
        if queued > self.low + self.period:
            return 0  # plenty still queued: top up in one write at the low-water mark
        idle = room >= self.buffer_size
        total = 0
        while True:
            if self.carry is None and not self._next_chunk(room, idle=idle and not total):
                break
            assert self.carry is not None
            n = len(self.carry)
            if room < min(n, self.period):
                break  # wait for room
            written = self._write(self.carry[: min(n, room)])
            if written <= 0:
                break
            total += written
            room -= written
            self.carry = self.carry[written:] if written < n else None
        self.room = room
        return total

    def _next_chunk(self, room: int, idle: bool) -> bool:
        """Take (and resample) the next audio into ``carry``; False when there is none."""
        queue = self.owner.queue
        if queue.has_pending() and queue.startable(idle):
            want = max(room, self.period) * MODEL_RATE // self.rate
            taken = queue.take(want)
            assert taken is not None
            item, samples, t_ns = taken
            mono = samples
            if self.resampler is not None:
                mono = self.resampler.resample_chunk(samples, last=False)
                self.fed_item = item
            self.tail = False
        elif (
            not queue.has_pending()
            and self.fed_item is not None
            and time.monotonic() - queue.last_push >= queue.start_timeout_s
        ):
            # The item has ended: flush the resampler's last few milliseconds.
            item, t_ns = self.fed_item, 0
            mono = self.resampler.resample_chunk(_EMPTY, last=True)
            self.resampler.clear()
            self.fed_item = None
            self.tail = True  # the stream has normally run dry by now: not an underrun
        else:
            return False
        self.carry_item, self.carry_t = item, t_ns
        if len(mono) == 0:
            return self._next_chunk(room, idle)
        if self.channels == 1:
            self.carry = np.ascontiguousarray(mono.reshape(-1, 1))
        else:
            self.carry = np.repeat(mono.reshape(-1, 1), self.channels, axis=1)
        return True

    def _write(self, data: np.ndarray[Any, Any]) -> int:
        owner = self.owner
        stats, queue = owner.stats, owner.queue
        written = int(self.pcm.write(data))
        stats.writes += 1
        if written == _EPIPE:
            # The stream ran dry (pyalsaaudio has re-prepared it); repeat the write.
            item = self.carry_item
            if item == queue.last_item and item != CUE and not self.tail:
                stats.underruns += 1
                if stats.underruns == 1 or stats.underruns % 50 == 0:
                    log.warning(
                        "playback underrun on %r (%d so far)", owner.config.device, stats.underruns
                    )
            queue.forget_stream()
            written = int(self.pcm.write(data))
            stats.writes += 1
        if written <= 0:
            return 0
        self.active = True
        queue.wrote(self.carry_item, written)
        stats.written_frames += written
        if owner.latencies_ns is not None and self.carry_t:
            owner.latencies_ns.append(time.perf_counter_ns() - self.carry_t)
            self.carry_t = 0
        return written

    # ---------------------------------------------------------------- when to wake next

    def _plan(self, wrote: int) -> None:
        """Watch the descriptors while audio waits for room; otherwise one timer."""
        queue = self.owner.queue
        self._cancel_timer()
        idle = self.room >= self.buffer_size
        waiting = self.carry is not None or (queue.has_pending() and queue.startable(idle))
        if waiting and self.active:
            queued = self.buffer_size - self.room
            if queued > self.low + self.period:
                self.stop_watching()
                self._later((queued - self.low) / self.rate)
                return
            if wrote:
                self.empty_wakes = 0
            elif self.watching:
                self.empty_wakes += 1
                if self.empty_wakes >= MAX_EMPTY_WAKES:
                    log.info(
                        "playback device %r keeps waking without room: topping it up on a timer",
                        self.owner.config.device,
                    )
                    self.pollable = False
                    self.stop_watching()
            if self.pollable and self._watch():
                # A safety net in case the descriptors stay quiet: the buffer's length.
                self._later(self.buffer_size / self.rate)
                return
            self._later(self.period_s / 2)
            return
        self.stop_watching()
        if queue.has_pending() or self.fed_item is not None:
            # Waiting for the jitter buffer's start (or an item's end): a push kicks sooner.
            due = queue.last_push + queue.start_timeout_s - time.monotonic()
            self._later(min(max(due, 0.001), IDLE_CHECK_S))
        else:
            self._later(IDLE_CHECK_S)

    def _watch(self) -> bool:
        if self.watching:
            return True
        try:
            for fd, events in self.descriptors:
                if events & select.POLLOUT:
                    self.loop.add_writer(fd, self._on_ready)
                    self.watching.append((fd, True))
                else:
                    self.loop.add_reader(fd, self._on_ready)
                    self.watching.append((fd, False))
        except OSError:  # not pollable by epoll (a plain file): use the timer
            self.stop_watching()
            self.pollable = False
            return False
        return True

    def _on_ready(self) -> None:
        try:
            # Let the plugin consume its wake-up (pulse's pipe); avail() then decides.
            revents = [(fd, select.POLLIN | select.POLLOUT) for fd, _ in self.descriptors]
            self.pcm.polldescriptors_revents(revents)
        except Exception as exc:
            self.fail(exc)
            return
        self.pump()

    def stop_watching(self) -> None:
        for fd, is_writer in self.watching:
            if is_writer:
                self.loop.remove_writer(fd)
            else:
                self.loop.remove_reader(fd)
        self.watching.clear()

    def _later(self, delay: float) -> None:
        self.timer = self.loop.call_later(delay, self.pump)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
