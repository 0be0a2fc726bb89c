"""The ACL in docs/fleet.md, on a real Mosquitto: devices publish only under their own
prefix, only operators command, and the bridge has every permission it needs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mosquitto import Mosquitto
from mqtt_watch import watch
from waiting import until

from device.mqtt import MqttBridge, MqttConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "fleet.md"
USERS = {
    "kiosk01": "fake-k1-pass",
    "kiosk02": "fake-k2-pass",
    "operator": "fake-op-pass",
    "homeassistant": "fake-ha-pass",
}


def doc_acl() -> str:
    section = DOC.read_text().split("### ACL", 1)[1]
    match = re.search(r"```\n(.*?)```", section, re.S)
    assert match, "no ACL code block in docs/fleet.md"
    return match.group(1)


async def test_the_documented_acl_confines_devices_and_lets_operators_command(
    tmp_path: Path,
) -> None:
    (tmp_path / "k1").write_text(USERS["kiosk01"])
    requests: list[dict[str, Any]] = []

    async def dispatch(request: dict[str, Any]) -> dict[str, Any]:
        requests.append(request)
        return {"ok": True, "muted": True}

    with Mosquitto(tmp_path / "broker", users=USERS, acl=doc_acl()) as broker:
        config = MqttConfig.from_table(
            {
                "host": "127.0.0.1",
                "port": broker.port,
                "device_id": "kiosk01",
                "username": "kiosk01",
                "password_file": str(tmp_path / "k1"),
            }
        )
        state = {"status": "connected", "muted": False}
        async with (
            MqttBridge(config, dispatch, lambda: state, version="1.2") as bridge,
            watch(
                broker.port,
                "voice-device/#",
                "homeassistant/#",
                username="operator",
                password=USERS["operator"],
            ) as op,
        ):
            await until(lambda: bridge.connected, what="the device connected")
            await op.wait(lambda: "voice-device/kiosk01/state" in op.latest, "its state")
            assert op.latest["voice-device/kiosk01/availability"] == b"online"
            # What the discovery templates read is always there, even if the app leaves it out.
            assert json.loads(op.latest["voice-device/kiosk01/state"]) == {
                "status": "connected",
                "muted": False,
                "faults": [],
                "usage": {},
                "version": "1.2",
            }
            assert sum(t.startswith("homeassistant/") for t in op.latest) == 12
            reply = await op.ask("voice-device/kiosk01", {"cmd": "mute", "id": "op"})
            assert reply == {"ok": True, "muted": True, "id": "op"}
            assert len(requests) == 1

            async with watch(broker.port, username="kiosk02", password=USERS["kiosk02"]) as k2:
                forged = b'{"status": "forged"}'
                await k2.client.publish("voice-device/kiosk01/state", forged, qos=1)
                await k2.client.publish("voice-device/kiosk01/command", b'{"cmd":"mute"}', qos=1)
                await k2.client.publish("voice-device/all/command", b'{"cmd":"mute"}', qos=1)
                await k2.client.publish("voice-device/kiosk02/command", b'{"cmd":"x"}', qos=1)
                # Its own state is allowed: once it arrives, the forbidden ones would have too.
                await k2.client.publish("voice-device/kiosk02/state", b'{"status":"own"}', qos=1)
                await op.wait(lambda: "voice-device/kiosk02/state" in op.latest, "own state")
            assert json.loads(op.latest["voice-device/kiosk01/state"])["status"] == "connected"
            assert all(p != forged for _, p, _ in op.messages)
            assert "voice-device/kiosk02/command" not in op.latest
            assert len(requests) == 1, "a device commanded another one"

            async with watch(
                broker.port, username="homeassistant", password=USERS["homeassistant"]
            ) as ha:
                await ha.client.publish("voice-device/all/command", b'{"cmd":"mute","id":2}', 1)
                await until(lambda: len(requests) == 2, what="Home Assistant's command")
