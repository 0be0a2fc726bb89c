"""The kiosk API: a Unix stream socket speaking one JSON object per line.

Request ``{"cmd": NAME, ...}`` → exactly one reply line, ``{"ok": true, ...}`` or
``{"ok": false, "error": "…"}``. Commands:

=================  ==========================================================================
``status``         ``{"ok": true, "status": "connected", "muted": false}``
``connect``        optional ``"credential": {"kind", "token"|"url", "expiresAt"}``; otherwise
                   the configured source. Replies once connected (or with the error).
``disconnect``     close the conversation; status ``disconnected``.
``mute``           stop sending microphone audio; ``unmute`` resumes.
``send_message``   ``"text"``: a user message; the model replies. Fails when not connected.
``subscribe``      the reply line, then one line per event until the client goes away:
                   ``{"event": "status", "status": …}``, ``{"event": "muted", "muted": …}``,
                   ``{"event": "transcript", "role": "user"|"assistant", "text": …}``,
                   ``{"event": "error", "code": …, "message": …}``,
                   ``{"event": "faults", "faults": [message, …]}`` (raised or cleared;
                   empty when nothing is wrong any more), and ``speaking``/``text``.
=================  ==========================================================================

Malformed JSON, unknown commands, bad fields and over-long lines (> 64 KiB) get an error reply;
the connection and the service carry on. A subscriber that cannot keep up (its queue of
events is full) is disconnected rather than letting memory grow.

:func:`request` and :func:`stream_events` are the blocking client side, used by the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from .realtime.credentials import Credential
from .realtime.errors import VoiceDeviceError
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
from .realtime.status import TransportStatus

log = logging.getLogger("device.control")

MAX_LINE = 64 * 1024
#: How long ``connect`` waits for a connect someone else started (a button press) to settle.
CONNECT_WAIT_S = 30.0
#: Error notices that explain a failed connect (not an audio fault raised meanwhile).
CONNECT_ERROR_CODES = frozenset({"network", "credential", "auth", "session", "closed"})
SUBSCRIBER_QUEUE = 512


class Surface(Protocol):
    """What the control socket drives: the session surface (``RealtimeSession`` fits)."""

    @property
    def status(self) -> TransportStatus: ...

    @property
    def muted(self) -> bool: ...

    def subscribe(self, listener: Callable[[Notice], None]) -> Callable[[], None]: ...

    async def connect(self, credential: Credential | Mapping[str, Any] | None = None) -> None: ...

    async def disconnect(self) -> None: ...

    def mute(self) -> None: ...

    def unmute(self) -> None: ...

    async def send_message(self, text: str) -> None: ...


def notice_to_event(notice: Notice) -> dict[str, Any]:
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
    raise TypeError(f"unknown notice {notice!r}")  # pragma: no cover


def _encode(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class ControlServer:
    """Serve the control socket at ``path`` for ``surface``. Use ``async with`` or start/close."""

    def __init__(
        self,
        surface: Surface,
        path: str | os.PathLike[str],
        *,
        mode: int = 0o660,
        max_clients: int = 128,
    ) -> None:
        self.surface = surface
        self.path = Path(path)
        self.mode = mode
        self.max_clients = max_clients
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self._inode: int | None = None
        self.clients = 0

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise VoiceDeviceError(
                    f"control.socket: {self.path} exists and is not a socket; refusing to remove it"
                )
            if _socket_alive(self.path):
                raise VoiceDeviceError(
                    f"control.socket: {self.path} is in use (is another voice-device running?)"
                )
            self.path.unlink()
        old = os.umask(0o777 & ~self.mode)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_LINE
            )
        finally:
            os.umask(old)
        os.chmod(self.path, self.mode)
        self._inode = self.path.lstat().st_ino
        log.info("control socket at %s", self.path)

    async def close(self) -> None:
        """Stop serving, drop every client, remove the socket file (only if it is ours)."""
        if self._server is None:
            return  # never started (or start failed): the file may be another instance's
        self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=1.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        self._server = None
        with contextlib.suppress(OSError):
            if self._inode is not None and self.path.lstat().st_ino == self._inode:
                self.path.unlink()

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ per client

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        self.clients += 1
        try:
            if self.clients > self.max_clients:
                writer.write(_encode({"ok": False, "error": "too many control clients"}))
                await writer.drain()
                return
            await self._session(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.clients -= 1
            self._clients.discard(task)
            transport = writer.transport
            if transport.get_write_buffer_size() or task.cancelling():
                transport.abort()  # a client that stopped reading must not hold up shutdown
            else:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 0.5)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        discarding = False
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            buffer += chunk
            while True:
                end = buffer.find(b"\n")
                if end < 0:
                    if len(buffer) > MAX_LINE:
                        if not discarding:
                            writer.write(
                                _encode(
                                    {"ok": False, "error": f"line longer than {MAX_LINE} bytes"}
                                )
                            )
                            await writer.drain()
                        discarding = True
                        buffer.clear()
                    break
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                if discarding:
                    discarding = False
                    continue
                if not line.strip():
                    continue
                reply, subscribe = await self._handle_line(line)
                writer.write(_encode(reply))
                await writer.drain()
                if subscribe:
                    await self._stream(reader, writer)
                    return

    async def _connect(self, s: Surface, credential: Mapping[str, Any] | None) -> dict[str, Any]:
        """``ok`` only once connected. A connect that ends up retrying in the background, or
        one already under way that fails, answers ``ok: false`` with the reason."""
        if credential is not None and s.status is TransportStatus.CONNECTING:
            return {
                "ok": False,
                "error": "connect: a connect is already under way; the credential was not used "
                "(try again once the status settles)",
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
                    await asyncio.wait_for(settled, CONNECT_WAIT_S)
        finally:
            unsubscribe()
        status = s.status
        if status is TransportStatus.CONNECTED:
            return {"ok": True, "status": status.value}
        why = errors[-1] if errors else f"status is {status.value}"
        if status is TransportStatus.RECONNECTING:
            why += " (retrying in the background)"
        return {"ok": False, "error": f"connect: not connected: {why}", "status": status.value}

    def _state(self) -> dict[str, Any]:
        s = self.surface
        state: dict[str, Any] = {"status": s.status.value, "muted": s.muted}
        faults = getattr(s, "faults", None)
        if faults:
            state["faults"] = sorted(faults.values())
        return state

    async def _handle_line(self, line: bytes) -> tuple[dict[str, Any], bool]:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return {"ok": False, "error": "malformed JSON: send one JSON object per line"}, False
        if not isinstance(request, dict):
            return {"ok": False, "error": 'expected a JSON object like {"cmd": "status"}'}, False
        cmd = request.get("cmd")
        s = self.surface
        try:
            match cmd:
                case "status":
                    return {"ok": True, **self._state()}, False
                case "connect":
                    credential = request.get("credential")
                    if credential is not None and not isinstance(credential, dict):
                        return {
                            "ok": False,
                            "error": "connect: 'credential' must be an object",
                        }, False
                    return await self._connect(s, credential), False
                case "disconnect":
                    await s.disconnect()
                    return {"ok": True, "status": s.status.value}, False
                case "mute":
                    s.mute()
                    return {"ok": True, "muted": s.muted}, False
                case "unmute":
                    s.unmute()
                    return {"ok": True, "muted": s.muted}, False
                case "send_message":
                    text = request.get("text")
                    if not isinstance(text, str) or not text.strip():
                        return {
                            "ok": False,
                            "error": "send_message: 'text' must be a non-empty string",
                        }, False
                    await s.send_message(text)
                    return {"ok": True}, False
                case "subscribe":
                    return {"ok": True, **self._state()}, True
                case None:
                    return {"ok": False, "error": "missing 'cmd'"}, False
                case _:
                    return {
                        "ok": False,
                        "error": f"unknown cmd {str(cmd)[:40]!r} (status, connect, disconnect, "
                        "mute, unmute, send_message, subscribe)",
                    }, False
        except (VoiceDeviceError, ValueError) as exc:
            return {"ok": False, "error": str(exc)}, False
        except Exception as exc:  # never leave a client without a reply, never crash
            log.exception("control command %r failed", str(cmd)[:40])
            return {"ok": False, "error": f"{str(cmd)[:40]} failed: {type(exc).__name__}"}, False

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(SUBSCRIBER_QUEUE)

        def listener(notice: Notice) -> None:
            try:
                queue.put_nowait(notice_to_event(notice))
            except asyncio.QueueFull:
                log.warning("a control subscriber is too slow; disconnecting it")
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        queue.get_nowait()
                queue.put_nowait(None)

        async def watch_eof() -> None:
            while await reader.read(4096):
                pass  # subscribers only listen; anything they send is ignored
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

        unsubscribe = self.surface.subscribe(listener)
        eof = asyncio.create_task(watch_eof())
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                writer.write(_encode(event))
                await writer.drain()
        finally:
            unsubscribe()
            eof.cancel()
            with contextlib.suppress(BaseException):
                await eof


def _socket_alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


# ---------------------------------------------------------------------- client side


class ControlClientError(VoiceDeviceError, ConnectionError):
    """The control socket is missing, refused us, or answered garbage."""


def _connect(path: str | os.PathLike[str], timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(os.fspath(path))
    except FileNotFoundError:
        sock.close()
        raise ControlClientError(
            f"no control socket at {path}: is voice-device running? (see --socket)"
        ) from None
    except PermissionError:
        sock.close()
        raise ControlClientError(
            f"permission denied on {path}: add your user to the voice-device group"
        ) from None
    except OSError as exc:
        sock.close()
        raise ControlClientError(f"cannot connect to {path}: {exc.strerror}") from None
    return sock


def request(
    path: str | os.PathLike[str], message: Mapping[str, Any], timeout: float = 30.0
) -> dict[str, Any]:
    """Send one request and return the reply object (blocking)."""
    with _connect(path, timeout) as sock:
        sock.sendall(_encode(message))
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlClientError(f"{path}: the service sent no valid reply") from None
    if not isinstance(reply, dict):
        raise ControlClientError(f"{path}: the service sent no valid reply")
    return reply


def stream_events(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Subscribe and yield the reply, then every event, until the service goes away."""
    with _connect(path, None) as sock, sock.makefile("rb") as stream:
        sock.sendall(_encode({"cmd": "subscribe"}))
        for line in stream:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj
