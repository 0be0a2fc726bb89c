"""The appliance on an MQTT broker (issue 16): :class:`MqttBridge`, :class:`MqttConfig`,
Home Assistant discovery, the ``voice-device fleet`` client and :func:`mqtt_part` (the app's
wiring).

Only the settings are imported eagerly: ``device.config`` reads them, and the control-socket
commands should not pay for importing the MQTT client. The rest loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import MqttConfig, default_device_id

if TYPE_CHECKING:
    from .bridge import Backoff, Dispatch, MqttBridge, StateFn, parse_command
    from .part import DeviceState, mqtt_part

_LAZY = {
    "Backoff": "bridge",
    "Dispatch": "bridge",
    "MqttBridge": "bridge",
    "StateFn": "bridge",
    "parse_command": "bridge",
    "DeviceState": "part",
    "mqtt_part": "part",
}

__all__ = [
    "Backoff",
    "DeviceState",
    "Dispatch",
    "MqttBridge",
    "MqttConfig",
    "StateFn",
    "default_device_id",
    "mqtt_part",
    "parse_command",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
