"""[limits] and the [behaviour] idle keys, through the config loader `run` and `config check`
use: good values parse, bad ones are refused naming the key."""

from __future__ import annotations

import pytest

from device.config import parse_config
from device.realtime.errors import ConfigError
from device.usage import IdleSettings, LimitsSection


def test_limits_and_idle_parse_from_the_config_file() -> None:
    config = parse_config(
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
    assert config.limits == LimitsSection(90.0, 12000, 0, 7.5) and config.limits.any
    assert config.behaviour.idle() == IdleSettings(45.0, True)
    empty = parse_config("")
    assert not empty.limits.any and empty.behaviour.idle() == IdleSettings()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("daily_connected_minutes = -1", "limits.daily_connected_minutes: expected minutes"),
        ('daily_connected_minutes = "30"', "limits.daily_connected_minutes: expected number"),
        ("max_session_minutes = 10_000", "limits.max_session_minutes: expected minutes"),
        ("max_session_minutes = nan", "limits.max_session_minutes: expected a finite number"),
        ("daily_output_audio_tokens = 1.5", "limits.daily_output_audio_tokens: expected integer"),
        ("daily_input_audio_tokens = -5", "limits.daily_input_audio_tokens: expected tokens"),
        ("daily_input_audio_tokens = true", "limits.daily_input_audio_tokens: expected integer"),
        ("daily_minutes = 5", "limits.daily_minutes: unknown key"),
    ],
)
def test_bad_limits_name_the_key(toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        parse_config(f"[limits]\n{toml}\n")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("idle_disconnect_s = -3", "behaviour.idle_disconnect_s: expected seconds"),
        ('idle_disconnect_s = "5m"', 'behaviour.idle_disconnect_s: expected number, got "5m"'),
        ("forget_on_idle = 1", "behaviour.forget_on_idle: expected boolean, got 1"),
    ],
)
def test_bad_idle_settings_name_the_key(toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        parse_config(f"[behaviour]\n{toml}\n")
