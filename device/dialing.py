"""Getting a usable credential, and the one mapping from a failed connect to a status.

Both :meth:`RealtimeSession.connect` and the reconnect loop judge a failed attempt here, so
the same failure always yields the same notice and the same decision: retry or give up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .realtime.credentials import Credential, parse_credential
from .realtime.errors import (
    AuthError,
    ConnectError,
    CredentialError,
    CredentialSourceError,
    SessionRejected,
    VoiceDeviceError,
)

CredentialInput = Credential | Mapping[str, Any]
CredentialProvider = Callable[[], Awaitable[CredentialInput]]

#: Refresh a credential before (re)connecting when it expires within this many seconds.
REFRESH_MARGIN_S = 30.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a failed connect attempt is reported: notice code, the error, retry or give up."""

    code: str
    error: Exception
    retry: bool


#: What each failure means, most specific first: (kind, notice code, worth retrying).
_JUDGEMENTS: tuple[tuple[type[Exception], str, bool], ...] = (
    (CredentialSourceError, "credential", True),  # the backend is down (or lagging) for now
    (AuthError, "auth", False),
    (CredentialError, "credential", False),  # missing key, expired, nothing renews it
    (SessionRejected, "session", False),
    (ConnectError, "network", True),
    (VoiceDeviceError, "network", False),  # e.g. a credential URL that is not allowed
)


def verdict(exc: Exception, provider: str) -> Verdict:
    """Judge a failed (re)connect attempt; an unexpected exception is a network failure."""
    for kind, code, retry in _JUDGEMENTS:
        if isinstance(exc, kind):
            return Verdict(code, exc, retry)
    error = ConnectError(f"{provider}: connect failed ({type(exc).__name__})")
    return Verdict("network", error, True)


async def usable_credential(
    current: Credential | None, provider: CredentialProvider | None, *, force: bool
) -> Credential:
    """``current`` if it stays valid a while, else a fresh one from ``provider``.

    A credential the source hands out already expired is a source failure (retried with
    backoff: the backend may catch up), unlike a stored credential nothing can renew.
    """
    cred = current
    stale = cred is None or cred.expires_within(REFRESH_MARGIN_S)
    if provider is not None and (force or stale):
        try:
            cred = parse_credential(await provider())
        except CredentialError:
            raise
        except Exception as exc:  # a provider of ours raises CredentialError; others may not
            what = type(exc).__name__
            raise CredentialSourceError(f"could not get a credential: {what}") from None
        if cred.expired():
            raise CredentialSourceError(
                "the credential source returned a credential that expired at "
                f"{cred.expires_at.isoformat()}"
            )
    if cred is None:
        raise CredentialError("no credential: pass one to connect() or configure a source")
    if cred.expired():
        raise CredentialError(
            f"credential expired at {cred.expires_at.isoformat()} and no source can renew it"
        )
    return cred
