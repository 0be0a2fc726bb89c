"""The [buttons]/[leds] rules: every error names its key."""

from __future__ import annotations

import re

import pytest

from device.config import ButtonsSection, LedsSection
from device.gpio import GpioConfig, GpioError, pin_uses, validate_pins

from .rig import CONNECT, MUTE_LED, STATUS_LED, VOL_DOWN, VOL_UP, Rig


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


def test_an_rgb_status_led_replaces_the_single_one_and_may_reuse_its_pin() -> None:
    """``status_rgb = [22, 5, 6]`` with the default ``leds.status = 22`` is fine: the single
    status LED is not fitted when an RGB one is."""
    leds = LedsSection(status_rgb=[STATUS_LED, VOL_UP, VOL_DOWN])
    assert validate_pins(ButtonsSection(), leds) == []
    GpioConfig(leds=leds).validate()
    roles = {use.key: use.pin for use in pin_uses(ButtonsSection(), leds)}
    assert "leds.status" not in roles
    assert roles["leds.status_rgb[0]"] == STATUS_LED


async def test_an_rgb_led_on_the_single_status_pin_lights_up(rig: Rig) -> None:
    session = rig.session()
    rig.build(session, status_rgb=[STATUS_LED, 13, 26])  # leds.status stays at its default
    await session.connect()
    assert (rig.pin(STATUS_LED).state, rig.pin(13).state, rig.pin(26).state) == (0, 1, 0)


def test_validate_pins_lists_every_error_each_naming_its_key() -> None:
    buttons = ButtonsSection(mute=STATUS_LED, long_press_s=0, connect_long="explode")  # type: ignore[arg-type]
    leds = LedsSection(activity=40, fault=MUTE_LED)
    errors = validate_pins(buttons, leds)
    assert errors == [
        "buttons.connect_long: expected one of ('none', 'toggle_connection', 'toggle_mute', "
        "'disconnect', 'forget', 'connect', 'mute', 'unmute'), got 'explode'",
        "buttons.long_press_s: expected > 0, got 0",
        "leds.activity: BCM pin must be 0..27, got 40: GPIO40 (activity LED) is not a valid pin",
        "GPIO23 is assigned to both the mute LED and the fault LED "
        "(leds.mute = 23, leds.fault = 23)",
        "GPIO22 is assigned to both the mute button and the status LED "
        "(buttons.mute = 22, leds.status = 22)",
    ]


def test_pins_outside_the_header_are_refused_by_key() -> None:
    for buttons, leds, key in (
        (ButtonsSection(connect=28), LedsSection(), "buttons.connect"),
        (ButtonsSection(), LedsSection(status_rgb=[13, 19, -1]), "leds.status_rgb[2]"),
    ):
        (error,) = validate_pins(buttons, leds)
        assert error.startswith(f"{key}: BCM pin must be 0..27"), error


def test_the_talk_pin_counts_only_in_push_to_talk_mode() -> None:
    assert validate_pins(ButtonsSection(talk=MUTE_LED), LedsSection()) == []
    (error,) = validate_pins(ButtonsSection(mode="push_to_talk", talk=MUTE_LED), LedsSection())
    assert error.startswith("GPIO23 is assigned to both the talk button and the mute LED"), error
