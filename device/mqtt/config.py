"""``[mqtt]`` settings: validated once, every error naming the key.

The password never sits in the config file: ``password_file`` names a file, relative paths
resolving in ``$CREDENTIALS_DIRECTORY`` (systemd's ``LoadCredential=``), like the API key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..realtime.errors import ConfigError, CredentialError

MACHINE_ID = Path("/etc/machine-id")
#: Topic level for the whole fleet: ``voice-device/<device_id>/…`` and ``voice-device/all/command``.
FLEET_ROOT = "voice-device"
DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Words the fleet CLI and topics use in place of a device id.
RESERVED_IDS = ("all", "list", "remove")
_TOPIC_BAD = re.compile(r"[+#\x00]")


def default_device_id(machine_id: Path = MACHINE_ID) -> str:
    """12 hex digits derived from the machine id: stable across reboots, and not the raw id
    (which systemd asks never to expose on the network)."""
    try:
        raw = machine_id.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raise ConfigError(
            f"mqtt.device_id: not set and {machine_id} is unreadable; set device_id"
        ) from None
    if not raw:
        raise ConfigError(f"mqtt.device_id: not set and {machine_id} is empty; set device_id")
    return hashlib.sha256(b"voice-device/mqtt:" + raw.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class MqttConfig:
    """``[mqtt]``. ``host = ""`` (the default) turns the bridge off."""

    host: str = ""
    port: int = 0  # 0: 1883, or 8883 with tls
    tls: bool = False
    ca_file: str = ""  # empty: the system's CA store
    username: str = ""
    password_file: str = ""
    device_id: str = ""  # empty: derived from /etc/machine-id
    topic_prefix: str = ""  # empty: voice-device/<device_id>
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    publish_transcripts: bool = False
    keepalive: int = 30

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def broker_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)

    @property
    def prefix(self) -> str:
        return self.topic_prefix or f"{FLEET_ROOT}/{self.device_id}"

    @property
    def where(self) -> str:
        """The broker as logs and errors name it (no credentials)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.broker_port}"

    @classmethod
    def from_table(
        cls, table: Any, *, machine_id: Path = MACHINE_ID, derive_id: bool = True
    ) -> MqttConfig:
        """Build from the parsed ``[mqtt]`` TOML table, validating every key. ``derive_id``:
        fill an empty ``device_id`` from the machine id (not needed by the fleet client)."""
        if not isinstance(table, dict):
            raise ConfigError("mqtt: expected a table ([mqtt])")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        problems: list[str] = []
        for key, value in table.items():
            if key not in fields:
                known = ", ".join(sorted(fields))
                problems.append(f"mqtt.{key}: unknown key (known keys: {known})")
                continue
            expected = type(fields[key].default)
            if type(value) is not expected:
                problems.append(
                    f"mqtt.{key}: expected {expected.__name__}, got {type(value).__name__}"
                )
                continue
            values[key] = value
        config = cls(**values)
        problems += config.problems()
        if problems:  # every one, one per line (config check lists them all)
            raise ConfigError("\n".join(problems))
        if derive_id and config.enabled and not config.device_id:
            config = dataclasses.replace(config, device_id=default_device_id(machine_id))
        return config

    def validate(self) -> None:
        """Raise :class:`ConfigError` listing every problem (one per line)."""
        problems = self.problems()
        if problems:
            raise ConfigError("\n".join(problems))

    def problems(self) -> list[str]:
        """Every problem with these settings, each naming its key."""
        out: list[str] = []
        if self.host and (any(c.isspace() for c in self.host) or "/" in self.host):
            out.append(f"mqtt.host: expected a host name or address, got {self.host!r}")
        if not 0 <= self.port <= 65535:
            out.append(f"mqtt.port: expected 1..65535, got {self.port}")
        if not 5 <= self.keepalive <= 3600:
            out.append(f"mqtt.keepalive: expected 5..3600 seconds, got {self.keepalive}")
        if self.ca_file and not self.tls:
            out.append("mqtt.ca_file: set only with tls = true")
        if self.password_file and not self.username:
            out.append("mqtt.password_file: needs mqtt.username")
        return out + self._name_problems()

    def _name_problems(self) -> list[str]:
        out: list[str] = []
        if self.device_id and not DEVICE_ID.match(self.device_id):
            out.append(
                f"mqtt.device_id: expected 1-64 letters, digits, '-' or '_', got {self.device_id!r}"
            )
        if self.device_id in RESERVED_IDS:
            out.append(
                f"mqtt.device_id: {self.device_id!r} is reserved for the fleet; choose another id"
            )
        for key in ("topic_prefix", "discovery_prefix"):
            value = getattr(self, key)
            if _TOPIC_BAD.search(value) or value.startswith("/") or value.endswith("/"):
                out.append(
                    f"mqtt.{key}: not a topic prefix (no '+', '#', leading or trailing '/'): "
                    f"{value!r}"
                )
        if not self.discovery_prefix:
            out.append("mqtt.discovery_prefix: must not be empty")
        return out

    def password(self) -> str | None:
        """Read the password file (at connect time, so a rotated secret is picked up)."""
        if not self.password_file:
            return None
        path = Path(self.password_file)
        if not path.is_absolute():
            base = os.environ.get("CREDENTIALS_DIRECTORY")
            path = Path(base) / path if base else path
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise CredentialError(f"mqtt.password_file: {path} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialError(
                f"mqtt.password_file: cannot read {path}: {type(exc).__name__}"
            ) from None
        if not text:
            raise CredentialError(f"mqtt.password_file: {path} is empty")
        return text

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        try:
            return ssl.create_default_context(cafile=self.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"mqtt.ca_file: cannot load {self.ca_file}: {exc}") from None
