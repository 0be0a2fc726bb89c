"""MQTT settings, event queueing, Home Assistant discovery and the fleet CLI (real broker)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mosquitto import Mosquitto
from mqtt_watch import watch
from waiting import until

from device.mqtt import Backoff, MqttBridge, MqttConfig, default_device_id
from device.mqtt.discovery import discovery_messages
from device.mqtt.fleet import add_fleet_parser, run_fleet
from device.realtime.errors import ConfigError, CredentialError


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


class Stub:
    """A device surface reduced to a mute flag; replies like the command table."""

    def __init__(self) -> None:
        self.muted = False
        self.requests: list[dict[str, Any]] = []

    def state(self) -> dict[str, Any]:
        return {"status": "connected", "muted": self.muted, "faults": [], "usage": {}}

    async def dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(request)
        if request.get("cmd") in ("mute", "unmute"):
            self.muted = request["cmd"] == "mute"
            return {"ok": True, "muted": self.muted}
        if request.get("cmd") == "status":
            return {"ok": True, "status": "connected", "muted": self.muted}
        return {"ok": True}


def config(broker: Mosquitto, device_id: str, **more: Any) -> MqttConfig:
    return MqttConfig.from_table(
        {"host": "127.0.0.1", "port": broker.port, "device_id": device_id, **more}
    )


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"host": "b", "port": "1883"}, "mqtt.port: expected int"),
        ({"host": "b", "port": 70000}, "mqtt.port"),
        ({"host": "b", "brokr": "x"}, "mqtt.brokr: unknown key"),
        ({"host": "b", "password_file": "p"}, "mqtt.password_file: needs mqtt.username"),
        ({"host": "b", "ca_file": "ca.crt"}, "mqtt.ca_file"),
        ({"host": "b", "topic_prefix": "kiosks/#"}, "mqtt.topic_prefix"),
        ({"host": "b", "device_id": "all"}, "mqtt.device_id"),
        ({"host": "b", "device_id": "a/b"}, "mqtt.device_id"),
        ({"host": "b", "tls": "yes"}, "mqtt.tls: expected bool"),
        ({"host": "broker example"}, "mqtt.host"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(table: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        MqttConfig.from_table(table)


def test_defaults_are_off_and_ports_follow_tls(tmp_path: Path) -> None:
    assert not MqttConfig.from_table({}).enabled
    machine = tmp_path / "machine-id"
    machine.write_text("0123456789abcdef0123456789abcdef\n")
    plain = MqttConfig.from_table({"host": "b"}, machine_id=machine)
    tls = MqttConfig.from_table({"host": "b", "tls": True}, machine_id=machine)
    assert (plain.broker_port, tls.broker_port) == (1883, 8883)
    assert plain.prefix == f"voice-device/{plain.device_id}"


def test_device_id_is_stable_and_does_not_reveal_the_machine_id(tmp_path: Path) -> None:
    machine = tmp_path / "machine-id"
    raw = "0123456789abcdef0123456789abcdef"
    machine.write_text(raw + "\n")
    first = default_device_id(machine)
    assert first == default_device_id(machine)
    assert len(first) == 12 and first not in raw
    machine.write_text("fedcba9876543210fedcba9876543210\n")
    assert default_device_id(machine) != first
    with pytest.raises(ConfigError, match=r"mqtt\.device_id"):
        default_device_id(tmp_path / "missing")


def test_password_file_resolves_in_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mqtt").write_text("fake-pass\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    table = {"host": "b", "device_id": "k", "username": "k", "password_file": "mqtt"}
    assert MqttConfig.from_table(table).password() == "fake-pass"
    missing = MqttConfig.from_table({**table, "password_file": "nope"})
    with pytest.raises(CredentialError, match=r"mqtt\.password_file"):
        missing.password()


# ------------------------------------------------------------------ events


async def test_events_queue_while_away_keeping_the_newest_and_transcripts_stay_private(
    broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    stub = Stub()
    bridge = MqttBridge(config(broker, "k1"), stub.dispatch, stub.state, queue_size=5)
    for n in range(8):  # before the broker is reached: never blocks, keeps the newest 5
        bridge.publish_event({"event": "speaking", "speaking": n % 2 == 0, "n": n})
    bridge.publish_event({"event": "transcript", "role": "user", "text": "my address is"})
    assert bridge.dropped == 3
    assert "dropped the oldest message, 1 dropped so far" in caplog.text
    async with watch(broker.port, "voice-device/+/event") as w:
        async with bridge:
            await w.wait(lambda: len(w.messages) == 5, "the queued events")
            assert [json.loads(p)["n"] for _, p, _ in w.messages] == [3, 4, 5, 6, 7]
        public = MqttBridge(
            config(broker, "k2", publish_transcripts=True), stub.dispatch, stub.state
        )
        async with public:
            public.publish_event({"event": "transcript", "role": "user", "text": "hello"})
            await w.wait(lambda: len(w.messages) == 6, "the transcript, when enabled")
        assert w.messages[-1][0] == "voice-device/k2/event"
        assert all(b"my address" not in p for _, p, _ in w.messages)


# ------------------------------------------------------------------ discovery


async def test_home_assistant_discovery_is_complete_and_cleared_when_turned_off(
    broker: Mosquitto,
) -> None:
    stub = Stub()
    async with watch(broker.port, "homeassistant/#", "voice-device/k1/state") as w:
        async with MqttBridge(config(broker, "k1"), stub.dispatch, stub.state, version="9.9"):
            # The state follows the discovery configs on the same connection.
            await w.wait(lambda: "voice-device/k1/state" in w.latest, "discovery, then state")
        configs = {t: json.loads(p) for t, p in w.latest.items() if "homeassistant/" in t}
    kinds = sorted(t.split("/")[1] + "/" + t.split("/")[3] for t in configs)
    assert kinds == sorted(
        [
            "switch/mute",
            "binary_sensor/connected",
            "sensor/status",
            "button/connect",
            "button/disconnect",
            "text/say",
            "sensor/faults",
            "sensor/usage_connected_minutes",
            "sensor/usage_responses",
            "sensor/usage_total_tokens",
            "sensor/usage_input_audio_tokens",
            "sensor/usage_output_audio_tokens",
        ]
    )
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)
    assert len({c["object_id"] for c in configs.values()}) == len(configs)
    for topic, c in configs.items():
        assert topic.startswith("homeassistant/") and topic.endswith("/config")
        assert topic.split("/")[2] == "voice_device_k1"  # node id: one HA device
        assert c["default_entity_id"] == f"{topic.split('/')[1]}.{c['object_id']}"
        assert c["availability_topic"] == "voice-device/k1/availability"
        assert (c["payload_available"], c["payload_not_available"]) == ("online", "offline")
        assert c["device"]["identifiers"] == ["voice_device_k1"]
        assert c["device"]["sw_version"] == "9.9"
        assert c.get("command_topic", "voice-device/k1/command") == "voice-device/k1/command"
        assert c.get("state_topic", "voice-device/k1/state") == "voice-device/k1/state"
    switch = configs["homeassistant/switch/voice_device_k1/mute/config"]
    assert json.loads(switch["payload_on"]) == {"cmd": "mute"}
    assert json.loads(switch["payload_off"]) == {"cmd": "unmute"}
    press = configs["homeassistant/button/voice_device_k1/connect/config"]["payload_press"]
    assert json.loads(press) == {"cmd": "connect"}

    # What Home Assistant sends for the switch reaches the device as a command.
    async with MqttBridge(config(broker, "k1"), stub.dispatch, stub.state) as bridge:
        await until(lambda: bridge.connected, what="connected")
        async with watch(broker.port, "voice-device/k1/reply") as ha:
            await ha.client.publish(switch["command_topic"], switch["payload_on"], qos=1)
            await ha.wait(lambda: bool(ha.messages), "the reply")
        assert stub.muted

    off = config(broker, "k1", discovery=False)
    async with MqttBridge(off, stub.dispatch, stub.state) as bridge:
        await until(lambda: bridge.connected, what="connected")
        async with watch(broker.port, "voice-device/k1/state") as w:
            await w.wait(lambda: bool(w.latest), "the state (after clearing discovery)")
    # Retained messages come per subscription, in order: once the availability is here, any
    # retained discovery config would have arrived before it.
    async with watch(broker.port, "homeassistant/#", "voice-device/k1/availability") as w:
        await w.wait(lambda: bool(w.latest), "availability")
        assert [t for t, p, _ in w.messages if t.startswith("homeassistant/")] == []


# ------------------------------------------------------------------ fleet CLI


def fleet(argv: list[str]) -> int:
    # As device/cli.py builds its parser (the subcommand lands in ``args.command``).
    p = argparse.ArgumentParser(prog="voice-device")
    add_fleet_parser(p.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = p.parse_args(argv)
    assert args.command == "fleet"
    return run_fleet(args)


async def test_fleet_cli_lists_devices_and_commands_one_or_all(
    broker: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "config.toml"
    conf.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n')
    one, two = Stub(), Stub()
    async with (
        MqttBridge(config(broker, "k1"), one.dispatch, one.state) as b1,
        MqttBridge(config(broker, "k2"), two.dispatch, two.state) as b2,
    ):
        await until(lambda: b1.connected and b2.connected, what="both online")
        assert await asyncio.to_thread(fleet, ["fleet", "list", "--config", str(conf)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out == ["k1\tonline\tconnected", "k2\tonline\tconnected"]

        argv = ["fleet", "all", "mute", "--config", str(conf)]
        assert await asyncio.to_thread(fleet, argv) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines == ['k1\t{"ok": true, "muted": true}', 'k2\t{"ok": true, "muted": true}']
        assert one.muted and two.muted

        argv = ["fleet", "k2", "say", "hello", "there", "--config", str(conf)]
        assert await asyncio.to_thread(fleet, argv) == 0
        assert two.requests[-1] == {"cmd": "send_message", "text": "hello there"}
        assert one.requests[-1] == {"cmd": "mute"}

        argv = ["fleet", "k9", "status", "--config", str(conf), "--wait", "0.5"]
        assert await asyncio.to_thread(fleet, argv) == 3
        assert "no reply from k9" in capsys.readouterr().err
        argv = ["fleet", "k+", "status", "--config", str(conf)]
        assert await asyncio.to_thread(fleet, argv) == 2
        assert "not a device id" in capsys.readouterr().err
    # A device that is gone: said at once (its last word), no waiting for a reply.
    argv = ["fleet", "k1", "status", "--config", str(conf), "--wait", "60"]
    assert await asyncio.wait_for(asyncio.to_thread(fleet, argv), 20) == 3
    assert "k1 is offline" in capsys.readouterr().err
    assert await asyncio.to_thread(fleet, ["fleet", "list", "--config", str(conf)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "k1\toffline\tconnected, muted",
        "k2\toffline\tconnected, muted",
    ]
    assert await asyncio.to_thread(fleet, ["fleet", "list", "--config", str(tmp_path)]) == 2


async def test_fleet_remove_clears_a_retired_device_from_the_broker_and_home_assistant(
    broker: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "config.toml"
    conf.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n')
    stub = Stub()
    async with MqttBridge(config(broker, "k1"), stub.dispatch, stub.state) as bridge:
        await until(lambda: bridge.connected, what="connected")
    async with MqttBridge(config(broker, "k2"), stub.dispatch, stub.state) as bridge:
        await until(lambda: bridge.connected, what="connected")
    retained = ("homeassistant/#", "voice-device/+/availability", "voice-device/+/state")
    async with watch(broker.port, *retained) as w:
        await w.wait(lambda: "voice-device/k2/state" in w.latest, "both devices retained")
        assert any("voice_device_k1" in t for t in w.latest)
    # k1 is unplugged for good (it last said "offline"): the operator removes it.
    argv = ["fleet", "remove", "k1", "--config", str(conf)]
    assert await asyncio.to_thread(fleet, argv) == 0
    assert "k1: cleared 14 retained topics" in capsys.readouterr().out
    async with watch(broker.port, *retained) as w:
        await w.wait(lambda: "voice-device/k2/state" in w.latest, "k2 still retained")
        left = {t for t, p, _ in w.messages if p}
    assert not [t for t in left if "k1" in t]  # nothing of k1 left for HA or `fleet list`
    assert any("voice_device_k2" in t for t in left)  # the others untouched
    assert await asyncio.to_thread(fleet, ["fleet", "remove", "all", "--config", str(conf)]) == 2
    assert "not a device id" in capsys.readouterr().err


async def test_fleet_cli_without_a_broker_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    conf = tmp_path / "config.toml"
    conf.write_text("[mqtt]\n")
    assert await asyncio.to_thread(fleet, ["fleet", "list", "--config", str(conf)]) == 2
    assert "--host" in capsys.readouterr().err
    port = ["--host", "127.0.0.1", "--port", "9"]
    assert await asyncio.to_thread(fleet, ["fleet", "list", "--config", str(conf), *port]) == 3
    assert "mqtt://127.0.0.1:9" in capsys.readouterr().err


def test_reconnect_delays_grow_to_the_cap_and_are_spread() -> None:
    backoff, rng = Backoff(first=1.0, cap=60.0), random.Random(7)
    for attempt, base in [(0, 1.0), (1, 2.0), (3, 8.0), (6, 60.0), (500, 60.0)]:
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(base / 2 <= d <= base for d in delays)
        assert max(delays) - min(delays) > base / 3  # a fleet does not retry in step


def test_discovery_templates_render_the_state_as_home_assistant_would() -> None:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # Home Assistant renders in an immutable sandbox; strict: a missing key fails here.
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    env.filters["tojson"] = json.dumps
    conf = MqttConfig.from_table({"host": "b", "device_id": "k1"})
    configs = {t.split("/")[3]: json.loads(p) for t, p in discovery_messages(conf, "1.0")}
    tokens = {
        "total_tokens": 900,
        "input_token_details": {"audio_tokens": 300},
        "output_token_details": {"audio_tokens": 500},
    }
    state = {
        "status": "connected",
        "muted": True,
        "speaking": False,
        "faults": ["speaker: device unplugged"],
        "version": "1.0",
        "usage": {"date": "2026-12-03", "connected_s": 150.0, "responses": 4, "tokens": tokens},
    }

    def render(object_id: str, key: str = "value_template", **values: Any) -> str:
        return env.from_string(configs[object_id][key]).render(value_json=state, **values)

    assert render("mute") == "ON" and render("connected") == "ON"
    assert render("status") == "connected" and render("faults") == "1"
    attributes = json.loads(render("faults", "json_attributes_template"))
    assert attributes == {"faults": ["speaker: device unplugged"]}
    assert [
        render(f"usage_{k}")
        for k in (
            "connected_minutes",
            "responses",
            "total_tokens",
            "input_audio_tokens",
            "output_audio_tokens",
        )
    ] == ["2.5", "4", "900", "300", "500"]
    text = 'Close the "east" door'
    assert json.loads(render("say", "command_template", value=text)) == {
        "cmd": "send_message",
        "text": text,
    }
    state.update(status="reconnecting", muted=False, faults=[])
    assert (render("mute"), render("connected"), render("faults")) == ("OFF", "OFF", "0")
    # The least a state can say (the command table's status): every sensor still renders.
    state = {"status": "disconnected", "muted": False}
    assert render("faults") == "0" and render("usage_connected_minutes") == "0.0"
    assert render("usage_output_audio_tokens") == "0" and render("connected") == "OFF"
