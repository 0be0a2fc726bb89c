"""End to end: ``voice-device run`` with ``[mqtt]`` set, against a real Mosquitto.

What the bridge does on its own is tested in tests/test_mqtt*.py; these prove the wiring in
the service: the MQTT commands are the control socket's (driving the real session, the real
mic path), the retained topics follow the real service, its last will fires when the process
dies, and no broker trouble ever reaches the audio or the control socket.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from mosquitto import Mosquitto
from mqtt_watch import Watcher, watch
from service_harness import TOKEN, appends, running_service
from test_service import speak_into_mic, speech_raw
from waiting import until

from device import __version__
from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator
from device.usage import DayTotals
from device.usage.report import day_json

pytestmark = pytest.mark.simulator(token=TOKEN, reply_seconds=1.0)

PREFIX = "voice-device/kiosk1"
STATE, AVAILABILITY = f"{PREFIX}/state", f"{PREFIX}/availability"
PASSWORD = "fake-kiosk-mqtt-PASSWORD-77"
#: A hole a listener would notice; frames come every 20 ms (the busy CI machine has slack).
MAX_GAP_S = 0.5


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


def mqtt_section(port: int, **more: str) -> str:
    lines = ['host = "127.0.0.1"', f"port = {port}", 'device_id = "kiosk1"']
    lines += [f'{key} = "{value}"' for key, value in more.items()]
    return "[mqtt]\n" + "\n".join(lines) + "\n"


def state(w: Watcher) -> dict[str, object]:
    value = w.json(STATE) if STATE in w.latest else {}
    assert isinstance(value, dict)
    return value


def max_gap(sim: Simulator, start: int) -> float:
    """The longest pause between mic frames arriving at the model, from ``sim.received[start]``."""
    times = [
        t
        for e, t in zip(sim.received[start:], sim.received_at[start:], strict=True)
        if e["type"] == "input_audio_buffer.append"
    ]
    assert len(times) > 50, "too little audio to judge"
    return max(b - a for a, b in itertools.pairwise(times))


def messages_sent(sim: Simulator) -> list[int]:
    """Positions in ``sim.received`` of the user's text messages (``send_message``)."""
    return [i for i, e in enumerate(sim.received) if e["type"] == "conversation.item.create"]


async def test_mqtt_commands_drive_the_service_and_a_muted_mic_sends_nothing(
    pulse: PrivatePulse, sim: Simulator, broker: Mosquitto, tmp_path: Path
) -> None:
    extra = mqtt_section(broker.port)
    async with (
        running_service(pulse, sim, tmp_path, extra=extra) as service,
        watch(broker.port, f"{PREFIX}/#") as w,
    ):
        await w.wait(lambda: w.latest.get(AVAILABILITY) == b"online", "online")
        await w.wait(lambda: state(w).get("status") == "disconnected", "the retained state")
        assert state(w) == {
            "status": "disconnected",
            "muted": False,
            "speaking": False,
            "faults": [],
            "usage": day_json(date.today(), DayTotals()),
            "version": __version__,
        }  # usage: today's totals, all zero (a fresh state directory)
        # The MQTT surface is the control socket's command table: same replies.
        assert await w.ask(PREFIX, {"cmd": "status", "id": "s"}) == {
            **(await service.cmd("status")),
            "id": "s",
        }

        assert await w.ask(PREFIX, {"cmd": "connect", "id": "c"}) == {
            "ok": True,
            "status": "connected",
            "id": "c",
        }
        await w.wait(lambda: state(w).get("status") == "connected", "state: connected")
        await until(lambda: appends(sim) >= 25, what="the mic streams while connected")

        assert await w.ask(PREFIX, {"cmd": "mute", "id": "m"}) == {
            "ok": True,
            "muted": True,
            "id": "m",
        }
        await w.wait(lambda: state(w).get("muted") is True, "state: muted")
        assert (await service.cmd("status"))["muted"] is True
        # Markers on the same websocket as the audio: every frame sent before the first is
        # ahead of it, every frame sent before the second (a whole spoken question into the
        # virtual mic later) is ahead of that one. Between them: not one frame.
        assert (await w.ask(PREFIX, {"cmd": "send_message", "text": "one", "id": 1}))["ok"]
        await until(lambda: len(messages_sent(sim)) == 1, what="the first marker")
        player = speak_into_mic(pulse, speech_raw(tmp_path))
        await until(lambda: player.poll() is not None, 30, "the question played into the mic")
        assert (await w.ask(PREFIX, {"cmd": "send_message", "text": "two", "id": 2}))["ok"]
        await until(lambda: len(messages_sent(sim)) == 2, what="the second marker")
        first, second = messages_sent(sim)
        leaked = [e for e in sim.received[first:second] if e["type"] == "input_audio_buffer.append"]
        assert not leaked, f"{len(leaked)} mic frames left the device muted over MQTT"

        before = appends(sim)
        assert (await w.ask(PREFIX, {"cmd": "unmute", "id": "u"}))["muted"] is False
        await until(lambda: appends(sim) >= before + 10, what="audio resumes after unmute")

        assert (await w.ask(PREFIX, {"cmd": "disconnect", "id": "d"}))["status"] == "disconnected"
        await w.wait(lambda: state(w).get("status") == "disconnected", "state: disconnected")
        assert (await service.cmd("status"))["status"] == "disconnected"
        statuses = [
            e.get("status")
            for e in map(_json, w.on(f"{PREFIX}/event"))
            if e.get("event") == "status"
        ]
        assert statuses == ["connecting", "connected", "disconnected"]
    # A newcomer (Home Assistant restarting) finds the truth retained.
    async with watch(broker.port, STATE, AVAILABILITY) as late:
        await late.wait(lambda: AVAILABILITY in late.latest and STATE in late.latest, "retained")
        assert state(late)["status"] == "disconnected" and state(late)["muted"] is False
        # The service stopped cleanly (SIGTERM): it said so itself.
        assert late.latest[AVAILABILITY] == b"offline"


def _json(payload: bytes) -> dict[str, object]:
    value = json.loads(payload)
    assert isinstance(value, dict)
    return value


async def test_kill_9_of_the_service_shows_offline_through_the_last_will(
    pulse: PrivatePulse, sim: Simulator, broker: Mosquitto, tmp_path: Path
) -> None:
    extra = mqtt_section(broker.port)
    async with (
        running_service(pulse, sim, tmp_path, extra=extra) as service,
        watch(broker.port, AVAILABILITY) as w,
    ):
        await w.wait(lambda: w.latest.get(AVAILABILITY) == b"online", "online")
        os.kill(service.proc.pid, signal.SIGKILL)
        await w.wait(lambda: w.latest.get(AVAILABILITY) == b"offline", "offline: the last will")
        assert service.proc.wait(5) == -signal.SIGKILL


async def test_broker_absent_at_start_then_restarted_mid_conversation_never_stops_audio(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "broker")  # not started: the service starts without it
    extra = mqtt_section(broker.port)
    try:
        async with running_service(pulse, sim, tmp_path, extra=extra) as service:
            assert (await service.cmd("connect"))["ok"]
            await until(lambda: appends(sim) >= 25, what="audio flows with no broker at all")
            await until(
                lambda: "cannot connect to the broker" in service.output(),
                10,
                "the one line saying the broker is away",
            )
            await asyncio.to_thread(broker.start)
            async with watch(broker.port, f"{PREFIX}/#") as w:
                await w.wait(
                    lambda: state(w).get("status") == "connected", "state once back", timeout=30
                )
            outage_from = len(sim.received)
            await asyncio.to_thread(broker.stop)  # mid-conversation
            await until(lambda: "lost the broker" in service.output(), 10, "the loss noticed")
            during = appends(sim)
            await until(lambda: appends(sim) >= during + 50, what="a second of audio, no broker")
            await asyncio.to_thread(broker.start)  # an empty broker: nothing retained survived
            async with watch(broker.port, f"{PREFIX}/#") as w:
                await w.wait(
                    lambda: (
                        state(w).get("status") == "connected"
                        and w.latest.get(AVAILABILITY) == b"online"
                    ),
                    "state and availability republished",
                    timeout=30,
                )
                # The mic never paused (20 ms frames) while the broker left and came back.
                gap = max_gap(sim, outage_from)
                assert gap < MAX_GAP_S, f"a {gap:.2f} s hole in the mic audio"
                # A change made on the device (the control socket) reaches the broker again.
                assert (await service.cmd("mute"))["muted"] is True
                await w.wait(lambda: state(w).get("muted") is True, "state: muted")
            # One conversation all along: the websocket to the model never dropped.
            assert {e["_conn"] for e in sim.received} == {0}
            assert service.statuses()[-1] == "connected"
            log = service.output()
            assert "Traceback" not in log
            assert log.count("lost the broker") == 1, log[-3000:]
    finally:
        broker.stop()


async def test_a_refused_password_leaves_the_device_working_locally_and_unlogged(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    wrong = tmp_path / "mqtt-password"
    wrong.write_text("fake-WRONG-mqtt-pass-31337\n")
    users = {"kiosk1": PASSWORD}
    with Mosquitto(tmp_path / "broker", users=users) as broker:
        extra = mqtt_section(broker.port, username="kiosk1", password_file=str(wrong))
        async with running_service(pulse, sim, tmp_path, extra=extra) as service:
            await until(
                lambda: "refused the credentials of user 'kiosk1'" in service.output(),
                15,
                "the refusal logged",
            )
            assert (await service.cmd("connect"))["ok"]
            await until(lambda: appends(sim) >= 25, what="audio flows")
            assert (await service.cmd("mute"))["muted"] is True
            assert (await service.cmd("status")) == {
                "ok": True,
                "status": "connected",
                "muted": True,
            }
            assert service.proc.poll() is None
            log = service.output()
        assert "fake-WRONG-mqtt-pass" not in log and PASSWORD not in log
        warnings = [
            ln for ln in log.splitlines() if ln.startswith("WARNING device.mqtt") and "broker" in ln
        ]
        assert len(warnings) == 1, warnings
