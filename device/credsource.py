"""Where the service gets its credential before each (re)connect.

* ``env``  — a long-lived API key in an environment variable (``OPENAI_API_KEY``).
* ``file`` — an API key in a file; relative paths resolve in ``$CREDENTIALS_DIRECTORY``, so
  systemd's ``LoadCredential=api-key:/etc/voice-device/api-key`` works without the service user
  being able to read ``/etc/voice-device`` itself.
* ``url``  — a credential backend (kernl's server shape): ``POST {"provider", "modelId"}`` →
  ``{"credential": {"kind": "token"|"url", "token"|"url": …, "expiresAt": …}}``, optionally
  with a device bearer token. Short-lived ephemeral keys never touch the device's disk.

Errors are :class:`CredentialError` naming the source and what was wrong — never the secret,
and never the backend's response body (it may hold one).
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

from .config import Config
from .realtime.credentials import Credential, parse_credential
from .realtime.errors import CredentialError, CredentialSourceError

Provider = Callable[[], Awaitable[Credential]]


def resolve_credential_path(name: str) -> Path:
    path = Path(name)
    if path.is_absolute():
        return path
    base = os.environ.get("CREDENTIALS_DIRECTORY")
    return Path(base) / path if base else path


def _read_secret_file(name: str, what: str) -> str:
    path = resolve_credential_path(name)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        hint = "" if os.environ.get("CREDENTIALS_DIRECTORY") else " ($CREDENTIALS_DIRECTORY unset)"
        raise CredentialError(f"{what}: file {path} not found{hint}") from None
    except PermissionError:
        raise CredentialError(f"{what}: file {path} is not readable by this user") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialError(f"{what}: cannot read {path}: {exc.__class__.__name__}") from None
    if not text:
        raise CredentialError(f"{what}: file {path} is empty")
    return text


def _post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> bytes:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: bytes = response.read(1_000_000)
        return data


def make_provider(config: Config) -> Provider:
    """Build the credential provider the config describes (nothing is read until called)."""
    source = config.credential

    if source.source == "env":
        var = config.api_key_env()

        async def from_env() -> Credential:
            key = os.environ.get(var, "")
            if not key.strip():
                raise CredentialError(
                    f"credential.env: environment variable {var} is not set or empty"
                )
            return Credential.api_key(key)

        return from_env

    if source.source == "file":

        async def from_file() -> Credential:
            return Credential.api_key(_read_secret_file(source.file, "credential.file"))

        return from_file

    async def from_url() -> Credential:
        body = json.dumps(
            {"provider": config.model.provider, "modelId": config.realtime_model().name}
        ).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        device_token = ""
        if source.device_token_file:
            device_token = _read_secret_file(
                source.device_token_file, "credential.device_token_file"
            )
        elif source.device_token_env:
            device_token = os.environ.get(source.device_token_env, "").strip()
        if device_token:
            headers["Authorization"] = f"Bearer {device_token}"
        where = source.url.split("?", 1)[0]
        try:
            raw = await asyncio.to_thread(_post_json, source.url, body, headers, source.timeout_s)
        except urllib.error.HTTPError as exc:
            # 401/403: the device token is refused, retrying will not help; the rest may pass.
            kind = CredentialError if exc.code in (401, 403) else CredentialSourceError
            raise kind(f"credential.url: {where} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CredentialSourceError(f"credential.url: {where} unreachable ({reason})") from None
        try:
            payload = json.loads(raw)
        except ValueError:
            raise CredentialSourceError(f"credential.url: {where} did not return JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("credential"), dict):
            raise CredentialSourceError(
                f"credential.url: {where} returned JSON without a 'credential' object"
            )
        try:
            return parse_credential(payload["credential"])
        except CredentialError as exc:
            raise CredentialSourceError(f"credential.url: {where} returned {exc}") from None

    return from_url
