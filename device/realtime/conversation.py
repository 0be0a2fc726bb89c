"""The conversation core: a sans-I/O state machine between the user, the model and the speaker.

Feed it decoded server events (:meth:`Conversation.receive`) and user intents (``send_audio``,
``mute``, ``begin_turn``, ``send_message``, ``interrupted``, ``tool_result`` ...); each call
returns the outputs, in order: client events to send, notices to publish, and effects
(:mod:`device.realtime.effects`) for the driver to perform. It owns response tracking,
barge-in and the truncate figure, mute gating, unconfirmed messages, speaking state and tool
bookkeeping. It never touches a socket, a clock or a speaker, so it is tested by plain calls.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

from .batches import ToolBatches
from .effects import (
    Configured,
    Output,
    Play,
    PurgeAudio,
    RunTool,
    SessionExpired,
    SetupFailed,
    StopPlayback,
    Throttle,
    WatchPlayback,
    clean_text,
)
from .events import (
    AppendAudio,
    AudioDelta,
    CancelResponse,
    ClearAudio,
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
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TextDone,
    ToolCall,
    ToolCallStarted,
    TranscriptDone,
    TruncateItem,
    UpdateSession,
    UserTextAdded,
)
from .notices import (
    ErrorNotice,
    MuteChanged,
    ResponseStarted,
    ResponseUsage,
    SpeakingChanged,
    TextNotice,
    TranscriptNotice,
    UserSpeech,
)
from .providers import OPENAI, ProviderInfo, is_cancel_not_active
from .setup import confirmation_differences

log = logging.getLogger("device.conversation")

DropReason = Literal["muted", "offline", "push_to_talk"]
Phase = Literal["idle", "configuring", "live"]

#: Ids remembered per map (items heard, tool names, interrupted responses): oldest forgotten.
MAX_IDS = 256
#: Push-to-talk turns shorter than this are not committed (the server refuses < 100 ms).
MIN_TURN_MS = 100.0


class _Recent(OrderedDict[str, float]):
    """An insertion-ordered map that forgets its oldest keys beyond :data:`MAX_IDS`."""

    def put(self, key: str, value: float) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > MAX_IDS:
            self.popitem(last=False)


class Conversation:
    """One conversation's protocol state; see the module docstring.

    :param config: sent as ``session.update`` by :meth:`start`.
    :param provider: the provider's facts: whether the server cancels a response itself when
        the user talks over it (else this sends ``response.cancel``), which cancel errors are
        benign, what ``session.updated`` must confirm. Its name appears in error texts.
    """

    def __init__(self, config: SessionConfig, *, provider: ProviderInfo = OPENAI) -> None:
        self.config = config
        self.provider = provider
        #: Send ``response.cancel`` when the user talks over an active response.
        self.cancel_on_barge_in = not provider.server_cancels_on_speech
        self.phase: Phase = "idle"
        self.muted = False
        self.speaking = False
        self.talking = False
        #: The response between ``response.created`` and ``response.done``.
        self.response_id: str | None = None
        self._turn_ms = 0.0
        self._unconfirmed: set[str] = set()
        self._received_ms = _Recent()
        self._interrupted = _Recent()
        self._tool_names: OrderedDict[str, str] = OrderedDict()
        self._tools = ToolBatches()
        self._errors = Throttle()
        self._handlers = self._event_handlers()

    # ------------------------------------------------------------------ connection life

    def start(self) -> UpdateSession:
        """A new connection: per-server-session state is reset; returns its configuration."""
        self._forget_session()
        self.phase = "configuring"
        return UpdateSession(self.config)

    def connection_lost(self, *, report: bool = True) -> list[Output]:
        """The connection is gone. With ``report``, texts it never confirmed are reported (a
        new connection is a new conversation, so they are not replayed)."""
        self.phase = "idle"
        self.response_id = None
        self.talking = False
        out: list[Output] = self._set_speaking(False)
        lost = len(self._unconfirmed)
        self._unconfirmed.clear()
        if lost and report:
            out.append(
                ErrorNotice(
                    "network",
                    f"{lost} message(s) from send_message were not confirmed by the model "
                    "before the connection closed; send them again",
                )
            )
        return out

    def forget(self) -> None:
        """Drop everything remembered about the conversation (the next one starts fresh)."""
        self._forget_session()

    def _forget_session(self) -> None:
        self._received_ms.clear()
        self._interrupted.clear()
        self._tool_names.clear()
        self._tools.clear()
        self._unconfirmed.clear()
        self.response_id = None
        self.talking = False

    @property
    def unconfirmed(self) -> int:
        """How many sent messages the server has not confirmed yet."""
        return len(self._unconfirmed)

    # ------------------------------------------------------------------ user intents

    def send_audio(self, pcm: bytes) -> AppendAudio | DropReason:
        """One microphone frame: the event to send, or why it is dropped (never kept)."""
        if self.muted:
            return "muted"
        if self.phase != "live":
            return "offline"
        if self.config.turn_detection is None and not self.talking:
            return "push_to_talk"
        self._turn_ms += len(pcm) / (self.config.sample_rate * 2 / 1000)
        return AppendAudio(pcm)

    def audio_lost(self, nbytes: int) -> None:
        """``nbytes`` of audio passed by :meth:`send_audio` never reached the server."""
        self._turn_ms = max(0.0, self._turn_ms - nbytes / (self.config.sample_rate * 2 / 1000))

    def mute(self) -> list[Output]:
        """Stop sending microphone audio at once: queued frames are discarded too."""
        if self.muted:
            return []
        self.muted = True
        return [PurgeAudio(), MuteChanged(True)]

    def unmute(self) -> list[Output]:
        if not self.muted:
            return []
        self.muted = False
        return [MuteChanged(False)]

    def send_message(self, text: str) -> list[Output]:
        """A user text message and the request for a reply; confirmed later by the server."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("send_message: text must be a non-empty string")
        item_id = f"msg_{secrets.token_hex(8)}"
        if len(self._unconfirmed) < MAX_IDS:
            self._unconfirmed.add(item_id)
        return [SendUserText(text, item_id), CreateResponse()]

    def begin_turn(self) -> list[Output]:
        """Talk button pressed: stop the model (cancel + silence), start a fresh input."""
        if self.phase != "live":
            return []
        self.talking = True
        self._turn_ms = 0.0
        out = self._barge_in(cancel=False)
        if self.response_id is not None:
            out.append(CancelResponse())
        out.append(ClearAudio())
        return out

    def end_turn(self) -> list[Output]:
        """Talk button released: commit what was said and ask for the reply."""
        was_talking, self.talking = self.talking, False
        if not was_talking or self.phase != "live":
            return []
        if self._turn_ms < MIN_TURN_MS:
            log.info(
                "push-to-talk turn of %.0f ms is too short to answer: not committed",
                self._turn_ms,
            )
            return []
        return [CommitAudio(), CreateResponse()]

    def barge_in(self) -> list[Output]:
        """The user interrupted the model on the device (a wake word): what the server's
        ``speech_started`` does (silence, then truncate; cancel where needed), without the
        :class:`UserSpeech` report, which only the server's VAD can make."""
        if self.phase != "live":
            return []
        return self._barge_in(cancel=self.cancel_on_barge_in)

    def interrupted(self, item_id: str | None, heard_ms: float = 0.0) -> list[Output]:
        """The speaker was silenced (after :class:`StopPlayback`); ``heard_ms`` of ``item_id``
        had been played. The truncate carries that, never more than the model sent; audio
        the server sent without an item id (``""``) cannot be truncated."""
        out = self._set_speaking(False)
        if item_id and self.phase == "live":
            received = int(self._received_ms.get(item_id, 0.0))
            out.append(TruncateItem(item_id, max(0, min(int(heard_ms), received))))
        return out

    def playback_finished(self) -> list[Output]:
        """The speaker went silent after a finished response (see :class:`WatchPlayback`)."""
        return self._set_speaking(False) if self.response_id is None else []

    def tool_result(self, call_id: str, output: str) -> list[Output]:
        """A tool call's output; the reply is asked for once its response's batch is answered."""
        known, reply = self._tools.answered(call_id)
        if not known or self.phase != "live":
            return []  # a call of an earlier connection: that conversation is gone
        return [SendToolOutput(call_id, output), *([CreateResponse()] if reply else [])]

    # ------------------------------------------------------------------ server events

    def receive(self, event: ServerEvent) -> list[Output]:
        """One decoded server event."""
        handler = self._handlers.get(type(event))
        return handler(event) if handler is not None else []

    def _event_handlers(self) -> dict[type, Callable[[Any], list[Output]]]:
        return {
            AudioDelta: self._audio,
            SpeechStarted: lambda _: [
                *self._barge_in(cancel=self.cancel_on_barge_in),
                UserSpeech(True),
            ],
            SpeechStopped: lambda _: [UserSpeech(False)],
            ResponseCreated: self._response_created,
            ResponseDone: self._response_done,
            TranscriptDone: lambda e: _notice(
                e.transcript, TranscriptNotice("assistant", e.transcript)
            ),
            InputTranscript: lambda e: _notice(
                e.transcript, TranscriptNotice("user", e.transcript)
            ),
            TextDone: lambda e: _notice(e.text, TextNotice(e.text)),
            ToolCallStarted: self._tool_started,
            ToolCall: self._tool_call,
            UserTextAdded: self._confirmed,
            SessionUpdated: self._session_updated,
            ServerError: self._server_error,
        }

    def _response_created(self, event: ResponseCreated) -> list[Output]:
        self.response_id = event.response_id
        return [ResponseStarted(event.response_id)]

    def _confirmed(self, event: UserTextAdded) -> list[Output]:
        self._unconfirmed.discard(event.item_id)
        return []

    def _tool_started(self, event: ToolCallStarted) -> list[Output]:
        self._tool_names[event.call_id] = event.name
        while len(self._tool_names) > MAX_IDS:
            self._tool_names.popitem(last=False)
        return []

    def _audio(self, event: AudioDelta) -> list[Output]:
        if event.response_id in self._interrupted:
            return []
        ms = len(event.pcm) / (self.config.sample_rate * 2 / 1000)
        self._received_ms.put(event.item_id, self._received_ms.get(event.item_id, 0.0) + ms)
        return [*self._set_speaking(True), Play(event.item_id, event.pcm)]

    def _barge_in(self, *, cancel: bool) -> list[Output]:
        out: list[Output] = []
        if self.response_id is not None:
            self._interrupted.put(self.response_id, 0.0)
            if cancel:
                out.append(CancelResponse())
        out.insert(0, StopPlayback())
        return out

    def _response_done(self, event: ResponseDone) -> list[Output]:
        if self.response_id == event.response_id:
            self.response_id = None
        out: list[Output] = [WatchPlayback()] if self.speaking else []
        if event.status == "failed":
            why = event.error_message or ""
            if event.error_code:
                why = f"{event.error_code}: {why}" if why else event.error_code
            text = "the model's response failed" + (f": {clean_text(why)}" if why else "")
            out += self._error("server", text)
        reply = event.status not in ("cancelled", "failed")
        if self._tools.response_done(event.response_id, reply=reply):
            out.append(CreateResponse())
        out.append(ResponseUsage(event.response_id, event.usage))
        return out

    def _tool_call(self, event: ToolCall) -> list[Output]:
        call_id, arguments = event.call_id, event.arguments
        name = event.name or self._tool_names.pop(call_id, None)
        if not self._tools.add(call_id, self.response_id):
            log.warning("refused a tool call: %d calls already running", len(self._tools))
            out: list[Output] = [
                SendToolOutput(call_id, '{"error": "too many tool calls at once"}')
            ]
            return [*out, CreateResponse()] if self._tools.refused(self.response_id) else out
        return [RunTool(call_id, name, arguments)]

    def _session_updated(self, event: SessionUpdated) -> list[Output]:
        if self.phase != "configuring":
            return []
        found = confirmation_differences(self.provider, self.config, event)
        name = self.provider.name
        if found.problems:
            problem = "; ".join(found.problems)
            return [SetupFailed(f"{name} confirmed a different session: {problem}", True)]
        self.phase = "live"
        notices: list[Output] = [
            ErrorNotice("session", clean_text(f"{name} confirmed {w}")) for w in found.warnings
        ]
        return [*notices, Configured()]

    def _server_error(self, event: ServerError) -> list[Output]:
        what = (
            f"{event.type}: {event.message}"
            if event.code is None
            else (f"{event.code}: {event.message}")
        )
        what = clean_text(what)
        if self.phase == "configuring":
            # A refused configuration cannot succeed on retry; anything else (a server
            # error, a rate limit) is a failed attempt like a network error.
            if event.type == "invalid_request_error":
                msg = f"{self.provider.name} refused the session configuration: {what}"
                return [SetupFailed(msg, True)]
            return [SetupFailed(f"{self.provider.name}: the session setup failed: {what}", False)]
        if event.code == "session_expired":
            log.info("the model ended the session (60-minute limit); renewing")
            return [SessionExpired()]
        if is_cancel_not_active(self.provider, event.code, event.message):
            return []
        return self._error("server", what)

    def _error(self, code: str, text: str) -> list[Output]:
        shown = self._errors.admit(f"{code}\0{text}")
        return [] if shown is None else [ErrorNotice(code, shown.split("\0", 1)[1])]

    def _set_speaking(self, speaking: bool) -> list[Output]:
        if speaking == self.speaking:
            return []
        self.speaking = speaking
        return [SpeakingChanged(speaking)]


def _notice(text: str, notice: Output) -> list[Output]:
    """A transcript or text notice, unless the text is empty."""
    return [notice] if text else []
