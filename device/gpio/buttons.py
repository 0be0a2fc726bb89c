"""Buttons that emit action names: gpiozero edges → debounce → gestures → ``emit(action)``.

Threads. gpiozero calls button callbacks in its own threads (the caller's thread for mock
pins). A callback only stamps the edge with the injected clock and hands it to the event loop
with ``loop.call_soon_threadsafe``; debouncing, gestures and actions all run on the loop, so the
session keeps one owner. The decisions themselves are the pure machines of
:mod:`device.gpio.gestures`; this module only schedules their wake-ups on the loop.

The clock is a callable returning nanoseconds (default ``time.perf_counter_ns``), used both to
stamp edges and to decide when a gesture's time has come.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .gestures import Debounce, Edge, Gesture

log = logging.getLogger("device.gpio")

Clock = Callable[[], int]
#: Volume buttons repeat after being held this long, at this interval.
REPEAT_DELAY = 0.5
REPEAT_INTERVAL = 0.2


@dataclass
class PressStats:
    """Edge → loop latency of button edges (nanoseconds), for benchmarks and ``status``.

    ``edges`` counts the edges acted on. An edge's time is when gpiozero reported the pin
    change; an edge delivered when a lockout ends (``deferred``) keeps the time of the ignored
    edge it stands for, so its latency includes that wait. ``ignored``: bounce edges dropped
    during a lockout.
    """

    edges: int = 0
    last_edge_ns: int = 0
    last_latency_ns: int = 0
    ignored: int = 0
    deferred: int = 0
    latencies_ns: collections.deque[int] = field(
        default_factory=lambda: collections.deque(maxlen=10000)
    )

    def record(self, edge_ns: int, now_ns: int) -> None:
        latency = now_ns - edge_ns
        self.edges += 1
        self.last_edge_ns = edge_ns
        self.last_latency_ns = latency
        self.latencies_ns.append(latency)


@dataclass(eq=False)
class _Button:
    device: Any  # the gpiozero Button, read again when a lockout ends
    debounce: Debounce
    gesture: Gesture | None = None
    on_press: str | None = None
    on_release: str | None = None
    repeat: str | None = None  # emitted on press and again while held
    lockout: asyncio.TimerHandle | None = None
    timer: asyncio.TimerHandle | None = None  # the gesture's next deadline, or the next repeat

    def cancel(self) -> None:
        for handle in (self.lockout, self.timer):
            if handle is not None:
                handle.cancel()
        self.lockout = self.timer = None
        if self.gesture is not None:
            self.gesture.cancel()


class Buttons:
    """The buttons of a board; each accepted edge becomes action names passed to ``emit``.

    Construct and use it on the loop thread (``loop``); only :meth:`post` runs in gpiozero's.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        emit: Callable[[str], None],
        *,
        bounce_ms: int,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        self.loop = loop
        self.clock = clock
        self.stats = PressStats()
        self._emit = emit
        self._bounce_ns = bounce_ms * 1_000_000
        self._buttons: dict[str, _Button] = {}
        self._closed = False

    def add(
        self,
        name: str,
        device: Any,
        *,
        gesture: Gesture | None = None,
        on_press: str | None = None,
        on_release: str | None = None,
        repeat: str | None = None,
    ) -> None:
        """Watch gpiozero ``device``: a ``gesture`` (single/long/double), plain ``on_press``/
        ``on_release`` actions, or an action that ``repeat``\\ s while held."""
        debounce = Debounce(self._bounce_ns, bool(device.is_pressed))
        self._buttons[name] = _Button(device, debounce, gesture, on_press, on_release, repeat)
        device.when_pressed = lambda: self.post(name, True)
        device.when_released = lambda: self.post(name, False)

    def post(self, name: str, pressed: bool) -> None:
        """gpiozero thread: stamp the edge and hand it to the loop."""
        at_ns = self.clock()
        if self._closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop is already closed (shutdown)
            self.loop.call_soon_threadsafe(self._on_edge, name, pressed, at_ns)

    def close(self) -> None:
        """Nothing more is emitted: pending lockouts, gestures and repeats are cancelled."""
        self._closed = True
        for button in self._buttons.values():
            button.cancel()

    # ------------------------------------------------------------------ loop

    def _on_edge(self, name: str, pressed: bool, at_ns: int) -> None:
        b = self._buttons.get(name)
        if self._closed or b is None:
            return
        bouncing = at_ns < b.debounce.until_ns
        edge = b.debounce.edge(pressed, at_ns)
        if bouncing:  # look again when the lockout ends
            self.stats.ignored += 1
            if b.lockout is None:
                b.lockout = self._call_at(b.debounce.until_ns, self._settle, name)
        elif edge is not None:
            self._accept(b, edge)

    def _settle(self, name: str) -> None:
        b = self._buttons[name]
        b.lockout = None
        deadline = b.debounce.deadline
        if self._closed or deadline is None:
            return
        now = self.clock()
        if now < deadline:  # a later accepted edge started a new lockout
            b.lockout = self._call_at(deadline, self._settle, name)
            return
        try:
            level = bool(b.device.is_pressed)
        except Exception:
            log.exception("could not read the %s button", name)
            return
        edge = b.debounce.settle(now, level)
        if edge is not None:
            self.stats.deferred += 1
            self._accept(b, edge)

    def _accept(self, b: _Button, edge: Edge) -> None:
        if b.gesture is not None:
            g = b.gesture
            self._run(g.press(edge.at_ns) if edge.pressed else g.release(edge.at_ns))
            self._arm(b)
        elif b.repeat is not None:
            if b.timer is not None:
                b.timer.cancel()
                b.timer = None
            if edge.pressed:
                self._repeat(b, REPEAT_DELAY)
        else:
            action = b.on_press if edge.pressed else b.on_release
            self._run([action] if action else [])
        self.stats.record(edge.at_ns, self.clock())

    def _arm(self, b: _Button) -> None:
        """Wake the gesture at its next deadline."""
        if b.timer is not None:
            b.timer.cancel()
            b.timer = None
        deadline = b.gesture.deadline if b.gesture is not None else None
        if deadline is not None:
            b.timer = self._call_at(deadline, self._expire, b)

    def _expire(self, b: _Button) -> None:
        b.timer = None
        if self._closed or b.gesture is None:
            return
        self._run(b.gesture.expire(self.clock()))
        self._arm(b)

    def _repeat(self, b: _Button, delay: float) -> None:
        assert b.repeat is not None
        self._run([b.repeat])
        b.timer = self.loop.call_later(delay, self._repeat, b, REPEAT_INTERVAL)

    def _run(self, actions: list[str]) -> None:
        for action in actions:
            try:
                self._emit(action)
            except Exception:
                log.exception("button action %s failed", action)

    def _call_at(
        self, at_ns: int, callback: Callable[..., None], *args: Any
    ) -> asyncio.TimerHandle:
        wait_s = max(0.0, (at_ns - self.clock()) / 1e9)
        return self.loop.call_later(wait_s, callback, *args)
