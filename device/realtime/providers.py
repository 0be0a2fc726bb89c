"""One record per provider: what differs between OpenAI Realtime GA and xAI Grok realtime.

Everything provider-specific that is not wire encoding lives here, so the session, the config
validation and the docs read the same facts: endpoint, default model and voice, the API-key
variable, which turn detections and VAD thresholds the provider documents, whether the server
cancels the response itself on barge-in, and whether signed-URL credentials exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from .errors import ConfigError, CredentialError
from .events import SessionConfig

ProviderName = Literal["openai", "xai"]


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """The facts about one realtime provider that the device acts on."""

    name: ProviderName
    #: Human name for messages ("OpenAI", "xAI").
    label: str
    url: str
    default_model: str
    default_voice: str
    #: Voices the provider ships; ``custom_voices`` says whether other ids may be valid.
    voices: tuple[str, ...]
    custom_voices: bool
    api_key_env: str
    #: Turn detections the provider documents (``None`` = off, push-to-talk).
    turn_detections: tuple[str | None, ...]
    #: Inclusive range of ``server_vad`` ``threshold``.
    vad_threshold_range: tuple[float, float]
    #: True if the server cancels the in-flight response itself on ``speech_started``
    #: (OpenAI's ``interrupt_response``); False means the client must send ``response.cancel``.
    server_cancels_on_speech: bool
    #: True if the provider hands out pre-signed websocket URLs (``url`` credentials).
    url_credentials: bool
    #: Error codes meaning "cancel found no active response" (benign after a barge-in).
    cancel_not_active_codes: tuple[str, ...]
    #: The ``session.type`` its ``session.updated`` confirms (``None``: it echoes none).
    session_type: str | None

    def voice_for(self, config: SessionConfig) -> str:
        """The voice to send: the configured one, or this provider's default when empty."""
        return config.voice or self.default_voice

    def resolve(self, config: SessionConfig) -> SessionConfig:
        """``config`` with the provider default filled in for an empty voice."""
        if config.voice:
            return config
        return replace(config, voice=self.default_voice)

    def check_config(self, config: SessionConfig) -> None:
        """Refuse settings this provider does not document, naming the config key."""
        if config.turn_detection not in self.turn_detections:
            allowed = ", ".join(repr(t or "none") for t in self.turn_detections)
            raise ConfigError(
                f"model.turn_detection: {self.label} supports {allowed}, "
                f"not {config.turn_detection!r}"
            )
        if config.vad_threshold is not None:
            lo, hi = self.vad_threshold_range
            value = config.vad_threshold
            if not (math.isfinite(value) and lo <= value <= hi):
                raise ConfigError(
                    f"model.vad_threshold: {self.label} expects {lo:g}..{hi:g}, got {value!r}"
                )
        voice = config.voice
        if voice and not self.custom_voices and voice not in self.voices:
            raise ConfigError(
                f"model.voice: {self.label} has no voice {voice!r} "
                f"(expected one of {', '.join(self.voices)})"
            )

    def check_credential_kind(self, kind: str) -> None:
        """A ``url`` credential for a provider without signed URLs is a credential error."""
        if kind == "url" and not self.url_credentials:
            raise CredentialError(
                f"credential.kind: {self.label} has no signed websocket URLs, so a 'url' "
                f"credential cannot authenticate; use a 'token' credential (an API key or "
                f"an ephemeral token)"
            )


OPENAI = ProviderInfo(
    name="openai",
    label="OpenAI",
    url="wss://api.openai.com/v1/realtime",
    default_model="gpt-realtime",
    default_voice="marin",
    voices=(
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    ),
    custom_voices=False,
    api_key_env="OPENAI_API_KEY",
    turn_detections=("server_vad", "semantic_vad", None),
    vad_threshold_range=(0.0, 1.0),
    server_cancels_on_speech=True,
    url_credentials=True,
    cancel_not_active_codes=("response_cancel_not_active",),
    session_type="realtime",
)

XAI = ProviderInfo(
    name="xai",
    label="xAI",
    url="wss://api.x.ai/v1/realtime",
    default_model="grok-voice-latest",
    default_voice="eve",
    voices=("eve", "ara", "rex", "sal", "leo"),
    custom_voices=True,
    api_key_env="XAI_API_KEY",
    turn_detections=("server_vad", None),
    vad_threshold_range=(0.0, 1.0),
    server_cancels_on_speech=False,
    url_credentials=False,
    # xAI's wording differs; the session also matches the message (see is_cancel_not_active).
    cancel_not_active_codes=("response_cancel_not_active", "no_active_response"),
    session_type=None,
)

PROVIDERS: dict[str, ProviderInfo] = {"openai": OPENAI, "xai": XAI}


def provider_info(name: str) -> ProviderInfo:
    """The record for ``name``; an unknown provider is a :class:`ConfigError` naming the key."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ConfigError(
            f"model.provider: expected {' or '.join(map(repr, PROVIDERS))}, got {name!r}"
        ) from None


def is_cancel_not_active(info: ProviderInfo, code: str | None, message: str) -> bool:
    """True for the error a ``response.cancel`` gets when nothing is running (benign)."""
    if code in info.cancel_not_active_codes:
        return True
    text = message.lower()
    return "cancel" in text and ("no active response" in text or "not active" in text)
