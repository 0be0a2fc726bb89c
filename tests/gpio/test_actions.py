"""The action table: button actions on a real session (connect/disconnect/forget, push-to-talk)."""

from __future__ import annotations

import asyncio

import pytest
from gpiozero import Button
from recorder import Recorder
from waiting import until

from device.config import ButtonsSection
from device.gpio import ACTION_NAMES, ActionTable, Board, GpioConfig, GpioError, push_to_talk_config
from device.gpio.config import ACTIONS
from device.realtime.events import SessionConfig

from .rig import (
    CONNECT,
    FRAME,
    MUTE,
    TALK,
    TOKEN,
    CountingVolume,
    Rig,
    sent,
)

pytestmark = pytest.mark.simulator(token=TOKEN, reply_seconds=2.0)


async def test_connect_button_toggles_in_each_status(rig: Rig) -> None:
    session = rig.session(auto_reconnect=True)
    rec = Recorder(session)
    board = rig.build(session, connect_long="none")

    # disconnected → connect
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "connected")
    # connected → disconnect
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "disconnected")
    assert rec.statuses() == ["connecting", "connected", "disconnected"]

    # connecting → disconnect (the hanging handshake is abandoned)
    rig.gate.shut()
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "connecting")
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "disconnected")
    rig.gate.open()
    await asyncio.sleep(0.2)
    assert session.status == "disconnected"

    # reconnecting → disconnect
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "connected")
    rig.gate.shut()
    await rig.sim.drop(code=1006)
    await until(lambda: session.status == "reconnecting")
    await rig.click(board, CONNECT)
    await until(lambda: session.status == "disconnected")
    rig.gate.open()

    # closed → connect
    plain = rig.session()
    board.close()
    board = rig.build(plain, connect_long="none")
    await rig.click(board, CONNECT)
    await until(lambda: plain.status == "connected")
    await rig.sim.drop(code=1011)
    await until(lambda: plain.status == "closed")
    await rig.click(board, CONNECT)
    await until(lambda: plain.status == "connected")


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
    board = rig.build(session, connect_long="forget", long_press_s=0.2)
    await session.connect()
    rig.pin(CONNECT).drive_low()
    await until(lambda: session.status == "disconnected", what="long press action")
    assert rig.pin(CONNECT).state == 0  # still held
    assert forgets == ["connected"]
    rig.pin(CONNECT).drive_high()
    await rig.edges(board, 2)
    await asyncio.sleep(0.05)
    assert session.status == "disconnected"  # the release after a long press does nothing


async def test_push_to_talk_sends_the_turn_events_on_the_wire(rig: Rig) -> None:
    session = rig.session(config=push_to_talk_config(SessionConfig()))
    board = rig.build(session, mode="push_to_talk")
    await session.connect()
    (update,) = sent(rig.sim, "session.update")
    assert update["session"]["audio"]["input"]["turn_detection"] is None
    assert not session.send_audio(FRAME)  # talk button not held: nothing streams

    talk = rig.pin(TALK)
    talk.drive_low()
    await rig.edges(board, 1)
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


async def test_every_button_action_is_told_to_the_observer_before_it_runs(rig: Rig) -> None:
    # The usage part listens here: a press is activity, a held talk button is speech.
    heard: list[tuple[str, str]] = []
    session = rig.session(config=push_to_talk_config(SessionConfig()))
    board = rig.build(
        session, mode="push_to_talk", on_action=lambda a: heard.append((a, session.status.value))
    )
    await session.connect()
    talk = rig.pin(TALK)
    talk.drive_low()
    await rig.edges(board, 1)
    talk.drive_high()
    await rig.edges(board, 2)
    await rig.click(board, MUTE)
    assert [a for a, _ in heard] == ["begin_turn", "end_turn", "toggle_mute"]
    await until(lambda: session.muted, what="muted by the button")


async def test_push_to_talk_needs_turn_detection_off(rig: Rig) -> None:
    session = rig.session()  # server_vad
    with pytest.raises(GpioError, match="turn detection"):
        rig.build(session, mode="push_to_talk")
    # nothing stayed claimed
    rig.build(rig.session(config=push_to_talk_config(SessionConfig())), mode="push_to_talk")


async def test_talk_pin_is_not_claimed_in_toggle_mode(rig: Rig) -> None:
    rig.build(rig.session(), mode="toggle")
    Button(TALK, pin_factory=rig.factory).close()


async def test_push_to_talk_without_a_talk_button_is_refused(rig: Rig) -> None:
    session = rig.session(config=push_to_talk_config(SessionConfig()))
    config = GpioConfig(buttons=ButtonsSection(mode="push_to_talk", talk=None))
    with pytest.raises(GpioError, match=r"^buttons\.talk: push_to_talk mode needs a talk"):
        Board(session, config, asyncio.get_running_loop(), pin_factory=rig.factory)
    Button(MUTE, pin_factory=rig.factory).close()  # refused before claiming anything
    # toggle mode needs no talk button
    GpioConfig(buttons=ButtonsSection(mode="toggle", talk=None)).validate()


async def test_the_action_table_calls_the_session_surface_by_name(rig: Rig) -> None:
    session = rig.session()
    volume = CountingVolume()
    table = ActionTable(session, asyncio.get_running_loop(), volume)
    rec = Recorder(session)
    for action in ("toggle_mute", "toggle_mute", "mute", "unmute", "none"):
        table.run(action)
    assert rec.mutes() == [True, False, True, False]
    table.run("volume_up")
    table.run("volume_up")
    table.run("volume_down")
    assert (volume.ups, volume.downs) == (2, 1)
    table.run("toggle_connection")
    await until(lambda: session.status == "connected")
    table.run("toggle_connection")
    await until(lambda: session.status == "disconnected")
    with pytest.raises(KeyError):
        table.run("explode")
    assert set(table.names) == set(ACTION_NAMES) >= set(ACTIONS)  # every gesture action runs
