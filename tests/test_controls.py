"""Buttons and LEDs on gpiozero's MockFactory, driving a real RealtimeSession.

Sessions talk to the local simulator over loopback websockets. A gated connector holds a
handshake open, so ``connecting`` (and ``reconnecting``) last as long as a test needs.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gpiozero import LED, Button
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin
from recorder import Recorder
from waiting import until
from websockets.asyncio.client import ClientConnection

from device.config import ButtonsSection, LedsSection
from device.controls import (
    Controls,
    ControlsConfig,
    ControlsError,
    push_to_talk_config,
)
from device.earcons import earcon
from device.realtime.credentials import Credential
from device.realtime.events import SessionConfig
from device.realtime.models import OpenAIRealtimeModel, RealtimeModel
from device.realtime.notices import Notice, SpeakingChanged, StatusChanged
from device.realtime.status import TransportStatus
from device.session import RealtimeSession, ReconnectPolicy
from device.simulator import Simulator
from device.transport import open_connection

TOKEN = "fake-test-controls-0123456789"
CONNECT, MUTE, TALK, VOL_UP, VOL_DOWN = 17, 27, 24, 5, 6
STATUS_LED, MUTE_LED, ACTIVITY_LED, FAULT_LED = 22, 23, 25, 12
FRAME = bytes(960)  # 20 ms of silence, 24 kHz mono s16le


# ---------------------------------------------------------------------------------- helpers


def credential() -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(minutes=30)
    return {"kind": "token", "token": TOKEN, "expiresAt": expires.isoformat()}


async def provider() -> dict[str, Any]:
    return credential()


class Gate:
    """A connector that waits while the gate is shut, then opens the real websocket."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.opened.set()

    def shut(self) -> None:
        self.opened.clear()

    def open(self) -> None:
        self.opened.set()

    async def connector(self, model: RealtimeModel, cred: Credential) -> ClientConnection:
        await self.opened.wait()
        return await open_connection(model, cred)


class EarconRecorder:
    def __init__(self) -> None:
        self.played: list[tuple[str, bytes]] = []

    def play(self, item_id: str, pcm: bytes) -> None:
        self.played.append((item_id, pcm))


class CountingVolume:
    def __init__(self) -> None:
        self.ups = 0
        self.downs = 0

    def up(self) -> None:
        self.ups += 1

    def down(self) -> None:
        self.downs += 1


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(token=TOKEN, reply_seconds=2.0) as s:
        yield s


@pytest.fixture
def gate() -> Gate:
    return Gate()


class Rig:
    """Builds sessions and Controls for one test and closes them all at the end."""

    def __init__(self, factory: MockFactory, sim: Simulator, gate: Gate) -> None:
        self.factory = factory
        self.sim = sim
        self.gate = gate
        self.controls: list[Controls] = []
        self.sessions: list[RealtimeSession] = []

    def session(
        self, *, auto_reconnect: bool = False, config: SessionConfig | None = None
    ) -> RealtimeSession:
        s = RealtimeSession(
            OpenAIRealtimeModel(url=self.sim.url),
            config=config,
            credential_provider=provider,
            auto_reconnect=auto_reconnect,
            reconnect_policy=ReconnectPolicy(first=0.05),
            connector=self.gate.connector,
        )
        self.sessions.append(s)
        return s

    def build(self, session: RealtimeSession, **overrides: Any) -> Controls:
        sink = overrides.pop("sink", None)
        earcons = overrides.pop("earcons", True)
        leds = {
            k: overrides.pop(k)
            for k in ("status", "status_rgb", "active_high", "fault")
            if k in overrides
        }
        c = Controls(
            session,
            ControlsConfig(
                buttons=ButtonsSection(talk=TALK, **overrides),
                leds=LedsSection(**leds),
                earcons=earcons,
            ),
            asyncio.get_running_loop(),
            pin_factory=self.factory,
            earcon_sink=sink,
        )
        self.controls.append(c)
        return c

    def pin(self, number: int) -> Any:
        return self.factory.pin(number)

    async def edges(self, controls: Controls, count: int) -> None:
        """Wait until ``controls`` handled ``count`` button edges in all."""
        await until(lambda: controls.stats.edges >= count, what=f"{count} edges handled")

    async def click(self, controls: Controls, number: int) -> None:
        """A tap: press and release at once. The release falls in the press's debounce lockout
        and is delivered when it ends. Waits out the lockout of the button's previous edge
        first (edges inside it would count as bounce), as a finger would."""
        await asyncio.sleep(controls.config.buttons.bounce_ms / 1000 + 0.005)
        before = controls.stats.edges
        self.pin(number).drive_low()
        self.pin(number).drive_high()
        await self.edges(controls, before + 2)

    async def close(self) -> None:
        for c in self.controls:
            c.close()
        for s in self.sessions:
            self.gate.open()
            await s.disconnect()


@pytest.fixture
async def rig(factory: MockFactory, sim: Simulator, gate: Gate) -> AsyncIterator[Rig]:
    r = Rig(factory, sim, gate)
    try:
        yield r
    finally:
        await r.close()


def sent(sim: Simulator, kind: str) -> list[dict[str, Any]]:
    return [e for e in sim.received if e.get("type") == kind]


# ---------------------------------------------------------------------------------- connect


async def test_connect_button_toggles_in_each_status(rig: Rig) -> None:
    session = rig.session(auto_reconnect=True)
    rec = Recorder(session)
    controls = rig.build(session, connect_long="none")

    # disconnected → connect
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "connected")
    # connected → disconnect
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "disconnected")
    assert rec.statuses() == ["connecting", "connected", "disconnected"]

    # connecting → disconnect (the hanging handshake is abandoned)
    rig.gate.shut()
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "connecting")
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "disconnected")
    rig.gate.open()
    await asyncio.sleep(0.2)
    assert session.status == "disconnected"

    # reconnecting → disconnect
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "connected")
    rig.gate.shut()
    await rig.sim.drop(code=1006)
    await until(lambda: session.status == "reconnecting")
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "disconnected")
    rig.gate.open()

    # closed → connect
    plain = rig.session()
    controls.close()
    controls = rig.build(plain, connect_long="none")
    await rig.click(controls, CONNECT)
    await until(lambda: plain.status == "connected")
    await rig.sim.drop(code=1011)
    await until(lambda: plain.status == "closed")
    await rig.click(controls, CONNECT)
    await until(lambda: plain.status == "connected")


async def test_with_a_long_action_a_short_press_acts_on_release(rig: Rig) -> None:
    session = rig.session()
    controls = rig.build(session, connect_long="forget", long_press_s=5.0)
    rig.pin(CONNECT).drive_low()
    await rig.edges(controls, 1)
    assert session.status == "disconnected"  # decided only on release
    rig.pin(CONNECT).drive_high()
    await until(lambda: session.status == "connected")


async def test_without_gestures_a_press_acts_on_press(rig: Rig) -> None:
    session = rig.session()
    controls = rig.build(session, mute_long="none", mute_double="none")
    rig.pin(MUTE).drive_low()
    await rig.edges(controls, 1)
    assert session.muted  # while the button is still down
    rig.pin(MUTE).drive_high()


async def test_long_press_connect_forgets_while_still_held(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = rig.session()
    forgets: list[str] = []
    real_forget = session.forget

    async def forget() -> None:
        forgets.append(session.status.value)
        await real_forget()

    monkeypatch.setattr(session, "forget", forget)
    controls = rig.build(session, connect_long="forget", long_press_s=0.2)
    await session.connect()
    rig.pin(CONNECT).drive_low()
    await until(lambda: session.status == "disconnected", what="long press action")
    assert rig.pin(CONNECT).state == 0  # still held
    assert forgets == ["connected"]
    rig.pin(CONNECT).drive_high()
    await rig.edges(controls, 2)
    await asyncio.sleep(0.05)
    assert session.status == "disconnected"  # the release after a long press does nothing


async def test_long_press_mute_action(rig: Rig) -> None:
    session = rig.session()
    session.mute()
    controls = rig.build(session, mute_long="unmute", long_press_s=0.2)
    rec = Recorder(session)
    rig.pin(MUTE).drive_low()
    await until(lambda: not session.muted, what="long press unmute")
    rig.pin(MUTE).drive_high()
    await rig.edges(controls, 2)
    # a short press still toggles, on release
    await rig.click(controls, MUTE)
    await until(lambda: session.muted)
    assert rec.mutes() == [False, True]


async def test_double_press_runs_the_double_action_not_two_singles(rig: Rig) -> None:
    session = rig.session()
    rec = Recorder(session)
    controls = rig.build(session, mute_double="mute", double_press_s=0.3)
    for _ in range(2):
        await rig.click(controls, MUTE)
    assert session.muted
    assert rec.mutes() == [True]
    await asyncio.sleep(0.4)  # past the window: no single press fires late
    assert rec.mutes() == [True]


async def test_with_a_double_action_a_single_press_waits_for_the_window(rig: Rig) -> None:
    session = rig.session()
    rec = Recorder(session)
    controls = rig.build(session, mute_double="mute", double_press_s=0.3)
    muted_at: list[int] = []
    session.subscribe(lambda n: muted_at.append(time.perf_counter_ns()))
    await rig.click(controls, MUTE)
    assert not session.muted  # could still become a double press
    released_ns = controls.stats.last_edge_ns
    await until(lambda: session.muted, what="single press after the window")
    assert (muted_at[0] - released_ns) / 1e9 >= 0.29  # the whole window, from the release
    # two presses further apart than the window are two singles
    await rig.click(controls, MUTE)
    await until(lambda: not session.muted)
    assert rec.mutes() == [True, False]


async def test_connect_double_press_action(rig: Rig) -> None:
    session = rig.session()
    session.mute()
    controls = rig.build(session, connect_double="toggle_mute", connect_long="none")
    for _ in range(2):
        await rig.click(controls, CONNECT)
    assert not session.muted
    assert session.status == "disconnected"


# ---------------------------------------------------------------------------------- mute


async def test_mute_button_toggles_and_mute_led_follows(rig: Rig) -> None:
    session = rig.session()
    controls = rig.build(session)
    led = rig.pin(MUTE_LED)
    assert led.state == 0
    await rig.click(controls, MUTE)
    assert session.muted and led.state == 1
    await rig.click(controls, MUTE)
    assert not session.muted and led.state == 0


async def test_mute_led_is_on_exactly_while_muted_at_every_transition(rig: Rig) -> None:
    session = rig.session(auto_reconnect=True)
    session.mute()
    controls = rig.build(session, connect_long="none")
    led = rig.pin(MUTE_LED)
    assert led.state == 1  # initial state from session.muted
    checks: list[tuple[str, bool, float]] = []

    def check(notice: Notice) -> None:
        checks.append((type(notice).__name__, session.muted, led.state))

    session.subscribe(check)
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "connected")
    await rig.click(controls, MUTE)
    session.mute()
    await rig.click(controls, MUTE)
    session.mute()
    rig.gate.shut()
    await rig.sim.drop(code=1006)
    await until(lambda: session.status == "reconnecting")
    session.unmute()
    rig.gate.open()
    await until(lambda: session.status == "connected")
    await rig.click(controls, MUTE)
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "disconnected")
    assert len(checks) >= 10
    assert all(state == float(muted) for _, muted, state in checks), checks
    assert {name for name, _, _ in checks} >= {"MuteChanged", "StatusChanged"}
    # the pin history alternates and matches the mute notices exactly
    mutes = [muted for name, muted, _ in checks if name == "MuteChanged"]
    assert [s.state for s in led.states][-len(mutes) :] == [float(m) for m in mutes]


async def test_press_from_a_gpio_thread_is_handled_on_the_loop(rig: Rig) -> None:
    session = rig.session()
    controls = rig.build(session)
    threads: list[int] = []
    session.subscribe(lambda n: threads.append(threading.get_ident()))
    await asyncio.to_thread(rig.pin(MUTE).drive_low)
    await until(lambda: session.muted)
    assert threads == [threading.get_ident()]
    assert controls.last_press_latency_ns > 0
    await asyncio.to_thread(rig.pin(MUTE).drive_high)


# ---------------------------------------------------------------------------------- debounce


async def test_a_bouncing_press_acts_on_its_first_edge_exactly_once(rig: Rig) -> None:
    session = rig.session()
    rec = Recorder(session)
    controls = rig.build(session, bounce_ms=100)  # mute acts on press (no long/double action)
    pin = rig.pin(MUTE)
    assert pin.bounce is None  # not gpiozero's/lgpio's debounce: it delays every edge
    before_ns = time.perf_counter_ns()
    pin.drive_low()  # the first edge
    after_ns = time.perf_counter_ns()
    await asyncio.sleep(0)  # one loop pass: the posted edge is handled
    assert session.muted  # at once, while the contacts still bounce
    assert before_ns <= controls.stats.last_edge_ns <= after_ns  # timed at the first edge
    for _ in range(3):  # contact bounce over a few ms, ending low (pressed)
        await asyncio.sleep(0.001)
        pin.drive_high()
        await asyncio.sleep(0.001)
        pin.drive_low()
    assert time.perf_counter_ns() - before_ns < 100e6, "the burst outlasted the lockout"
    await asyncio.sleep(0.15)  # the lockout ends: the button is still pressed, nothing missed
    assert rec.mutes() == [True]
    assert (controls.stats.edges, controls.stats.ignored, controls.stats.deferred) == (1, 6, 0)
    pin.drive_high()  # the release, after the lockout: acts at once (and does nothing)
    await rig.edges(controls, 2)
    assert rec.mutes() == [True] and controls.stats.deferred == 0


async def test_a_tap_shorter_than_bounce_ms_is_a_whole_short_press(rig: Rig) -> None:
    session = rig.session()
    session.mute()
    rec = Recorder(session)
    # With a long action, a single press acts on release: the release must not be lost.
    controls = rig.build(session, bounce_ms=30, mute_long="mute", long_press_s=0.1)
    pin = rig.pin(MUTE)
    pin.drive_low()
    await rig.edges(controls, 1)
    pressed_ns = controls.stats.last_edge_ns
    await asyncio.sleep(0.005)
    before_ns = time.perf_counter_ns()
    pin.drive_high()  # inside the press's lockout: ignored now, delivered when it ends
    after_ns = time.perf_counter_ns()
    await asyncio.sleep(0)
    assert controls.stats.edges == 1 and controls.stats.ignored == 1
    await rig.edges(controls, 2)
    assert controls.stats.deferred == 1
    released_ns = controls.stats.last_edge_ns
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
    controls = rig.build(session, bounce_ms=0)
    pin = rig.pin(MUTE)
    for _ in range(2):  # edges microseconds apart: each one acts
        pin.drive_low()
        pin.drive_high()
    await rig.edges(controls, 4)
    assert rec.mutes() == [True, False]
    assert (controls.stats.ignored, controls.stats.deferred) == (0, 0)
    assert pin.bounce is None


async def test_close_cancels_a_pending_lockout(rig: Rig) -> None:
    session = rig.session()
    controls = rig.build(session)
    pin = rig.pin(MUTE)
    pin.drive_low()
    pin.drive_high()  # ignored for now, would be delivered when the lockout ends
    await rig.edges(controls, 1)
    controls.close()
    await asyncio.sleep(0.06)
    assert controls.stats.edges == 1 and controls.stats.deferred == 0


# ---------------------------------------------------------------------------------- talk


async def test_push_to_talk_sends_the_turn_events_on_the_wire(rig: Rig) -> None:
    session = rig.session(config=push_to_talk_config(SessionConfig()))
    controls = rig.build(session, mode="push_to_talk")
    await session.connect()
    (update,) = sent(rig.sim, "session.update")
    assert update["session"]["audio"]["input"]["turn_detection"] is None
    assert not session.send_audio(FRAME)  # talk button not held: nothing streams

    talk = rig.pin(TALK)
    talk.drive_low()
    await rig.edges(controls, 1)
    await rig.sim.wait_for("input_audio_buffer.clear")
    for _ in range(10):
        assert session.send_audio(FRAME)
    await rig.sim.wait_for("input_audio_buffer.append", count=10)
    talk.drive_high()
    await rig.sim.wait_for("response.create")
    kinds = [e["type"] for e in rig.sim.received if e["type"] != "session.update"]
    assert kinds == [
        "input_audio_buffer.clear",
        *["input_audio_buffer.append"] * 10,
        "input_audio_buffer.commit",
        "response.create",
    ]
    assert not session.send_audio(FRAME)

    # pressing while the model answers cancels the response first
    await until(lambda: session.response_active, what="the model answering")
    talk.drive_low()
    await rig.sim.wait_for("input_audio_buffer.clear", count=2)
    tail = [e["type"] for e in rig.sim.received][-2:]
    assert tail == ["response.cancel", "input_audio_buffer.clear"]
    for _ in range(10):  # a turn under 100 ms is not committed (the server would refuse it)
        assert session.send_audio(FRAME)
    await rig.sim.wait_for("input_audio_buffer.append", count=20)
    talk.drive_high()
    await rig.sim.wait_for("response.create", count=2)
    assert [e["type"] for e in rig.sim.received][-2:] == [
        "input_audio_buffer.commit",
        "response.create",
    ]


async def test_push_to_talk_needs_turn_detection_off(rig: Rig) -> None:
    session = rig.session()  # server_vad
    with pytest.raises(ControlsError, match="turn detection"):
        rig.build(session, mode="push_to_talk")
    # nothing stayed claimed
    rig.build(rig.session(config=push_to_talk_config(SessionConfig())), mode="push_to_talk")


async def test_talk_pin_is_not_claimed_in_toggle_mode(rig: Rig) -> None:
    rig.build(rig.session(), mode="toggle")
    Button(TALK, pin_factory=rig.factory).close()


async def test_push_to_talk_without_a_talk_button_is_refused(rig: Rig) -> None:
    session = rig.session(config=push_to_talk_config(SessionConfig()))
    config = ControlsConfig(buttons=ButtonsSection(mode="push_to_talk", talk=None))
    with pytest.raises(ControlsError, match=r"^buttons\.talk: push_to_talk mode needs a talk"):
        Controls(session, config, asyncio.get_running_loop(), pin_factory=rig.factory)
    Button(MUTE, pin_factory=rig.factory).close()  # refused before claiming anything
    # toggle mode needs no talk button
    ControlsConfig(buttons=ButtonsSection(mode="toggle", talk=None)).validate()


# ---------------------------------------------------------------------------------- LEDs


class Watch:
    """Marks where in a pin's history each status began (a listener that runs before the LEDs
    change, because it subscribes before Controls)."""

    def __init__(self, session: RealtimeSession, pin: Any) -> None:
        self.pin = pin
        self.marks: dict[str, int] = {}
        session.subscribe(self._on)

    def _on(self, notice: Notice) -> None:
        if isinstance(notice, StatusChanged):
            self.marks[notice.status.value] = len(self.pin.states)

    def since(self, status: str) -> list[Any]:
        if status not in self.marks:
            return []
        return list(self.pin.states[self.marks[status] :])


def durations(states: list[Any]) -> list[tuple[float, float]]:
    """(value, seconds held) for each state whose end is known."""
    return [(a.state, b.timestamp) for a, b in itertools.pairwise(states)]


def blink_period(states: list[Any]) -> tuple[float, float]:
    """Median on and off durations of a blinking pin."""
    held = durations(states)
    on = [t for v, t in held if v > 0]
    off = [t for v, t in held if v == 0]
    assert on and off, held
    return statistics.median(on), statistics.median(off)


async def drive_to(rig: Rig, session: RealtimeSession, status: TransportStatus) -> None:
    """Bring a real session (auto_reconnect) into ``status`` through the simulator."""
    match status:
        case TransportStatus.DISCONNECTED:
            await session.connect()
            await session.disconnect()
        case TransportStatus.CONNECTING:
            rig.gate.shut()
            rig.sessions.append(session)
            asyncio.get_running_loop().create_task(session.connect())
        case TransportStatus.CONNECTED:
            await session.connect()
        case TransportStatus.RECONNECTING:
            await session.connect()
            rig.gate.shut()
            await rig.sim.drop(code=1006)
        case TransportStatus.CLOSED:
            await session.connect()
            rig.sim.reject_next(401, count=10)
            await rig.sim.drop(code=1006)
    await until(lambda: session.status == status, what=status.value)


@pytest.mark.parametrize("status", list(TransportStatus))
async def test_status_led_shows_each_status_pattern(rig: Rig, status: TransportStatus) -> None:
    session = rig.session(auto_reconnect=True)
    led = rig.pin(STATUS_LED)
    watch = Watch(session, led)
    controls = rig.build(session)
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
    controls.close()
    assert led.state == 0


async def test_status_patterns_through_a_whole_life(rig: Rig) -> None:
    """One session through every transition; each segment of the pin history matches."""
    session = rig.session(auto_reconnect=True)
    led = rig.pin(STATUS_LED)
    watch = Watch(session, led)
    controls = rig.build(session, connect_long="none")
    rig.gate.shut()
    await rig.click(controls, CONNECT)
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
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "disconnected")
    assert led.state == 0.0
    # An auth failure (401 twice: the refetch is refused too) shows the double blink ...
    rig.gate.open()
    rig.sim.reject_next(401, count=2)
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "closed")
    await until(lambda: len(watch.since("closed")) >= 6, what="closed double blinks")
    # ... and a press from there connects, and the LED is solid again, blinking no more.
    await rig.click(controls, CONNECT)
    await until(lambda: session.status == "connected")
    await asyncio.sleep(0.1)
    settled = len(led.states)
    await asyncio.sleep(0.5)
    assert led.state == 1.0 and len(led.states) == settled
    await session.disconnect()


async def test_rgb_status_led_colours(rig: Rig) -> None:
    session = rig.session(auto_reconnect=True)
    controls = rig.build(session, status=None, status_rgb=[13, 19, 26])
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
    controls.on_notice(StatusChanged(TransportStatus.CONNECTING))
    await until(lambda: len(b.states) >= 4, what="blue blink")
    assert r.state == 0 and g.state == 0
    controls.on_notice(StatusChanged(TransportStatus.RECONNECTING))
    await until(lambda: r.state == 1 and 0 < g.state < 1, what="amber")
    controls.close()
    assert colour() == (0, 0, 0)


async def test_activity_led_pulses_while_the_model_speaks(rig: Rig) -> None:
    session = rig.session()
    controls = rig.build(session)
    led = rig.pin(ACTIVITY_LED)
    await session.connect()
    await session.send_message("Tell me something short.")
    await until(lambda: len({s.state for s in led.states}) >= 5, what="pulse levels")
    assert any(0 < s.state < 1 for s in led.states)  # a pulse, not a blink
    await until(lambda: not session.response_active and led.state == 0, timeout=15)
    controls.close()


async def test_fault_led_is_on_exactly_while_a_device_is_faulted(rig: Rig) -> None:
    session = rig.session()
    lost = 'capture device "plughw:CARD=usbmic" failed: No such device'
    session.set_fault("capture", lost)  # raised before the LEDs came up
    controls = rig.build(session, fault=FAULT_LED)
    led = rig.pin(FAULT_LED)
    assert led.state == 1
    session.set_fault("playback", 'playback device "hw:0" not available')
    session.set_fault("capture", None)
    assert led.state == 1  # the speaker is still missing
    session.set_fault("playback", None)
    assert led.state == 0
    session.set_fault("capture", lost)
    assert led.state == 1
    # The other LEDs still tell the truth about the transport and mute.
    assert rig.pin(STATUS_LED).state == 0 and rig.pin(MUTE_LED).state == 0
    controls.close()
    assert led.state == 0


async def test_close_turns_every_led_off_and_releases_the_pins(rig: Rig) -> None:
    session = rig.session(auto_reconnect=True)
    session.mute()
    controls = rig.build(session)
    await session.connect()
    await session.send_message("Say something.")
    activity = rig.pin(ACTIVITY_LED)
    await until(lambda: len(activity.states) >= 3, what="activity pulse")
    assert rig.pin(STATUS_LED).state == 1 and rig.pin(MUTE_LED).state == 1
    controls.close()
    pins = [rig.pin(n) for n in (STATUS_LED, MUTE_LED, ACTIVITY_LED)]
    assert [p.state for p in pins] == [0, 0, 0]
    counts = [len(p.states) for p in pins]
    await asyncio.sleep(0.3)
    assert [len(p.states) for p in pins] == counts  # no blink thread left running
    # pins are free again, and a press after close does nothing
    rig.pin(MUTE).drive_low()
    await asyncio.sleep(0.05)
    assert session.muted
    rig.pin(MUTE).drive_high()
    again = rig.build(session)
    again.close()


async def test_closed_status_led_stops_blinking_on_close(rig: Rig) -> None:
    session = rig.session()
    controls = rig.build(session)
    led = rig.pin(STATUS_LED)
    controls.on_notice(StatusChanged(TransportStatus.CLOSED))
    await until(lambda: len(led.states) >= 3, what="double blink")
    controls.close()
    count = len(led.states)
    await asyncio.sleep(0.3)
    assert len(led.states) == count and led.state == 0


async def test_active_low_leds(rig: Rig) -> None:
    session = rig.session()
    session.mute()
    controls = rig.build(session, active_high=False)
    assert rig.pin(MUTE_LED).state == 0  # lit = pin low
    assert rig.pin(STATUS_LED).state == 1  # off = pin high
    session.unmute()
    assert rig.pin(MUTE_LED).state == 1
    session.mute()
    controls.close()
    # off (driven high) until released; then the pins are inputs, driving nothing
    assert [s.state for s in rig.pin(MUTE_LED).states][-2] == 1
    assert rig.pin(STATUS_LED).function == rig.pin(MUTE_LED).function == "input"


# ---------------------------------------------------------------------------------- earcons


async def test_earcons_play_on_connect_disconnect_mute_unmute_and_error(rig: Rig) -> None:
    session = rig.session(auto_reconnect=True)
    sink = EarconRecorder()
    rig.build(session, sink=sink)
    await session.connect()
    session.mute()
    session.unmute()
    await session.disconnect()
    await session.connect()
    rig.sim.reject_next(401, count=10)
    await rig.sim.drop(code=1006)
    await until(lambda: session.status == "closed")
    names = {earcon(n): n for n in ("connect", "disconnect", "mute", "unmute", "error")}
    assert [item for item, _ in sink.played] == ["earcon"] * len(sink.played)
    assert [names[pcm] for _, pcm in sink.played] == [
        "connect",
        "mute",
        "unmute",
        "disconnect",
        "connect",
        "error",
    ]


async def test_no_earcons_when_disabled(rig: Rig) -> None:
    session = rig.session()
    sink = EarconRecorder()
    rig.build(session, sink=sink, earcons=False)
    session.mute()
    await session.connect()
    assert sink.played == []


# ---------------------------------------------------------------------------------- volume


async def test_volume_buttons_step_and_repeat_while_held(rig: Rig) -> None:
    session = rig.session()
    volume = CountingVolume()
    controls = Controls(
        session,
        ControlsConfig(buttons=ButtonsSection(volume_up=VOL_UP, volume_down=VOL_DOWN)),
        asyncio.get_running_loop(),
        pin_factory=rig.factory,
        volume=volume,
    )
    rig.controls.append(controls)
    await rig.click(controls, VOL_UP)
    await rig.click(controls, VOL_DOWN)
    assert (volume.ups, volume.downs) == (1, 1)
    rig.pin(VOL_UP).drive_low()
    await until(lambda: volume.ups >= 4, what="repeat while held")
    rig.pin(VOL_UP).drive_high()
    await rig.edges(controls, 6)
    ups = volume.ups
    await asyncio.sleep(0.5)
    assert volume.ups == ups


async def test_volume_pins_unclaimed_without_a_volume_object(rig: Rig) -> None:
    rig.build(rig.session(), volume_up=VOL_UP)
    Button(VOL_UP, pin_factory=rig.factory).close()


# ---------------------------------------------------------------------------------- errors


async def test_pin_in_use_names_the_pin_and_role(rig: Rig) -> None:
    busy = Button(CONNECT, pin_factory=rig.factory)
    try:
        with pytest.raises(ControlsError, match=r"GPIO17 \(connect button\) is already in use"):
            rig.build(rig.session())
        # every pin claimed before the failure was released again
        busy.close()
        rig.build(rig.session())
    finally:
        busy.close()


async def test_invalid_pin_and_clashes_are_clear_errors(rig: Rig) -> None:
    with pytest.raises(ControlsError, match=r"GPIO99 \(status LED\) is not a valid pin"):
        rig.build(rig.session(), status=99)
    with pytest.raises(ControlsError, match="GPIO22 is assigned to both the mute button and"):
        rig.build(rig.session(), mute=STATUS_LED)
    with pytest.raises(ControlsError, match="connect_long"):
        rig.build(rig.session(), connect_long="explode")
    with pytest.raises(ControlsError, match="mode"):
        rig.build(rig.session(), mode="walkie")
    rig.build(rig.session())  # nothing leaked


@pytest.mark.parametrize(
    ("buttons", "leds", "message"),
    [
        (
            ButtonsSection(mode="push_to_talk", talk=None),
            LedsSection(),
            "buttons.talk: push_to_talk mode needs a talk button pin",
        ),
        (
            ButtonsSection(long_press_s=-1),
            LedsSection(),
            "buttons.long_press_s: expected > 0, got -1",
        ),
        (
            ButtonsSection(long_press_s=0),
            LedsSection(),
            "buttons.long_press_s: expected > 0, got 0",
        ),
        (
            ButtonsSection(double_press_s=-0.5),
            LedsSection(),
            "buttons.double_press_s: expected > 0, got -0.5",
        ),
        (ButtonsSection(bounce_ms=-5), LedsSection(), "buttons.bounce_ms: expected >= 0, got -5"),
        (ButtonsSection(mode="walkie"), LedsSection(), "buttons.mode: expected one of"),  # type: ignore[arg-type]
        (
            ButtonsSection(mute_double="explode"),  # type: ignore[arg-type]
            LedsSection(),
            "buttons.mute_double: expected one of",
        ),
        (
            ButtonsSection(),
            LedsSection(status_rgb=[13, 19]),
            "leds.status_rgb: expected [r, g, b] pins, got [13, 19]",
        ),
        (
            ButtonsSection(mute=STATUS_LED),
            LedsSection(),
            "GPIO22 is assigned to both the mute button and the status LED "
            "(buttons.mute = 22, leds.status = 22)",
        ),
        (
            ButtonsSection(),
            LedsSection(status=None, status_rgb=[13, CONNECT, 26]),
            "GPIO17 is assigned to both the connect button and the status LED, green "
            "(buttons.connect = 17, leds.status_rgb[1] = 17)",
        ),
    ],
)
def test_validate_names_the_key_and_the_value(
    buttons: ButtonsSection, leds: LedsSection, message: str
) -> None:
    with pytest.raises(ControlsError, match="^" + re.escape(message)):
        ControlsConfig(buttons=buttons, leds=leds).validate()


def test_the_default_config_is_valid() -> None:
    ControlsConfig().validate()
    ControlsConfig(buttons=ButtonsSection(bounce_ms=0)).validate()


async def test_rgb_green_pin_in_use_names_the_green_pin(rig: Rig) -> None:
    busy = LED(19, pin_factory=rig.factory)  # another device holds the green pin
    try:
        with pytest.raises(ControlsError) as caught:
            rig.build(rig.session(), status=None, status_rgb=[13, 19, 26])
        message = str(caught.value)
        assert message.startswith("GPIO19 (status LED, green) is already in use"), message
        assert "GPIO13" not in message and "red" not in message
        for pin in (13, 26):  # the probe of red released it again; blue was never claimed
            LED(pin, pin_factory=rig.factory).close()
    finally:
        busy.close()
    rig.build(rig.session(), status=None, status_rgb=[13, 19, 26])  # nothing leaked


async def test_rgb_pin_in_use_names_that_pin_and_colour(rig: Rig) -> None:
    busy = Button(19, pin_factory=rig.factory)
    try:
        with pytest.raises(ControlsError, match=r"GPIO19 \(status LED, green\) is already in use"):
            rig.build(rig.session(), status=None, status_rgb=(13, 19, 26))
    finally:
        busy.close()
    with pytest.raises(ControlsError, match=r"GPIO99 \(status LED, blue\) is not a valid pin"):
        rig.build(rig.session(), status=None, status_rgb=(13, 19, 99))
    rig.build(rig.session(), status=None, status_rgb=(13, 19, 26))  # nothing leaked


async def test_without_pwm_pins_leds_fall_back_to_on_off(rig: Rig) -> None:
    plain = MockFactory(pin_class=MockPin)
    session = rig.session()
    try:
        controls = Controls(
            session,
            ControlsConfig(leds=LedsSection(status=None, status_rgb=[13, 19, 26])),
            asyncio.get_running_loop(),
            pin_factory=plain,
        )
        controls.on_notice(StatusChanged(TransportStatus.RECONNECTING))
        r, g = plain.pin(13), plain.pin(19)
        await until(lambda: r.state and g.state, what="yellow without PWM")
        controls.on_notice(StatusChanged(TransportStatus.CLOSED))
        assert (r.state, g.state, plain.pin(26).state) == (1, 0, 0)
        controls.on_notice(SpeakingChanged(True))
        activity = plain.pin(ACTIVITY_LED)
        await until(lambda: len(activity.states) >= 3, what="activity blink")
        assert {st.state for st in activity.states} <= {0, 1}
        controls.close()
    finally:
        plain.reset()


def test_runs_with_the_mock_pin_factory_from_the_environment() -> None:
    """GPIOZERO_PIN_FACTORY=mock gives pins without PWM: LEDs fall back to on/off."""
    code = """
import asyncio
from gpiozero import Device
from device.controls import Controls, ControlsConfig
from device.realtime.models import OpenAIRealtimeModel
from device.session import RealtimeSession

async def main():
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    controls = Controls(session, ControlsConfig(), asyncio.get_running_loop())
    factory = Device.pin_factory
    factory.pin(27).drive_low()
    await asyncio.sleep(0.05)
    assert session.muted and factory.pin(23).state == 1
    controls.close()
    print("ok", type(factory).__name__)

asyncio.run(main())
"""
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    env.pop("GPIOZERO_MOCK_PIN_CLASS", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok MockFactory"
