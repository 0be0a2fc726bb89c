"""OpenAI Realtime GA codec (``gpt-realtime``).

Encodes neutral client events into GA wire JSON (``session.type = "realtime"``, audio formats
under ``session.audio``, no beta ``voice``/``modalities`` at the top level) and decodes GA
server events, accepting the beta spellings (``response.audio.delta``, ``response.text.*``,
``response.audio_transcript.*``) that some peers still send. An explicit ``null`` in an
optional field reads as if the field were absent.

The audio hot path (``input_audio_buffer.append`` out, ``response.output_audio.delta`` in) is
plain string building plus one ``json.loads`` and one base64 call per frame.

The mirror image (client wire → events, events → server wire) lives in :mod:`.mirror`, used by
tests (round trips), the simulator and peers such as proxies.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from . import mirror
from .codec import (
    MAX_TYPE_CHARS,
    Transcripts,
    UnknownTypes,
    decode_pcm,
    decode_usage,
    encode_pcm,
    get_id,
    get_int,
    get_obj,
    get_str,
    is_error_like,
    is_ignored,
    load_object,
    tool_json,
    turn_detection_json,
)
from .errors import ProtocolError
from .events import (
    AppendAudio,
    AudioCommitted,
    AudioDelta,
    AudioDone,
    CancelResponse,
    ClearAudio,
    ClientEvent,
    CommitAudio,
    CreateResponse,
    InputTranscript,
    ResponseCreated,
    ResponseDone,
    SendToolOutput,
    SendUserText,
    ServerError,
    ServerEvent,
    SessionConfig,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallStarted,
    TranscriptDelta,
    TranscriptDone,
    TruncateItem,
    UpdateSession,
    UserTextAdded,
)
from .providers import OPENAI, ProviderInfo

__all__ = ["IGNORED", "OpenAICodec", "confirmed_session", "session_body"]

_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'

#: Server event types the device deliberately ignores (no log line for them); ``mcp_*`` and
#: ``response.mcp_call*`` too (:func:`~.codec.is_ignored`).
IGNORED: frozenset[str] = frozenset(
    {
        "conversation.created",
        "conversation.item.done",
        "conversation.item.deleted",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.segment",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.updated",
        "input_audio_buffer.cleared",
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.dtmf_event_received",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "rate_limits.updated",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_item.done",
        "response.function_call_arguments.delta",
        "ping",
        "pong",
    }
)

#: Known types that decode to ``None`` for items the device does not act on.
_SOMETIMES_NONE = frozenset(
    {"response.output_item.added", "conversation.item.added", "conversation.item.created"}
)


def session_body(config: SessionConfig, info: ProviderInfo = OPENAI) -> dict[str, Any]:
    """The GA ``session`` object for ``session.update``."""
    fmt = {"type": "audio/pcm", "rate": config.sample_rate}
    audio_in: dict[str, Any] = {"format": fmt, "turn_detection": turn_detection_json(config)}
    if config.transcription_model:
        audio_in["transcription"] = {"model": config.transcription_model}
    body: dict[str, Any] = {
        "type": "realtime",
        "instructions": config.instructions,
        "output_modalities": list(config.output_modalities),
        "audio": {
            "input": audio_in,
            "output": {"format": dict(fmt), "voice": info.voice_for(config)},
        },
    }
    if config.tools:
        body["tools"] = [tool_json(t) for t in config.tools]
        body["tool_choice"] = "auto"
    return body


def _format(obj: Any) -> tuple[str | None, int | None]:
    fmt = obj.get("format") if isinstance(obj, dict) else None
    if not isinstance(fmt, dict):
        return None, None
    kind, rate = fmt.get("type"), fmt.get("rate")
    return (
        kind if isinstance(kind, str) else None,
        rate if isinstance(rate, int) and not isinstance(rate, bool) else None,
    )


def confirmed_session(session: dict[str, Any], audio_in: Any, audio_out: Any) -> SessionUpdated:
    """What a ``session.updated`` confirms, from the session and its audio input/output."""
    td_holder = audio_in if isinstance(audio_in, dict) and "turn_detection" in audio_in else None
    if td_holder is None and "turn_detection" in session:
        td_holder = session
    turn_detection: str | None = None
    if td_holder is not None:
        td = td_holder["turn_detection"]
        kind = td.get("type") if isinstance(td, dict) else None
        turn_detection = "none" if td is None else (kind if isinstance(kind, str) else None)
    voice = audio_out.get("voice") if isinstance(audio_out, dict) else None
    if voice is None:
        voice = session.get("voice")
    stype, sid = session.get("type"), session.get("id")
    in_fmt, in_rate = _format(audio_in)
    out_fmt, out_rate = _format(audio_out)
    return SessionUpdated(
        sid if isinstance(sid, str) else "",
        session_type=stype if isinstance(stype, str) else None,
        turn_detection=turn_detection,
        voice=voice if isinstance(voice, str) else None,
        input_format=in_fmt,
        input_rate=in_rate,
        output_format=out_fmt,
        output_rate=out_rate,
    )


def _session_updated(obj: dict[str, Any], kind: str) -> SessionUpdated:
    session = get_obj(obj, "session", kind)
    audio = session.get("audio")
    audio = audio if isinstance(audio, dict) else {}
    return confirmed_session(session, audio.get("input"), audio.get("output"))


def _response_done(obj: dict[str, Any], kind: str) -> ResponseDone:
    response = get_obj(obj, "response", kind)
    details = response.get("status_details")
    details = details if isinstance(details, dict) else {}
    error = details.get("error")
    error = error if isinstance(error, dict) else {}
    reason, message, code = details.get("reason"), error.get("message"), error.get("code")
    return ResponseDone(
        get_id(response, "id", kind),
        get_str(response, "status", kind, "completed"),
        usage=decode_usage(response),
        reason=reason if isinstance(reason, str) else None,
        error_message=message if isinstance(message, str) else None,
        error_code=code if isinstance(code, str) else None,
    )


def _server_error(obj: dict[str, Any], kind: str) -> ServerError:
    """``error`` (or an unknown error-like event) → :class:`ServerError`."""
    kind = kind[:MAX_TYPE_CHARS]  # a peer's type string may be megabytes long
    err = obj.get("error")
    if not isinstance(err, dict):
        if kind == "error":
            raise ProtocolError(f"{kind}: missing field 'error'")
        err = obj
    code, etype = err.get("code"), err.get("type") if err is not obj else None
    if kind == "error":
        message = get_str(err, "message", kind, "")
    else:
        text = err.get("message")
        message = text if isinstance(text, str) and text else f"the server sent {kind!r}"
    return ServerError(
        message,
        code if isinstance(code, str) else None,
        etype if isinstance(etype, str) else "server_error",
        event_type=kind,
    )


class OpenAICodec:
    """OpenAI Realtime GA wire codec. One instance per connection (it logs unknowns once and
    keeps the transcript deltas of items whose ``.done`` is still to come)."""

    provider = "openai"
    info: ProviderInfo = OPENAI

    def __init__(self) -> None:
        self._unknown = UnknownTypes(self.provider)
        self._ids = itertools.count(1)
        self._transcripts = Transcripts()

    # ------------------------------------------------------------- client → wire

    def session_update(self, config: SessionConfig) -> dict[str, Any]:
        return {"type": "session.update", "session": session_body(config, self.info)}

    def encode(self, event: ClientEvent) -> str:
        match event:
            case AppendAudio(pcm):
                return _APPEND_HEAD + encode_pcm(pcm) + '"}'
            case UpdateSession(config):
                return json.dumps(self.session_update(config))
            case CommitAudio():
                return '{"type":"input_audio_buffer.commit"}'
            case ClearAudio():
                return '{"type":"input_audio_buffer.clear"}'
            case CreateResponse():
                return '{"type":"response.create"}'
            case CancelResponse():
                return '{"type":"response.cancel"}'
            case SendUserText() | SendToolOutput() | TruncateItem():
                return json.dumps(mirror.item_event(event))
        raise TypeError(f"not a client event: {event!r}")

    def decode_client(self, data: str | bytes) -> ClientEvent:
        """Wire JSON of a client event → neutral event (mirror of :meth:`encode`)."""
        obj = load_object(data)
        if obj["type"] == "session.update":
            return UpdateSession(self.config_from_session(get_obj(obj, "session", obj["type"])))
        return mirror.decode_client_object(obj)

    def config_from_session(self, session: dict[str, Any]) -> SessionConfig:
        return mirror.config_from_session(session)

    def encode_server(self, event: ServerEvent) -> dict[str, Any]:
        """Neutral server event → a complete GA wire object (mirror of :meth:`decode`)."""
        return mirror.encode_server(event, f"event_{next(self._ids)}")

    # ------------------------------------------------------------- wire → server

    def decode(self, data: str | bytes) -> ServerEvent | None:
        return self.decode_object(load_object(data))

    def decode_object(self, obj: dict[str, Any]) -> ServerEvent | None:
        kind: str = obj["type"]
        match kind:
            case "response.output_audio.delta" | "response.audio.delta":
                return AudioDelta(
                    get_id(obj, "response_id", kind),
                    get_id(obj, "item_id", kind, ""),
                    decode_pcm(get_str(obj, "delta", kind), kind),
                )
            case "response.output_audio.done" | "response.audio.done":
                return AudioDone(get_id(obj, "response_id", kind), get_id(obj, "item_id", kind, ""))
            case _:
                return self._decode_other(obj, kind)

    def _decode_other(self, obj: dict[str, Any], kind: str) -> ServerEvent | None:
        event = self._decode_text(obj, kind)
        if event is None:
            event = self._decode_turns(obj, kind)
        if event is None:
            event = self._decode_items(obj, kind)
        if event is None and kind not in _SOMETIMES_NONE and not is_ignored(kind, IGNORED):
            if is_error_like(kind, obj):
                return _server_error(obj, kind)
            self._unknown.note(kind)
        return event

    def _decode_text(self, obj: dict[str, Any], kind: str) -> ServerEvent | None:
        match kind:
            case "response.output_audio_transcript.delta" | "response.audio_transcript.delta":
                item_id, delta = get_id(obj, "item_id", kind, ""), get_str(obj, "delta", kind, "")
                self._transcripts.add(item_id, delta)
                return TranscriptDelta(item_id, delta)
            case "response.output_audio_transcript.done" | "response.audio_transcript.done":
                item_id = get_id(obj, "item_id", kind, "")
                text = get_str(obj, "transcript", kind, "")
                return TranscriptDone(item_id, self._transcripts.finish(item_id, text))
            case "response.output_text.delta" | "response.text.delta":
                item_id, delta = get_id(obj, "item_id", kind, ""), get_str(obj, "delta", kind, "")
                self._transcripts.add(item_id, delta)
                return TextDelta(item_id, delta)
            case "response.output_text.done" | "response.text.done":
                item_id = get_id(obj, "item_id", kind, "")
                text = get_str(obj, "text", kind, "")
                return TextDone(item_id, self._transcripts.finish(item_id, text))
            case "conversation.item.input_audio_transcription.completed":
                return InputTranscript(
                    get_id(obj, "item_id", kind, ""), get_str(obj, "transcript", kind, "")
                )
        return None

    def _decode_turns(self, obj: dict[str, Any], kind: str) -> ServerEvent | None:
        match kind:
            case "input_audio_buffer.speech_started":
                return SpeechStarted(
                    get_id(obj, "item_id", kind, ""), get_int(obj, "audio_start_ms", kind, 0)
                )
            case "input_audio_buffer.speech_stopped":
                return SpeechStopped(
                    get_id(obj, "item_id", kind, ""), get_int(obj, "audio_end_ms", kind, 0)
                )
            case "input_audio_buffer.committed":
                return AudioCommitted(get_id(obj, "item_id", kind, ""))
            case "response.created":
                return ResponseCreated(get_id(get_obj(obj, "response", kind), "id", kind))
            case "response.done":
                return _response_done(obj, kind)
            case "session.created":
                return SessionCreated(get_id(get_obj(obj, "session", kind), "id", kind, ""))
            case "session.updated":
                return _session_updated(obj, kind)
            case "error":
                return _server_error(obj, kind)
        return None

    def _decode_items(self, obj: dict[str, Any], kind: str) -> ServerEvent | None:
        match kind:
            case "response.output_item.added":
                item = get_obj(obj, "item", kind)
                if item.get("type") == "function_call":
                    return ToolCallStarted(
                        get_id(item, "id", kind, ""),
                        get_id(item, "call_id", kind),
                        get_id(item, "name", kind),
                    )
            case "response.function_call_arguments.done":
                name = get_id(obj, "name", kind, "") if isinstance(obj.get("name"), str) else ""
                return ToolCall(
                    get_id(obj, "call_id", kind),
                    name or None,
                    get_str(obj, "arguments", kind),
                    get_id(obj, "item_id", kind, ""),
                )
            case "conversation.item.added" | "conversation.item.created":
                item = get_obj(obj, "item", kind)
                content = item.get("content")
                texts = (
                    [c for c in content if isinstance(c, dict)] if isinstance(content, list) else []
                )
                if item.get("role") == "user" and any(c.get("type") == "input_text" for c in texts):
                    return UserTextAdded(get_id(item, "id", kind, ""))
        return None
