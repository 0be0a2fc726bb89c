"""Credentials, as the web hook's ``connect(credential)`` receives them.

A *CredentialInput* is a mapping::

    {"kind": "token", "token": "ek_…", "expiresAt": "2026-11-24T10:00:00Z"}
    {"kind": "url", "url": "wss://…signed…", "expiresAt": datetime(...)}

:func:`parse_credential` turns it into a frozen :class:`Credential`. The secret part (the token,
or the query string of a signed URL) never appears in ``repr``/``str``, so a credential can be
logged by accident without leaking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from .errors import CredentialError
from .models import is_loopback_host

CredentialKind = Literal["token", "url"]

#: ``expiresAt`` used for long-lived API keys that carry no expiry of their own.
NEVER = datetime.max.replace(tzinfo=UTC)


def public_url(url: str) -> str:
    """``url`` as it may appear in logs, errors and replies: ``scheme://host:port`` only. The
    user info, path, query and fragment are dropped: a signed URL carries its secret in any of
    them (some backends put it in the path)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
    except ValueError:
        return "(invalid URL)"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port out of range: the request itself will say so
        port = ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme or '?'}://{host}{port}"


_redact_url = public_url


@dataclass(frozen=True, slots=True)
class Credential:
    """A parsed, immutable credential. ``secret`` is the token or the URL."""

    kind: CredentialKind
    secret: str = field(repr=False)
    expires_at: datetime

    def expired(self, now: datetime | None = None) -> bool:
        """True once ``now`` (default: the current UTC time) is at or past ``expires_at``."""
        return (now or datetime.now(UTC)) >= self.expires_at

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        """True if the credential is expired or will be within ``seconds``."""
        now = now or datetime.now(UTC)
        if self.expires_at == NEVER:
            return False
        return now + timedelta(seconds=seconds) >= self.expires_at

    @property
    def token(self) -> str | None:
        """The bearer token for ``kind == "token"``, else ``None``."""
        return self.secret if self.kind == "token" else None

    @property
    def url(self) -> str | None:
        """The connect URL for ``kind == "url"``, else ``None``."""
        return self.secret if self.kind == "url" else None

    def __repr__(self) -> str:
        shown = _redact_url(self.secret) if self.kind == "url" else "***"
        return (
            f"Credential(kind={self.kind!r}, {'url' if self.kind == 'url' else 'token'}={shown}, "
            f"expires_at={self.expires_at.isoformat()})"
        )

    __str__ = __repr__

    @classmethod
    def api_key(cls, key: str) -> Credential:
        """A long-lived API key as a token credential that never expires."""
        if not key.strip():
            raise CredentialError("credential: API key is empty")
        return cls("token", key.strip(), NEVER)


def _parse_expiry(value: Any) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise CredentialError(
                f"credential.expiresAt: not an ISO-8601 date-time: {value!r}"
            ) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        # Unix seconds, as some backends send (OpenAI client_secrets answer expires_at so).
        try:
            dt = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise CredentialError(f"credential.expiresAt: {value!r} is not a usable time") from None
    else:
        raise CredentialError(
            f"credential.expiresAt: expected an ISO-8601 string or datetime, "
            f"got {type(value).__name__}"
        )
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def _check_url(secret: str) -> None:
    scheme = urlsplit(secret).scheme
    if scheme not in ("ws", "wss"):
        raise CredentialError(
            f"credential.url: expected a ws:// or wss:// URL, got scheme {scheme!r}"
        )
    try:
        host = urlsplit(secret.strip()).hostname or ""
        urlsplit(secret.strip()).port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise CredentialError("credential.url: not a valid URL") from None
    if scheme == "ws" and not is_loopback_host(host):
        raise CredentialError("credential.url: plain ws:// is only allowed to a loopback host")


def parse_credential(value: Credential | Mapping[str, Any]) -> Credential:
    """Parse a CredentialInput mapping (or pass a :class:`Credential` through).

    Raises :class:`CredentialError` naming the missing or bad field; never echoes the secret.
    """
    if isinstance(value, Credential):
        return value
    if not isinstance(value, Mapping):
        raise CredentialError(
            f"credential: expected an object with kind/token|url/expiresAt, "
            f"got {type(value).__name__}"
        )
    kind = value.get("kind")
    if kind is None:
        raise CredentialError("credential.kind: missing (expected 'token' or 'url')")
    if kind not in ("token", "url"):
        raise CredentialError(f"credential.kind: unknown kind {kind!r} (expected 'token' or 'url')")
    secret = value.get(kind)
    if secret is None:
        raise CredentialError(f"credential.{kind}: missing for kind {kind!r}")
    if not isinstance(secret, str) or not secret.strip():
        raise CredentialError(f"credential.{kind}: expected a non-empty string")
    if "expiresAt" not in value:
        raise CredentialError("credential.expiresAt: missing")
    expires = _parse_expiry(value["expiresAt"])
    if kind == "url":
        _check_url(secret)
        return Credential("url", secret.strip(), expires)
    return Credential("token", secret.strip(), expires)
