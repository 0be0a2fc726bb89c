"""Debounce and gestures as pure machines, and Buttons driven by a fake clock: no sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory
from waiting import until

from device.gpio import Buttons, Debounce, Edge, Gesture

from .rig import FakeClock

MS = 1_000_000
S = 1_000_000_000


def gesture(long: str = "none", double: str = "none") -> Gesture:
    return Gesture("single", long, double, long_ns=1 * S, double_ns=300 * MS)


# ---------------------------------------------------------------------------------- gestures


def test_without_long_or_double_a_press_acts_on_press() -> None:
    g = gesture()
    assert g.press(0) == ["single"]
    assert g.release(10 * MS) == []
    assert g.deadline is None


def test_a_long_press_fires_at_long_ns_while_still_held() -> None:
    g = gesture(long="long")
    assert g.press(5 * S) == []
    assert g.deadline == 6 * S
    assert g.expire(6 * S - 1) == []  # not yet
    assert g.expire(6 * S) == ["long"]
    assert g.release(9 * S) == []  # the release after a long press does nothing
    assert g.deadline is None


def test_with_a_long_action_a_short_press_acts_on_release() -> None:
    g = gesture(long="long")
    assert g.press(0) == []
    assert g.release(999 * MS) == ["single"]
    assert g.deadline is None
    assert g.expire(2 * S) == []  # the long timer died with the release


def test_a_hold_seen_only_at_release_is_still_a_long_press() -> None:
    """The loop was too busy to wake at the deadline: the release edge's time decides."""
    g = gesture(long="long")
    g.press(0)
    assert g.release(1 * S) == ["long"]


def test_double_press_runs_the_double_action_not_two_singles() -> None:
    g = gesture(double="double")
    assert g.press(0) == []
    assert g.release(50 * MS) == []
    assert g.deadline == 350 * MS
    assert g.press(200 * MS) == ["double"]
    assert g.release(250 * MS) == []
    assert g.deadline is None
    assert g.expire(10 * S) == []


def test_with_a_double_action_a_single_press_waits_for_the_whole_window() -> None:
    g = gesture(double="double")
    g.press(0)
    g.release(50 * MS)
    assert g.expire(349 * MS) == []
    assert g.expire(350 * MS) == ["single"]
    # two presses further apart than the window are two singles
    g.press(1 * S)
    g.release(1 * S + 50 * MS)
    assert g.expire(2 * S) == ["single"]


def test_a_second_press_after_the_window_is_a_new_press_even_if_nobody_woke() -> None:
    g = gesture(double="double")
    g.press(0)
    g.release(50 * MS)
    assert g.press(400 * MS) == ["single"]  # the first one's window ended before this edge
    assert g.release(450 * MS) == []
    assert g.expire(750 * MS) == ["single"]


def test_long_and_double_together() -> None:
    g = gesture(long="long", double="double")
    g.press(0)
    assert g.expire(1 * S) == ["long"]
    assert g.release(2 * S) == []
    g.press(3 * S)
    g.release(3 * S + 100 * MS)
    assert g.press(3 * S + 200 * MS) == ["double"]
    assert g.expire(10 * S) == []  # the second press's long timer never started


def test_cancel_forgets_pending_actions() -> None:
    g = gesture(long="long", double="double")
    g.press(0)
    g.cancel()
    assert g.deadline is None and g.expire(10 * S) == []


# ---------------------------------------------------------------------------------- debounce


def test_the_first_edge_is_accepted_at_once_and_bounce_is_ignored() -> None:
    d = Debounce(30 * MS)
    assert d.edge(True, 100 * MS) == Edge(True, 100 * MS)
    for t in (101, 102, 103, 104):  # contact bounce, ending pressed
        assert d.edge(t % 2 == 0, t * MS) is None
    assert d.deadline == 130 * MS
    assert d.settle(130 * MS, level=True) is None  # still pressed: nothing was missed
    assert d.deadline is None
    assert d.edge(False, 200 * MS) == Edge(False, 200 * MS)


def test_a_tap_shorter_than_the_lockout_keeps_its_release_time() -> None:
    d = Debounce(30 * MS)
    d.edge(True, 0)
    assert d.edge(False, 5 * MS) is None  # inside the lockout
    assert d.settle(29 * MS, level=False) is None  # too early
    assert d.settle(30 * MS, level=False) == Edge(False, 5 * MS, deferred=True)
    assert d.pressed is False and d.deadline is None


def test_bounce_0_means_no_lockout() -> None:
    d = Debounce(0)
    assert [d.edge(p, t) for p, t in ((True, 1), (False, 2), (True, 3))] == [
        Edge(True, 1),
        Edge(False, 2),
        Edge(True, 3),
    ]
    assert d.edge(True, 4) is None  # no change, nothing to accept


# ---------------------------------------------------------------------------------- Buttons


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


async def test_buttons_tell_gestures_apart_on_the_fake_clock(factory: MockFactory) -> None:
    clock = FakeClock()
    emitted: list[str] = []
    buttons = Buttons(asyncio.get_running_loop(), emitted.append, bounce_ms=30, clock=clock)
    device = Button(27, bounce_time=None, pin_factory=factory)
    buttons.add("mute", device, gesture=Gesture("single", "long", "double", 1 * S, 300 * MS))
    pin = factory.pin(27)

    async def edge(pressed: bool, at_ns: int) -> None:
        clock.now = at_ns
        before = buttons.stats.edges
        pin.drive_low() if pressed else pin.drive_high()
        await until(lambda: buttons.stats.edges > before, what="the edge handed to the loop")

    await edge(True, 0)
    await edge(False, 2 * S)  # held 2 s by the clock, though no time passed
    assert emitted == ["long"]
    await edge(True, 10 * S)
    await edge(False, 10 * S + 50 * MS)
    await edge(True, 10 * S + 200 * MS)
    assert emitted == ["long", "double"]
    await edge(False, 10 * S + 250 * MS)
    assert buttons.stats.last_edge_ns == 10 * S + 250 * MS
    buttons.close()
    device.close()
