"""The mirror image of the codecs: client wire → events and server events → GA wire.

The device never needs these to talk to a model; tests use them for round trips (every event
class, both directions), and the simulator and proxies can use them to read what a device sends.
"""

from __future__ import annotations

from typing import Any

from .codec import (
    decode_pcm,
    encode_pcm,
    get_int,
    get_obj,
    get_str,
    tools_from_json,
    usage_json,
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
    TurnDetection,
    UserTextAdded,
)
from .pcm import RATE

TURN_DETECTIONS = (None, "server_vad", "semantic_vad")


def item_event(event: SendUserText | SendToolOutput | TruncateItem) -> dict[str, Any]:
    """The wire object of a conversation-item client event (both dialects)."""
    if isinstance(event, SendUserText):
        item: dict[str, Any] = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": event.text}],
        }
        if event.item_id:
            item = {"id": event.item_id, **item}
        return {"type": "conversation.item.create", "item": item}
    if isinstance(event, SendToolOutput):
        output = {"type": "function_call_output", "call_id": event.call_id, "output": event.output}
        return {"type": "conversation.item.create", "item": output}
    return {
        "type": "conversation.item.truncate",
        "item_id": event.item_id,
        "content_index": event.content_index,
        "audio_end_ms": event.audio_end_ms,
    }


def turn_detection_of(td: Any, where: str) -> tuple[TurnDetection, dict[str, Any]]:
    """A wire ``turn_detection`` → (its type, its settings)."""
    if td is None:
        return None, {}
    if not isinstance(td, dict):
        raise ProtocolError(f"{where}.turn_detection: must be an object or null")
    kind = get_str(td, "type", where + ".turn_detection")
    if kind not in TURN_DETECTIONS:
        raise ProtocolError(f"{where}: unknown turn_detection type {kind!r}")
    return kind, td  # type: ignore[return-value]


def config_from_session(session: dict[str, Any]) -> SessionConfig:
    """GA ``session.update.session`` → :class:`SessionConfig` (inverse of ``session_body``)."""
    where = "session.update.session"
    audio = get_obj(session, "audio", where)
    audio_in = get_obj(audio, "input", where + ".audio")
    audio_out = get_obj(audio, "output", where + ".audio")
    kind, td = turn_detection_of(audio_in.get("turn_detection"), where + ".audio.input")
    transcription = audio_in.get("transcription")
    fmt = get_obj(audio_in, "format", where + ".audio.input")
    return SessionConfig(
        instructions=session.get("instructions") or "",
        voice=get_str(audio_out, "voice", where + ".audio.output"),
        turn_detection=kind,
        vad_threshold=td.get("threshold"),
        silence_duration_ms=td.get("silence_duration_ms"),
        prefix_padding_ms=td.get("prefix_padding_ms"),
        transcription_model=transcription.get("model") if transcription else None,
        output_modalities=tuple(session.get("output_modalities") or ["audio"]),
        tools=tools_from_json(session, where),
        sample_rate=get_int(fmt, "rate", where + ".audio.input.format", RATE),
    )


def decode_client_object(obj: dict[str, Any]) -> ClientEvent:
    """A client event's wire object (other than ``session.update``) → neutral event."""
    kind: str = obj["type"]
    simple: dict[str, ClientEvent] = {
        "input_audio_buffer.commit": CommitAudio(),
        "input_audio_buffer.clear": ClearAudio(),
        "response.create": CreateResponse(),
        "response.cancel": CancelResponse(),
    }
    if kind in simple:
        return simple[kind]
    match kind:
        case "input_audio_buffer.append":
            return AppendAudio(decode_pcm(get_str(obj, "audio", kind), kind))
        case "conversation.item.create":
            item = get_obj(obj, "item", kind)
            if item.get("type") == "function_call_output":
                return SendToolOutput(get_str(item, "call_id", kind), get_str(item, "output", kind))
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


# ------------------------------------------------------------------ server events → GA wire


def _content_event(event: ServerEvent) -> dict[str, Any] | None:
    """Events that sit on an output item's content part."""
    match event:
        case AudioDelta(response_id, item_id, pcm):
            return {
                "type": "response.output_audio.delta",
                "response_id": response_id,
                "item_id": item_id,
                "delta": encode_pcm(pcm),
            }
        case AudioDone(response_id, item_id):
            return {
                "type": "response.output_audio.done",
                "response_id": response_id,
                "item_id": item_id,
            }
        case TranscriptDelta(item_id, delta):
            kind, key, value = "response.output_audio_transcript.delta", "delta", delta
        case TranscriptDone(item_id, transcript):
            kind, key, value = "response.output_audio_transcript.done", "transcript", transcript
        case TextDelta(item_id, delta):
            kind, key, value = "response.output_text.delta", "delta", delta
        case TextDone(item_id, text):
            kind, key, value = "response.output_text.done", "text", text
        case _:
            return None
    return {"type": kind, "response_id": "resp", "item_id": item_id, key: value}


def _response(response_id: str, status: str) -> dict[str, Any]:
    return {"id": response_id, "object": "realtime.response", "status": status, "output": []}


def _response_done(event: ResponseDone) -> dict[str, Any]:
    response = _response(event.response_id, event.status)
    details: dict[str, Any] = {}
    if event.reason is not None:
        details["reason"] = event.reason
    if event.error_message is not None or event.error_code is not None:
        details["error"] = {
            "type": "server_error",
            "code": event.error_code,
            "message": event.error_message,
        }
    if details:
        details["type"] = event.status
        response["status_details"] = details
    if event.usage is not None:
        response["usage"] = usage_json(event.usage)
    return {"type": "response.done", "response": response}


def _session(event: SessionCreated | SessionUpdated) -> dict[str, Any]:
    kind = "session.created" if isinstance(event, SessionCreated) else "session.updated"
    session: dict[str, Any] = {"type": "realtime"}
    if event.session_id:  # the GA schema has no session id; real servers add one ("sess_…")
        session["id"] = event.session_id
    if isinstance(event, SessionUpdated):
        session = _confirmed(event, session)
    return {"type": kind, "session": session}


def _confirmed(event: SessionUpdated, session: dict[str, Any]) -> dict[str, Any]:
    if event.session_type is None:
        del session["type"]
    else:
        session["type"] = event.session_type
    audio_in: dict[str, Any] = {}
    audio_out: dict[str, Any] = {}
    if event.turn_detection is not None:
        none = event.turn_detection == "none"
        audio_in["turn_detection"] = None if none else {"type": event.turn_detection}
    for holder, fmt, rate in (
        (audio_in, event.input_format, event.input_rate),
        (audio_out, event.output_format, event.output_rate),
    ):
        if fmt is not None:
            holder["format"] = {"type": fmt, **({"rate": rate} if rate is not None else {})}
    if event.voice is not None:
        audio_out["voice"] = event.voice
    audio = {k: v for k, v in (("input", audio_in), ("output", audio_out)) if v}
    return {**session, **({"audio": audio} if audio else {})}


def _other_event(event: ServerEvent) -> dict[str, Any]:
    match event:
        case ResponseCreated(response_id):
            return {"type": "response.created", "response": _response(response_id, "in_progress")}
        case ResponseDone():
            return _response_done(event)
        case SessionCreated() | SessionUpdated():
            return _session(event)
        case ServerError(message, code, etype, event_type):
            error = {"type": etype, "code": code, "message": message}
            return {"type": event_type, "error": error}
    return _item_event(event)


def _item_event(event: ServerEvent) -> dict[str, Any]:
    match event:
        case SpeechStarted(item_id, ms):
            return {
                "type": "input_audio_buffer.speech_started",
                "item_id": item_id,
                "audio_start_ms": ms,
            }
        case SpeechStopped(item_id, ms):
            return {
                "type": "input_audio_buffer.speech_stopped",
                "item_id": item_id,
                "audio_end_ms": ms,
            }
        case AudioCommitted(item_id):
            return {"type": "input_audio_buffer.committed", "item_id": item_id}
        case InputTranscript(item_id, transcript):
            return {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": 1.0},
            }
        case ToolCallStarted(item_id, call_id, name):
            item = {
                "id": item_id,
                "type": "function_call",
                "call_id": call_id,
                "name": name,
                "arguments": "",
                "status": "in_progress",
            }
            return {
                "type": "response.output_item.added",
                "response_id": "resp",
                "output_index": 0,
                "item": item,
            }
        case ToolCall(call_id, name, arguments, item_id):
            return {
                "type": "response.function_call_arguments.done",
                "response_id": "resp",
                "output_index": 0,
                "item_id": item_id,
                "call_id": call_id,
                "name": name or "",
                "arguments": arguments,
            }
        case UserTextAdded(item_id):
            added: dict[str, Any] = {
                "id": item_id,
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_text", "text": ""}],
            }
            return {"type": "conversation.item.added", "previous_item_id": None, "item": added}
    raise TypeError(f"not a server event: {event!r}")


def encode_server(event: ServerEvent, event_id: str) -> dict[str, Any]:
    """Neutral server event → a complete GA wire object with ``event_id``."""
    content = _content_event(event)
    if content is not None:
        return {**content, "event_id": event_id, "output_index": 0, "content_index": 0}
    return {**_other_event(event), "event_id": event_id}
