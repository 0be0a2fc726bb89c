"""The session surface: the device-side twin of the web ``useRealtime`` hook.

::

    session = RealtimeSession(OpenAIRealtimeModel("gpt-realtime"), sink=speaker)
    session.subscribe(print)                 # StatusChanged, MuteChanged, TranscriptNotice, ...
    await session.connect({"kind": "token", "token": key, "expiresAt": "2026-11-24T10:00:00Z"})
    session.send_audio(frame)                # 24 kHz mono s16le, from the mic
    session.mute(); session.unmute()
    await session.send_message("What's the weather?")
    await session.disconnect()

What it promises, beyond the reference implementation:

* **Mute is enforced.** While muted, :meth:`send_audio` sends nothing and keeps nothing; frames
  still waiting in the outbox when :meth:`mute` is called are discarded too.
* **Replies happen.** :meth:`send_message` and tool results are followed by ``response.create``
  (one per response, once every tool output of that response is sent).
* **Barge-in is honest.** When the user talks over the model, the sink is silenced and the
  truncate carries the milliseconds the sink reports as heard, never wall-clock time.
* **Status is truthful.** ``connected`` only once the server confirmed the session
  configuration; ``disconnected`` after :meth:`disconnect`; ``closed`` when the server ends it
  (or auth fails); ``reconnecting`` while healing on its own (``auto_reconnect=True``).

The protocol (responses, barge-in, mute gating, tools) is the sans-I/O
:class:`~device.realtime.conversation.Conversation`; the connection (credential, dial,
reconnect, bytes) is :class:`~device.supervisor.ConnectionSupervisor`. This class joins them.
All methods must be called on the event loop thread; listeners are called there too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .dialing import REFRESH_MARGIN_S, CredentialInput, CredentialProvider
from .notifier import Listener
from .outbox import MAX_PENDING_EVENTS
from .realtime.conversation import Conversation
from .realtime.effects import (
    Configured,
    Output,
    Play,
    PurgeAudio,
    RunTool,
    SessionExpired,
    SetupFailed,
    StopPlayback,
    WatchPlayback,
    clean_text,
)
from .realtime.errors import NotConnectedError
from .realtime.events import ClientEvent, ServerEvent, SessionConfig
from .realtime.models import RealtimeModel
from .realtime.notices import Notice
from .realtime.sink import AudioSink, NullSink
from .realtime.status import TransportStatus
from .realtime.tools import Tool, ToolFunc, ToolRegistry, run_tool
from .reconnect import ReconnectPolicy, SessionStats
from .supervisor import ConnectGuard, ConnectionSupervisor, Connector

__all__ = [
    "MAX_PENDING_EVENTS",
    "REFRESH_MARGIN_S",
    "Connector",
    "CredentialInput",
    "CredentialProvider",
    "Listener",
    "RealtimeSession",
    "ReconnectPolicy",
    "SessionStats",
    "Tool",
    "ToolFunc",
    "ToolRegistry",
]

log = logging.getLogger("device.session")

#: How often the end of a finished response's playback is checked (activity LED, notices).
SPEAKER_POLL_S = 0.05


class RealtimeSession(ConnectionSupervisor):
    """One conversation with a realtime speech model, as the hook exposes it.

    :param model: e.g. ``OpenAIRealtimeModel("gpt-realtime")`` or ``GrokRealtimeModel()``.
    :param config: instructions, voice, turn detection, transcription, tools.
    :param sink: where the model's audio goes (``play``/``interrupt``); default discards it.
    :param tools: functions the model may call.
    :param credential_provider: async callable returning a fresh CredentialInput; used by
        ``connect()`` without an argument and before each reconnect when the credential is
        expired or about to be.
    :param auto_reconnect: heal abnormal closes, network errors and ``session_expired``.
    :param connect_guard: asked before every connect and reconnect; a message refuses it
        (status ``closed``, an ``ErrorNotice("limit", message)``, :class:`LimitError`).
    :param max_backlog_frames: audio frames that may wait for a slow socket before the oldest
        are dropped (bounded memory when the network stalls).
    """

    def __init__(
        self,
        model: RealtimeModel,
        *,
        config: SessionConfig | None = None,
        sink: AudioSink | None = None,
        tools: ToolRegistry | None = None,
        credential_provider: CredentialProvider | None = None,
        auto_reconnect: bool = False,
        reconnect_policy: ReconnectPolicy | None = None,
        max_backlog_frames: int = 25,
        connect_timeout: float = 10.0,
        connector: Connector | None = None,
        connect_guard: ConnectGuard | None = None,
    ) -> None:
        super().__init__(
            model,
            credential_provider=credential_provider,
            auto_reconnect=auto_reconnect,
            reconnect_policy=reconnect_policy,
            max_backlog_frames=max_backlog_frames,
            connect_timeout=connect_timeout,
            connector=connector,
            connect_guard=connect_guard,
        )
        self.tools = tools or ToolRegistry()
        base = config or SessionConfig()
        if len(self.tools) and not base.tools:
            base = SessionConfig(**{**_fields(base), "tools": self.tools.specs()})
        self.conversation = Conversation(base, provider=model.provider_info)
        self.sink: AudioSink = sink or NullSink()
        self._speech_watch: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ the hook surface

    @property
    def config(self) -> SessionConfig:
        return self.conversation.config

    @property
    def muted(self) -> bool:
        return self.conversation.muted

    @property
    def response_active(self) -> bool:
        """True between ``response.created`` and ``response.done``."""
        return self.conversation.response_id is not None

    async def forget(self) -> None:
        """Disconnect and drop the conversation: the next connect starts a fresh one."""
        await self.disconnect()
        self.conversation.forget()

    def mute(self) -> None:
        """Stop sending microphone audio, at once: queued frames are discarded too."""
        self._apply(self.conversation.mute())

    def unmute(self) -> None:
        """Resume sending microphone audio (only frames captured from now on)."""
        self._apply(self.conversation.unmute())

    async def send_message(self, text: str) -> None:
        """Send a user text message and ask for a reply (``response.create``).

        Raises :class:`NotConnectedError` unless ``connected`` — a message is never dropped
        silently.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("send_message: text must be a non-empty string")
        if self._status is not TransportStatus.CONNECTED:
            raise NotConnectedError(f"send_message: not connected (status is {self._status.value})")
        if not self._outbox.has_room(len(text) * 2 + 256):
            raise NotConnectedError(
                "send_message: the model connection is not taking messages (stalled); try again"
            )
        self._apply(self.conversation.send_message(text))

    def send_audio(self, pcm: bytes) -> bool:
        """Offer one microphone frame (24 kHz mono s16le). Never blocks.

        Returns ``True`` if the frame was queued for the wire; ``False`` when muted, not
        connected, or (push-to-talk) the talk button is not held — the frame is then dropped,
        never kept for later.
        """
        verdict = self.conversation.send_audio(pcm)
        if not isinstance(verdict, str) and self._status is not TransportStatus.CONNECTED:
            self.conversation.audio_lost(len(pcm))
            verdict = "offline"
        if verdict == "muted":
            self.stats.frames_dropped_muted += 1
        elif verdict == "offline":
            self.stats.frames_dropped_offline += 1
        if isinstance(verdict, str):
            return False
        self.stats.audio_bytes_sent += len(pcm)
        if self._outbox.put_audio(self._codec.encode(verdict)):
            self.conversation.audio_lost(len(pcm))  # an older frame of this turn made room
            self.stats.frames_dropped_backlog += 1
            n = self.stats.frames_dropped_backlog
            if n in (1, 10, 100) or n % 1000 == 0:
                log.warning("network too slow: dropped %d old mic frame(s) so far", n)
        self._wake.set()
        return True

    def interrupt(self) -> None:
        """Cut the model's reply as a barge-in does (the speaker silenced, the item truncated
        to what was heard, ``response.cancel`` where the provider needs it); nothing unless
        connected."""
        if self._status is TransportStatus.CONNECTED:
            self._apply(self.conversation.barge_in())

    async def begin_turn(self) -> None:
        """Talk button pressed: stop the model (cancel + silence) and start a fresh input."""
        if self._status is TransportStatus.CONNECTED:
            self._apply(self.conversation.begin_turn())

    async def end_turn(self) -> None:
        """Talk button released: commit what was said and ask for the reply (not for a turn
        under 100 ms, which the model would refuse as empty)."""
        out = self.conversation.end_turn()
        if self._status is TransportStatus.CONNECTED:
            self._apply(out)

    # ---------------------------------------------------------------- supervisor hooks

    def _on_start(self) -> ClientEvent:
        return self.conversation.start()

    def _on_event(self, event: ServerEvent) -> None:
        self._apply(self.conversation.receive(event))

    def _on_gone(self, *, report: bool) -> None:
        self._apply(self.conversation.connection_lost(report=report))

    def _silence(self) -> None:
        self.sink.interrupt()
        self._apply(self.conversation.interrupted(None))

    # ---------------------------------------------------------------- the conversation's asks

    def _apply(self, outputs: list[Output]) -> None:
        """Carry out what the conversation asked for, in order."""
        for out in outputs:
            if isinstance(out, ClientEvent):
                self._send(out)
            elif isinstance(out, Notice):
                self._emit(out)
            else:
                self._effect(out)

    def _effect(self, effect: Output) -> None:
        match effect:
            case Play(item_id, pcm):
                self.sink.play(item_id, pcm)
            case StopPlayback():
                self._stop_playback()
            case WatchPlayback():
                self._watch_playback()
            case PurgeAudio():
                self.stats.frames_dropped_muted += self._outbox.purge_audio()
            case RunTool(call_id, name, arguments):
                # Off the event path: a slow tool never blocks audio, mute or barge-in.
                self._spawn(self._run_tool(call_id, name, arguments), "tool")
            case Configured():
                self._configured_now()
            case SetupFailed(message, rejected):
                self._setup_refused(message, rejected)
            case SessionExpired():
                self._renew_expired()

    def _stop_playback(self) -> None:
        """Barge-in: silence the speaker now and tell the conversation what was heard."""
        if not self.sink.is_playing():
            return
        heard = self.sink.interrupt()
        if heard is None:  # cues (earcons) are never reported
            self._apply(self.conversation.interrupted(None))
        else:
            self._apply(self.conversation.interrupted(heard[0], heard[1]))

    def _watch_playback(self) -> None:
        """The model is still speaking until the speaker has played the last of it."""
        if not self.sink.is_playing():
            self._apply(self.conversation.playback_finished())
        elif self._speech_watch is None or self._speech_watch.done():
            self._speech_watch = self._spawn(self._watch_speaker(), "speaker-watch")

    async def _watch_speaker(self) -> None:
        while self.conversation.speaking and self.sink.is_playing():  # noqa: ASYNC110
            await asyncio.sleep(SPEAKER_POLL_S)  # sinks offer no callback
        self._apply(self.conversation.playback_finished())

    async def _run_tool(self, call_id: str, name: str | None, arguments: str) -> None:
        outcome = await run_tool(self.tools, name, arguments)
        if outcome.error:
            self._error("tool", clean_text(outcome.error))
        self._apply(self.conversation.tool_result(call_id, outcome.output))


def _fields(config: SessionConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}
