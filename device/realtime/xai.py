"""xAI Grok realtime codec.

Grok's Voice Agent API speaks the OpenAI realtime event vocabulary with a flatter session:
``voice``, ``instructions`` and ``turn_detection`` sit directly in ``session`` (no
``session.type``), and audio formats are ``session.audio.{input,output}.format``. Turn detection
is ``server_vad`` or ``null`` only. It opens with ``session.created`` (older servers:
``conversation.created``) and sends ``ping`` keepalive events; both are handled quietly. Error
codes differ from OpenAI's and are passed through as they come. Differences that are not wire
encoding (default voice, barge-in, credentials) are in :mod:`.providers`.
"""

from __future__ import annotations

from typing import Any

from .codec import get_obj, get_str, tool_json, tools_from_json, turn_detection_json
from .events import SessionConfig
from .mirror import turn_detection_of
from .openai import OpenAICodec
from .pcm import RATE
from .providers import XAI, ProviderInfo


def xai_session_body(config: SessionConfig, info: ProviderInfo = XAI) -> dict[str, Any]:
    fmt = {"type": "audio/pcm", "rate": config.sample_rate}
    body: dict[str, Any] = {
        "instructions": config.instructions,
        "voice": info.voice_for(config),
        "turn_detection": turn_detection_json(config),
        "audio": {"input": {"format": fmt}, "output": {"format": dict(fmt)}},
    }
    if config.tools:
        body["tools"] = [tool_json(t) for t in config.tools]
    return body


class XAICodec(OpenAICodec):
    """xAI Grok realtime wire codec: OpenAI's decoder, xAI's session shape."""

    provider = "xai"
    info: ProviderInfo = XAI

    def session_update(self, config: SessionConfig) -> dict[str, Any]:
        return {"type": "session.update", "session": xai_session_body(config, self.info)}

    def config_from_session(self, session: dict[str, Any]) -> SessionConfig:
        where = "session.update.session"
        kind, td = turn_detection_of(session.get("turn_detection"), where)
        fmt = get_obj(get_obj(get_obj(session, "audio", where), "input", where), "format", where)
        rate = fmt.get("rate")
        return SessionConfig(
            instructions=session.get("instructions") or "",
            voice=get_str(session, "voice", where),
            turn_detection=kind,
            vad_threshold=td.get("threshold"),
            silence_duration_ms=td.get("silence_duration_ms"),
            prefix_padding_ms=td.get("prefix_padding_ms"),
            transcription_model=None,
            tools=tools_from_json(session, where),
            sample_rate=rate if isinstance(rate, int) else RATE,
        )
