"""The ALSA half of :class:`~device.audio.capture.AlsaCapture`: one open non-blocking PCM read
on the event loop, driven by its poll descriptors (see the capture module's docstring), and
:func:`open_off_loop`, which both directions use to open a PCM without blocking the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .capture import AlsaCapture, CaptureDSP

log = logging.getLogger("device.audio.capture")

#: An open device that delivers nothing for this long counts as wedged (the first read of a
#: fresh PulseAudio stream takes up to ~2 s).
STALL_S = 3.0
#: Periods read per wake-up at most, so an unpaced device cannot monopolise the event loop.
MAX_READS_PER_WAKE = 8
#: Wake-ups in a row that found nothing to read before the poll descriptors are distrusted and
#: the device is polled on a timer instead (a plugin whose descriptor stays readable).
MAX_EMPTY_WAKES = 64


async def open_off_loop(opener: Callable[[], Any], name: str) -> Any:
    """``opener()`` in a short-lived thread (opening can block: a PulseAudio handshake, a USB
    device waking up); a PCM that arrives after the caller gave up is closed there."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(pcm: Any, exc: BaseException | None) -> None:
        if done.cancelled():
            if pcm is not None:
                with contextlib.suppress(Exception):
                    pcm.close()
        elif exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(pcm)

    def work() -> None:
        pcm: Any = None
        error: BaseException | None = None
        try:
            pcm = opener()
        except BaseException as exc:  # handed to the loop, which decides
            error = exc
        try:
            loop.call_soon_threadsafe(settle, pcm, error)
        except RuntimeError:  # the loop is gone
            if pcm is not None:
                with contextlib.suppress(Exception):
                    pcm.close()

    threading.Thread(target=work, name=name, daemon=True).start()
    return await done


class PcmReader:
    """One open PCM read on the event loop until it fails (``run`` raises) or is cancelled."""

    def __init__(self, owner: AlsaCapture, pcm: Any, dsp: CaptureDSP) -> None:
        self.owner = owner
        self.pcm = pcm
        self.dsp = dsp
        self.loop = asyncio.get_running_loop()
        self.failed: asyncio.Future[None] = self.loop.create_future()
        self.descriptors: list[tuple[int, int]] = list(pcm.polldescriptors())
        #: What the loop saw when it woke us, in poll()'s form: the descriptors are readable.
        self.readable = [(fd, select.POLLIN) for fd, _events in self.descriptors]
        self.watched: list[int] = []
        self.timer: asyncio.TimerHandle | None = None
        self.empty_wakes = 0
        self.moved = False  # a read has returned audio
        self.period_s = owner.config.period_ms / 1000

    async def run(self) -> None:
        try:
            for fd, _events in self.descriptors:
                self.loop.add_reader(fd, self.on_ready)
                self.watched.append(fd)
        except OSError:  # not pollable by epoll (the null plugin's plain file): use a timer
            self.stop_watching()
        if not self.watched:
            self._poll_on_timer()
        try:
            self.read_available()  # the first read starts the stream
            await self.failed
        finally:
            self.stop_watching()

    def stop_watching(self) -> None:
        for fd in self.watched:
            self.loop.remove_reader(fd)
        self.watched.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def on_ready(self) -> None:
        pcm = self.pcm
        try:
            # Let the plugin consume its wake-up (dsnoop's timer, pulse's pipe); the reads
            # below decide whether there really is audio.
            pcm.polldescriptors_revents(self.readable)
        except Exception as exc:
            self.fail(exc)
            return
        if self.read_available() == 0 and not self.failed.done():
            self.empty_wakes += 1
            if self.empty_wakes >= MAX_EMPTY_WAKES:
                log.info(
                    "capture device %r keeps waking with nothing to read: polling it every %d ms",
                    self.owner.config.device,
                    self.owner.config.period_ms // 2,
                )
                self.stop_watching()
                self._poll_on_timer()
        else:
            self.empty_wakes = 0

    def _poll_on_timer(self) -> None:
        if self.failed.done():
            return
        self.read_available()
        self.timer = self.loop.call_later(self.period_s / 2, self._poll_on_timer)

    def read_available(self) -> int:
        """Read what the device holds (up to ``MAX_READS_PER_WAKE`` periods); frames read."""
        owner, pcm, dsp = self.owner, self.pcm, self.dsp
        stats = owner.stats
        got = 0
        periods = overruns = 0
        try:
            # An overrun does not use up the budget: only the read after it restarts the stream,
            # and a stream left prepared would never wake us again.
            while periods < MAX_READS_PER_WAKE and overruns <= MAX_READS_PER_WAKE:
                n, data = pcm.read()
                if n == 0:  # -EAGAIN: nothing more yet
                    break
                t_read = time.perf_counter_ns()
                stats.reads += 1
                if n < 0:  # -EPIPE: overrun; pyalsaaudio re-prepared, the next read restarts
                    owner._overrun()
                    overruns += 1
                    continue
                periods += 1
                got += n
                owner._deadline = time.monotonic() + STALL_S + self.period_s
                if not self.moved:
                    self.moved = True
                    owner._sup.moved()
                frames = dsp.process(data)
                if frames:
                    owner._deliver(frames, t_read)
        except Exception as exc:
            self.fail(exc)
        return got

    def fail(self, exc: BaseException) -> None:
        self.stop_watching()  # a descriptor in error stays readable: stop listening at once
        if not self.failed.done():
            self.failed.set_exception(exc)
