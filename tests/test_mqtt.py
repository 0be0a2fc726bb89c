"""The MQTT bridge against a real Mosquitto, driving a real RealtimeSession on the simulator
through the real command table (the control socket's commands, validation and replies), wired
by :func:`device.mqtt.mqtt_part` as the app wires it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from creds import token_credential
from mosquitto import Mosquitto, make_tls
from mqtt_watch import watch
from waiting import until

from device.commands import CommandTable
from device.devtools.simulator import Simulator
from device.health import Health
from device.mqtt import Backoff, DeviceState, MqttBridge, MqttConfig, mqtt_part
from device.realtime.models import OpenAIRealtimeModel
from device.session import RealtimeSession

TOKEN = "fake-mqtt-test-TOKEN-0123456789"
PASSWORD = "fake-broker-PASSWORD-s3cr3t-42"
PREFIX = "voice-device/kiosk1"
FRAME = bytes(960)


class Device:
    """A session with what the app gives the bridge: the command table and the state."""

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session
        self.table = CommandTable(session, Health())
        self.state = DeviceState(self.table, version="test")


async def provide() -> dict[str, Any]:
    """The session's credential source, as ``[credential]`` would configure it."""
    return token_credential(TOKEN)


@contextlib.asynccontextmanager
async def bridged(device: Device, config: MqttConfig, **options: Any) -> AsyncIterator[MqttBridge]:
    """The bridge as the app wires it (``options``, e.g. ``backoff``, reach the bridge)."""
    async with mqtt_part(config, device.table, device.state, **options) as bridge:
        assert bridge is not None
        yield bridge


def config_for(broker: Mosquitto, **overrides: Any) -> MqttConfig:
    table: dict[str, Any] = {"host": "127.0.0.1", "port": broker.port, "device_id": "kiosk1"}
    return MqttConfig.from_table({**table, **overrides})


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
async def device() -> AsyncIterator[Device]:
    async with Simulator(token=TOKEN) as sim:
        session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), credential_provider=provide)
        d = Device(session)
        d.sim = sim  # type: ignore[attr-defined]
        try:
            yield d
        finally:
            await session.disconnect()


def appends(device: Device) -> int:
    sim: Simulator = device.sim  # type: ignore[attr-defined]
    return sum(1 for e in sim.received if e.get("type") == "input_audio_buffer.append")


async def test_state_and_availability_follow_connect_mute_disconnect_from_mqtt(
    broker: Mosquitto, device: Device
) -> None:
    async with bridged(device, config_for(broker)) as bridge:
        await until(lambda: bridge.connected, what="bridge connected")
        async with watch(broker.port, f"{PREFIX}/#") as w:
            await w.wait(lambda: f"{PREFIX}/state" in w.latest, "retained state")
            assert w.latest[f"{PREFIX}/availability"] == b"online"
            assert w.json(f"{PREFIX}/state")["status"] == "disconnected"

            reply = await w.ask(PREFIX, {"cmd": "connect", "id": "c1"})
            assert reply == {"ok": True, "status": "connected", "id": "c1"}
            await w.wait(lambda: w.json(f"{PREFIX}/state")["status"] == "connected", "connected")
            await w.wait(
                lambda: (
                    {"event": "status", "status": "connected"}
                    in [json.loads(p) for p in w.on(f"{PREFIX}/event")]
                ),
                "the status event",
            )

            assert device.session.send_audio(FRAME)
            await until(lambda: appends(device) == 1, what="one frame on the wire")
            reply = await w.ask(PREFIX, {"cmd": "mute", "id": 7})
            assert reply == {"ok": True, "muted": True, "id": 7}
            for _ in range(20):
                device.session.send_audio(FRAME)
            await w.wait(lambda: w.json(f"{PREFIX}/state")["muted"] is True, "muted state")
            assert (await w.ask(PREFIX, {"cmd": "unmute", "id": 8}))["muted"] is False
            assert device.session.send_audio(FRAME)
            # Frames travel in order: once the one sent after unmute is there, a frame leaked
            # while muted would be there too.
            await until(lambda: appends(device) >= 2, what="the frame sent after unmute")
            assert appends(device) == 2, "audio left the device after a mute sent over MQTT"
            assert (await w.ask(PREFIX, {"cmd": "mute", "id": 9}))["muted"] is True

        # A newcomer (Home Assistant starting later) gets the retained truth at once.
        async with watch(
            broker.port, f"{PREFIX}/state", f"{PREFIX}/availability", f"{PREFIX}/reply"
        ) as late:
            await late.wait(lambda: len(late.latest) == 2, "retained topics")
            assert late.json(f"{PREFIX}/state")["status"] == "connected"
            assert late.json(f"{PREFIX}/state")["muted"] is True
            assert all(retained for _, _, retained in late.messages)
            reply = await late.ask(PREFIX, {"cmd": "disconnect", "id": "d"})
            assert reply["ok"] and device.session.status == "disconnected"
            await late.wait(
                lambda: late.json(f"{PREFIX}/state")["status"] == "disconnected", "disconnected"
            )
    # A clean stop says offline too.
    async with watch(broker.port, f"{PREFIX}/availability") as after:
        await after.wait(lambda: bool(after.latest), "availability")
        assert after.latest[f"{PREFIX}/availability"] == b"offline"


async def test_the_fleet_topic_reaches_every_device_and_each_replies_on_its_own(
    broker: Mosquitto, device: Device
) -> None:
    other = Device(RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime")))
    async with (
        bridged(device, config_for(broker)) as one,
        bridged(other, config_for(broker, device_id="kiosk2")) as two,
        watch(broker.port, "voice-device/+/reply") as w,
    ):
        await until(lambda: one.connected and two.connected, what="both connected")
        await w.client.publish("voice-device/all/command", b'{"cmd":"mute","id":"all-1"}', qos=1)
        await w.wait(lambda: len(w.messages) == 2, "two replies")
        topics = sorted(t for t, _, _ in w.messages)
        assert topics == ["voice-device/kiosk1/reply", "voice-device/kiosk2/reply"]
        assert all(
            json.loads(p) == {"ok": True, "muted": True, "id": "all-1"} for _, p, _ in w.messages
        )
        assert device.session.muted and other.session.muted


async def test_bad_commands_get_error_replies_and_change_nothing(
    broker: Mosquitto, device: Device
) -> None:
    # A retained command would run again at every (re)connect: it is ignored.
    async with watch(broker.port) as w:
        await w.client.publish(f"{PREFIX}/command", b'{"cmd":"mute"}', qos=1, retain=True)
    async with (
        bridged(device, config_for(broker)) as bridge,
        watch(broker.port, f"{PREFIX}/reply", f"{PREFIX}/state") as w,
    ):
        await until(lambda: bridge.connected, what="bridge connected")
        cases: list[tuple[bytes, str]] = [
            (b"{not json", "malformed JSON"),
            (b"[1, 2]", "expected a JSON object"),
            (b'{"cmd": "mute", "id": [1]}', "'id' must be"),
            (json.dumps({"cmd": "mute", "pad": "x" * 70_000}).encode(), "larger than"),
            (b'{"cmd": "subscribe", "id": "s"}', f"{PREFIX}/event"),
            (b'{"cmd": "self_destruct", "id": "u"}', "unknown cmd"),
            (b'{"id": "n"}', "missing 'cmd'"),
            # The command table's own validation, word for word as on the control socket.
            (b'{"cmd": "send_message", "id": "m"}', "'text' must be a non-empty string"),
            (b'{"cmd": "connect", "credential": "k", "id": "c"}', "'credential' must be an object"),
        ]
        for payload, error in cases:
            reply = await w.ask_raw(PREFIX, payload)
            assert reply["ok"] is False and error in reply["error"], (payload[:40], reply)
        assert (await w.ask(PREFIX, {"cmd": "status", "id": "s2"}))["muted"] is False
        assert not device.session.muted
        assert w.json(f"{PREFIX}/state")["muted"] is False


async def test_broker_restart_mid_conversation_keeps_audio_flowing_and_republishes_state(
    broker: Mosquitto, device: Device, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="device.mqtt")
    fast = Backoff(first=0.1, cap=0.5)
    async with bridged(device, config_for(broker), backoff=fast) as bridge:
        await until(lambda: bridge.connected, what="bridge connected")
        await device.session.connect(token_credential(TOKEN))
        sent = 0

        async def microphone() -> None:
            nonlocal sent
            while True:
                sent += device.session.send_audio(FRAME)
                await asyncio.sleep(0.02)

        mic = asyncio.create_task(microphone())
        try:
            await until(lambda: appends(device) > 5, what="audio flowing")
            await asyncio.to_thread(broker.stop)
            await until(lambda: not bridge.connected, what="bridge noticed the broker left")
            during = appends(device)
            await until(lambda: appends(device) > during + 10, what="audio while broker is down")
            await until(lambda: bridge.attempts >= 4, what="retries while the broker is down")
            device.session.mute()  # a local change while the broker is away
            await asyncio.to_thread(broker.start)  # empty: no persistence, nothing retained
            await until(lambda: bridge.connected and bridge.connects == 2, what="reconnected")
            async with watch(broker.port, f"{PREFIX}/#") as w:
                await w.wait(
                    lambda: f"{PREFIX}/state" in w.latest and f"{PREFIX}/availability" in w.latest,
                    "state and availability republished",
                )
                assert w.latest[f"{PREFIX}/availability"] == b"online"
                state = w.json(f"{PREFIX}/state")
                assert state["status"] == "connected" and state["muted"] is True
        finally:
            mic.cancel()
        assert device.session.status == "connected"
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "device.mqtt" and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1 and "lost the broker at mqtt://127.0.0.1" in warnings[0], warnings


async def test_kill_9_of_the_service_shows_offline_through_the_last_will(
    broker: Mosquitto, tmp_path: Path
) -> None:
    script = tmp_path / "service.py"
    script.write_text(
        "import asyncio, sys\n"
        "from device.mqtt import MqttBridge, MqttConfig\n"
        "async def dispatch(request):\n    return {'ok': True}\n"
        "async def main():\n"
        f"    config = MqttConfig.from_table({{'host': '127.0.0.1', 'port': {broker.port},"
        " 'device_id': 'doomed'})\n"
        "    async with MqttBridge(config, dispatch, lambda: {'status': 'connected'}):\n"
        "        await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    topic = "voice-device/doomed/availability"
    proc = subprocess.Popen([sys.executable, str(script)], cwd=Path(__file__).parent.parent)
    try:
        async with watch(broker.port, topic) as w:
            await w.wait(lambda: w.latest.get(topic) == b"online", "the service online")
            os.kill(proc.pid, signal.SIGKILL)
            await w.wait(lambda: w.latest.get(topic) == b"offline", "offline via last will")
    finally:
        proc.kill()
        proc.wait()


async def test_tls_and_password_with_a_wrong_password_carrying_on_locally(
    tmp_path: Path,
    device: Device,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tls = await asyncio.to_thread(make_tls, tmp_path / "tls")
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt-password").write_text(PASSWORD + "\n")
    (creds / "wrong-password").write_text("fake-WRONG-password-987\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    caplog.set_level(logging.DEBUG)
    users = {"kiosk1": PASSWORD, "operator": "fake-operator-pass"}
    with Mosquitto(tmp_path / "broker", tls=tls, users=users) as broker:
        settings = {
            "host": "localhost",
            "port": broker.port,
            "device_id": "kiosk1",
            "tls": True,
            "ca_file": str(tls.ca),
            "username": "kiosk1",
        }
        wrong = MqttConfig.from_table({**settings, "password_file": "wrong-password"})
        fast = Backoff(first=0.05, cap=0.2)
        async with bridged(device, wrong, backoff=fast) as bridge:
            await until(lambda: bridge.attempts >= 4, what="several refused attempts")
            assert not bridge.connected
            # the device works without the broker
            await device.session.connect(token_credential(TOKEN))
            device.session.mute()
            assert device.session.status == "connected" and device.session.muted
        lines = [r.getMessage() for r in caplog.records if r.name == "device.mqtt"]
        warnings = [
            r for r in caplog.records if r.name == "device.mqtt" and r.levelno >= logging.WARNING
        ]
        assert len(warnings) == 1, lines
        assert "refused the credentials of user 'kiosk1'" in warnings[0].getMessage()
        assert "mqtts://localhost" in warnings[0].getMessage()
        everything = caplog.text + "".join(lines)
        assert "fake-WRONG-password" not in everything and PASSWORD not in everything

        right = MqttConfig.from_table({**settings, "password_file": "mqtt-password"})
        ca = ssl.create_default_context(cafile=str(tls.ca))
        async with (
            bridged(device, right) as bridge,
            watch(
                broker.port,
                f"{PREFIX}/#",
                username="operator",
                password="fake-operator-pass",
                tls=ca,
            ) as w,
        ):
            await until(lambda: bridge.connected, what="connected over TLS with a password")
            await w.wait(lambda: f"{PREFIX}/state" in w.latest, "state over TLS")
            assert w.json(f"{PREFIX}/state")["muted"] is True
            assert await w.ask(PREFIX, {"cmd": "unmute", "id": 1}) == {
                "ok": True,
                "muted": False,
                "id": 1,
            }
        assert PASSWORD not in caplog.text
