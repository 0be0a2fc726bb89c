"""``voice-device doctor``: check what the service needs and say how to fix what is wrong.

Each check prints one line, ``ok`` or ``FAIL`` with the reason and a fix. Exit status is the
number of failed checks (capped at 1), so scripts can use it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from .config import DEFAULT_PATH, Config, load_config
from .realtime.credentials import Credential
from .realtime.errors import ConfigError, VoiceDeviceError
from .wake.cli import check_wake


def _check_config(path: Path | None) -> tuple[bool, str, Config | None]:
    shown = path or DEFAULT_PATH
    try:
        config = load_config(path)
    except ConfigError as exc:
        return False, f"{exc}\n      fix: edit the file; `voice-device config check {shown}`", None
    where = shown if shown.exists() else f"{shown} (absent: all defaults)"
    return True, f"config {where}", config


def _check_pcm(name: str, kind: str) -> tuple[bool, str]:
    try:
        import alsaaudio
    except ImportError:
        return False, "pyalsaaudio is not installed\n      fix: pip install pyalsaaudio"
    pcm_type = alsaaudio.PCM_CAPTURE if kind == "capture" else alsaaudio.PCM_PLAYBACK
    try:
        pcm = alsaaudio.PCM(pcm_type, alsaaudio.PCM_NONBLOCK, device=name)
    except alsaaudio.ALSAAudioError as exc:
        hint = (
            "is another program holding it? use a dsnoop/dmix device (hardware.md)"
            if "busy" in str(exc).lower()
            else "list devices with `voice-device devices`; set audio." + kind + " in the config"
        )
        return False, f"{kind} device {name!r}: {exc}\n      fix: {hint}"
    pcm.close()
    return True, f"{kind} device {name!r} opens"


def _check_gpio(config: Config) -> tuple[bool, str]:
    try:
        from gpiozero import Device
        from gpiozero.exc import BadPinFactory
    except ImportError:
        return False, "gpiozero is not installed\n      fix: pip install gpiozero"
    try:
        factory = Device._default_pin_factory()
    except BadPinFactory as exc:
        return False, (
            f"no GPIO pin factory: {exc}\n      fix: on a Pi install python3-lgpio "
            "(`sudo apt install python3-lgpio`) or set GPIOZERO_PIN_FACTORY=mock to run without"
        )
    name = type(factory).__name__
    with_pins = f"buttons {config.buttons.connect}/{config.buttons.mute}"
    return (
        True,
        f"GPIO pin factory {name} ({with_pins}, leds {config.leds.status}/{config.leds.mute})",
    )


def _check_credential(config: Config) -> tuple[bool, str]:
    from .credsource import make_provider

    provider = make_provider(config)
    deadline = config.credential.timeout_s

    async def fetch() -> Credential:
        # One overall deadline, whatever the source does inside (credential.timeout_s).
        async with asyncio.timeout(deadline):
            return await provider()

    try:
        cred = asyncio.run(fetch())
    except TimeoutError:
        return False, (
            f"credential from {config.credential.source}: no answer within {deadline:g} s\n"
            "      fix: check the credential backend, or raise credential.timeout_s"
        )
    except VoiceDeviceError as exc:
        return False, f"{exc}\n      fix: see [credential] in the config (README, Configuration)"
    except Exception as exc:
        return False, f"credential source failed: {type(exc).__name__}"
    if cred.expired():
        return False, "the credential is already expired"
    return True, f"credential from {config.credential.source} ({cred.kind}, not shown)"


def run_doctor(path: Path | None) -> int:
    failures = 0

    def report(ok: bool, text: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {text}")

    ok, text, config = _check_config(path)
    report(ok, text)
    if config is None:
        return 1
    checks: list[Callable[[], tuple[bool, str]]] = [
        lambda: _check_pcm(config.audio.capture, "capture"),
        lambda: _check_pcm(config.audio.playback, "playback"),
        lambda: _check_gpio(config),
        lambda: _check_credential(config),
        lambda: check_wake(config.wake),
    ]
    for check in checks:
        report(*check())
    sock = Path(config.control.socket)
    if not os.access(sock.parent if sock.parent.exists() else sock.parent.parent, os.W_OK):
        report(False, f"cannot create the control socket in {sock.parent} (run under systemd)")
    return 1 if failures else 0
