"""Provider-neutral realtime events: small frozen dataclasses.

Client events are what the device sends; server events are what the model sends back. Codecs
(:mod:`device.realtime.openai`, :mod:`device.realtime.xai`) translate them to and from each
provider's wire JSON. Audio is carried as raw 24 kHz mono PCM16 (s16le) ``bytes``, never base64:
the codecs do that at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TurnDetection = Literal["server_vad", "semantic_vad"] | None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call: name, description and JSON-schema parameters."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def __hash__(self) -> int:
        return hash((self.name, self.description))


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """How the model session is configured on every (re)connect."""

    instructions: str = "You are a helpful voice assistant. Keep answers short."
    voice: str = "marin"
    turn_detection: TurnDetection = "server_vad"
    #: VAD tuning (server_vad only); ``None`` leaves the provider default.
    vad_threshold: float | None = None
    silence_duration_ms: int | None = None
    prefix_padding_ms: int | None = None
    #: Model used to transcribe the user's speech; ``None`` disables input transcripts.
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    output_modalities: tuple[Literal["audio", "text"], ...] = ("audio",)
    tools: tuple[ToolSpec, ...] = ()
    sample_rate: int = 24000


# ---------------------------------------------------------------- client events


@dataclass(frozen=True, slots=True)
class UpdateSession:
    config: SessionConfig


@dataclass(frozen=True, slots=True)
class AppendAudio:
    pcm: bytes


@dataclass(frozen=True, slots=True)
class CommitAudio:
    pass


@dataclass(frozen=True, slots=True)
class ClearAudio:
    pass


@dataclass(frozen=True, slots=True)
class SendUserText:
    text: str
    #: Client-chosen item id ("" lets the server pick), so the confirmation can be matched.
    item_id: str = ""


@dataclass(frozen=True, slots=True)
class SendToolOutput:
    call_id: str
    output: str


@dataclass(frozen=True, slots=True)
class CreateResponse:
    pass


@dataclass(frozen=True, slots=True)
class CancelResponse:
    pass


@dataclass(frozen=True, slots=True)
class TruncateItem:
    item_id: str
    audio_end_ms: int
    content_index: int = 0


ClientEvent = (
    UpdateSession
    | AppendAudio
    | CommitAudio
    | ClearAudio
    | SendUserText
    | SendToolOutput
    | CreateResponse
    | CancelResponse
    | TruncateItem
)

# ---------------------------------------------------------------- server events


@dataclass(frozen=True, slots=True)
class SessionCreated:
    session_id: str


@dataclass(frozen=True, slots=True)
class SessionEcho:
    """What the server says it configured; a ``None`` field was not reported."""

    #: ``session.type`` (OpenAI GA: ``"realtime"``).
    session_type: str | None = None
    #: The turn detection type, ``"none"`` when the server echoes ``null``.
    turn_detection: str | None = None
    voice: str | None = None
    #: e.g. ``"audio/pcm"``.
    input_format: str | None = None
    output_format: str | None = None
    sample_rate: int | None = None


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    session_id: str
    #: What the server confirmed, when the codec decoded it.
    echo: SessionEcho | None = None


@dataclass(frozen=True, slots=True)
class UserTextAdded:
    """The server confirmed a user text message (``conversation.item.added``): it is in the
    conversation and survives a connection drop from here on."""

    item_id: str


@dataclass(frozen=True, slots=True)
class ServerError:
    """An ``error`` event. ``code`` e.g. ``session_expired``; ``message`` is the server's text."""

    message: str
    code: str | None = None
    type: str = "server_error"


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    item_id: str
    audio_start_ms: int = 0


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    item_id: str
    audio_end_ms: int = 0


@dataclass(frozen=True, slots=True)
class AudioCommitted:
    item_id: str


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    response_id: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str = "completed"
    #: ``status_details.error`` of a failed response, when the server gave one.
    error_message: str = ""
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class AudioDelta:
    response_id: str
    item_id: str
    pcm: bytes


@dataclass(frozen=True, slots=True)
class AudioDone:
    response_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    """Part of the assistant's spoken transcript."""

    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class TranscriptDone:
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class TextDone:
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class InputTranscript:
    """The finished transcript of what the user said."""

    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A function-call output item appeared (carries the tool name some peers omit later)."""

    item_id: str
    call_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model finished the arguments of a function call. ``name`` may be unknown (``None``)."""

    call_id: str
    name: str | None
    arguments: str
    item_id: str = ""


ServerEvent = (
    SessionCreated
    | SessionUpdated
    | ServerError
    | SpeechStarted
    | SpeechStopped
    | AudioCommitted
    | ResponseCreated
    | ResponseDone
    | AudioDelta
    | AudioDone
    | TranscriptDelta
    | TranscriptDone
    | TextDelta
    | TextDone
    | InputTranscript
    | ToolCallStarted
    | ToolCall
    | UserTextAdded
)
