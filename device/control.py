"""The kiosk API: a Unix stream socket speaking one JSON object per line.

Request ``{"cmd": NAME, ...}`` → exactly one reply line, ``{"ok": true, ...}`` or
``{"ok": false, "error": "…"}``. The commands and their replies are the one command table,
:mod:`device.commands`; this module only frames lines. ``subscribe`` answers with the state,
then sends one line per event until the client goes away:
``{"event": "status", "status": …}``, ``{"event": "muted", "muted": …}``,
``{"event": "transcript", "role": "user"|"assistant", "text": …}``,
``{"event": "error", "code": …, "message": …}``, ``{"event": "faults", "faults": [message, …]}``
(raised or cleared; empty when nothing is wrong any more), and ``speaking``/``text``.

Malformed JSON, unknown commands, bad fields and over-long lines (> 64 KiB) get an error reply;
the connection and the service carry on. Limits, so no local client can grow memory or lock
others out:

* a subscriber more than :data:`MAX_BACKLOG` bytes behind, or whose pending bytes make no
  progress for :data:`WRITE_DEADLINE_S`, is aborted (the connection is dropped at once);
* a connection that has not subscribed and sends nothing for ``idle_timeout`` (10 s) is closed;
* each local user (peer uid, ``SO_PEERCRED``) holds at most ``max_clients`` connections, all
  users together four times that; a user at the cap who connects again displaces their own
  longest-idle, non-subscribed connection, else gets "too many control clients".

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
import struct
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .commands import CommandTable, notice_to_event
from .realtime.errors import VoiceDeviceError

__all__ = ["ControlClientError", "ControlServer", "notice_to_event", "request", "stream_events"]

log = logging.getLogger("device.control")

MAX_LINE = 64 * 1024
#: Bytes a subscriber may fall behind (unsent events) before it is dropped.
MAX_BACKLOG = 1 << 20
#: Seconds a subscriber's pending bytes may go without any being taken before it is dropped.
WRITE_DEADLINE_S = 10.0
IDLE_TIMEOUT_S = 10.0


@dataclass(eq=False)
class _Client:
    uid: int
    writer: asyncio.StreamWriter
    task: asyncio.Task[Any]
    last_input: float = field(default_factory=time.monotonic)
    busy: bool = False
    subscribed: bool = False
    evicted: bool = False

    def evictable(self) -> bool:
        return not (self.busy or self.subscribed)


def _peer_uid(writer: asyncio.StreamWriter) -> int:
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", creds)[1])
    except (OSError, AttributeError, struct.error):
        return -1


def _encode(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class ControlServer:
    """Serve the control socket at ``path`` for ``table``. Use ``async with`` or start/close."""

    def __init__(
        self,
        table: CommandTable,
        path: str | os.PathLike[str],
        *,
        mode: int = 0o660,
        max_clients: int = 128,
        idle_timeout: float = IDLE_TIMEOUT_S,
        max_backlog: int = MAX_BACKLOG,
        write_deadline: float = WRITE_DEADLINE_S,
    ) -> None:
        self.table = table
        self.path = Path(path)
        self.mode = mode
        self.max_clients = max_clients
        self.idle_timeout = idle_timeout
        self.max_backlog = max_backlog
        self.write_deadline = write_deadline
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[Any], _Client] = {}
        self._inode: int | None = None
        self._closing = False

    @property
    def clients(self) -> int:
        return len(self._clients)

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
        self._closing = True
        self._server.close()
        for client in list(self._clients.values()):
            client.writer.transport.abort()
            client.task.cancel()
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

    # ------------------------------------------------------------------ admission

    def _admit(self, new: _Client) -> bool:
        """Room for ``new``? Displaces the same user's longest-idle connection if need be."""
        mine = [c for c in self._clients.values() if c.uid == new.uid]
        if len(mine) < self.max_clients and len(self._clients) < 4 * self.max_clients:
            return True
        pool = mine if len(mine) >= self.max_clients else list(self._clients.values())
        idle = [c for c in pool if c.evictable()]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last_input)
        log.info("control: closing an idle connection to make room (uid %d)", victim.uid)
        victim.evicted = True
        victim.writer.transport.abort()
        victim.task.cancel()
        del self._clients[victim.task]
        return True

    # ------------------------------------------------------------------ per client

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        client = _Client(_peer_uid(writer), writer, task)
        try:
            if not self._admit(client):
                writer.write(_encode({"ok": False, "error": "too many control clients"}))
                await asyncio.wait_for(writer.drain(), 1.0)
                return
            self._clients[task] = client
            await self._session(reader, client)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # Closed by us (shutdown, displaced): end quietly. asyncio's stream callback would
            # otherwise log "Exception in callback ... CancelledError" at shutdown.
            if not (self._closing or client.evicted):
                raise
        finally:
            self._clients.pop(task, None)
            transport = writer.transport
            if transport.get_write_buffer_size() or self._closing or transport.is_closing():
                transport.abort()  # a client that stopped reading must not hold up shutdown
            else:
                writer.close()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(writer.wait_closed(), 0.5)

    async def _read(self, reader: asyncio.StreamReader, client: _Client) -> bytes:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), self.idle_timeout)
        except TimeoutError:
            log.debug("control: closing a connection idle for %g s", self.idle_timeout)
            return b""
        client.last_input = time.monotonic()
        return chunk

    async def _session(self, reader: asyncio.StreamReader, client: _Client) -> None:
        writer = client.writer
        buffer = bytearray()
        discarding = False
        while chunk := await self._read(reader, client):
            buffer += chunk
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                if discarding:
                    discarding = False
                    continue
                if not line.strip():
                    continue
                client.busy = True
                reply, streams = await self._handle_line(line)
                writer.write(_encode(reply))
                await asyncio.wait_for(writer.drain(), self.write_deadline)
                client.busy = False
                if streams:
                    client.subscribed = True
                    await self._stream(reader, writer)
                    return
            if len(buffer) > MAX_LINE:
                if not discarding:
                    error = f"line longer than {MAX_LINE} bytes"
                    writer.write(_encode({"ok": False, "error": error}))
                    await asyncio.wait_for(writer.drain(), self.write_deadline)
                discarding = True
                buffer.clear()

    async def _handle_line(self, line: bytes) -> tuple[dict[str, Any], bool]:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return {"ok": False, "error": "malformed JSON: send one JSON object per line"}, False
        reply = await self.table.dispatch(request)
        command = self.table.lookup(request) if isinstance(request, dict) else None
        return reply, bool(command is not None and command.streams and reply.get("ok"))

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Write each event as it happens; abort a subscriber that falls too far behind."""
        transport = writer.transport
        wrote = asyncio.Event()

        def listener(event: dict[str, Any]) -> None:
            if transport.is_closing():
                return
            transport.write(_encode(event))
            if transport.get_write_buffer_size() > self.max_backlog:
                log.warning("a control subscriber is too slow; disconnecting it")
                transport.abort()
            wrote.set()

        async def watch_eof() -> Any:
            while await reader.read(4096):
                pass  # subscribers only listen; anything they send is ignored

        unsubscribe = self.table.subscribe_events(listener)
        eof: asyncio.Future[Any] = asyncio.ensure_future(watch_eof())
        waiter: asyncio.Future[Any] = asyncio.ensure_future(wrote.wait())
        try:
            while not eof.done() and not transport.is_closing():
                await asyncio.wait({eof, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    wrote.clear()
                    waiter = asyncio.ensure_future(wrote.wait())
                await self._drain(writer)
        finally:
            unsubscribe()
            for task in (eof, waiter):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        """Wait for pending bytes to go; no progress within the deadline → abort."""
        transport = writer.transport
        while not transport.is_closing() and (pending := transport.get_write_buffer_size()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer.drain(), self.write_deadline)
                return
            if transport.get_write_buffer_size() >= pending:
                log.warning("a control subscriber stopped reading; disconnecting it")
                transport.abort()


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
