"""The board: claiming and releasing pins, errors naming the pin, the pin factory from the
environment; and earcons, which the app plays from notices with or without a board."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from gpiozero import LED, Button
from waiting import until

from device.cues import Earcons
from device.earcons import earcon
from device.gpio import GpioError

from .rig import (
    ACTIVITY_LED,
    CONNECT,
    MUTE,
    MUTE_LED,
    STATUS_LED,
    TOKEN,
    EarconRecorder,
    Rig,
)

pytestmark = pytest.mark.simulator(token=TOKEN, reply_seconds=2.0)


async def test_close_turns_every_led_off_and_releases_the_pins(rig: Rig) -> None:
    session = rig.session(auto_reconnect=True)
    session.mute()
    board = rig.build(session)
    await session.connect()
    await session.send_message("Say something.")
    activity = rig.pin(ACTIVITY_LED)
    await until(lambda: len(activity.states) >= 3, what="activity pulse")
    assert rig.pin(STATUS_LED).state == 1 and rig.pin(MUTE_LED).state == 1
    board.close()
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


async def test_pin_in_use_names_the_pin_and_role(rig: Rig) -> None:
    busy = Button(CONNECT, pin_factory=rig.factory)
    try:
        with pytest.raises(GpioError, match=r"GPIO17 \(connect button\) is already in use"):
            rig.build(rig.session())
        # every pin claimed before the failure was released again
        busy.close()
        rig.build(rig.session())
    finally:
        busy.close()


async def test_invalid_pin_and_clashes_are_clear_errors(rig: Rig) -> None:
    with pytest.raises(GpioError, match=r"GPIO99 \(status LED\) is not a valid pin"):
        rig.build(rig.session(), status=99)
    with pytest.raises(GpioError, match="GPIO22 is assigned to both the mute button and"):
        rig.build(rig.session(), mute=STATUS_LED)
    with pytest.raises(GpioError, match="connect_long"):
        rig.build(rig.session(), connect_long="explode")
    with pytest.raises(GpioError, match="mode"):
        rig.build(rig.session(), mode="walkie")
    rig.build(rig.session())  # nothing leaked


async def test_rgb_green_pin_in_use_names_the_green_pin(rig: Rig) -> None:
    busy = LED(19, pin_factory=rig.factory)  # another device holds the green pin
    try:
        with pytest.raises(GpioError) as caught:
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
        with pytest.raises(GpioError, match=r"GPIO19 \(status LED, green\) is already in use"):
            rig.build(rig.session(), status=None, status_rgb=(13, 19, 26))
    finally:
        busy.close()
    with pytest.raises(GpioError, match=r"GPIO99 \(status LED, blue\) is not a valid pin"):
        rig.build(rig.session(), status=None, status_rgb=(13, 19, 99))
    rig.build(rig.session(), status=None, status_rgb=(13, 19, 26))  # nothing leaked


def test_runs_with_the_mock_pin_factory_from_the_environment() -> None:
    """GPIOZERO_PIN_FACTORY=mock gives pins without PWM: LEDs fall back to on/off."""
    code = """
import asyncio
from gpiozero import Device
from device.gpio import Board, GpioConfig
from device.realtime.models import OpenAIRealtimeModel
from device.session import RealtimeSession


async def main():
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    board = Board(session, GpioConfig(), asyncio.get_running_loop())
    factory = Device.pin_factory
    factory.pin(27).drive_low()
    await asyncio.sleep(0.05)
    assert session.muted and factory.pin(23).state == 1
    board.close()
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


async def test_earcons_play_on_connect_disconnect_mute_unmute_and_error(rig: Rig) -> None:
    session = rig.session(auto_reconnect=True)
    sink = EarconRecorder()
    with Earcons(session, sink, enabled=True):  # as the app wires it: no board needed
        await session.connect()
        session.mute()
        session.unmute()
        await session.disconnect()
        await session.connect()
        rig.sim.reject_next(401, count=10)
        await rig.sim.drop(code=1006)
        await until(lambda: session.status == "closed")
    names = {earcon(n): n for n in ("connect", "disconnect", "mute", "unmute", "error")}
    assert [names[pcm] for pcm in sink.played] == [
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
    with Earcons(session, sink, enabled=False):
        session.mute()
        await session.connect()
    assert sink.played == []
