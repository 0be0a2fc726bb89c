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
* **Replies happen.** :meth:`send_message` and tool results are followed by ``response.create``.
* **Barge-in is honest.** When the user talks over the model, the sink is silenced and the
  truncate carries the milliseconds the sink reports as heard, never wall-clock time.
* **Status is truthful.** ``connected`` only once the server confirmed the session
  configuration; ``disconnected`` after :meth:`disconnect`; ``closed`` when the server ends it
  (or auth fails); ``reconnecting`` while healing on its own (``auto_reconnect=True``).

All methods must be called on the event loop thread; listeners are called there too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import json
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from .realtime.codec import Codec
from .realtime.credentials import Credential, parse_credential
from .realtime.errors import (
    AuthError,
    ConnectError,
    CredentialError,
    CredentialSourceError,
    NotConnectedError,
    ProtocolError,
    SessionRejected,
    VoiceDeviceError,
)
from .realtime.events import (
    AppendAudio,
    AudioDelta,
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
    SessionUpdated,
    SpeechStarted,
    TextDone,
    ToolCall,
    ToolCallStarted,
    ToolSpec,
    TranscriptDone,
    TruncateItem,
    UpdateSession,
    UserTextAdded,
)
from .realtime.models import RealtimeModel
from .realtime.notices import (
    ErrorNotice,
    FaultsChanged,
    MuteChanged,
    Notice,
    SpeakingChanged,
    StatusChanged,
    TextNotice,
    TranscriptNotice,
)
from .realtime.sink import AudioSink, NullSink
from .realtime.status import TransportStatus
from .transport import open_connection

log = logging.getLogger("device.session")

CredentialInput = Credential | Mapping[str, Any]
CredentialProvider = Callable[[], Awaitable[CredentialInput]]
ToolFunc = Callable[..., Awaitable[Any] | Any]
Listener = Callable[[Notice], None]
Connector = Callable[[RealtimeModel, Credential], Awaitable[ClientConnection]]

#: Refresh a credential before (re)connecting when it expires within this many seconds.
REFRESH_MARGIN_S = 30.0


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call. ``func`` receives the parsed arguments as keywords."""

    spec: ToolSpec
    func: ToolFunc


class ToolRegistry:
    """Named tools; ``@registry.tool(description=..., parameters=...)`` registers a function."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {t.spec.name: t for t in tools or []}

    def add(
        self,
        name: str,
        func: ToolFunc,
        description: str = "",
        parameters: dict[str, Any] | None = None,
    ) -> None:
        spec = ToolSpec(name, description, parameters or {"type": "object", "properties": {}})
        self._tools[name] = Tool(spec, func)

    def tool(
        self, description: str = "", parameters: dict[str, Any] | None = None
    ) -> Callable[[ToolFunc], ToolFunc]:
        def register(func: ToolFunc) -> ToolFunc:
            self.add(func.__name__, func, description or (func.__doc__ or "").strip(), parameters)
            return func

        return register

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(t.spec for t in self._tools.values())

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __len__(self) -> int:
        return len(self._tools)


@dataclass
class ReconnectPolicy:
    """Jittered exponential backoff: first retry ≤ ``first`` s, then doubling up to ``cap``."""

    first: float = 0.5
    cap: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        base = min(self.cap, self.first * self.factor**attempt)
        return base * random.uniform(0.5, 1.0)


@dataclass
class SessionStats:
    """Counters a benchmark or ``voice-device status`` can read."""

    frames_sent: int = 0
    frames_dropped_muted: int = 0
    frames_dropped_offline: int = 0
    frames_dropped_backlog: int = 0
    deltas_received: int = 0
    protocol_errors: int = 0
    reconnects: int = 0
    last_error: str = ""
    connected_at: float = 0.0
    latencies: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=0))


#: Non-audio events queued for a stalled socket before send_message refuses more.
MAX_PENDING_EVENTS = 256
#: How often the end of a finished response's playback is checked (activity LED, notices).
SPEAKER_POLL_S = 0.05


class _Superseded(Exception):
    """A disconnect() came while a connect was under way: the connect gives up quietly."""


class _Closed(Exception):
    """Internal: the connection ended; carries whether to reconnect."""


class RealtimeSession:
    """One conversation with a realtime speech model, as the hook exposes it.

    :param model: e.g. ``OpenAIRealtimeModel("gpt-realtime")`` or ``GrokRealtimeModel()``.
    :param config: instructions, voice, turn detection, transcription, tools.
    :param sink: where the model's audio goes (``play``/``interrupt``); default discards it.
    :param tools: functions the model may call.
    :param credential_provider: async callable returning a fresh CredentialInput; used by
        ``connect()`` without an argument and before each reconnect when the credential is
        expired or about to be.
    :param auto_reconnect: heal abnormal closes, network errors and ``session_expired``.
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
    ) -> None:
        self.model = model
        self.tools = tools or ToolRegistry()
        base = config or SessionConfig()
        if len(self.tools) and not base.tools:
            base = SessionConfig(**{**_fields(base), "tools": self.tools.specs()})
        self.config = base
        self.sink: AudioSink = sink or NullSink()
        self.credential_provider = credential_provider
        self.auto_reconnect = auto_reconnect
        self.reconnect_policy = reconnect_policy or ReconnectPolicy()
        self.max_backlog_frames = max_backlog_frames
        self.connect_timeout = connect_timeout
        self.stats = SessionStats()
        self._connector: Connector = connector or open_connection
        self._status = TransportStatus.DISCONNECTED
        self._muted = False
        self._faults: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self._credential: Credential | None = None
        self._ws: ClientConnection | None = None
        self._codec: Codec = model.codec()
        self._outbox: collections.deque[tuple[bool, str]] = collections.deque()
        self._outbox_audio = 0
        #: Item ids of send_message() texts the server has not confirmed (item added) yet.
        self._unconfirmed: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._configured: asyncio.Future[None] | None = None
        self._user_closing = False
        #: Bumped by disconnect(): a connect that started before it must not finish.
        self._epoch = 0
        self._expired = False
        self._response_id: str | None = None
        self._speaking = False
        self._speech_watch: asyncio.Future[None] | None = None
        self._interrupted: set[str] = set()
        self._received_ms: dict[str, float] = {}
        self._tool_names: dict[str, str] = {}
        self._talking = False

    # ------------------------------------------------------------------ the hook surface

    @property
    def status(self) -> TransportStatus:
        return self._status

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def response_active(self) -> bool:
        """True between ``response.created`` and ``response.done``."""
        return self._response_id is not None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(notice)`` for every notice; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    async def connect(self, credential: CredentialInput | None = None) -> None:
        """Open the connection and configure the session; returns once ``connected``.

        Without ``credential`` the session uses its ``credential_provider``. Raises
        :class:`CredentialError` (bad or expired credential), :class:`AuthError` (401/403) or
        :class:`ConnectError`; status is then ``closed`` and an :class:`ErrorNotice` is sent.
        With ``auto_reconnect`` a network failure instead starts background retries
        (``reconnecting``) and this returns without raising.
        """
        if self._status in (TransportStatus.CONNECTED, TransportStatus.CONNECTING):
            return
        await self._stop_reconnector()
        self._user_closing = False
        self._set_status(TransportStatus.CONNECTING)
        try:
            if credential is not None:
                cred = parse_credential(credential)
                if cred.expired():
                    raise CredentialError(
                        f"credential expired at {cred.expires_at.isoformat()}; "
                        "connect with a fresh one"
                    )
                self._credential = cred
            try:
                await self._open(refresh=credential is None)
            except AuthError:
                if credential is not None or self.credential_provider is None:
                    raise
                # The stored credential may have been revoked: fetch a new one, once.
                await self._teardown(1000)
                await self._open(refresh=True, force_credential=True)
        except _Superseded:
            return  # disconnect() came first; it has set the status
        except CredentialSourceError as exc:
            if self.auto_reconnect and not self._user_closing:
                # The backend is down for now: say so and keep trying with backoff.
                self._error("credential", str(exc))
                self._start_reconnector()
                return
            self._fail(exc)
            raise
        except (CredentialError, AuthError) as exc:
            self._fail(exc)
            raise
        except ConnectError as exc:
            if self._user_closing:  # disconnect() was called while the handshake ran
                self._set_status(TransportStatus.DISCONNECTED)
                return
            if self.auto_reconnect:
                self._error("network", str(exc))
                self._start_reconnector()
                return
            self._fail(exc)
            raise
        except asyncio.CancelledError:
            await self._teardown(1000)
            if self.status is TransportStatus.CONNECTING:
                self._set_status(TransportStatus.DISCONNECTED)
            raise
        except Exception as exc:  # a bad endpoint in a credential, an odd failure mid-setup
            await self._teardown(1000)
            error = (
                exc
                if isinstance(exc, VoiceDeviceError)
                else ConnectError(f"{self.model.provider}: connect failed ({type(exc).__name__})")
            )
            self._fail(error)
            raise error from None

    async def disconnect(self) -> None:
        """Close the connection on purpose (code 1000), stop playback; status ``disconnected``.

        A connect or reconnect still under way is abandoned: it cannot bring the session back.
        """
        self._epoch += 1
        self._user_closing = True
        if self._configured is not None and not self._configured.done():
            self._configured.set_exception(_Closed(1000))
            self._configured.exception()
        await self._stop_reconnector()
        await self._teardown(1000)
        self.sink.interrupt()
        self._set_speaking(False)
        self._set_status(TransportStatus.DISCONNECTED)

    async def forget(self) -> None:
        """Disconnect and drop the conversation: the next connect starts a fresh one."""
        await self.disconnect()
        self._received_ms.clear()
        self._tool_names.clear()
        self._interrupted.clear()

    def mute(self) -> None:
        """Stop sending microphone audio, at once: queued frames are discarded too."""
        if self._muted:
            return
        self._muted = True
        self._purge_audio()
        self._emit(MuteChanged(True))

    def unmute(self) -> None:
        """Resume sending microphone audio (only frames captured from now on)."""
        if not self._muted:
            return
        self._muted = False
        self._emit(MuteChanged(False))

    async def send_message(self, text: str) -> None:
        """Send a user text message and ask for a reply (``response.create``).

        Raises :class:`NotConnectedError` unless ``connected`` — a message is never dropped
        silently.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("send_message: text must be a non-empty string")
        self._require_connected("send_message")
        if len(self._outbox) - self._outbox_audio >= MAX_PENDING_EVENTS:
            raise NotConnectedError(
                "send_message: the model connection is not taking messages (stalled); try again"
            )
        item_id = f"msg_{secrets.token_hex(8)}"
        self._send(SendUserText(text, item_id))
        self._send(CreateResponse())
        self._unconfirmed.add(item_id)

    def send_audio(self, pcm: bytes) -> bool:
        """Offer one microphone frame (24 kHz mono s16le). Never blocks.

        Returns ``True`` if the frame was queued for the wire; ``False`` when muted, not
        connected, or (push-to-talk) the talk button is not held — the frame is then dropped,
        never kept for later.
        """
        if self._muted:
            self.stats.frames_dropped_muted += 1
            return False
        if self._status is not TransportStatus.CONNECTED:
            self.stats.frames_dropped_offline += 1
            return False
        if self.config.turn_detection is None and not self._talking:
            return False
        if self._outbox_audio >= self.max_backlog_frames:
            self._drop_oldest_audio()
        self._outbox.append((True, self._codec.encode(AppendAudio(pcm))))
        self._outbox_audio += 1
        self._wake.set()
        return True

    def report_error(self, code: str, message: str) -> None:
        """Let another part of the device (audio, GPIO) raise an :class:`ErrorNotice`."""
        self._error(code, message)

    @property
    def faults(self) -> dict[str, str]:
        """What is wrong with the device right now (``{"no_such_mic": "capture device …"}``),
        so a kiosk that subscribes late still learns of a fault raised before it came."""
        return dict(self._faults)

    def set_fault(self, source: str, message: str | None, code: str = "audio") -> None:
        """Record (``message``) or clear (None) the current fault of ``source``; a new fault is
        also sent as an :class:`ErrorNotice` with ``code``."""
        if message is None:
            if self._faults.pop(source, None) is not None:
                self._emit(FaultsChanged(tuple(self._faults.items())))
            return
        if self._faults.get(source) != message:
            self._faults[source] = message
            self._error(code, message)
            self._emit(FaultsChanged(tuple(self._faults.items())))

    # ---------------------------------------------------------------- push-to-talk

    async def begin_turn(self) -> None:
        """Talk button pressed: stop the model (cancel + silence) and start a fresh input."""
        if self._status is not TransportStatus.CONNECTED:
            return
        self._talking = True
        self._barge_in()
        if self._response_id is not None:
            self._send(CancelResponse())
        self._send(ClearAudio())

    async def end_turn(self) -> None:
        """Talk button released: commit what was said and ask for the reply."""
        was_talking, self._talking = self._talking, False
        if not was_talking or self._status is not TransportStatus.CONNECTED:
            return
        self._send(CommitAudio())
        self._send(CreateResponse())

    # ---------------------------------------------------------------- internals: connect

    async def _credential_for_connect(self, refresh: bool, force: bool = False) -> Credential:
        cred = self._credential
        stale = cred is None or cred.expires_within(REFRESH_MARGIN_S)
        if self.credential_provider is not None and (force or stale or (refresh and cred is None)):
            try:
                cred = parse_credential(await self.credential_provider())
            except CredentialError:
                raise
            except Exception as exc:  # a provider of ours raises CredentialError; others may not
                raise CredentialSourceError(
                    f"could not get a credential: {type(exc).__name__}"
                ) from None
            self._credential = cred
        if cred is None:
            raise CredentialError("no credential: pass one to connect() or configure a source")
        if cred.expired():
            raise CredentialError(
                f"credential expired at {cred.expires_at.isoformat()} and no source can renew it"
            )
        return cred

    async def _open(self, refresh: bool, force_credential: bool = False) -> None:
        """Dial, configure, and go ``connected``; on any failure nothing is left open.

        A :meth:`disconnect` while this runs wins: the new socket is closed (1000) and
        :class:`_Superseded` raised, so a finished handshake cannot revive the session.
        """
        epoch = self._epoch
        cred = await self._credential_for_connect(refresh, force_credential)
        if epoch != self._epoch:
            raise _Superseded
        self._codec = self.model.codec()
        ws = await self._connector(self.model, cred)
        if epoch != self._epoch:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000), 2.0)
            raise _Superseded
        self._received_ms.clear()  # item ids belong to one server session
        self._unconfirmed.clear()
        self._tool_names.clear()
        self._ws = ws
        self._expired = False
        self._outbox.clear()
        self._outbox_audio = 0
        self._response_id = None
        self._interrupted.clear()
        loop = asyncio.get_running_loop()
        self._configured = loop.create_future()
        self._reader = asyncio.create_task(self._read_loop(ws), name="session-reader")
        self._writer = asyncio.create_task(self._write_loop(ws), name="session-writer")
        try:
            await ws.send(self._codec.encode(UpdateSession(self.config)))
            async with asyncio.timeout(self.connect_timeout):
                await asyncio.shield(self._configured)
        except TimeoutError:
            await self._teardown(1000)
            raise ConnectError(
                f"{self.model.provider}: no session.updated within {self.connect_timeout:g} s"
            ) from None
        except (_Closed, websockets.exceptions.ConnectionClosed) as exc:
            await self._teardown(1000)
            raise ConnectError(f"{self.model.provider}: connection closed during setup") from exc
        except BaseException:  # cancelled (disconnect, a new connect): leave nothing running
            await self._teardown(1000)
            raise
        if epoch != self._epoch:
            await self._teardown(1000)
            raise _Superseded
        self.stats.connected_at = time.monotonic()
        self._set_status(TransportStatus.CONNECTED)

    async def _teardown(self, code: int) -> None:
        ws, self._ws = self._ws, None
        current = asyncio.current_task()
        for task in (self._reader, self._writer):
            if task is not None and task is not current:
                task.cancel()
        for task in (self._reader, self._writer):
            if task is not None and task is not current:
                with contextlib.suppress(BaseException):
                    await task
        self._reader = self._writer = None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code), 2.0)
        self._report_unconfirmed()
        self._outbox.clear()
        self._outbox_audio = 0
        self._response_id = None
        self._talking = False

    def _fail(self, exc: Exception) -> None:
        if isinstance(exc, AuthError):
            code = "auth"
        elif isinstance(exc, CredentialError):
            code = "credential"
        elif isinstance(exc, SessionRejected):
            code = "session"
        else:
            code = "network"
        self._error(code, str(exc))
        self._set_status(TransportStatus.CLOSED)

    # ---------------------------------------------------------------- internals: reconnect

    def _start_reconnector(self) -> None:
        if self._reconnector is None or self._reconnector.done():
            self._reconnector = asyncio.create_task(self._reconnect_loop(), name="reconnect")

    async def _stop_reconnector(self) -> None:
        task, self._reconnector = self._reconnector, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _reconnect_loop(self) -> None:
        self._set_status(TransportStatus.RECONNECTING)
        self.sink.interrupt()
        self._set_speaking(False)
        # The old reader and writer must be gone before a new connection shares the outbox.
        await self._teardown(1000)
        attempt = 0
        auth_retried = False
        while not self._user_closing:
            await asyncio.sleep(self.reconnect_policy.delay(attempt))
            attempt += 1
            try:
                await self._open(refresh=True, force_credential=auth_retried)
                self.stats.reconnects += 1
                log.info("reconnected after %d attempt(s)", attempt)
                return
            except AuthError as exc:
                await self._teardown(1000)
                if self.credential_provider is not None and not auth_retried:
                    auth_retried = True
                    attempt = 0
                    continue
                self._fail(exc)
                return
            except CredentialSourceError as exc:
                # The source is down or answered garbage: say so, keep trying with backoff.
                self._error("credential", str(exc))
            except CredentialError as exc:
                self._fail(exc)  # missing key, expired and nothing can renew it: stop, say why
                return
            except _Superseded:
                return  # disconnect() came first
            except ConnectError as exc:
                self._error("network", str(exc))
                if self._status is not TransportStatus.RECONNECTING:
                    self._set_status(TransportStatus.RECONNECTING)
            except VoiceDeviceError as exc:  # e.g. a credential URL that is not allowed
                await self._teardown(1000)
                self._fail(exc)
                return
            except Exception as exc:  # unexpected: report the kind, keep trying with backoff
                await self._teardown(1000)
                self._error("network", f"reconnect failed: {type(exc).__name__}")

    def _connection_lost(self, code: int | None, reason: str) -> None:
        """Called by the reader when the socket ends without us closing it."""
        if self._user_closing:
            return
        self._ws = None
        self.sink.interrupt()
        self._set_speaking(False)
        abnormal = code != 1000 or self._expired
        if self._configured is not None and not self._configured.done():
            self._configured.set_exception(_Closed(code))
            self._configured.exception()  # mark retrieved
            return
        desc = f"connection closed by the server (code {code}{': ' + reason if reason else ''})"
        if self.auto_reconnect and abnormal:
            log.warning("%s; reconnecting", desc)
            # At once, not when the reconnect task first runs: send_message() in between must
            # fail loudly instead of queueing for a socket that is gone.
            self._set_status(TransportStatus.RECONNECTING)
            self._start_reconnector()
        else:
            self._error("closed", desc)
            self._report_unconfirmed()
            self._set_status(TransportStatus.CLOSED)
            writer = self._writer
            if writer is not None:
                writer.cancel()

    # ---------------------------------------------------------------- internals: wire

    def _require_connected(self, what: str) -> None:
        if self._status is not TransportStatus.CONNECTED:
            raise NotConnectedError(f"{what}: not connected (status is {self._status.value})")

    def _send(self, event: ClientEvent) -> None:
        self._outbox.append((False, self._codec.encode(event)))
        self._wake.set()

    def _purge_audio(self) -> None:
        if self._outbox_audio:
            kept = [m for m in self._outbox if not m[0]]
            self.stats.frames_dropped_muted += len(self._outbox) - len(kept)
            self._outbox.clear()
            self._outbox.extend(kept)
            self._outbox_audio = 0

    def _drop_oldest_audio(self) -> None:
        for i, (is_audio, _) in enumerate(self._outbox):
            if is_audio:
                del self._outbox[i]
                self._outbox_audio -= 1
                self.stats.frames_dropped_backlog += 1
                if self.stats.frames_dropped_backlog in (1, 10, 100) or (
                    self.stats.frames_dropped_backlog % 1000 == 0
                ):
                    log.warning(
                        "network too slow: dropped %d old mic frame(s) so far",
                        self.stats.frames_dropped_backlog,
                    )
                return

    async def _write_loop(self, ws: ClientConnection) -> None:
        outbox = self._outbox
        try:
            while True:
                while outbox:
                    is_audio, text = outbox.popleft()
                    if is_audio:
                        self._outbox_audio -= 1
                        self.stats.frames_sent += 1
                    await ws.send(text)
                self._wake.clear()
                await self._wake.wait()
        except websockets.exceptions.ConnectionClosed:
            return  # the reader reports the close

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                try:
                    event = self._codec.decode(message)
                except ProtocolError as exc:
                    self.stats.protocol_errors += 1
                    if self.stats.protocol_errors <= 3 or self.stats.protocol_errors % 100 == 0:
                        log.warning("ignored a bad event from the model: %s", exc)
                        self._error("protocol", str(exc))
                    continue
                if event is not None:
                    self._handle(event)
        except websockets.exceptions.ConnectionClosed:
            pass
        code = ws.close_code
        reason = ws.close_reason or ""
        if self._ws is ws or (self._configured is not None and not self._configured.done()):
            self._connection_lost(code, reason)

    # ---------------------------------------------------------------- internals: events

    def _handle(self, event: ServerEvent) -> None:
        match event:
            case AudioDelta(response_id, item_id, pcm):
                self.stats.deltas_received += 1
                if response_id in self._interrupted:
                    return
                self._received_ms[item_id] = self._received_ms.get(item_id, 0.0) + len(pcm) / 48
                self._set_speaking(True)
                self.sink.play(item_id, pcm)
            case SpeechStarted():
                self._barge_in()
            case ResponseCreated(response_id):
                self._response_id = response_id
            case ResponseDone(response_id, status):
                if self._response_id == response_id:
                    self._response_id = None
                self._end_speaking_when_silent()
                if status == "failed":
                    self._error("server", "the model's response failed")
            case TranscriptDone(_, transcript) if transcript:
                self._emit(TranscriptNotice("assistant", transcript))
            case InputTranscript(_, transcript) if transcript:
                self._emit(TranscriptNotice("user", transcript))
            case TextDone(_, text) if text:
                self._emit(TextNotice(text))
            case ToolCallStarted(_, call_id, name):
                self._tool_names[call_id] = name
            case ToolCall(call_id, name, arguments):
                self._spawn(
                    self._run_tool(call_id, name or self._tool_names.get(call_id), arguments)
                )
            case UserTextAdded(item_id):
                self._unconfirmed.discard(item_id)
            case SessionUpdated():
                if self._configured is not None and not self._configured.done():
                    self._configured.set_result(None)
            case ServerError(message, code, etype):
                if self._configured is not None and not self._configured.done():
                    # An error before session.updated. A refused configuration (bad voice,
                    # bad tool schema) cannot succeed on retry; anything else (a server error,
                    # a rate limit) is a failed attempt like a network error.
                    what = f"{etype}: {message}" if code is None else f"{code}: {message}"
                    provider = self.model.provider
                    self._configured.set_exception(
                        SessionRejected(f"{provider} refused the session configuration: {what}")
                        if etype == "invalid_request_error"
                        else ConnectError(f"{provider}: the session setup failed: {what}")
                    )
                    return
                if code == "session_expired":
                    self._expired = True
                    log.info("the model ended the session (60-minute limit); renewing")
                    if self.auto_reconnect and self._ws is not None:
                        ws = self._ws
                        self._spawn(ws.close(1001))
                    return
                if code == "response_cancel_not_active":
                    return
                self._error(
                    "server", f"{etype}: {message}" if code is None else f"{code}: {message}"
                )
            case _:
                pass

    def _barge_in(self) -> None:
        """The user is talking over the model: silence now and truncate to what was heard."""
        if self._response_id is not None:
            self._interrupted.add(self._response_id)
        if not self.sink.is_playing():
            return
        heard = self.sink.interrupt()
        self._set_speaking(False)
        if heard is None:
            return
        item_id, played_ms = heard
        if item_id.startswith("earcon"):
            return
        received = int(self._received_ms.get(item_id, 0.0))
        audio_end_ms = max(0, min(int(played_ms), received))
        if self._status is TransportStatus.CONNECTED:
            self._send(TruncateItem(item_id, audio_end_ms))

    async def _run_tool(self, call_id: str, name: str | None, arguments: str) -> None:
        tool = self.tools.get(name) if name else None
        if tool is None:
            output = json.dumps({"error": f"unknown tool {name!r}"})
            self._error("tool", f"the model called an unknown tool {name!r}")
        else:
            try:
                args = json.loads(arguments) if arguments.strip() else {}
                if not isinstance(args, dict):
                    raise TypeError("arguments must be a JSON object")
                result = tool.func(**args)
                if inspect.isawaitable(result):
                    result = await result
                output = json.dumps(result, default=str)
            except Exception as exc:
                output = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
                self._error("tool", f"tool {name!r} failed: {type(exc).__name__}: {exc}")
        if self._status is TransportStatus.CONNECTED:
            self._send(SendToolOutput(call_id, output))
            self._send(CreateResponse())

    # ---------------------------------------------------------------- internals: notices

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report_unconfirmed(self) -> None:
        """The connection is gone: texts it never confirmed are not replayed (a new session is
        a new conversation), so say how many must be sent again."""
        lost = len(self._unconfirmed)
        self._unconfirmed.clear()
        if lost and not self._user_closing:
            self._error(
                "network",
                f"{lost} message(s) from send_message were not confirmed by the model before "
                "the connection closed; send them again",
            )

    def _set_status(self, status: TransportStatus) -> None:
        if status is self._status:
            return
        self._status = status
        log.info("status: %s", status.value)
        self._emit(StatusChanged(status))

    def _end_speaking_when_silent(self) -> None:
        """The server has finished the response, but it sends audio faster than real time:
        the model is still speaking until the speaker has played the last of it."""
        if not self.sink.is_playing():
            self._set_speaking(False)
        elif self._speech_watch is None or self._speech_watch.done():
            self._speech_watch = asyncio.ensure_future(self._watch_speaker())
            self._tasks.add(self._speech_watch)
            self._speech_watch.add_done_callback(self._tasks.discard)

    async def _watch_speaker(self) -> None:
        while self._speaking and self.sink.is_playing():  # noqa: ASYNC110 (sinks offer no callback)
            await asyncio.sleep(SPEAKER_POLL_S)
        if self._response_id is None:  # no newer response is under way
            self._set_speaking(False)

    def _set_speaking(self, speaking: bool) -> None:
        if speaking != self._speaking:
            self._speaking = speaking
            self._emit(SpeakingChanged(speaking))

    def _error(self, code: str, message: str) -> None:
        self.stats.last_error = message
        self._emit(ErrorNotice(code, message))

    def _emit(self, notice: Notice) -> None:
        for listener in list(self._listeners):
            try:
                listener(notice)
            except Exception:
                log.exception("a session listener failed on %r", notice)


def _fields(config: SessionConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}
