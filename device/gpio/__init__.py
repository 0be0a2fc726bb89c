"""Buttons and LEDs (gpiozero) as small composed parts.

* :mod:`~device.gpio.config` — the ``[buttons]``/``[leds]`` rules: :func:`validate_pins`,
  :class:`GpioConfig`, :class:`GpioError`;
* :mod:`~device.gpio.gestures` — pure debounce and single/long/double press recognition
  (times from an injected clock, no timers of their own);
* :mod:`~device.gpio.buttons` — gpiozero edges → gestures → action names, on the event loop;
* :mod:`~device.gpio.actions` — :class:`ActionTable`: action names → the session surface;
* :mod:`~device.gpio.lights` — :class:`Lights`: notices → LED patterns;
* :mod:`~device.gpio.pins` — claiming gpiozero devices with errors naming the pin;
* :mod:`~device.gpio.board` — :class:`Board` composes them for one device.

Nothing here plays sound: earcons follow notices in the app (:mod:`device.earcons`).
"""

from .actions import (
    ACTION_NAMES,
    ActionTable,
    BoardSession,
    FaultSource,
    Session,
    VolumeControl,
    push_to_talk_config,
)
from .board import Board
from .buttons import Buttons, Clock, PressStats
from .config import GpioConfig, GpioError, PinUse, pin_uses, validate_pins
from .gestures import Debounce, Edge, Gesture
from .lights import PATTERNS, Leds, Lights, status_pattern

__all__ = [
    "ACTION_NAMES",
    "PATTERNS",
    "ActionTable",
    "Board",
    "BoardSession",
    "Buttons",
    "Clock",
    "Debounce",
    "Edge",
    "FaultSource",
    "Gesture",
    "GpioConfig",
    "GpioError",
    "Leds",
    "Lights",
    "PinUse",
    "PressStats",
    "Session",
    "VolumeControl",
    "pin_uses",
    "push_to_talk_config",
    "status_pattern",
    "validate_pins",
]
