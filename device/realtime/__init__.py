"""Sans-I/O realtime core: status, credentials, neutral events and provider codecs.

Nothing here does I/O: feed it bytes and events, get bytes and events back. That keeps the
protocol logic testable with plain function calls.
"""

from .codec import Codec
from .credentials import Credential, parse_credential
from .errors import (
    AuthError,
    ConfigError,
    ConnectError,
    CredentialError,
    CredentialSourceError,
    NotConnectedError,
    ProtocolError,
    VoiceDeviceError,
)
from .events import SessionConfig, ToolSpec
from .openai import OpenAICodec
from .providers import OPENAI, XAI, ProviderInfo, provider_info
from .sink import AudioSink, NullSink
from .status import TransportStatus
from .xai import XAICodec

__all__ = [
    "OPENAI",
    "XAI",
    "AudioSink",
    "AuthError",
    "Codec",
    "ConfigError",
    "ConnectError",
    "Credential",
    "CredentialError",
    "CredentialSourceError",
    "NotConnectedError",
    "NullSink",
    "OpenAICodec",
    "ProtocolError",
    "ProviderInfo",
    "SessionConfig",
    "ToolSpec",
    "TransportStatus",
    "VoiceDeviceError",
    "XAICodec",
    "parse_credential",
    "provider_info",
]
