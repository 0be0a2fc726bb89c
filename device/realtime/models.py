"""Model descriptions: which provider, which model, which endpoint.

Mirrors kernl's ``OpenAIRealtimeModel("gpt-realtime")`` / ``GrokRealtimeModel()``: a model
object knows its endpoint and its wire codec; ``url=`` overrides the endpoint (the local
simulator, a proxy).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .codec import Codec
from .errors import ConfigError
from .openai import OpenAICodec
from .xai import XAICodec

Provider = Literal["openai", "xai"]

OPENAI_URL = "wss://api.openai.com/v1/realtime"
XAI_URL = "wss://api.x.ai/v1/realtime"
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def is_loopback_host(host: str | None) -> bool:
    """True only for ``localhost`` and literal loopback addresses (127.0.0.0/8, ``::1``):
    ``127.0.0.1.nip.io`` or ``localhost.example`` are remote hosts."""
    if not host:
        return False
    host = host.lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str) -> None:
    """Refuse anything but ``wss://``, except ``ws://`` to a loopback host (simulator)."""
    parts = urlsplit(url)
    if parts.scheme == "wss":
        return
    if parts.scheme == "ws":
        try:
            host = parts.hostname or ""
        except ValueError:
            raise ConfigError("model.url: not a valid URL") from None
        if is_loopback_host(host):
            return
        raise ConfigError(
            f"model.url: plain ws:// is only allowed to a loopback host, not {host!r}; use wss://"
        )
    raise ConfigError(f"model.url: expected a wss:// URL, got scheme {parts.scheme!r}")


@dataclass(frozen=True, slots=True)
class RealtimeModel:
    """A realtime speech model reachable over a websocket."""

    provider: Provider
    name: str
    url: str

    def endpoint(self) -> str:
        """The connect URL, with ``?model=`` added unless the URL already names one."""
        check_endpoint(self.url)
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query))
        if self.name and "model" not in query:
            query["model"] = self.name
        return urlunsplit(parts._replace(query=urlencode(query)))

    def codec(self) -> Codec:
        return XAICodec() if self.provider == "xai" else OpenAICodec()


class OpenAIRealtimeModel(RealtimeModel):
    """OpenAI Realtime GA, e.g. ``OpenAIRealtimeModel("gpt-realtime")``."""

    def __init__(self, name: str = "gpt-realtime", *, url: str | None = None) -> None:
        super().__init__("openai", name, url or OPENAI_URL)


class GrokRealtimeModel(RealtimeModel):
    """xAI Grok Voice Agent realtime, e.g. ``GrokRealtimeModel()``."""

    def __init__(self, name: str = "grok-voice-latest", *, url: str | None = None) -> None:
        super().__init__("xai", name, url or XAI_URL)


def model_for(provider: str, name: str | None = None, url: str | None = None) -> RealtimeModel:
    """Build a model from config values; an unknown provider names the key."""
    if provider == "openai":
        return OpenAIRealtimeModel(name or "gpt-realtime", url=url)
    if provider == "xai":
        return GrokRealtimeModel(name or "grok-voice-latest", url=url)
    raise ConfigError(f"model.provider: expected 'openai' or 'xai', got {provider!r}")
