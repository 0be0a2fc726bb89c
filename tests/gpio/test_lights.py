"""Lights: the LEDs follow the session's notices, pattern by pattern."""

from __future__ import annotations

import asyncio
import itertools
import statistics

import pytest
from gpiozero.pins.mock import MockFactory, MockPin
from waiting import until

from device.config import LedsSection
from device.gpio import Board, GpioConfig
from device.gpio.lights import PATTERNS, status_pattern
from device.health import Health
from device.realtime.notices import (
    LimitReached,
    Notice,
    SpeakingChanged,
    StatusChanged,
    WakeListening,
)
from device.realtime.status import TransportStatus

from .rig import (
    ACTIVITY_LED,
    CONNECT,
    FAULT_LED,
    MUTE,
    MUTE_LED,
    STATUS_LED,
    TOKEN,
    Rig,
    Watch,
    blink_period,
    drive_to,
    durations,
)

pytestmark = pytest.mark.simulator(token=TOKEN, reply_seconds=2.0)


async def test_mute_led_is_on_exactly_while_muted_at_every_transition(rig: Rig) -> None:
    session = rig.session(auto_reconnect=True)
    session.mute()
    board = rig.build(session, connect_long="none")
    led = rig.pin(MUTE_LED)
    assert led.state == 1  # initial state from session.muted
    checks: list[tuple[str, bool, float]] = []

    def check(notice: Notice) -> None:
        checks.append((type(notice).__name__, session.muted, led.state))

    session.subscribe(check)
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "connected")
    await rig.click(board, MUTE)
    session.mute()
    await rig.click(board, MUTE)
    session.mute()
    rig.gate.shut()
    await rig.sim.drop(code=1006)
    await until(lambda: session.status == "reconnecting")
    session.unmute()
    rig.gate.open()
    await until(lambda: session.status == "connected")
    await rig.click(board, MUTE)
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "disconnected")
    assert len(checks) >= 10
    assert all(state == float(muted) for _, muted, state in checks), checks
    assert {name for name, _, _ in checks} >= {"MuteChanged", "StatusChanged"}
    # the pin history alternates and matches the mute notices exactly
    mutes = [muted for name, muted, _ in checks if name == "MuteChanged"]
    assert [s.state for s in led.states][-len(mutes) :] == [float(m) for m in mutes]


@pytest.mark.parametrize("status", list(TransportStatus))
async def test_status_led_shows_each_status_pattern(rig: Rig, status: TransportStatus) -> None:
    session = rig.session(auto_reconnect=True)
    led = rig.pin(STATUS_LED)
    watch = Watch(session, led)
    board = rig.build(session)
    assert led.state == 0  # disconnected: off from the start
    await drive_to(rig, session, status)
    match status:
        case TransportStatus.DISCONNECTED | TransportStatus.CONNECTED:
            await asyncio.sleep(0.4)  # observe: nothing may change
            expected = 1.0 if status is TransportStatus.CONNECTED else 0.0
            # at most the one change into the state (none if it already showed that value)
            changes = [s.state for s in watch.since(status.value)]
            assert changes in ([expected], []), changes
            assert led.state == expected
        case TransportStatus.CONNECTING | TransportStatus.RECONNECTING:
            await until(lambda: len(watch.since(status.value)) >= 9, what="blinks")
            on, off = blink_period(watch.since(status.value))
            if status is TransportStatus.CONNECTING:  # ~2 Hz
                assert 0.2 <= on <= 0.5 and 0.2 <= off <= 0.5, (on, off)
            else:  # ~5 Hz
                assert 0.07 <= on <= 0.19 and 0.07 <= off <= 0.19, (on, off)
            values = [s.state for s in watch.since(status.value)]
            assert all(a != b for a, b in itertools.pairwise(values)), values
        case TransportStatus.CLOSED:
            await until(lambda: len(watch.since("closed")) >= 14, timeout=15, what="blinks")
            seq = watch.since("closed")
            first_on = next(i for i, st in enumerate(seq) if i > 0 and st.state > 0)
            held = durations(seq[first_on:])
            on_times = [t for v, t in held if v > 0]
            off_times = [t for v, t in held if v == 0]
            assert all(t < 0.35 for t in on_times), held
            short = [t for t in off_times if t < 0.4]
            long = [t for t in off_times if t >= 0.4]
            assert short and long, held
            # two flashes per period: short and long gaps alternate
            kinds = ["s" if t < 0.4 else "l" for t in off_times]
            assert all(a != b for a, b in itertools.pairwise(kinds)), held
            assert 0.5 <= statistics.median(long) <= 1.2, held
    board.close()
    assert led.state == 0


async def test_status_patterns_through_a_whole_life(rig: Rig) -> None:
    """One session through every transition; each segment of the pin history matches."""
    session = rig.session(auto_reconnect=True)
    led = rig.pin(STATUS_LED)
    watch = Watch(session, led)
    board = rig.build(session, connect_long="none")
    rig.gate.shut()
    await rig.click(board, CONNECT)
    await until(lambda: len(watch.since("connecting")) >= 5, what="connecting blinks")
    rig.gate.open()
    await until(lambda: session.status == "connected")
    assert led.state == 1.0
    rig.gate.shut()
    await rig.sim.drop(code=1006)
    await until(lambda: len(watch.since("reconnecting")) >= 5, what="reconnecting blinks")
    slow_on, _ = blink_period(watch.since("connecting")[: len(watch.since("connecting")) - 5])
    fast_on, _ = blink_period(watch.since("reconnecting"))
    assert fast_on < slow_on
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "disconnected")
    assert led.state == 0.0
    # An auth failure (401 twice: the refetch is refused too) shows the double blink ...
    rig.gate.open()
    rig.sim.reject_next(401, count=2)
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "closed")
    await until(lambda: len(watch.since("closed")) >= 6, what="closed double blinks")
    # ... and a press from there connects, and the LED is solid again, blinking no more.
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "connected")
    await asyncio.sleep(0.1)
    settled = len(led.states)
    await asyncio.sleep(0.5)
    assert led.state == 1.0 and len(led.states) == settled
    await session.disconnect()


async def test_rgb_status_led_colours(rig: Rig) -> None:
    session = rig.session(auto_reconnect=True)
    board = rig.build(session, status=None, status_rgb=[13, 19, 26])
    r, g, b = (rig.pin(n) for n in (13, 19, 26))

    def colour() -> tuple[float, float, float]:
        return (r.state, g.state, b.state)

    assert colour() == (0, 0, 0)
    await session.connect()
    assert colour() == (0, 1, 0)
    rig.sim.reject_next(401, count=10)
    await rig.sim.drop(code=1006)
    await until(lambda: session.status == "closed")
    assert colour() == (1, 0, 0)
    # the remaining patterns, told through the notice path
    board.on_notice(StatusChanged(TransportStatus.CONNECTING))
    await until(lambda: len(b.states) >= 4, what="blue blink")
    assert r.state == 0 and g.state == 0
    board.on_notice(StatusChanged(TransportStatus.RECONNECTING))
    await until(lambda: r.state == 1 and 0 < g.state < 1, what="amber")
    board.close()
    assert colour() == (0, 0, 0)


async def test_activity_led_pulses_while_the_model_speaks(rig: Rig) -> None:
    session = rig.session()
    board = rig.build(session)
    led = rig.pin(ACTIVITY_LED)
    await session.connect()
    await session.send_message("Tell me something short.")
    await until(lambda: len({s.state for s in led.states}) >= 5, what="pulse levels")
    assert any(0 < s.state < 1 for s in led.states)  # a pulse, not a blink
    await until(lambda: not session.response_active and led.state == 0, timeout=15)
    board.close()


async def test_fault_led_is_on_exactly_while_a_device_is_faulted(rig: Rig) -> None:
    session = rig.session()
    health = Health()
    lost = 'capture device "plughw:CARD=usbmic" failed: No such device'
    health.set_fault("capture", lost)  # raised before the LEDs came up
    board = rig.build(session, faults=health, fault=FAULT_LED)
    led = rig.pin(FAULT_LED)
    assert led.state == 1
    health.set_fault("playback", 'playback device "hw:0" not available')
    health.set_fault("capture", None)
    assert led.state == 1  # the speaker is still missing
    health.set_fault("playback", None)
    assert led.state == 0
    health.set_fault("capture", lost)
    assert led.state == 1
    # The other LEDs still tell the truth about the transport and mute.
    assert rig.pin(STATUS_LED).state == 0 and rig.pin(MUTE_LED).state == 0
    board.close()
    assert led.state == 0


async def test_closed_status_led_stops_blinking_on_close(rig: Rig) -> None:
    session = rig.session()
    board = rig.build(session)
    led = rig.pin(STATUS_LED)
    board.on_notice(StatusChanged(TransportStatus.CLOSED))
    await until(lambda: len(led.states) >= 3, what="double blink")
    board.close()
    count = len(led.states)
    await asyncio.sleep(0.3)
    assert len(led.states) == count and led.state == 0


async def test_active_low_leds(rig: Rig) -> None:
    session = rig.session()
    session.mute()
    board = rig.build(session, active_high=False)
    assert rig.pin(MUTE_LED).state == 0  # lit = pin low
    assert rig.pin(STATUS_LED).state == 1  # off = pin high
    session.unmute()
    assert rig.pin(MUTE_LED).state == 1
    session.mute()
    board.close()
    # off (driven high) until released; then the pins are inputs, driving nothing
    assert [s.state for s in rig.pin(MUTE_LED).states][-2] == 1
    assert rig.pin(STATUS_LED).function == rig.pin(MUTE_LED).function == "input"


async def test_without_pwm_pins_leds_fall_back_to_on_off(rig: Rig) -> None:
    plain = MockFactory(pin_class=MockPin)
    session = rig.session()
    try:
        board = Board(
            session,
            GpioConfig(leds=LedsSection(status=None, status_rgb=[13, 19, 26])),
            asyncio.get_running_loop(),
            pin_factory=plain,
        )
        board.on_notice(StatusChanged(TransportStatus.RECONNECTING))
        r, g = plain.pin(13), plain.pin(19)
        await until(lambda: r.state and g.state, what="yellow without PWM")
        board.on_notice(StatusChanged(TransportStatus.CLOSED))
        assert (r.state, g.state, plain.pin(26).state) == (1, 0, 0)
        board.on_notice(SpeakingChanged(True))
        activity = plain.pin(ACTIVITY_LED)
        await until(lambda: len(activity.states) >= 3, what="activity blink")
        assert {st.state for st in activity.states} <= {0, 1}
        board.close()
    finally:
        plain.reset()


# ---------------------------------------------------------------------------- wake word, limits


@pytest.mark.parametrize(
    ("status", "listening", "limit", "pattern"),
    [
        (TransportStatus.DISCONNECTED, True, None, "listening"),
        (TransportStatus.DISCONNECTED, False, None, "disconnected"),
        (TransportStatus.CONNECTING, True, None, "connecting"),  # the wake word was heard
        (TransportStatus.CONNECTED, True, None, "connected"),
        (TransportStatus.CLOSED, True, None, "closed"),
        (TransportStatus.CLOSED, False, "daily_connected_minutes", "limit"),
        (TransportStatus.DISCONNECTED, True, "daily_output_audio_tokens", "limit"),
        (TransportStatus.CONNECTED, False, "max_session_minutes", "connected"),
    ],
)
def test_status_pattern_combines_status_wake_word_and_limit(
    status: TransportStatus, listening: bool, limit: str | None, pattern: str
) -> None:
    assert status_pattern(status, listening, limit) == pattern
    assert pattern in PATTERNS


async def test_listening_for_the_wake_word_is_a_short_flash_every_two_seconds(rig: Rig) -> None:
    session = rig.session()
    board = rig.build(session)
    led = rig.pin(STATUS_LED)
    watch = Watch(session, led)
    watch.mark("listening")
    board.on_notice(WakeListening(True))
    await until(lambda: len(watch.since("listening")) >= 4, timeout=10, what="two flashes")
    held = durations(watch.since("listening"))
    on = [t for v, t in held if v > 0]
    off = [t for v, t in held if v == 0]
    assert on and off, held
    assert all(0.05 <= t <= 0.3 for t in on), held
    assert all(1.6 <= t <= 2.3 for t in off), held
    # a connection shows its own pattern; back to listening when it ends
    await session.connect()
    assert led.state == 1.0
    await session.disconnect()
    await until(lambda: led.state == 1.0, timeout=5, what="a listening flash again")
    board.on_notice(WakeListening(False))
    assert led.state == 0.0
    count = len(led.states)
    await asyncio.sleep(2.2)
    assert len(led.states) == count  # flashing no more: plain disconnected (off)


async def test_a_daily_limit_blinks_slowly_until_it_is_cleared(rig: Rig) -> None:
    session = rig.session()
    led = rig.pin(STATUS_LED)
    watch = Watch(session, led)
    board = rig.build(session)
    await session.connect()
    board.on_notice(LimitReached("daily_connected_minutes"))
    assert led.state == 1.0  # still connected: the limit shows once the session ends
    rig.sim.reject_next(401, count=10)
    await rig.sim.drop(code=1011)
    await until(lambda: session.status == "closed")
    await until(lambda: len(watch.since("closed")) >= 4, timeout=10, what="slow blinks")
    on, off = blink_period(watch.since("closed"))
    assert 0.8 <= on <= 1.3 and 0.8 <= off <= 1.3, (on, off)
    board.on_notice(LimitReached(None))  # a new day: closed shows its double blink again
    watch.mark("cleared")
    await until(lambda: len(watch.since("cleared")) >= 6, what="double blinks")
    held = durations(watch.since("cleared")[1:])
    assert all(t < 0.35 for v, t in held if v > 0), held


async def test_a_limit_that_already_holds_shows_from_the_start(rig: Rig) -> None:
    # After a restart on a day whose limit was reached, the board starts with it.
    session = rig.session()
    led = rig.pin(STATUS_LED)
    watch = Watch(session, led)
    watch.mark("start")
    board = rig.build(session, limit="daily_output_audio_tokens")
    assert board.lights.pattern == "limit"
    await until(lambda: len(watch.since("start")) >= 4, timeout=10, what="slow blinks")
    on, off = blink_period(watch.since("start"))
    assert 0.8 <= on <= 1.3 and 0.8 <= off <= 1.3, (on, off)


async def test_rgb_wake_word_and_limit_colours(rig: Rig) -> None:
    session = rig.session()
    board = rig.build(session, status=None, status_rgb=[13, 19, 26])
    r, g, b = (rig.pin(n) for n in (13, 19, 26))
    board.on_notice(WakeListening(True))
    await until(lambda: (r.state, g.state, b.state) == (0, 1, 1), what="cyan flash")
    board.on_notice(LimitReached("daily_input_audio_tokens"))
    assert (r.state, g.state, b.state) == (1, 0, 1)  # magenta, steady
    board.close()
    assert (r.state, g.state, b.state) == (0, 0, 0)
