"""The [buttons]/[leds] rules: every error names its key."""

from __future__ import annotations

import re

import pytest

from device.config import ButtonsSection, LedsSection
from device.gpio import GpioConfig, GpioError

from .rig import (
    CONNECT,
    STATUS_LED,
)


@pytest.mark.parametrize(
    ("buttons", "leds", "message"),
    [
        (
            ButtonsSection(mode="push_to_talk", talk=None),
            LedsSection(),
            "buttons.talk: push_to_talk mode needs a talk button pin",
        ),
        (
            ButtonsSection(long_press_s=-1),
            LedsSection(),
            "buttons.long_press_s: expected > 0, got -1",
        ),
        (
            ButtonsSection(long_press_s=0),
            LedsSection(),
            "buttons.long_press_s: expected > 0, got 0",
        ),
        (
            ButtonsSection(double_press_s=-0.5),
            LedsSection(),
            "buttons.double_press_s: expected > 0, got -0.5",
        ),
        (ButtonsSection(bounce_ms=-5), LedsSection(), "buttons.bounce_ms: expected >= 0, got -5"),
        (ButtonsSection(mode="walkie"), LedsSection(), "buttons.mode: expected one of"),  # type: ignore[arg-type]
        (
            ButtonsSection(mute_double="explode"),  # type: ignore[arg-type]
            LedsSection(),
            "buttons.mute_double: expected one of",
        ),
        (
            ButtonsSection(),
            LedsSection(status_rgb=[13, 19]),
            "leds.status_rgb: expected [r, g, b] pins, got [13, 19]",
        ),
        (
            ButtonsSection(mute=STATUS_LED),
            LedsSection(),
            "GPIO22 is assigned to both the mute button and the status LED "
            "(buttons.mute = 22, leds.status = 22)",
        ),
        (
            ButtonsSection(),
            LedsSection(status=None, status_rgb=[13, CONNECT, 26]),
            "GPIO17 is assigned to both the connect button and the status LED, green "
            "(buttons.connect = 17, leds.status_rgb[1] = 17)",
        ),
    ],
)
def test_validate_names_the_key_and_the_value(
    buttons: ButtonsSection, leds: LedsSection, message: str
) -> None:
    with pytest.raises(GpioError, match="^" + re.escape(message)):
        GpioConfig(buttons=buttons, leds=leds).validate()


def test_the_default_config_is_valid() -> None:
    GpioConfig().validate()
    GpioConfig(buttons=ButtonsSection(bounce_ms=0)).validate()
