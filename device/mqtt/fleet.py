"""``voice-device fleet``: the operator's view of every appliance on the broker.

    voice-device fleet list                     availability and state of every device
    voice-device fleet DEVICE|all COMMAND [ARG…] send a command, print each device's reply

``COMMAND`` is a control-socket command (status, connect, disconnect, mute, unmute, usage…);
``say TEXT`` sends a message; other arguments are ``key=value`` (the value parsed as JSON when
it is JSON). Uses the ``[mqtt]`` settings of ``--config`` (the broker, TLS, operator account),
and the default topic layout ``voice-device/<device_id>/…``.

Exit codes: 0 every reply ok, 1 a device said no, 2 usage or config error, 3 no broker or no
reply.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..realtime.errors import ConfigError, CredentialError, VoiceDeviceError
from .config import DEVICE_ID, FLEET_ROOT, RESERVED_IDS, MqttConfig
from .discovery import clearing_messages

if TYPE_CHECKING:  # imported when used: the CLI registers `fleet` without loading the client
    import aiomqtt

DEFAULT_CONFIG = Path("/etc/voice-device/config.toml")


def _client(config: MqttConfig) -> aiomqtt.Client:
    import aiomqtt

    from .bridge import NODELAY

    return aiomqtt.Client(
        config.host,
        config.broker_port,
        username=config.username or None,
        password=config.password(),
        identifier=f"voice-device-fleet-{secrets.token_hex(4)}",
        tls_context=config.tls_context(),
        timeout=10.0,
        socket_options=NODELAY,
    )


def _device(topic: aiomqtt.Topic) -> str:
    return topic.value.split("/")[1]


def _json(payload: Any) -> Any:
    try:
        return json.loads(payload)
    except (TypeError, ValueError):
        return None


async def fleet_list(config: MqttConfig, *, settle: float = 0.5) -> dict[str, dict[str, Any]]:
    """``{device_id: {"availability": …, "state": {…}}}`` from the retained topics; returns
    once no retained message arrived for ``settle`` seconds."""
    devices: dict[str, dict[str, Any]] = {}
    async with _client(config) as client:
        await client.subscribe([(f"{FLEET_ROOT}/+/availability", 1), (f"{FLEET_ROOT}/+/state", 1)])
        with contextlib.suppress(TimeoutError):
            while True:
                async with asyncio.timeout(settle):
                    message = await anext(aiter(client.messages))
                entry = devices.setdefault(_device(message.topic), {})
                if message.topic.value.endswith("/availability"):
                    entry["availability"] = bytes(message.payload or b"").decode(errors="replace")
                else:
                    entry["state"] = _json(message.payload)
    return devices


async def fleet_command(
    config: MqttConfig, target: str, request: dict[str, Any], *, wait: float
) -> dict[str, dict[str, Any]]:
    """Send ``request`` to ``target`` (a device id or ``all``); ``{device_id: reply}``.

    One device: returns with its reply (or after ``wait`` s). ``all``: collects replies until
    every device that is online has answered, or ``wait`` s have passed."""
    if target != "all" and not DEVICE_ID.match(target):
        raise ConfigError(f"fleet: {target!r} is not a device id (letters, digits, '-', '_')")
    ident = secrets.token_hex(8)
    replies: dict[str, dict[str, Any]] = {}
    online: set[str] = set()
    async with _client(config) as client:
        await client.subscribe(
            [
                (f"{FLEET_ROOT}/{'+' if target == 'all' else target}/reply", 1),
                (f"{FLEET_ROOT}/+/availability", 1),
            ]
        )
        payload = json.dumps({**request, "id": ident}).encode()
        await client.publish(f"{FLEET_ROOT}/{target}/command", payload, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + wait):
                async for message in client.messages:
                    device = _device(message.topic)
                    if message.topic.value.endswith("/availability"):
                        if message.payload == b"online":
                            online.add(device)
                        elif device == target:
                            raise VoiceDeviceError(f"{target} is offline")
                        continue
                    reply = _json(message.payload)
                    if isinstance(reply, dict) and reply.pop("id", None) == ident:
                        replies[device] = reply
                    if target != "all" and replies:
                        break
                    if target == "all" and online and online <= set(replies):
                        break
    return replies


async def fleet_remove(config: MqttConfig, device: str) -> list[str]:
    """Clear what a retired device left retained on the broker: its Home Assistant discovery
    configs (Home Assistant then removes the device), availability and state. Needs an account
    the ACL lets write those topics (docs/fleet.md). Returns the topics cleared."""
    if not DEVICE_ID.match(device) or device in RESERVED_IDS:
        raise ConfigError(f"fleet remove: {device!r} is not a device id")
    gone = replace(config, device_id=device, topic_prefix="")
    topics = [topic for topic, _ in clearing_messages(gone)]
    topics += [f"{gone.prefix}/availability", f"{gone.prefix}/state"]
    async with _client(config) as client:
        for topic in topics:
            await client.publish(topic, b"", qos=1, retain=True)
    return topics


def _request(command: str, args: list[str]) -> dict[str, Any]:
    if command == "say":
        if not args:
            raise ConfigError("fleet say: give the text to say")
        return {"cmd": "send_message", "text": " ".join(args)}
    request: dict[str, Any] = {"cmd": command}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ConfigError(f"fleet {command}: expected key=value, got {arg!r}")
        parsed = _json(value)
        request[key] = value if parsed is None else parsed
    return request


def add_fleet_parser(sub: Any) -> None:
    """Register ``fleet`` on the CLI's subparsers (``sub = p.add_subparsers(...)``)."""
    fleet = sub.add_parser("fleet", help="list or command every appliance on the MQTT broker")
    fleet.add_argument("target", metavar="list|remove|DEVICE|all")
    # Not "command": the CLI's top-level subparsers already store the subcommand there.
    fleet.add_argument(
        "fleet_command", nargs="?", metavar="COMMAND", help="status, connect, mute, say TEXT, …"
    )
    fleet.add_argument(
        "fleet_args", nargs="*", metavar="ARG", help="say: the text; others: key=value"
    )
    fleet.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="[mqtt] settings")
    fleet.add_argument("--host", help="broker (overrides mqtt.host)")
    fleet.add_argument("--port", type=int, help="broker port (overrides mqtt.port)")
    fleet.add_argument("--username", help="operator account (overrides mqtt.username)")
    fleet.add_argument("--password-file", help="operator password file (mqtt.password_file)")
    fleet.add_argument(
        "--wait",
        type=float,
        default=None,
        help="seconds to wait for replies (default 60 for one device, 5 for all)",
    )


def _load(args: argparse.Namespace) -> MqttConfig:
    table: dict[str, Any] = {}
    path: Path = args.config
    if path.exists() or path != DEFAULT_CONFIG:
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("mqtt", {})
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    overrides = {
        "host": args.host,
        "port": args.port,
        "username": args.username,
        "password_file": args.password_file,
    }
    table = {**table, **{k: v for k, v in overrides.items() if v is not None}}
    config = MqttConfig.from_table(table, derive_id=False)
    if not config.enabled:
        raise ConfigError(f"fleet: no broker: set [mqtt] host in {path} or pass --host")
    return replace(config, device_id="fleet-cli")


def _print_list(devices: dict[str, dict[str, Any]]) -> None:
    if not devices:
        print("no devices on the broker")
    for device, entry in sorted(devices.items()):
        state = entry.get("state") or {}
        status = state.get("status", "?") if isinstance(state, dict) else "?"
        extra = ", muted" if isinstance(state, dict) and state.get("muted") else ""
        faults = state.get("faults") if isinstance(state, dict) else None
        extra += f", faults: {'; '.join(map(str, faults))}" if faults else ""
        print(f"{device}\t{entry.get('availability', '?')}\t{status}{extra}")


def run_fleet(args: argparse.Namespace) -> int:
    """The ``fleet`` command (registered with :func:`add_fleet_parser`)."""
    import aiomqtt

    try:
        config = _load(args)
    except ConfigError as exc:
        print(f"voice-device: {exc}", file=sys.stderr)
        return 2
    try:
        return _act(config, args)
    except (ConfigError, CredentialError) as exc:  # bad arguments, operator password file
        print(f"voice-device: {exc}", file=sys.stderr)
        return 2
    except aiomqtt.MqttError as exc:
        print(f"voice-device: fleet: broker {config.where}: {exc}", file=sys.stderr)
        return 3
    except VoiceDeviceError as exc:
        print(f"voice-device: fleet: {exc}", file=sys.stderr)
        return 3


def _act(config: MqttConfig, args: argparse.Namespace) -> int:
    if args.target == "list":
        _print_list(asyncio.run(fleet_list(config)))
        return 0
    if args.target == "remove":
        if not args.fleet_command:
            raise ConfigError("fleet remove: give the device id, e.g. `fleet remove k1`")
        cleared = asyncio.run(fleet_remove(config, args.fleet_command))
        print(f"{args.fleet_command}: cleared {len(cleared)} retained topics")
        return 0
    if not args.fleet_command:
        raise ConfigError("fleet: give a command, e.g. `fleet all status`")
    request = _request(args.fleet_command, args.fleet_args)
    wait = args.wait if args.wait is not None else (5.0 if args.target == "all" else 60.0)
    replies = asyncio.run(fleet_command(config, args.target, request, wait=wait))
    for device, reply in sorted(replies.items()):
        print(f"{device}\t{json.dumps(reply)}")
    if not replies:
        print(f"voice-device: fleet: no reply from {args.target} in {wait:g} s", file=sys.stderr)
        return 3
    return 0 if all(r.get("ok") for r in replies.values()) else 1
