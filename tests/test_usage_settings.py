"""[limits] and the [behaviour] idle keys: bad values are refused naming the key."""

from __future__ import annotations

import tomllib

import pytest

from device.realtime.errors import ConfigError
from device.usage import IdleSettings, LimitsSection, parse_idle, parse_limits


def test_limits_and_idle_parse_from_toml() -> None:
    doc = tomllib.loads(
        """
        [limits]
        daily_connected_minutes = 90
        daily_output_audio_tokens = 12000
        max_session_minutes = 7.5
        [behaviour]
        autoconnect = true
        idle_disconnect_s = 45
        forget_on_idle = true
        """
    )
    limits = parse_limits(doc["limits"])
    assert limits == LimitsSection(90.0, 12000, 0, 7.5) and limits.any
    assert parse_idle(doc["behaviour"]) == IdleSettings(45.0, True)
    assert not parse_limits({}).any and parse_idle({}) == IdleSettings()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"daily_connected_minutes": -1}, "limits.daily_connected_minutes: expected minutes"),
        ({"daily_connected_minutes": "30"}, "limits.daily_connected_minutes: expected a number"),
        ({"max_session_minutes": 10_000}, "limits.max_session_minutes: expected minutes"),
        ({"max_session_minutes": float("nan")}, "limits.max_session_minutes: expected minutes"),
        ({"daily_output_audio_tokens": 1.5}, "limits.daily_output_audio_tokens: expected a whole"),
        ({"daily_input_audio_tokens": -5}, "limits.daily_input_audio_tokens: expected tokens"),
        ({"daily_input_audio_tokens": True}, "limits.daily_input_audio_tokens: expected a number"),
        ({"daily_minutes": 5}, "limits.daily_minutes: unknown key"),
    ],
)
def test_bad_limits_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        parse_limits(table)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"idle_disconnect_s": -3}, "behaviour.idle_disconnect_s: expected seconds"),
        ({"idle_disconnect_s": "5m"}, 'behaviour.idle_disconnect_s: expected a number, got "5m"'),
        ({"forget_on_idle": 1}, "behaviour.forget_on_idle: expected true or false, got 1"),
    ],
)
def test_bad_idle_settings_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        parse_idle(table)
