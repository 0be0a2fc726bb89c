"""Debounce and gesture recognition for one button, as pure state machines (no I/O, no timers).

Both take edge times in nanoseconds from an injected clock (the caller stamps each edge) and
say when they next need to be woken (:attr:`Debounce.deadline`, :attr:`Gesture.deadline`);
the asyncio layer (:mod:`device.gpio.buttons`) only schedules those wake-ups. Tests drive them
with plain numbers: a long or double press needs no sleep.

Debounce (lockout). The **first** edge of a button is accepted at once; further edges within
``bounce_ns`` of an accepted edge are ignored. An ignored edge may have been the real last one
(a tap shorter than the lockout: the press is accepted, its release is ignored), so when such a
lockout ends the caller reads the button again (:meth:`Debounce.settle`); if it differs from the
last accepted state the missed edge is accepted then, with the time of the ignored edge it
stands for (a tap stays a short press). ``bounce_ns = 0``: no lockout, every change is accepted.

Gestures. A single press acts **on press** unless a gesture must be told apart first:

* no long and no double action: on press;
* a long action, no double action: on release, if released before ``long_ns``; the long action
  fires once ``long_ns`` is reached while still held (the release then does nothing);
* a double action: ``double_ns`` after the release, if no second press came; a second press
  within that window runs the double action at once (its release does nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

NONE = "none"


@dataclass(frozen=True, slots=True)
class Edge:
    """An accepted edge: the button is now ``pressed`` (or released), since ``at_ns``."""

    pressed: bool
    at_ns: int
    deferred: bool = False  # accepted when a lockout ended (it had been ignored)


@dataclass
class Debounce:
    """Lockout debounce state of one button."""

    bounce_ns: int
    pressed: bool = False  # the last accepted state
    until_ns: int = 0  # edges stamped before this fall in the lockout
    #: state → time of the latest edge into it ignored since the last accepted edge
    ignored: dict[bool, int] = field(default_factory=dict)

    @property
    def deadline(self) -> int | None:
        """When :meth:`settle` must be called (the lockout's end), if edges were ignored."""
        return self.until_ns if self.ignored else None

    def edge(self, pressed: bool, at_ns: int) -> Edge | None:
        """An edge into ``pressed`` stamped ``at_ns``: the accepted edge, or ``None``
        (ignored as bounce, or no change)."""
        if at_ns < self.until_ns:
            self.ignored[pressed] = at_ns
            return None
        if pressed == self.pressed:
            return None
        return self._accept(pressed, at_ns, deferred=False)

    def settle(self, now_ns: int, level: bool) -> Edge | None:
        """The lockout may be over: ``level`` is the button read now. Returns the edge an
        ignored edge stood for, if the button differs from the last accepted state."""
        if not self.ignored or now_ns < self.until_ns:
            return None
        if level == self.pressed:
            self.ignored.clear()
            return None
        return self._accept(level, self.ignored.get(level, now_ns), deferred=True)

    def _accept(self, pressed: bool, at_ns: int, *, deferred: bool) -> Edge:
        self.pressed = pressed
        self.until_ns = at_ns + self.bounce_ns
        self.ignored.clear()
        return Edge(pressed, at_ns, deferred)


@dataclass
class Gesture:
    """Tells single, long and double presses of one button apart; returns the actions to run."""

    single: str
    long: str = NONE
    double: str = NONE
    long_ns: int = 1_000_000_000
    double_ns: int = 300_000_000
    _pressed: bool = False
    _press_ns: int = 0
    _done: bool = False  # this press already ran its action (long or double)
    _long_at: int | None = None  # the long action fires then, if still held
    _single_at: int | None = None  # the single action fires then, if no second press came

    @property
    def immediate(self) -> bool:
        return self.long == NONE and self.double == NONE

    @property
    def deadline(self) -> int | None:
        """The next time :meth:`expire` has something to do."""
        due = [t for t in (self._long_at, self._single_at) if t is not None]
        return min(due) if due else None

    def press(self, at_ns: int) -> list[str]:
        if self._pressed:
            return []
        out = self.expire(at_ns)  # a single press whose window ended before this edge
        self._pressed, self._press_ns, self._done = True, at_ns, False
        if self._single_at is not None:  # second press of a double press
            self._single_at = None
            self._done = True
            return [*out, self.double]
        if self.immediate:
            self._done = True
            return [*out, self.single]
        if self.long != NONE:
            self._long_at = at_ns + self.long_ns
        return out

    def release(self, at_ns: int) -> list[str]:
        if not self._pressed:
            return []
        self._pressed = False
        self._long_at = None
        if self._done:
            return []
        if self.long != NONE and at_ns - self._press_ns >= self.long_ns:
            return [self.long]  # held long enough, but nobody looked in time
        if self.double != NONE:
            self._single_at = at_ns + self.double_ns
            return []
        return [self.single]

    def expire(self, now_ns: int) -> list[str]:
        """Run what is due at ``now_ns`` (a long press still held, a single press whose
        double-press window has passed)."""
        out: list[str] = []
        if self._long_at is not None and now_ns >= self._long_at:
            self._long_at = None
            if self._pressed and not self._done:
                self._done = True
                out.append(self.long)
        if self._single_at is not None and now_ns >= self._single_at:
            self._single_at = None
            out.append(self.single)
        return out

    def cancel(self) -> None:
        """Forget pending timers (nothing more will fire)."""
        self._long_at = self._single_at = None
