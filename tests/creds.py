"""Credentials for tests: a bearer token valid for ``minutes`` (negative: already expired).

Each test module keeps its own fake token (``TOKEN = "fake-…-SECRET-…"``), so a leak in a log
names the module it came from.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from device.realtime.credentials import Credential


def token_credential(token: str, *, minutes: float = 30) -> dict[str, Any]:
    """The wire form ``connect()`` and the control socket take."""
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    return {"kind": "token", "token": token, "expiresAt": expires.isoformat()}


def fresh_credential(token: str, *, minutes: float = 30) -> Credential:
    """The parsed form a credential provider returns."""
    return Credential("token", token, datetime.now(UTC) + timedelta(minutes=minutes))
