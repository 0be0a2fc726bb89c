"""The appliance on an MQTT broker (issue 16): :class:`MqttBridge`, :class:`MqttConfig`,
Home Assistant discovery and the ``voice-device fleet`` client."""

from .bridge import Backoff, Dispatch, MqttBridge, StateFn, parse_command
from .config import MqttConfig, default_device_id

__all__ = [
    "Backoff",
    "Dispatch",
    "MqttBridge",
    "MqttConfig",
    "StateFn",
    "default_device_id",
    "parse_command",
]
