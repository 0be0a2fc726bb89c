"""The ``voice-device`` command.

Service and tools::

    voice-device run [--config PATH]        the appliance service (systemd runs this)
    voice-device demo [--out reply.wav]     the whole appliance on this machine, scripted
    voice-device simulate [--port N]        a local realtime model for tests and demos
    voice-device devices                    ALSA capture/playback PCMs and cards
    voice-device config check [PATH]        validate a config file
    voice-device doctor [--config PATH]     check config, audio, GPIO and credential
    voice-device wake-test FILE.wav         run the wake word detector over a recording

Kiosk control (through the control socket, ``--socket PATH``)::

    voice-device status | connect | disconnect | mute | unmute | forget
    voice-device say "What's the weather?"
    voice-device events                     one JSON line per event until Ctrl-C
    voice-device usage [--json]             today's and the last 7 days' usage totals

Fleet (through the MQTT broker of ``[mqtt]``, docs/fleet.md)::

    voice-device fleet list                 every device: availability and state
    voice-device fleet DEVICE|all COMMAND [ARG...]   e.g. ``fleet all mute``

Exit codes: 0 success, 1 the service said no (error printed), 2 usage or config error,
3 the service is not reachable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import DEFAULT_PATH, load_config
from .realtime.errors import ConfigError, VoiceDeviceError

DEFAULT_SOCKET = "/run/voice-device/control.sock"


def _add_control_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The commands that talk to the running service over its control socket."""
    for name, help_text in (
        ("status", "show status and mute state"),
        ("connect", "connect (using the configured credential source)"),
        ("disconnect", "disconnect"),
        ("mute", "mute the microphone"),
        ("unmute", "unmute the microphone"),
        ("forget", "disconnect; the next connect starts a fresh conversation"),
        ("events", "print events as JSON lines until interrupted"),
    ):
        c = sub.add_parser(name, help=help_text)
        c.add_argument("--socket", default=DEFAULT_SOCKET)
        if name == "connect":
            c.add_argument(
                "--credential",
                metavar="JSON|-|@FILE",
                help='credential JSON ({"kind":"token","token":…,"expiresAt":…}); '
                "'-' reads it from stdin and '@FILE' from a file, which keeps the token out of "
                "the process list",
            )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="voice-device",
        description="Realtime voice appliance for Raspberry Pi (OpenAI Realtime, xAI Grok).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the appliance service")
    run.add_argument("--config", type=Path, default=None, help=f"config file ({DEFAULT_PATH})")

    demo = sub.add_parser("demo", help="scripted end-to-end demo on this machine")
    demo.add_argument("--out", type=Path, default=Path("reply.wav"), help="speaker recording")
    demo.add_argument("--capture", help="real ALSA capture device instead of the virtual mic")
    demo.add_argument("--playback", help="real ALSA playback device instead of the virtual one")
    demo.add_argument("--speech", type=Path, default=None, help="24 kHz mono WAV to speak")

    sim = sub.add_parser("simulate", help="run the local realtime model simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--pace", type=float, default=1.0, help="1.0 real time, 0 as fast as possible")
    sim.add_argument("--reply", choices=["echo", "tone"], default="echo")

    sub.add_parser("devices", help="list ALSA capture and playback devices")

    cfg = sub.add_parser("config", help="config file tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = cfg_sub.add_parser("check", help="validate a config file")
    check.add_argument("path", type=Path, nargs="?", default=DEFAULT_PATH)

    doctor = sub.add_parser("doctor", help="diagnose config, audio, GPIO and credential")
    doctor.add_argument("--config", type=Path, default=None)

    _add_control_parsers(sub)
    say = sub.add_parser("say", help="send a text message; the model answers aloud")
    say.add_argument("text")
    say.add_argument("--socket", default=DEFAULT_SOCKET)
    from .mqtt.fleet import add_fleet_parser
    from .usage.report import add_usage_parser

    add_fleet_parser(sub)
    add_usage_parser(sub, DEFAULT_SOCKET)
    from .wake import cli as wake_cli

    wake_cli.add_parser(sub)
    return p


def _read_credential(source: str) -> object:
    """``--credential``: JSON itself, ``-`` (stdin) or ``@FILE``. Raises _UsageError."""
    try:
        if source == "-":
            text = sys.stdin.read()
        elif source.startswith("@"):
            text = Path(source[1:]).read_text()
        else:
            text = source
    except OSError as exc:
        raise _UsageError(f"--credential: cannot read {source[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError:
        raise _UsageError("--credential is not valid JSON") from None


class _UsageError(Exception):
    pass


def _control(args: argparse.Namespace) -> int:
    from .control import ControlClientError, request, stream_events

    try:
        if args.command == "events":
            with contextlib.suppress(KeyboardInterrupt):
                for event in stream_events(args.socket):
                    print(json.dumps(event), flush=True)
            return 0
        message: dict[str, object] = {
            "cmd": {"say": "send_message"}.get(args.command, args.command)
        }
        if args.command == "say":
            message["text"] = args.text
        if args.command == "connect" and args.credential:
            message["credential"] = _read_credential(args.credential)
        reply = request(args.socket, message, timeout=60.0)
    except _UsageError as exc:
        print(f"voice-device: {exc}", file=sys.stderr)
        return 2
    except ControlClientError as exc:
        print(f"voice-device: {exc}", file=sys.stderr)
        return 3
    if not reply.get("ok"):
        print(f"voice-device: {reply.get('error', 'request failed')}", file=sys.stderr)
        return 1
    if args.command == "status":
        print(f"{reply['status']}{', muted' if reply.get('muted') else ''}")
    else:
        shown = {k: v for k, v in reply.items() if k != "ok"}
        print(json.dumps(shown) if shown else "ok")
    return 0


def _config_check(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        problems = str(exc).splitlines()
        for line in problems:
            print(f"voice-device: {line}", file=sys.stderr)
        if len(problems) > 1:
            print(f"voice-device: {len(problems)} errors", file=sys.stderr)
        return 2
    for warning in config.warnings():
        print(f"voice-device: warning: {warning}", file=sys.stderr)
    print(f"{path}: ok")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .service import run_service

    return run_service(args.config)


def _demo(args: argparse.Namespace) -> int:
    from .devtools.demo import run_demo

    return run_demo(out=args.out, capture=args.capture, playback=args.playback, speech=args.speech)


def _simulate(args: argparse.Namespace) -> int:
    from .devtools import simulator

    argv = ["--host", args.host, "--port", str(args.port), "--pace", str(args.pace)]
    argv += ["--reply", args.reply]
    return int(simulator.main(argv) or 0)


def _devices(args: argparse.Namespace) -> int:
    from .audio.devices import format_devices

    print(format_devices())
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor

    return run_doctor(args.config)


def _fleet(args: argparse.Namespace) -> int:
    from .mqtt.fleet import run_fleet

    return run_fleet(args)


def _usage(args: argparse.Namespace) -> int:
    from .usage.report import run_usage

    return run_usage(args)


def _wake_test(args: argparse.Namespace) -> int:
    from .wake import cli as wake_cli

    return wake_cli.run(args)


#: Subcommands run here; any other is a control-socket command (:func:`_control`).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "demo": _demo,
    "simulate": _simulate,
    "devices": _devices,
    "config": lambda args: _config_check(args.path),
    "doctor": _doctor,
    "fleet": _fleet,
    "wake-test": _wake_test,
    "usage": _usage,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        return COMMANDS.get(args.command, _control)(args)
    except ConfigError as exc:
        print(f"voice-device: {exc}", file=sys.stderr)
        return 2
    except VoiceDeviceError as exc:
        print(f"voice-device: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
