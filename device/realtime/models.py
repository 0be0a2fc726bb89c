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
from .providers import OPENAI, XAI, ProviderInfo, provider_info
from .xai import XAICodec

Provider = Literal["openai", "xai"]

OPENAI_URL = OPENAI.url
XAI_URL = XAI.url
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


def check_endpoint(url: str, what: str = "model.url") -> None:
    """Refuse anything but ``wss://``, except ``ws://`` to a loopback host (simulator).
    ``what`` names the URL in the :class:`ConfigError` (a credential's URL is never printed
    whole: the caller passes its ``scheme://host:port``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ConfigError(f"{what}: not a valid URL") from None
    if parts.scheme == "wss":
        return
    if parts.scheme == "ws":
        if is_loopback_host(host):
            return
        raise ConfigError(
            f"{what}: plain ws:// is only allowed to a loopback host, not {host!r}; use wss://"
        )
    raise ConfigError(f"{what}: expected a wss:// URL, got scheme {parts.scheme!r}")


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

    @property
    def provider_info(self) -> ProviderInfo:
        """This provider's record: defaults, allowed turn detections, barge-in, credentials."""
        return provider_info(self.provider)


class OpenAIRealtimeModel(RealtimeModel):
    """OpenAI Realtime GA, e.g. ``OpenAIRealtimeModel("gpt-realtime")``."""

    def __init__(self, name: str = OPENAI.default_model, *, url: str | None = None) -> None:
        super().__init__("openai", name, url or OPENAI.url)


class GrokRealtimeModel(RealtimeModel):
    """xAI Grok Voice Agent realtime, e.g. ``GrokRealtimeModel()`` (voice ``eve`` unless the
    session config names one)."""

    def __init__(self, name: str = XAI.default_model, *, url: str | None = None) -> None:
        super().__init__("xai", name, url or XAI.url)


def model_for(provider: str, name: str | None = None, url: str | None = None) -> RealtimeModel:
    """Build a model from config values; an unknown provider names the key."""
    info = provider_info(provider)
    if info.name == "openai":
        return OpenAIRealtimeModel(name or info.default_model, url=url)
    return GrokRealtimeModel(name or info.default_model, url=url)
