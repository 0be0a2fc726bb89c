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
import contextlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from .config import Config
from .realtime.credentials import Credential, parse_credential
from .realtime.errors import CredentialError, CredentialSourceError
from .redact import public_url

T = TypeVar("T")

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the device token to wherever it points (urllib copies the
    ``Authorization`` header): refuse it, the 3xx becomes an HTTP error naming the code."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


MAX_REPLY = 1 << 20


class _DeadlineExceeded(Exception):
    pass


def _post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> bytes:
    """POST and read the reply, all within ``timeout`` seconds overall (a backend trickling
    one byte per second does not reset the clock as urllib's per-read timeout does)."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    chunks: list[bytes] = []
    size = 0
    with _OPENER.open(request, timeout=timeout) as response:
        while size < MAX_REPLY:
            if time.monotonic() >= deadline:
                raise _DeadlineExceeded
            chunk: bytes = response.read1(min(65536, MAX_REPLY - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)


async def _in_daemon_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking ``fn`` in a daemon thread: unlike the default executor, a shutdown does not
    wait for it (a credential backend that hangs must not delay SIGTERM)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, None, exc)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="credential-fetch", daemon=True).start()
    return await future


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
        return await _fetch_from_backend(config)

    return from_url


def _backend_request(config: Config) -> tuple[bytes, dict[str, str]]:
    source = config.credential
    body = json.dumps(
        {"provider": config.model.provider, "modelId": config.realtime_model().name}
    ).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    device_token = ""
    if source.device_token_file:
        device_token = _read_secret_file(source.device_token_file, "credential.device_token_file")
    elif source.device_token_env:
        device_token = os.environ.get(source.device_token_env, "").strip()
    if device_token:
        headers["Authorization"] = f"Bearer {device_token}"
    return body, headers


async def _fetch_from_backend(config: Config) -> Credential:
    """POST to the backend and parse its answer, all within ``credential.timeout_s``."""
    source = config.credential
    body, headers = _backend_request(config)
    where = public_url(source.url)
    try:
        async with asyncio.timeout(source.timeout_s):
            raw = await _in_daemon_thread(_post_json, source.url, body, headers, source.timeout_s)
    except (TimeoutError, _DeadlineExceeded):
        raise CredentialSourceError(
            f"credential.url: {where} gave no complete answer within "
            f"{source.timeout_s:g} s (credential.timeout_s)"
        ) from None
    except urllib.error.HTTPError as exc:
        # 401/403: the device token is refused, retrying will not help; the rest may pass.
        # A redirect is refused (it would carry the device token elsewhere): fix the URL.
        final = exc.code in (401, 403) or 300 <= exc.code < 400
        kind = CredentialError if final else CredentialSourceError
        note = " (redirects are not followed)" if 300 <= exc.code < 400 else ""
        raise kind(f"credential.url: {where} answered HTTP {exc.code}{note}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CredentialSourceError(f"credential.url: {where} unreachable ({reason})") from None
    return _parse_reply(raw, where)


def _parse_reply(raw: bytes, where: str) -> Credential:
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
