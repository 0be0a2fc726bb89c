"""OpenAI Realtime GA codec (``gpt-realtime``).

Encodes neutral client events into GA wire JSON (``session.type = "realtime"``, audio formats
under ``session.audio``, no beta ``voice``/``modalities`` at the top level) and decodes GA
server events, accepting the beta spellings (``response.audio.delta``, ``response.text.*``,
``response.audio_transcript.*``) that some peers still send.

The audio hot path (``input_audio_buffer.append`` out, ``response.output_audio.delta`` in) is
plain string building plus one ``json.loads`` and one base64 call per frame.

:meth:`OpenAICodec.decode_client` and :meth:`OpenAICodec.encode_server` are the mirror image,
used by tests (round trips) and handy for peers such as proxies.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from .codec import (
    UnknownTypes,
    decode_pcm,
    encode_pcm,
    get_int,
    get_obj,
    get_str,
    load_object,
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
    ToolSpec,
    TranscriptDelta,
    TranscriptDone,
    TruncateItem,
    UpdateSession,
    UserTextAdded,
)

_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'

#: Server event types the device deliberately ignores (no log line for them).
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
        "input_audio_buffer.cleared",
        "input_audio_buffer.timeout_triggered",
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


def session_body(config: SessionConfig) -> dict[str, Any]:
    """The GA ``session`` object for ``session.update``."""
    fmt = {"type": "audio/pcm", "rate": config.sample_rate}
    audio_in: dict[str, Any] = {"format": fmt, "turn_detection": _turn_detection(config)}
    if config.transcription_model:
        audio_in["transcription"] = {"model": config.transcription_model}
    body: dict[str, Any] = {
        "type": "realtime",
        "instructions": config.instructions,
        "output_modalities": list(config.output_modalities),
        "audio": {"input": audio_in, "output": {"format": dict(fmt), "voice": config.voice}},
    }
    if config.tools:
        body["tools"] = [_tool(t) for t in config.tools]
        body["tool_choice"] = "auto"
    return body


def _tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
    }


def _turn_detection(config: SessionConfig) -> dict[str, Any] | None:
    if config.turn_detection is None:
        return None
    td: dict[str, Any] = {"type": config.turn_detection}
    if config.turn_detection == "server_vad":
        if config.vad_threshold is not None:
            td["threshold"] = config.vad_threshold
        if config.silence_duration_ms is not None:
            td["silence_duration_ms"] = config.silence_duration_ms
        if config.prefix_padding_ms is not None:
            td["prefix_padding_ms"] = config.prefix_padding_ms
    return td


def config_from_session(session: dict[str, Any]) -> SessionConfig:
    """Inverse of :func:`session_body` (for round trips and for peers reading our updates)."""
    where = "session.update.session"
    audio = get_obj(session, "audio", where)
    audio_in = get_obj(audio, "input", where + ".audio")
    audio_out = get_obj(audio, "output", where + ".audio")
    td = audio_in.get("turn_detection")
    kind = None if td is None else get_str(td, "type", where + ".audio.input.turn_detection")
    if kind not in (None, "server_vad", "semantic_vad"):
        raise ProtocolError(f"{where}: unknown turn_detection type {kind!r}")
    tools = tuple(
        ToolSpec(
            get_str(t, "name", where + ".tools[]"),
            t.get("description", ""),
            t.get("parameters", {"type": "object", "properties": {}}),
        )
        for t in session.get("tools", [])
    )
    transcription = audio_in.get("transcription")
    fmt = get_obj(audio_in, "format", where + ".audio.input")
    return SessionConfig(
        instructions=session.get("instructions", ""),
        voice=get_str(audio_out, "voice", where + ".audio.output"),
        turn_detection=kind,  # type: ignore[arg-type]
        vad_threshold=(td or {}).get("threshold"),
        silence_duration_ms=(td or {}).get("silence_duration_ms"),
        prefix_padding_ms=(td or {}).get("prefix_padding_ms"),
        transcription_model=transcription.get("model") if transcription else None,
        output_modalities=tuple(session.get("output_modalities", ["audio"])),
        tools=tools,
        sample_rate=get_int(fmt, "rate", where + ".audio.input.format", 24000),
    )


class OpenAICodec:
    """OpenAI Realtime GA wire codec. One instance per connection (it logs unknowns once)."""

    provider = "openai"

    def __init__(self) -> None:
        self._unknown = UnknownTypes(self.provider)
        self._ids = itertools.count(1)

    # ------------------------------------------------------------- client → wire

    def session_update(self, config: SessionConfig) -> dict[str, Any]:
        return {"type": "session.update", "session": session_body(config)}

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
            case SendUserText(text, item_id):
                item: dict[str, Any] = {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                }
                if item_id:
                    item = {"id": item_id, **item}
                return json.dumps({"type": "conversation.item.create", "item": item})
            case SendToolOutput(call_id, output):
                return json.dumps(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "function_call_output",
                            "call_id": call_id,
                            "output": output,
                        },
                    }
                )
            case TruncateItem(item_id, audio_end_ms, content_index):
                return json.dumps(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": item_id,
                        "content_index": content_index,
                        "audio_end_ms": audio_end_ms,
                    }
                )
        raise TypeError(f"not a client event: {event!r}")

    def decode_client(self, data: str | bytes) -> ClientEvent:
        """Wire JSON of a client event → neutral event (mirror of :meth:`encode`)."""
        obj = load_object(data)
        kind: str = obj["type"]
        match kind:
            case "input_audio_buffer.append":
                return AppendAudio(decode_pcm(get_str(obj, "audio", kind), kind))
            case "session.update":
                return UpdateSession(config_from_session(get_obj(obj, "session", kind)))
            case "input_audio_buffer.commit":
                return CommitAudio()
            case "input_audio_buffer.clear":
                return ClearAudio()
            case "response.create":
                return CreateResponse()
            case "response.cancel":
                return CancelResponse()
            case "conversation.item.create":
                item = get_obj(obj, "item", kind)
                if item.get("type") == "function_call_output":
                    return SendToolOutput(
                        get_str(item, "call_id", kind), get_str(item, "output", kind)
                    )
                content = item.get("content")
                if not isinstance(content, list) or not content or not isinstance(content[0], dict):
                    raise ProtocolError(f"{kind}: item.content must be a non-empty list")
                return SendUserText(
                    get_str(content[0], "text", kind + ".item.content[0]"),
                    get_str(item, "id", kind + ".item", ""),
                )
            case "conversation.item.truncate":
                return TruncateItem(
                    get_str(obj, "item_id", kind),
                    get_int(obj, "audio_end_ms", kind),
                    get_int(obj, "content_index", kind, 0),
                )
        raise ProtocolError(f"unknown client event type {kind[:80]!r}")

    # ------------------------------------------------------------- wire → server

    def decode(self, data: str | bytes) -> ServerEvent | None:
        obj = load_object(data)
        return self.decode_object(obj)

    def decode_object(self, obj: dict[str, Any]) -> ServerEvent | None:
        kind: str = obj["type"]
        match kind:
            case "response.output_audio.delta" | "response.audio.delta":
                return AudioDelta(
                    get_str(obj, "response_id", kind),
                    get_str(obj, "item_id", kind),
                    decode_pcm(get_str(obj, "delta", kind), kind),
                )
            case "response.output_audio.done" | "response.audio.done":
                return AudioDone(get_str(obj, "response_id", kind), get_str(obj, "item_id", kind))
            case "response.output_audio_transcript.delta" | "response.audio_transcript.delta":
                return TranscriptDelta(get_str(obj, "item_id", kind), get_str(obj, "delta", kind))
            case "response.output_audio_transcript.done" | "response.audio_transcript.done":
                return TranscriptDone(
                    get_str(obj, "item_id", kind), get_str(obj, "transcript", kind, "")
                )
            case "response.output_text.delta" | "response.text.delta":
                return TextDelta(get_str(obj, "item_id", kind), get_str(obj, "delta", kind))
            case "response.output_text.done" | "response.text.done":
                return TextDone(get_str(obj, "item_id", kind), get_str(obj, "text", kind, ""))
            case "input_audio_buffer.speech_started":
                return SpeechStarted(
                    get_str(obj, "item_id", kind, ""), get_int(obj, "audio_start_ms", kind, 0)
                )
            case "input_audio_buffer.speech_stopped":
                return SpeechStopped(
                    get_str(obj, "item_id", kind, ""), get_int(obj, "audio_end_ms", kind, 0)
                )
            case "input_audio_buffer.committed":
                return AudioCommitted(get_str(obj, "item_id", kind, ""))
            case "conversation.item.input_audio_transcription.completed":
                return InputTranscript(
                    get_str(obj, "item_id", kind), get_str(obj, "transcript", kind, "")
                )
            case "response.created":
                return ResponseCreated(get_str(get_obj(obj, "response", kind), "id", kind))
            case "response.done":
                response = get_obj(obj, "response", kind)
                return ResponseDone(
                    get_str(response, "id", kind), get_str(response, "status", kind, "completed")
                )
            case "response.output_item.added":
                item = get_obj(obj, "item", kind)
                if item.get("type") == "function_call":
                    return ToolCallStarted(
                        get_str(item, "id", kind, ""),
                        get_str(item, "call_id", kind),
                        get_str(item, "name", kind),
                    )
                return None
            case "response.function_call_arguments.done":
                name = obj.get("name")
                return ToolCall(
                    get_str(obj, "call_id", kind),
                    name if isinstance(name, str) and name else None,
                    get_str(obj, "arguments", kind),
                    get_str(obj, "item_id", kind, ""),
                )
            case "conversation.item.added" | "conversation.item.created":
                item = get_obj(obj, "item", kind)
                content = item.get("content")
                texts = (
                    [c for c in content if isinstance(c, dict)] if isinstance(content, list) else []
                )
                if item.get("role") == "user" and any(c.get("type") == "input_text" for c in texts):
                    return UserTextAdded(get_str(item, "id", kind, ""))
                return None
            case "session.created":
                return SessionCreated(get_str(get_obj(obj, "session", kind), "id", kind, ""))
            case "session.updated":
                return SessionUpdated(get_str(get_obj(obj, "session", kind), "id", kind, ""))
            case "error":
                err = get_obj(obj, "error", kind)
                code = err.get("code")
                return ServerError(
                    get_str(err, "message", kind, ""),
                    code if isinstance(code, str) else None,
                    get_str(err, "type", kind, "server_error"),
                )
        if kind not in IGNORED:
            self._unknown.note(kind)
        return None

    def encode_server(self, event: ServerEvent) -> dict[str, Any]:
        """Neutral server event → a complete GA wire object (mirror of :meth:`decode`)."""
        eid = f"event_{next(self._ids)}"
        part = {"event_id": eid, "output_index": 0, "content_index": 0}
        match event:
            case AudioDelta(response_id, item_id, pcm):
                return {
                    "type": "response.output_audio.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "delta": encode_pcm(pcm),
                    **part,
                }
            case AudioDone(response_id, item_id):
                return {
                    "type": "response.output_audio.done",
                    "response_id": response_id,
                    "item_id": item_id,
                    **part,
                }
            case TranscriptDelta(item_id, delta):
                return {
                    "type": "response.output_audio_transcript.delta",
                    "response_id": "resp",
                    "item_id": item_id,
                    "delta": delta,
                    **part,
                }
            case TranscriptDone(item_id, transcript):
                return {
                    "type": "response.output_audio_transcript.done",
                    "response_id": "resp",
                    "item_id": item_id,
                    "transcript": transcript,
                    **part,
                }
            case TextDelta(item_id, delta):
                return {
                    "type": "response.output_text.delta",
                    "response_id": "resp",
                    "item_id": item_id,
                    "delta": delta,
                    **part,
                }
            case TextDone(item_id, text):
                return {
                    "type": "response.output_text.done",
                    "response_id": "resp",
                    "item_id": item_id,
                    "text": text,
                    **part,
                }
            case SpeechStarted(item_id, ms):
                return {
                    "type": "input_audio_buffer.speech_started",
                    "event_id": eid,
                    "item_id": item_id,
                    "audio_start_ms": ms,
                }
            case SpeechStopped(item_id, ms):
                return {
                    "type": "input_audio_buffer.speech_stopped",
                    "event_id": eid,
                    "item_id": item_id,
                    "audio_end_ms": ms,
                }
            case AudioCommitted(item_id):
                return {"type": "input_audio_buffer.committed", "event_id": eid, "item_id": item_id}
            case InputTranscript(item_id, transcript):
                return {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "event_id": eid,
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": transcript,
                    "usage": {"type": "duration", "seconds": 1.0},
                }
            case ResponseCreated(response_id):
                return {
                    "type": "response.created",
                    "event_id": eid,
                    "response": {
                        "id": response_id,
                        "object": "realtime.response",
                        "status": "in_progress",
                        "output": [],
                    },
                }
            case ResponseDone(response_id, status):
                return {
                    "type": "response.done",
                    "event_id": eid,
                    "response": {
                        "id": response_id,
                        "object": "realtime.response",
                        "status": status,
                        "output": [],
                    },
                }
            case ToolCallStarted(item_id, call_id, name):
                return {
                    "type": "response.output_item.added",
                    "event_id": eid,
                    "response_id": "resp",
                    "output_index": 0,
                    "item": {
                        "id": item_id,
                        "type": "function_call",
                        "call_id": call_id,
                        "name": name,
                        "arguments": "",
                        "status": "in_progress",
                    },
                }
            case ToolCall(call_id, name, arguments, item_id):
                return {
                    "type": "response.function_call_arguments.done",
                    "event_id": eid,
                    "response_id": "resp",
                    "output_index": 0,
                    "item_id": item_id,
                    "call_id": call_id,
                    "name": name or "",
                    "arguments": arguments,
                }
            case SessionCreated(session_id) | SessionUpdated(session_id):
                kind = "session.created" if isinstance(event, SessionCreated) else "session.updated"
                return {
                    "type": kind,
                    "event_id": eid,
                    # The GA schema has no session id; real servers add one ("sess_…").
                    "session": {"type": "realtime", **({"id": session_id} if session_id else {})},
                }
            case ServerError(message, code, etype):
                return {
                    "type": "error",
                    "event_id": eid,
                    "error": {"type": etype, "code": code, "message": message},
                }
        raise TypeError(f"not a server event: {event!r}")
