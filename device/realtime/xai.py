"""xAI Grok realtime codec.

Grok's Voice Agent API speaks the OpenAI realtime event vocabulary with a flatter session:
``voice``, ``instructions`` and ``turn_detection`` sit directly in ``session`` (no
``session.type``), and audio formats are ``session.audio.{input,output}.format``. It opens with
``conversation.created`` and sends ``ping`` keepalive events; both are ignored quietly. Error
codes differ from OpenAI's and are passed through as they come.
"""

from __future__ import annotations

from typing import Any

from .codec import UnknownTypes, get_obj, get_str, load_object
from .errors import ProtocolError
from .events import ClientEvent, SessionConfig, ToolSpec, UpdateSession
from .openai import OpenAICodec, _tool, _turn_detection


def xai_session_body(config: SessionConfig) -> dict[str, Any]:
    fmt = {"type": "audio/pcm", "rate": config.sample_rate}
    body: dict[str, Any] = {
        "instructions": config.instructions,
        "voice": config.voice,
        "turn_detection": _turn_detection(config),
        "audio": {"input": {"format": fmt}, "output": {"format": dict(fmt)}},
    }
    if config.tools:
        body["tools"] = [_tool(t) for t in config.tools]
    return body


class XAICodec(OpenAICodec):
    """xAI Grok realtime wire codec."""

    provider = "xai"

    def __init__(self) -> None:
        super().__init__()
        self._unknown = UnknownTypes(self.provider)

    def session_update(self, config: SessionConfig) -> dict[str, Any]:
        return {"type": "session.update", "session": xai_session_body(config)}

    def decode_client(self, data: str | bytes) -> ClientEvent:
        obj = load_object(data)
        if obj["type"] != "session.update":
            return super().decode_client(data)
        where = "session.update.session"
        session = get_obj(obj, "session", "session.update")
        td = session.get("turn_detection")
        kind = None if td is None else get_str(td, "type", where + ".turn_detection")
        if kind not in (None, "server_vad", "semantic_vad"):
            raise ProtocolError(f"{where}: unknown turn_detection type {kind!r}")
        fmt = get_obj(get_obj(get_obj(session, "audio", where), "input", where), "format", where)
        return UpdateSession(
            SessionConfig(
                instructions=session.get("instructions", ""),
                voice=get_str(session, "voice", where),
                turn_detection=kind,  # type: ignore[arg-type]
                vad_threshold=(td or {}).get("threshold"),
                silence_duration_ms=(td or {}).get("silence_duration_ms"),
                prefix_padding_ms=(td or {}).get("prefix_padding_ms"),
                transcription_model=None,
                tools=tuple(
                    ToolSpec(t["name"], t.get("description", ""), t.get("parameters", {}))
                    for t in session.get("tools", [])
                ),
                sample_rate=int(fmt.get("rate", 24000)),
            )
        )
