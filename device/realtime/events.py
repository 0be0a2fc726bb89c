"""Provider-neutral realtime events: small frozen dataclasses.

Client events are what the device sends; server events are what the model sends back. Codecs
(:mod:`device.realtime.openai`, :mod:`device.realtime.xai`) translate them to and from each
provider's wire JSON. Audio is carried as raw 24 kHz mono PCM16 (s16le) ``bytes``, never base64:
the codecs do that at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .pcm import RATE

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
    #: Voice id; ``""`` means the provider's default (OpenAI ``marin``, xAI ``eve``), which the
    #: codec fills in (:meth:`~device.realtime.providers.ProviderInfo.resolve`).
    voice: str = ""
    turn_detection: TurnDetection = "server_vad"
    #: VAD tuning (server_vad only); ``None`` leaves the provider default.
    vad_threshold: float | None = None
    silence_duration_ms: int | None = None
    prefix_padding_ms: int | None = None
    #: Model used to transcribe the user's speech; ``None`` disables input transcripts.
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    output_modalities: tuple[Literal["audio", "text"], ...] = ("audio",)
    tools: tuple[ToolSpec, ...] = ()
    sample_rate: int = RATE


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
class SessionUpdated:
    """``session.updated``: what the server confirmed. Every field but ``session_id`` is
    ``None`` when the server did not echo it. ``turn_detection`` is ``"none"`` for an explicit
    ``null`` (turn detection off)."""

    session_id: str
    #: ``session.type`` as echoed (``"realtime"`` for OpenAI GA; xAI sends none).
    session_type: str | None = None
    turn_detection: str | None = None
    voice: str | None = None
    #: Audio formats as echoed, e.g. ``"audio/pcm"`` and ``24000``.
    input_format: str | None = None
    input_rate: int | None = None
    output_format: str | None = None
    output_rate: int | None = None


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
    #: The wire event type it came from (``"error"``, or an unknown one such as
    #: ``"response.error"`` that looked like an error).
    event_type: str = "error"


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
class CachedTokens:
    """``input_token_details.cached_tokens_details`` (openai-python ``CachedTokensDetails``)."""

    audio_tokens: int = 0
    text_tokens: int = 0
    image_tokens: int = 0


@dataclass(frozen=True, slots=True)
class InputTokens:
    """``usage.input_token_details`` (``RealtimeResponseUsageInputTokenDetails``)."""

    audio_tokens: int = 0
    text_tokens: int = 0
    image_tokens: int = 0
    cached_tokens: int = 0
    cached: CachedTokens = field(default_factory=CachedTokens)


@dataclass(frozen=True, slots=True)
class OutputTokens:
    """``usage.output_token_details`` (``RealtimeResponseUsageOutputTokenDetails``)."""

    audio_tokens: int = 0
    text_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """``response.usage`` as openai-python's ``RealtimeResponseUsage`` types it; absent counts
    are 0. xAI sends the same shape (or none: then ``ResponseDone.usage`` is ``None``)."""

    total_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    input: InputTokens = field(default_factory=InputTokens)
    output: OutputTokens = field(default_factory=OutputTokens)


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str = "completed"
    #: Token counts of this response, when the server reports them.
    usage: Usage | None = None
    #: ``status_details.reason`` (``turn_detected``, ``client_cancelled``, ``max_output_tokens``…).
    reason: str | None = None
    #: For ``status == "failed"``: ``status_details.error.message`` / ``.code`` from the server.
    error_message: str | None = None
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
