"""The project's exception tree, written out in one place.

::

    VoiceDeviceError                 base of everything raised on purpose
    ├── CredentialError (ValueError)     a credential is malformed, missing a field, or expired
    ├── ProtocolError (ValueError)       the peer sent something we cannot decode
    ├── ConnectError (ConnectionError)   the websocket could not be opened (network, TLS, HTTP)
    │   └── AuthError (PermissionError)  the handshake was answered 401/403
    ├── NotConnectedError (RuntimeError) an action needs a live connection and there is none
    ├── LimitError (PermissionError)     a usage limit ([limits]) forbids connecting today
    └── ConfigError (ValueError)         a config key is unknown or has the wrong type

Each error also subclasses a builtin so callers that only know the standard library can catch it.
Messages name what was wrong and never contain a secret.
"""

from __future__ import annotations


class VoiceDeviceError(Exception):
    """Base class of every error voice-device raises on purpose."""


class CredentialError(VoiceDeviceError, ValueError):
    """A credential is malformed, misses a field, has an unknown kind, or has expired."""


class CredentialSourceError(CredentialError):
    """The credential source could not answer right now (backend down, garbage reply): worth
    retrying with backoff, unlike a missing key or an expired credential."""


class ProtocolError(VoiceDeviceError, ValueError):
    """The peer sent something that is not a valid realtime event (bad JSON, field, base64)."""


class ConnectError(VoiceDeviceError, ConnectionError):
    """Opening the realtime websocket failed."""


class AuthError(ConnectError, PermissionError):
    """The realtime endpoint refused the credential (HTTP 401 or 403)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotConnectedError(VoiceDeviceError, RuntimeError):
    """The action needs a live connection (``send_message`` while disconnected, say)."""


class LimitError(VoiceDeviceError, PermissionError):
    """A daily usage limit (``[limits]``) is reached: connecting is refused until the local
    day changes or the limit is raised. The message names the limit."""


class ConfigError(VoiceDeviceError, ValueError):
    """A configuration key is unknown or holds a value of the wrong type."""


class SessionRejected(ConfigError):
    """The model answered the session configuration with an error (an unknown voice, a bad
    tool schema): retrying the same configuration cannot help."""
