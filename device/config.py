"""Configuration: one TOML file, every key optional, every mistake named.

Default path ``/etc/voice-device/config.toml``. Sections and keys (all optional)::

    [model]      provider = "openai"            # or "xai"
                 name = "gpt-realtime"          # default per provider
                 url = "wss://api.openai.com/v1/realtime"
                 instructions = "…"  voice = "marin"  turn_detection = "server_vad"
    [credential] source = "env"                 # env | file | url
                 env = "OPENAI_API_KEY"
                 file = "api-key"               # relative → $CREDENTIALS_DIRECTORY
                 url = "https://…/realtime/credential"
    [audio]      capture = "default"  playback = "default"  rate = 48000  period_ms = 20
    [buttons]    connect = 17  mute = 27  talk = 24  mode = "toggle"   # or "push_to_talk"
    [leds]       status = 22  mute = 23  activity = 25
    [control]    socket = "/run/voice-device/control.sock"
    [behaviour]  autoconnect = false  earcons = true
                 idle_disconnect_s = 0  forget_on_idle = false    # unattended kiosks
    [limits]     daily_connected_minutes = 0  daily_output_audio_tokens = 0
                 daily_input_audio_tokens = 0  max_session_minutes = 0   # 0 = unlimited
    [mqtt]       host = ""                      # empty: off (see docs/fleet.md)
    [wake]       model = ""                     # empty: off; okay_nabu, … (device/wake)

Unknown sections or keys and values of the wrong type raise :class:`ConfigError` naming the key,
e.g. ``audio.rate: expected integer, got "fast"``. The file holds no secrets: API keys come
from the environment, a systemd credential file, or a credential backend.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .config_rules import validate
from .mqtt.config import MqttConfig
from .realtime.errors import ConfigError
from .realtime.events import SessionConfig
from .realtime.models import RealtimeModel, model_for
from .realtime.providers import provider_info
from .usage.settings import IdleSettings, LimitsSection
from .wake.config import WakeSection

DEFAULT_PATH = Path("/etc/voice-device/config.toml")

Action = Literal[
    "none", "toggle_connection", "toggle_mute", "disconnect", "forget", "connect", "mute", "unmute"
]


@dataclass(frozen=True)
class ModelSection:
    provider: Literal["openai", "xai"] = "openai"
    #: Model name; empty means the provider's default (gpt-realtime / grok-voice-latest).
    name: str = ""
    #: Endpoint override (simulator, proxy); empty means the provider's official endpoint.
    url: str = ""
    instructions: str = (
        "You are a friendly voice assistant on a small device. Answer briefly and clearly."
    )
    voice: str = ""
    turn_detection: Literal["server_vad", "semantic_vad", "none"] = "server_vad"
    vad_threshold: float | None = None
    silence_duration_ms: int | None = None
    transcription_model: str = "gpt-4o-mini-transcribe"


@dataclass(frozen=True)
class CredentialSection:
    source: Literal["env", "file", "url"] = "env"
    #: Environment variable holding the API key (source = "env"); empty → per provider.
    env: str = ""
    #: API key file (source = "file"); relative paths resolve in $CREDENTIALS_DIRECTORY.
    file: str = "api-key"
    #: Credential backend (source = "url"): POST {"provider","modelId"} → {"credential": {...}}.
    url: str = ""
    #: Optional device bearer token for the backend, read from this file (relative paths
    #: resolve in $CREDENTIALS_DIRECTORY) or this environment variable.
    device_token_file: str = ""
    device_token_env: str = ""
    timeout_s: float = 10.0


@dataclass(frozen=True)
class AudioSection:
    capture: str = "default"
    playback: str = "default"
    #: Hardware sample rate of both devices (capture_rate / playback_rate override).
    rate: Literal[16000, 24000, 44100, 48000] = 48000
    capture_rate: int | None = None
    playback_rate: int | None = None
    format: Literal["S16_LE", "S32_LE"] = "S16_LE"
    channels: Literal[1, 2] = 1
    playback_channels: Literal[1, 2] = 1
    period_ms: int = 20
    start_threshold_ms: int = 60
    max_buffer_ms: int = 30000
    #: Drop mic frames while the speaker plays (no echo cancellation on the device).
    half_duplex: bool = False
    #: ALSA mixer control for the volume buttons.
    mixer: str = "PCM"


@dataclass(frozen=True)
class ButtonsSection:
    connect: int | None = 17
    mute: int | None = 27
    #: Talk button, used in push_to_talk mode.
    talk: int | None = 24
    volume_up: int | None = None
    volume_down: int | None = None
    mode: Literal["toggle", "push_to_talk"] = "toggle"
    pull_up: bool = True
    bounce_ms: int = 30
    long_press_s: float = 1.0
    double_press_s: float = 0.3
    connect_long: Action = "forget"
    connect_double: Action = "none"
    mute_long: Action = "none"
    mute_double: Action = "none"


@dataclass(frozen=True)
class LedsSection:
    status: int | None = 22
    mute: int | None = 23
    activity: int | None = 25
    #: Optional LED, on while a microphone or speaker is missing or lost (not fitted by default).
    fault: int | None = None
    #: Optional RGB status LED pins [r, g, b] instead of the single status LED.
    status_rgb: list[int] | None = None
    active_high: bool = True
    pwm: bool = True


@dataclass(frozen=True)
class ControlSection:
    socket: str = "/run/voice-device/control.sock"
    #: File mode of the socket, as an octal string.
    mode: str = "0660"
    max_clients: int = 128


@dataclass(frozen=True)
class BehaviourSection:
    autoconnect: bool = False
    earcons: bool = True
    reconnect: bool = True
    start_muted: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: Disconnect after this many seconds without speech, response or command; 0 = never.
    idle_disconnect_s: float = 0.0
    #: After an idle disconnect, the next connection starts a fresh conversation (it does
    #: anyway today: every connection is a new model session).
    forget_on_idle: bool = False

    def idle(self) -> IdleSettings:
        return IdleSettings(self.idle_disconnect_s, self.forget_on_idle)


@dataclass(frozen=True)
class Config:
    model: ModelSection = field(default_factory=ModelSection)
    credential: CredentialSection = field(default_factory=CredentialSection)
    audio: AudioSection = field(default_factory=AudioSection)
    buttons: ButtonsSection = field(default_factory=ButtonsSection)
    leds: LedsSection = field(default_factory=LedsSection)
    control: ControlSection = field(default_factory=ControlSection)
    behaviour: BehaviourSection = field(default_factory=BehaviourSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    wake: WakeSection = field(default_factory=WakeSection)

    # ------------------------------------------------------------ derived values

    def realtime_model(self) -> RealtimeModel:
        return model_for(self.model.provider, self.model.name or None, self.model.url or None)

    def session_config(self) -> SessionConfig:
        m = self.model
        voice = m.voice or provider_info(m.provider).default_voice
        return SessionConfig(
            instructions=m.instructions,
            voice=voice,
            turn_detection=(
                None
                if m.turn_detection == "none" or self.buttons.mode == "push_to_talk"
                else m.turn_detection
            ),
            vad_threshold=m.vad_threshold,
            silence_duration_ms=m.silence_duration_ms,
            transcription_model=m.transcription_model or None,
        )

    def warnings(self) -> list[str]:
        """Valid but probably unintended settings, for ``config check`` and the service log."""
        found = []
        if self.model.turn_detection == "none" and self.buttons.mode == "toggle":
            found.append(
                'model.turn_detection = "none" with buttons.mode = "toggle": nothing ever ends '
                "a spoken turn, so the microphone is never sent (only send_message works); "
                'use buttons.mode = "push_to_talk" for spoken turns'
            )
        return found

    def api_key_env(self) -> str:
        if self.credential.env:
            return self.credential.env
        return provider_info(self.model.provider).api_key_env

    def socket_mode(self) -> int:
        return int(self.control.mode, 8)


# ------------------------------------------------------------------ parsing


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)


_TYPE_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, hint, key)
    if origin is Literal:
        return _coerce_literal(value, hint, key)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected an array, got {_describe(value)}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value}")
    if hint in _TYPE_NAMES:
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{key}: expected {_TYPE_NAMES[hint]}, got {_describe(value)}")
    raise ConfigError(f"{key}: unsupported setting type")  # pragma: no cover


def _coerce_union(value: Any, hint: Any, key: str) -> Any:
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if value is False and bool not in options and type(None) in typing.get_args(hint):
        return None  # `pin = false`: the part is not fitted
    errors = []
    for option in options:
        try:
            return _coerce(value, option, key)
        except ConfigError as exc:
            errors.append(str(exc))
    raise ConfigError(errors[0])


def _coerce_literal(value: Any, hint: Any, key: str) -> Any:
    allowed = typing.get_args(hint)
    base = type(allowed[0])
    if not isinstance(value, base) or isinstance(value, bool) != (base is bool):
        raise ConfigError(f"{key}: expected {_TYPE_NAMES[base]}, got {_describe(value)}")
    if value in allowed and type(value) is type(allowed[0]):
        return value
    shown = ", ".join(_describe(a) for a in allowed)
    raise ConfigError(f"{key}: expected one of {shown}, got {_describe(value)}")


def _section(cls: type[Any], name: str, table: Any, errors: list[str]) -> Any:
    """The section from ``table``; each bad key is added to ``errors`` and left at its
    default, so one pass finds every mistake. A section with its own ``from_table`` (``[mqtt]``)
    validates itself and reports every problem it finds."""
    if hasattr(cls, "from_table"):
        try:
            return cls.from_table(table)
        except ConfigError as exc:
            errors.append(str(exc))
            return cls()
    if not isinstance(table, dict):
        errors.append(f"{name}: expected a table ([{name}]), got {_describe(table)}")
        return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            errors.append(f"{name}.{key}: unknown key (known keys: {', '.join(sorted(known))})")
            continue
        try:
            values[key] = _coerce(value, hints[key], f"{name}.{key}")
        except ConfigError as exc:
            errors.append(str(exc))
    return cls(**values)


_SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Config)[f.name] for f in dataclasses.fields(Config)
}


def parse_config(text: str, source: str = "config") -> Config:
    """Parse TOML text into a validated :class:`Config`; :class:`ConfigError` lists every
    problem found, one per line, each naming its key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    errors: list[str] = []
    sections: dict[str, Any] = {}
    for name, table in raw.items():
        if name not in _SECTIONS:
            errors.append(f"{name}: unknown section (known sections: {', '.join(_SECTIONS)})")
            continue
        sections[name] = _section(_SECTIONS[name], name, table, errors)
    config = Config(**sections)
    errors += validate(config)
    if errors:
        raise ConfigError("\n".join(errors))
    return config


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the config file; a missing default file means all defaults."""
    p = Path(path) if path is not None else DEFAULT_PATH
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path is None:
            return Config()
        raise ConfigError(f"{p}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: config is not UTF-8 text") from None
    try:
        return parse_config(text, str(p))
    except ConfigError as exc:
        raise ConfigError("\n".join(f"{p}: {line}" for line in str(exc).splitlines())) from None
