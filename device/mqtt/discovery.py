"""Home Assistant MQTT discovery: one HA device per appliance, every entity tied to the
appliance's availability topic. Payloads follow HA's MQTT discovery schema (abbreviations
avoided, so the retained configs are readable with ``mosquitto_sub``)."""

from __future__ import annotations

import json
from typing import Any

from .config import MqttConfig

#: Today's usage figures as sensors: object id → (name, path in ``state["usage"]``, unit,
#: divisor). ``state["usage"]`` is today's totals as the usage report gives them (``day_json``:
#: ``connected_s``, ``responses``, ``tokens`` with ``input_token_details`` …).
USAGE_SENSORS: dict[str, tuple[str, tuple[str, ...], str | None, int]] = {
    "connected_minutes": ("Connected today", ("connected_s",), "min", 60),
    "responses": ("Responses today", ("responses",), None, 1),
    "total_tokens": ("Tokens today", ("tokens", "total_tokens"), None, 1),
    "input_audio_tokens": (
        "Input audio tokens today",
        ("tokens", "input_token_details", "audio_tokens"),
        None,
        1,
    ),
    "output_audio_tokens": (
        "Output audio tokens today",
        ("tokens", "output_token_details", "audio_tokens"),
        None,
        1,
    ),
}


def _lookup(path: tuple[str, ...]) -> str:
    """A template expression for ``state.usage.<path>`` that is 0 when any level is missing."""
    expression = "value_json.get('usage', {})"
    for key in path[:-1]:
        expression += f".get('{key}', {{}})"
    return expression + f".get('{path[-1]}', 0)"


def node_id(config: MqttConfig) -> str:
    return f"voice_device_{config.device_id}".replace("-", "_")


def _command(cmd: str, **fields: str) -> str:
    return json.dumps({"cmd": cmd, **fields}, separators=(",", ":"))


def _entities(config: MqttConfig) -> dict[tuple[str, str], dict[str, Any]]:
    p = config.prefix
    state, command = f"{p}/state", f"{p}/command"
    entities: dict[tuple[str, str], dict[str, Any]] = {
        ("switch", "mute"): {
            "name": "Microphone muted",
            "icon": "mdi:microphone-off",
            "state_topic": state,
            "value_template": "{{ 'ON' if value_json.muted else 'OFF' }}",
            "state_on": "ON",
            "state_off": "OFF",
            "command_topic": command,
            "payload_on": _command("mute"),
            "payload_off": _command("unmute"),
        },
        ("binary_sensor", "connected"): {
            "name": "Connected",
            "device_class": "connectivity",
            "state_topic": state,
            "value_template": "{{ 'ON' if value_json.status == 'connected' else 'OFF' }}",
        },
        ("sensor", "status"): {
            "name": "Status",
            "icon": "mdi:account-voice",
            "state_topic": state,
            "value_template": "{{ value_json.status }}",
        },
        ("button", "connect"): {
            "name": "Connect",
            "command_topic": command,
            "payload_press": _command("connect"),
        },
        ("button", "disconnect"): {
            "name": "Disconnect",
            "command_topic": command,
            "payload_press": _command("disconnect"),
        },
        ("text", "say"): {
            "name": "Say",
            "icon": "mdi:message-text",
            "command_topic": command,
            "command_template": '{{ {"cmd": "send_message", "text": value} | tojson }}',
            "min": 1,
            "max": 255,
        },
        ("sensor", "faults"): {
            "name": "Faults",
            "icon": "mdi:alert",
            "entity_category": "diagnostic",
            "state_topic": state,
            "value_template": "{{ value_json.get('faults', []) | count }}",
            "json_attributes_topic": state,
            "json_attributes_template": '{{ {"faults": value_json.get("faults", [])} | tojson }}',
        },
    }
    entities.update(_usage_entities(state))
    return entities


def _usage_entities(state: str) -> dict[tuple[str, str], dict[str, Any]]:
    entities: dict[tuple[str, str], dict[str, Any]] = {}
    for key, (name, path, unit, divisor) in USAGE_SENSORS.items():
        value = _lookup(path)
        if divisor != 1:
            value = f"(({value}) / {divisor}) | round(1)"
        sensor: dict[str, Any] = {
            "name": name,
            "icon": "mdi:chart-bar",
            "state_topic": state,
            "value_template": f"{{{{ {value} }}}}",
            "state_class": "total_increasing",  # back to 0 at midnight: HA sees a new cycle
        }
        if unit:
            sensor["unit_of_measurement"] = unit
        entities[("sensor", f"usage_{key}")] = sensor
    return entities


def discovery_messages(config: MqttConfig, version: str) -> list[tuple[str, bytes]]:
    """``(topic, payload)`` for every entity's retained config topic."""
    node = node_id(config)
    device = {
        "identifiers": [node],
        "name": f"Voice device {config.device_id}",
        "manufacturer": "voice-device",
        "model": "Realtime voice appliance",
        "sw_version": version,
    }
    messages = []
    for (component, object_id), entity in _entities(config).items():
        payload = {
            **entity,
            "unique_id": f"{node}_{object_id}",
            # The entity id: object_id before Home Assistant 2025.10, default_entity_id after
            # (object_id stops working in 2026.4); both for the fleets in between.
            "object_id": f"{node}_{object_id}",
            "default_entity_id": f"{component}.{node}_{object_id}",
            "availability_topic": f"{config.prefix}/availability",
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
            "origin": {"name": "voice-device", "sw_version": version},
        }
        if "command_topic" in payload:
            payload["qos"] = 1
        topic = f"{config.discovery_prefix}/{component}/{node}/{object_id}/config"
        messages.append((topic, json.dumps(payload, separators=(",", ":")).encode()))
    return messages


def clearing_messages(config: MqttConfig) -> list[tuple[str, bytes]]:
    """Empty retained payloads on the same topics: Home Assistant removes the entities."""
    return [(topic, b"") for topic, _ in discovery_messages(config, "")]
