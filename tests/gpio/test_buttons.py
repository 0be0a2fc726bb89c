"""Buttons on mock pins: gestures, debounce, the gpiozero thread hand-off, volume repeat."""

from __future__ import annotations

import asyncio
import threading
import time

from gpiozero import Button
from recorder import Recorder
from waiting import until

from device.config import ButtonsSection
from device.gpio import Board, GpioConfig

from .rig import (
    CONNECT,
    MUTE,
    MUTE_LED,
    VOL_DOWN,
    VOL_UP,
    CountingVolume,
    FakeClock,
    Rig,
)


async def test_with_a_long_action_a_short_press_acts_on_release(rig: Rig) -> None:
    session = rig.session()
    board = rig.build(session, connect_long="forget", long_press_s=5.0)
    rig.pin(CONNECT).drive_low()
    await rig.edges(board, 1)
    assert session.status == "disconnected"  # decided only on release
    rig.pin(CONNECT).drive_high()
    await until(lambda: session.status == "connected")


async def test_without_gestures_a_press_acts_on_press(rig: Rig) -> None:
    session = rig.session()
    board = rig.build(session, mute_long="none", mute_double="none")
    rig.pin(MUTE).drive_low()
    await rig.edges(board, 1)
    assert session.muted  # while the button is still down
    rig.pin(MUTE).drive_high()


async def test_long_press_mute_action(rig: Rig) -> None:
    session = rig.session()
    session.mute()
    board = rig.build(session, mute_long="unmute", long_press_s=0.2)
    rec = Recorder(session)
    rig.pin(MUTE).drive_low()
    await until(lambda: not session.muted, what="long press unmute")
    rig.pin(MUTE).drive_high()
    await rig.edges(board, 2)
    # a short press still toggles, on release
    await rig.click(board, MUTE)
    await until(lambda: session.muted)
    assert rec.mutes() == [False, True]


async def test_double_press_runs_the_double_action_not_two_singles(rig: Rig) -> None:
    session = rig.session()
    rec = Recorder(session)
    board = rig.build(session, mute_double="mute", double_press_s=0.3)
    for _ in range(2):
        await rig.click(board, MUTE)
    assert session.muted
    assert rec.mutes() == [True]
    await asyncio.sleep(0.4)  # past the window: no single press fires late
    assert rec.mutes() == [True]


async def test_with_a_double_action_a_single_press_waits_for_the_window(rig: Rig) -> None:
    session = rig.session()
    rec = Recorder(session)
    board = rig.build(session, mute_double="mute", double_press_s=0.3)
    muted_at: list[int] = []
    session.subscribe(lambda n: muted_at.append(time.perf_counter_ns()))
    await rig.click(board, MUTE)
    assert not session.muted  # could still become a double press
    released_ns = board.stats.last_edge_ns
    await until(lambda: session.muted, what="single press after the window")
    assert (muted_at[0] - released_ns) / 1e9 >= 0.29  # the whole window, from the release
    # two presses further apart than the window are two singles
    await rig.click(board, MUTE)
    await until(lambda: not session.muted)
    assert rec.mutes() == [True, False]


async def test_connect_double_press_action(rig: Rig) -> None:
    session = rig.session()
    session.mute()
    board = rig.build(session, connect_double="toggle_mute", connect_long="none")
    for _ in range(2):
        await rig.click(board, CONNECT)
    assert not session.muted
    assert session.status == "disconnected"


async def test_mute_button_toggles_and_mute_led_follows(rig: Rig) -> None:
    session = rig.session()
    board = rig.build(session)
    led = rig.pin(MUTE_LED)
    assert led.state == 0
    await rig.click(board, MUTE)
    assert session.muted and led.state == 1
    await rig.click(board, MUTE)
    assert not session.muted and led.state == 0


async def test_press_from_a_gpio_thread_is_handled_on_the_loop(rig: Rig) -> None:
    session = rig.session()
    board = rig.build(session)
    threads: list[int] = []
    session.subscribe(lambda n: threads.append(threading.get_ident()))
    await asyncio.to_thread(rig.pin(MUTE).drive_low)
    await until(lambda: session.muted)
    assert threads == [threading.get_ident()]
    assert board.last_press_latency_ns > 0
    await asyncio.to_thread(rig.pin(MUTE).drive_high)


async def test_a_bouncing_press_acts_on_its_first_edge_exactly_once(rig: Rig) -> None:
    session = rig.session()
    rec = Recorder(session)
    board = rig.build(session, bounce_ms=100)  # mute acts on press (no long/double action)
    pin = rig.pin(MUTE)
    assert pin.bounce is None  # not gpiozero's/lgpio's debounce: it delays every edge
    before_ns = time.perf_counter_ns()
    pin.drive_low()  # the first edge
    after_ns = time.perf_counter_ns()
    await asyncio.sleep(0)  # one loop pass: the posted edge is handled
    assert session.muted  # at once, while the contacts still bounce
    assert before_ns <= board.stats.last_edge_ns <= after_ns  # timed at the first edge
    for _ in range(3):  # contact bounce over a few ms, ending low (pressed)
        await asyncio.sleep(0.001)
        pin.drive_high()
        await asyncio.sleep(0.001)
        pin.drive_low()
    assert time.perf_counter_ns() - before_ns < 100e6, "the burst outlasted the lockout"
    await asyncio.sleep(0.15)  # the lockout ends: the button is still pressed, nothing missed
    assert rec.mutes() == [True]
    assert (board.stats.edges, board.stats.ignored, board.stats.deferred) == (1, 6, 0)
    pin.drive_high()  # the release, after the lockout: acts at once (and does nothing)
    await rig.edges(board, 2)
    assert rec.mutes() == [True] and board.stats.deferred == 0


async def test_a_tap_shorter_than_bounce_ms_is_a_whole_short_press(rig: Rig) -> None:
    session = rig.session()
    session.mute()
    rec = Recorder(session)
    # With a long action, a single press acts on release: the release must not be lost.
    board = rig.build(session, bounce_ms=30, mute_long="mute", long_press_s=0.1)
    pin = rig.pin(MUTE)
    pin.drive_low()
    await rig.edges(board, 1)
    pressed_ns = board.stats.last_edge_ns
    await asyncio.sleep(0.005)
    before_ns = time.perf_counter_ns()
    pin.drive_high()  # inside the press's lockout: ignored now, delivered when it ends
    after_ns = time.perf_counter_ns()
    await asyncio.sleep(0)
    assert board.stats.edges == 1 and board.stats.ignored == 1
    await rig.edges(board, 2)
    assert board.stats.deferred == 1
    released_ns = board.stats.last_edge_ns
    assert before_ns <= released_ns <= after_ns  # the release keeps its own edge time
    assert (released_ns - pressed_ns) / 1e6 < 30
    assert (time.perf_counter_ns() - pressed_ns) / 1e6 >= 29  # ... but acts after the lockout
    await until(lambda: not session.muted, what="the single press (toggle → unmute)")
    await asyncio.sleep(0.15)  # past long_press_s: the tap was not a long press
    assert rec.mutes() == [False]
    assert not session.muted


async def test_bounce_ms_0_means_no_lockout(rig: Rig) -> None:
    session = rig.session()
    rec = Recorder(session)
    board = rig.build(session, bounce_ms=0)
    pin = rig.pin(MUTE)
    for _ in range(2):  # edges microseconds apart: each one acts
        pin.drive_low()
        pin.drive_high()
    await rig.edges(board, 4)
    assert rec.mutes() == [True, False]
    assert (board.stats.ignored, board.stats.deferred) == (0, 0)
    assert pin.bounce is None


async def test_close_cancels_a_pending_lockout(rig: Rig) -> None:
    clock = FakeClock()  # both edges stamped at 0: the release always falls in the lockout
    session = rig.session()
    board = rig.build(session, clock=clock)
    pin = rig.pin(MUTE)
    pin.drive_low()
    pin.drive_high()  # ignored for now, would be delivered when the lockout ends
    await rig.edges(board, 1)
    await until(lambda: board.stats.ignored == 1, what="the release ignored as bounce")
    board.close()
    clock.now = 100_000_000  # the lockout (30 ms) is over by the clock
    await asyncio.sleep(0.06)  # its timer would have fired by now
    assert board.stats.edges == 1 and board.stats.deferred == 0


async def test_volume_buttons_step_and_repeat_while_held(rig: Rig) -> None:
    session = rig.session()
    volume = CountingVolume()
    board = Board(
        session,
        GpioConfig(buttons=ButtonsSection(volume_up=VOL_UP, volume_down=VOL_DOWN)),
        asyncio.get_running_loop(),
        pin_factory=rig.factory,
        volume=volume,
    )
    rig.add(board)
    await rig.click(board, VOL_UP)
    await rig.click(board, VOL_DOWN)
    assert (volume.ups, volume.downs) == (1, 1)
    rig.pin(VOL_UP).drive_low()
    await until(lambda: volume.ups >= 4, what="repeat while held")
    rig.pin(VOL_UP).drive_high()
    await rig.edges(board, 6)
    ups = volume.ups
    await asyncio.sleep(0.5)
    assert volume.ups == ups


async def test_volume_pins_unclaimed_without_a_volume_object(rig: Rig) -> None:
    rig.build(rig.session(), volume_up=VOL_UP)
    Button(VOL_UP, pin_factory=rig.factory).close()
