"""The ``[buttons]`` and ``[leds]`` rules, in one place: :func:`validate_pins`.

``config check``, the service and :class:`device.gpio.Board` all ask this module. An RGB
status LED (``leds.status_rgb``) replaces the single status LED, so ``leds.status`` is not
claimed then and may share a pin with it; the talk button is claimed only in push-to-talk mode.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from ..config import Action, ButtonsSection, LedsSection
from ..realtime.errors import ConfigError

#: Every action a gesture can be bound to (the config's ``Action`` values).
ACTIONS: tuple[str, ...] = typing.get_args(Action)
MODES = ("toggle", "push_to_talk")
#: BCM numbers of the 40-pin header's GPIO lines.
BCM_PINS = range(28)


class GpioError(ConfigError):
    """A button or LED could not be set up (pin in use, invalid pin, bad action)."""


@dataclass(frozen=True, slots=True)
class PinUse:
    """A pin the configuration claims: its config ``key``, what it is (``role``) and ``pin``."""

    key: str
    role: str
    pin: int


def pin_uses(buttons: ButtonsSection, leds: LedsSection) -> list[PinUse]:
    """Every pin this configuration claims, in claiming order (buttons, then LEDs)."""
    b = buttons
    roles: list[tuple[str, str, object]] = [
        ("buttons.connect", "connect button", b.connect),
        ("buttons.mute", "mute button", b.mute),
        ("buttons.talk", "talk button", b.talk if b.mode == "push_to_talk" else None),
        ("buttons.volume_up", "volume up button", b.volume_up),
        ("buttons.volume_down", "volume down button", b.volume_down),
        ("leds.mute", "mute LED", leds.mute),
        ("leds.activity", "activity LED", leds.activity),
        ("leds.fault", "fault LED", leds.fault),
    ]
    rgb = leds.status_rgb
    if rgb is not None and len(rgb) == 3:
        for i, colour in enumerate(("red", "green", "blue")):
            roles.append((f"leds.status_rgb[{i}]", f"status LED, {colour}", rgb[i]))
    elif rgb is None:
        roles.append(("leds.status", "status LED", leds.status))
    return [PinUse(k, r, p) for k, r, p in roles if isinstance(p, int)]


def _button_errors(b: ButtonsSection) -> list[str]:
    errors: list[str] = []
    if b.mode not in MODES:
        errors.append(f"buttons.mode: expected one of {MODES}, got {b.mode!r}")
    if b.mode == "push_to_talk" and b.talk is None:
        errors.append(
            "buttons.talk: push_to_talk mode needs a talk button pin, got None "
            "(without one the microphone could never stream)"
        )
    for key in ("connect_long", "connect_double", "mute_long", "mute_double"):
        value = getattr(b, key)
        if value not in ACTIONS:
            errors.append(f"buttons.{key}: expected one of {ACTIONS}, got {value!r}")
    for key, value, ok, expected in (
        ("long_press_s", b.long_press_s, b.long_press_s > 0, "> 0"),
        ("double_press_s", b.double_press_s, b.double_press_s > 0, "> 0"),
        ("bounce_ms", b.bounce_ms, b.bounce_ms >= 0, ">= 0"),
    ):
        if not ok:
            errors.append(f"buttons.{key}: expected {expected}, got {value!r}")
    return errors


def _pin_errors(uses: list[PinUse]) -> list[str]:
    errors: list[str] = []
    seen: dict[int, PinUse] = {}
    for use in uses:
        pin = use.pin
        if isinstance(pin, bool) or pin not in BCM_PINS:
            errors.append(
                f"{use.key}: BCM pin must be 0..27, got {pin}: "
                f"GPIO{pin} ({use.role}) is not a valid pin"
            )
            continue
        other = seen.get(pin)
        if other is not None:
            errors.append(
                f"GPIO{pin} is assigned to both the {other.role} and the {use.role} "
                f"({other.key} = {pin}, {use.key} = {pin})"
            )
            continue
        seen[pin] = use
    return errors


def validate_pins(buttons: ButtonsSection, leds: LedsSection) -> list[str]:
    """Every problem with ``[buttons]`` and ``[leds]``, each message naming its key (empty: the
    sections are fine). Checks modes, actions, timings, pin numbers and pin clashes."""
    errors = _button_errors(buttons)
    rgb = leds.status_rgb
    if rgb is not None and len(rgb) != 3:
        errors.append(f"leds.status_rgb: expected [r, g, b] pins, got {rgb!r}")
    return errors + _pin_errors(pin_uses(buttons, leds))


@dataclass(frozen=True)
class GpioConfig:
    """The ``[buttons]`` and ``[leds]`` sections (BCM pins, ``None`` = not fitted)."""

    buttons: ButtonsSection = field(default_factory=ButtonsSection)
    leds: LedsSection = field(default_factory=LedsSection)

    def validate(self) -> None:
        """Raise :class:`GpioError` with the first of :func:`validate_pins`' errors."""
        errors = validate_pins(self.buttons, self.leds)
        if errors:
            raise GpioError(errors[0])
