"""The range and consistency rules of a config, in one place: ``config check`` and ``run``
apply exactly these (nothing is refused later, at start-up). :func:`validate` returns every
problem, each naming its key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .realtime.errors import ConfigError
from .realtime.models import check_endpoint, is_loopback_host
from .realtime.providers import provider_info

if TYPE_CHECKING:
    from .config import Config

#: Sample rates ALSA devices open (and the resampler converts from).
ALSA_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 192000)
#: Upper bounds that keep memory and timers sane.
MAX_BUFFER_MS = 300_000
MAX_CLIENTS = 1024


def _ranges(c: Config) -> list[tuple[str, Any, bool, str]]:
    a, m, b, k = c.audio, c.model, c.buttons, c.credential
    return [
        ("audio.period_ms", a.period_ms, 5 <= a.period_ms <= 100, "5..100"),
        (
            "audio.max_buffer_ms",
            a.max_buffer_ms,
            a.period_ms <= a.max_buffer_ms <= MAX_BUFFER_MS,
            f"{a.period_ms}..{MAX_BUFFER_MS} (period_ms..5 minutes)",
        ),
        (
            "audio.start_threshold_ms",
            a.start_threshold_ms,
            0 <= a.start_threshold_ms <= a.max_buffer_ms,
            "0..max_buffer_ms",
        ),
        ("credential.timeout_s", k.timeout_s, 0 < k.timeout_s <= 300, "> 0 and <= 300"),
        (
            "control.max_clients",
            c.control.max_clients,
            1 <= c.control.max_clients <= MAX_CLIENTS,
            f"1..{MAX_CLIENTS}",
        ),
        (
            "model.vad_threshold",
            m.vad_threshold,
            m.vad_threshold is None or 0.0 <= m.vad_threshold <= 1.0,
            "0.0..1.0",
        ),
        (
            "model.silence_duration_ms",
            m.silence_duration_ms,
            m.silence_duration_ms is None or 0 <= m.silence_duration_ms <= 10_000,
            "0..10000",
        ),
        ("buttons.bounce_ms", b.bounce_ms, 0 <= b.bounce_ms <= 1000, "0..1000"),
        ("buttons.long_press_s", b.long_press_s, 0 < b.long_press_s <= 30, "> 0 and <= 30"),
        ("buttons.double_press_s", b.double_press_s, 0 < b.double_press_s <= 5, "> 0 and <= 5"),
    ]


def _rate_errors(config: Config) -> list[str]:
    errors = []
    for key in ("capture_rate", "playback_rate"):
        rate = getattr(config.audio, key)
        if rate is not None and rate not in ALSA_RATES:
            shown = ", ".join(map(str, ALSA_RATES))
            errors.append(f"audio.{key}: expected one of {shown}, got {rate}")
    return errors


def _url_errors(config: Config) -> list[str]:
    errors = []
    if config.model.url:
        try:
            check_endpoint(config.model.url)
        except ConfigError as exc:
            errors.append(str(exc))
    if config.credential.source == "url":
        try:
            parts = urlsplit(config.credential.url)
            host = parts.hostname
        except ValueError:
            return [*errors, "credential.url: not a valid URL"]
        secure = parts.scheme == "https" and bool(host)
        if not (secure or (parts.scheme == "http" and is_loopback_host(host))):
            errors.append(
                "credential.url: expected an https:// URL (http:// only to a loopback host)"
            )
    return errors


def _mode_errors(config: Config) -> list[str]:
    shown = config.control.mode
    try:
        mode = config.socket_mode()
    except ValueError:
        return [f'control.mode: expected an octal string like "0660", got "{shown}"']
    if mode & ~0o777:
        return [f'control.mode: not a file mode: "{shown}"']
    if mode & 0o007:
        return [f'control.mode: "{shown}" lets every local user drive the device; use "0660"']
    return []


def _pin_errors(config: Config) -> list[str]:
    """Pin rules belong to the GPIO part: one place, :func:`device.gpio.config.validate_pins`."""
    from .gpio.config import validate_pins  # device.gpio imports device.config: not at the top

    return list(validate_pins(config.buttons, config.leds))


def _provider_errors(config: Config) -> list[str]:
    """What the chosen provider does not document (xAI: no ``semantic_vad``; voices)."""
    try:
        provider_info(config.model.provider).check_config(config.session_config())
    except ConfigError as exc:
        return [str(exc)]
    return []


def _wake_errors(config: Config) -> list[str]:
    from .wake.config import validate_wake

    try:
        validate_wake(config.wake)
    except ConfigError as exc:
        return [str(exc)]
    return []


def _usage_errors(config: Config) -> list[str]:
    """``[limits]`` and the idle keys of ``[behaviour]`` (ranges in :mod:`device.usage`)."""
    from .usage.settings import validate_idle, validate_limits

    errors = []
    try:
        validate_limits(config.limits)
    except ConfigError as exc:
        errors.append(str(exc))
    try:
        validate_idle(config.behaviour.idle())
    except ConfigError as exc:
        errors.append(str(exc))
    return errors


def validate(config: Config) -> list[str]:
    """Every problem with a config whose keys have the right types, each naming its key: the
    same checks for ``config check`` and ``run`` (nothing is found later, at start-up)."""
    errors = [
        f"{key}: expected {expected}, got {value}"
        for key, value, ok, expected in _ranges(config)
        if not ok
    ]
    return (
        errors
        + _rate_errors(config)
        + _url_errors(config)
        + _mode_errors(config)
        + _pin_errors(config)
        + _provider_errors(config)
        + _wake_errors(config)
        + _usage_errors(config)
    )
