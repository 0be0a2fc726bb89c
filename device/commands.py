"""The one command table every remote surface exposes (the control socket today, MQTT next).

A request is a JSON object ``{"cmd": NAME, ...}``; :meth:`CommandTable.dispatch` validates it,
calls the session surface and returns exactly one reply object, ``{"ok": true, ...}`` or
``{"ok": false, "error": "…"}`` naming what was wrong. It never raises and never lets an
exception out of a command. Commands:

=================  ==========================================================================
``status``         ``{"ok": true, "status": "connected", "muted": false}`` (+ ``"faults"``)
``connect``        optional ``"credential": {"kind", "token"|"url", "expiresAt"}``; otherwise
                   the configured source. Replies once connected (or with the error). A
                   credential while already connected (or connecting) is refused, never
                   ignored: ``disconnect`` first, then ``connect`` with it.
``disconnect``     close the conversation; status ``disconnected``.
``forget``         disconnect and drop the conversation: the next connect starts afresh.
``mute``           stop sending microphone audio; ``unmute`` resumes.
``send_message``   ``"text"``: a user message; the model replies. Fails when not connected.
``subscribe``      the state, like ``status``; a streaming surface (the socket) then sends
                   every event from :meth:`CommandTable.subscribe` (``Command.streams``).
``usage``          (registered by the usage part) today's and the last 7 days' totals.
=================  ==========================================================================

Unknown fields are ignored. Events are the session's notices plus the health object's
(faults), converted by :func:`notice_to_event`, plus whatever a part :meth:`publish`-es
(``{"event": "wake", ...}``); :meth:`CommandTable.subscribe_events` streams them all. A part
adds its own command with :meth:`CommandTable.register` (e.g. ``usage``); every surface then
has it, with the same validation and reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .realtime.credentials import Credential
from .realtime.errors import VoiceDeviceError
from .realtime.notices import (
    ErrorNotice,
    FaultsChanged,
    LimitReached,
    MuteChanged,
    Notice,
    ResponseStarted,
    ResponseUsage,
    SpeakingChanged,
    StatusChanged,
    TextNotice,
    TranscriptNotice,
    UserSpeech,
)
from .realtime.status import TransportStatus

log = logging.getLogger("device.commands")

Reply = dict[str, Any]
Listener = Callable[[Notice], None]
EventListener = Callable[[dict[str, Any]], None]
#: How long ``connect`` waits for a connect someone else started (a button press) to settle.
CONNECT_WAIT_S = 30.0
#: Error notices that explain a failed connect (not an audio fault raised meanwhile).
CONNECT_ERROR_CODES = frozenset({"network", "credential", "auth", "session", "closed", "limit"})


class Session(Protocol):
    """The session surface the commands drive (``RealtimeSession`` fits)."""

    @property
    def status(self) -> TransportStatus: ...

    @property
    def muted(self) -> bool: ...

    def subscribe(self, listener: Listener) -> Callable[[], None]: ...

    async def connect(self, credential: Credential | Mapping[str, Any] | None = None) -> None: ...

    async def disconnect(self) -> None: ...

    async def forget(self) -> None: ...

    def mute(self) -> None: ...

    def unmute(self) -> None: ...

    async def send_message(self, text: str) -> None: ...


class Faults(Protocol):
    """Where device faults live (:class:`device.health.Health` fits)."""

    @property
    def faults(self) -> dict[str, str]: ...

    def subscribe(self, listener: Listener) -> Callable[[], None]: ...


class CommandError(ValueError):
    """A request that names a command but carries bad arguments."""


Handler = Callable[["CommandTable", Mapping[str, Any]], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    run: Handler
    #: After the reply, a streaming surface sends events until the client leaves.
    streams: bool = False


def notice_to_event(notice: Notice) -> dict[str, Any] | None:
    """The wire event of a notice; ``None`` for the internal ones (speech, response start and
    usage: the usage part publishes its own ``usage`` and ``idle`` events)."""
    match notice:
        case StatusChanged(status):
            return {"event": "status", "status": status.value}
        case MuteChanged(muted):
            return {"event": "muted", "muted": muted}
        case TranscriptNotice(role, text):
            return {"event": "transcript", "role": role, "text": text}
        case TextNotice(text):
            return {"event": "text", "text": text}
        case SpeakingChanged(speaking):
            return {"event": "speaking", "speaking": speaking}
        case ErrorNotice(code, message):
            return {"event": "error", "code": code, "message": message}
        case FaultsChanged(faults):
            return {"event": "faults", "faults": sorted(message for _, message in faults)}
        case LimitReached(limit):
            return {"event": "limit", "limit": limit}
        case UserSpeech() | ResponseStarted() | ResponseUsage():
            return None
    raise TypeError(f"unknown notice {notice!r}")  # pragma: no cover


# ---------------------------------------------------------------------- the commands


async def _status(t: CommandTable, _: Mapping[str, Any]) -> Reply:
    return {"ok": True, **t.state()}


async def _connect(t: CommandTable, request: Mapping[str, Any]) -> Reply:
    credential = request.get("credential")
    if credential is not None and not isinstance(credential, dict):
        raise CommandError("connect: 'credential' must be an object")
    return await t.connect(credential)


async def _disconnect(t: CommandTable, _: Mapping[str, Any]) -> Reply:
    await t.session.disconnect()
    return {"ok": True, "status": t.session.status.value}


async def _forget(t: CommandTable, _: Mapping[str, Any]) -> Reply:
    await t.session.forget()
    return {"ok": True, "status": t.session.status.value}


async def _mute(t: CommandTable, _: Mapping[str, Any]) -> Reply:
    t.session.mute()
    return {"ok": True, "muted": t.session.muted}


async def _unmute(t: CommandTable, _: Mapping[str, Any]) -> Reply:
    t.session.unmute()
    return {"ok": True, "muted": t.session.muted}


async def _send_message(t: CommandTable, request: Mapping[str, Any]) -> Reply:
    text = request.get("text")
    if not isinstance(text, str) or not text.strip():
        raise CommandError("send_message: 'text' must be a non-empty string")
    await t.session.send_message(text)
    return {"ok": True}


COMMANDS: tuple[Command, ...] = (
    Command("status", "status and mute state", _status),
    Command("connect", "connect (optional credential)", _connect),
    Command("disconnect", "close the conversation", _disconnect),
    Command("mute", "stop sending microphone audio", _mute),
    Command("unmute", "resume sending microphone audio", _unmute),
    Command("send_message", "a user text message", _send_message),
    Command("subscribe", "the state, then every event", _status, streams=True),
    Command("forget", "disconnect and start the next conversation afresh", _forget),
)


class CommandTable:
    """``await table.dispatch({"cmd": ...}) -> reply``; ``table.subscribe(listener)`` for the
    merged event stream (session + health)."""

    def __init__(
        self,
        session: Session,
        health: Faults | None = None,
        *,
        commands: tuple[Command, ...] = COMMANDS,
        connect_wait_s: float = CONNECT_WAIT_S,
    ) -> None:
        self.session = session
        self.health = health
        self.commands = {c.name: c for c in commands}
        self.connect_wait_s = connect_wait_s
        self._event_listeners: list[EventListener] = []
        self._command_watchers: list[Callable[[str], None]] = []

    def lookup(self, request: Mapping[str, Any]) -> Command | None:
        cmd = request.get("cmd")
        return self.commands.get(cmd) if isinstance(cmd, str) else None

    async def dispatch(self, request: object) -> Reply:
        """Validate ``request``, run its command, return the reply. Never raises."""
        if not isinstance(request, dict):
            return {"ok": False, "error": 'expected a JSON object like {"cmd": "status"}'}
        cmd = request.get("cmd")
        if cmd is None:
            return {"ok": False, "error": "missing 'cmd'"}
        command = self.lookup(request)
        if command is None:
            names = ", ".join(self.commands)
            return {"ok": False, "error": f"unknown cmd {str(cmd)[:40]!r} ({names})"}
        for watcher in list(self._command_watchers):
            watcher(command.name)
        try:
            return await command.run(self, request)
        except (VoiceDeviceError, ValueError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # never leave a client without a reply, never crash
            log.exception("command %r failed", command.name)
            return {"ok": False, "error": f"{command.name} failed: {type(exc).__name__}"}

    def state(self) -> dict[str, Any]:
        s = self.session
        state: dict[str, Any] = {"status": s.status.value, "muted": s.muted}
        faults = self.health.faults if self.health is not None else None
        if faults:
            state["faults"] = sorted(faults.values())
        return state

    def register(self, command: Command) -> None:
        """Add (or replace) a command, e.g. ``usage`` from the usage part."""
        self.commands[command.name] = command

    def watch_commands(self, watcher: Callable[[str], None]) -> None:
        """Call ``watcher(name)`` as each valid command is dispatched (the idle countdown)."""
        self._command_watchers.append(watcher)

    def publish(self, event: dict[str, Any]) -> None:
        """Send an event that is not a session notice (``{"event": "wake", ...}``) to every
        event subscriber."""
        for listener in list(self._event_listeners):
            listener(event)

    def subscribe_events(self, listener: EventListener) -> Callable[[], None]:
        """Every event as its wire object: the notices (:func:`notice_to_event`) and whatever
        is :meth:`publish`-ed. This is what the socket's ``subscribe`` (and MQTT) stream."""

        def from_notice(notice: Notice) -> None:
            event = notice_to_event(notice)
            if event is not None:
                listener(event)

        off = self.subscribe(from_notice)
        self._event_listeners.append(listener)

        def unsubscribe() -> None:
            off()
            with contextlib.suppress(ValueError):
                self._event_listeners.remove(listener)

        return unsubscribe

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Every notice of the session and of health, in order, on the event loop."""
        if self.health is None:
            return self.session.subscribe(listener)

        off = (self.session.subscribe(listener), self.health.subscribe(listener))

        def unsubscribe() -> None:
            for f in off:
                f()

        return unsubscribe

    async def connect(self, credential: Mapping[str, Any] | None) -> Reply:
        """``ok`` only once connected. A connect that ends up retrying in the background, or
        one already under way that fails, answers ``ok: false`` with the reason."""
        s = self.session
        if credential is not None and s.status is TransportStatus.CONNECTING:
            return {
                "ok": False,
                "error": "connect: a connect is already under way; the credential was not used "
                "(try again once the status settles)",
                "status": s.status.value,
            }
        if credential is not None and s.status is TransportStatus.CONNECTED:
            return {
                "ok": False,
                "error": "connect: already connected; the credential was not used "
                "(disconnect first, then connect with it)",
                "status": s.status.value,
            }
        errors: list[str] = []
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def listener(notice: Notice) -> None:
            if isinstance(notice, ErrorNotice) and notice.code in CONNECT_ERROR_CODES:
                errors.append(notice.message)
            elif (
                isinstance(notice, StatusChanged)
                and notice.status is not TransportStatus.CONNECTING
                and not settled.done()
            ):
                settled.set_result(None)

        unsubscribe = s.subscribe(listener)
        try:
            await s.connect(credential)
            if s.status is TransportStatus.CONNECTING:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(settled, self.connect_wait_s)
        finally:
            unsubscribe()
        status = s.status
        if status is TransportStatus.CONNECTED:
            return {"ok": True, "status": status.value}
        why = errors[-1] if errors else f"status is {status.value}"
        if status is TransportStatus.RECONNECTING:
            why += " (retrying in the background)"
        return {"ok": False, "error": f"connect: not connected: {why}", "status": status.value}
