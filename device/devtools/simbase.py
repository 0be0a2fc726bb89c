"""The simulator's base: construction, lifecycle, test controls, handshake and sending.

:class:`~device.devtools.simserver.Simulator` adds the protocol on top; import it from
:mod:`device.devtools.simulator`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .. import redact  # noqa: F401 (installs the log filter on websockets.server)


@dataclass
class Conn:
    index: int
    ws: ServerConnection
    bearer: str = ""
    session: dict[str, Any] = field(default_factory=dict)
    buffer: bytearray = field(default_factory=bytearray)
    buffer_start_ms: int = 0  # position of buffer[0] in the stream of appended audio
    appended_ms: int = 0
    voiced_ms: int = 0
    silent_ms: int = 0
    speaking: bool = False
    speech_item: str = ""
    speech_from: int = 0  # where the current speech began, in appended ms
    speech_ms: int = 0  # length of the last speech turn
    response: asyncio.Task[None] | None = None
    response_id: str = ""
    items: dict[str, int] = field(default_factory=dict)  # item id → audio ms sent
    #: Tokens of the conversation so far (audio, text), and the previous response's input.
    context: tuple[int, int] = (0, 0)
    cached: tuple[int, int] = (0, 0)
    #: Function calls of the latest response still waiting for their output (strict mode).
    pending_calls: set[str] = field(default_factory=set)
    #: The running response so far: audio ms and text tokens sent, why it was cancelled.
    out_ms: int = 0
    out_text: int = 0
    cancel_reason: str = ""


class SimulatorBase:
    """``async with Simulator(token=...) as sim:`` — then point a model at ``sim.url``.

    ``token`` None accepts any bearer. ``reply`` is ``"tone"`` (synthetic speech) or ``"echo"``
    (the user's committed audio played back). ``pace`` 1.0 streams reply audio at real time,
    2.0 twice as fast, 0 as fast as the socket takes it. ``lead_ms`` lets the paced audio run
    that far ahead of real time, as real models do (they generate faster than they speak), so a
    client's jitter buffer holds more than its start threshold.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        reply: str = "tone",
        pace: float = 1.0,
        reply_seconds: float | None = None,
        greet: bool = False,
        dialect: str = "openai",
        lead_ms: int = 0,
        strict: bool = False,
        custom_voices: tuple[str, ...] = (),
    ) -> None:
        if reply not in ("tone", "echo"):
            raise ValueError(f'reply must be "tone" or "echo", got {reply!r}')
        if dialect not in ("openai", "xai"):
            raise ValueError(f'dialect must be "openai" or "xai", got {dialect!r}')
        #: ``"xai"``: Grok as xAI documents it — ``session.created`` then
        #: ``conversation.created``, a flat session (``voice``/``turn_detection`` at its top
        #: level), xAI's voices only, ``server_vad`` or ``null`` only, no automatic cancel on
        #: ``speech_started`` and ``ping`` keepalive events.
        self.dialect = dialect
        #: Strict: also refuse a ``response.create`` sent before every function call of the
        #: previous response has its output (xAI documents "all outputs, then one create").
        self.strict = strict
        #: Voice ids accepted besides the dialect's own (xAI's custom voices).
        self.custom_voices = custom_voices
        self.token = token
        self.host = host
        self.port = port
        self.reply = reply
        self.pace = pace
        if lead_ms < 0:
            raise ValueError(f"lead_ms must be >= 0, got {lead_ms}")
        self.lead_ms = lead_ms
        self.reply_seconds = reply_seconds
        #: Start speaking (a greeting of ``reply_seconds``) as soon as a session is configured.
        self.greet = greet
        self._init_records()

    def _init_records(self) -> None:
        """What the simulator saw and sent, for tests to read; and its private state."""
        #: Every ``response.create`` the simulator refused, with the reason (code).
        self.refused_creates: list[str] = []
        #: The ``usage`` object of every ``response.done`` sent, in order.
        self.usage_sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        self.auth_headers: list[str] = []
        self.audio_sent_ms: dict[str, int] = {}
        self.connections = 0
        self.rejected = 0
        self.errors_sent: list[dict[str, Any]] = []
        #: Every well-formed event the simulator sent (raw frames from send_raw excluded).
        self.sent: list[dict[str, Any]] = []
        #: Close code of each finished connection, as the server saw it (None: no close frame).
        self.close_codes: list[int | None] = []
        #: The bearer token each connection (by index) presented.
        self.bearer_of: dict[int, str] = {}
        self.on_receive: Callable[[dict[str, Any]], None] | None = None
        self._server: Server | None = None
        self._conns: dict[int, Conn] = {}
        self._ids = itertools.count(1)
        self._reject: list[int] = []
        self._tool_calls: list[list[tuple[str, dict[str, Any]]]] = []
        #: (message, code) of each scripted response failure, next first.
        self._failures: list[tuple[str, str]] = []
        #: Keep turn detection off whatever ``session.update`` asks (and confirm ``null``).
        self.turn_detection_off = False
        self._redirects: list[tuple[int, str]] = []
        self._stalled = False
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _handler(self, ws: ServerConnection) -> None:
        raise NotImplementedError  # the protocol lives in simserver.Simulator

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> Self:
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=16 * 1024 * 1024,
            compression=None,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/realtime?model=gpt-realtime"

    # -- test controls -----------------------------------------------------------------------

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 5.0) -> dict[str, Any]:
        """The ``count``-th client event of type ``kind``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            seen = [e for e in self.received if e.get("type") == kind]
            if len(seen) >= count:
                return seen[count - 1]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"simulator: {kind!r} #{count} not received in {timeout} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def script_tool_call(self, name: str, arguments: dict[str, Any]) -> None:
        """The next response calls tool ``name`` with ``arguments`` instead of speaking."""
        self._tool_calls.append([(name, arguments)])

    def script_tool_batch(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        """The next response calls every tool of ``calls`` (one response, several calls)."""
        self._tool_calls.append(list(calls))

    def fail_next_response(self, message: str, code: str = "server_error") -> None:
        """The next response ends ``failed`` with this ``status_details.error``, no output."""
        self._failures.append((message, code))

    def redirect_next(self, location: str, status: int = 302) -> None:
        """Answer the next handshake with ``status`` and ``Location: location``."""
        self._redirects.append((status, location))

    def reject_next(self, status: int, count: int = 1) -> None:
        """Refuse the next ``count`` handshakes with HTTP ``status``."""
        self._reject.extend([status] * count)

    async def drop(
        self, code: int = 1011, reason: str = "simulated drop", *, bearer: str | None = None
    ) -> None:
        """Close every open connection (or those of ``bearer``) with ``code``; 1006 aborts TCP
        with no close frame."""
        for conn in list(self._conns.values()):
            if bearer is not None and conn.bearer != bearer:
                continue
            if code == 1006:
                conn.ws.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code, reason), 2.0)

    async def expire_session(self) -> None:
        """What the GA server does at the 60-minute limit: ``session_expired``, then 1001."""
        for conn in list(self._conns.values()):
            await self._error(
                conn,
                "Your session hit the maximum duration of 60 minutes.",
                code="session_expired",
            )
            with contextlib.suppress(Exception):
                await conn.ws.close(1001, "session expired")

    async def send_raw(self, text: str) -> None:
        """Send ``text`` as one frame on every open connection, as is."""
        for conn in list(self._conns.values()):
            self._spawn(self._send_text(conn, text))

    def stall(self) -> None:
        """Stop reading (and so stop answering pings) on every open connection."""
        self._stalled = True
        for conn in self._conns.values():
            conn.ws.transport.pause_reading()

    def unstall(self, *, existing: bool = True) -> None:
        """Answer again: new connections, and (``existing``) the stalled ones."""
        self._stalled = False
        if not existing:
            return
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                conn.ws.transport.resume_reading()

    # -- handshake ---------------------------------------------------------------------------

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        auth = request.headers.get("Authorization", "")
        self.auth_headers.append(auth)
        if self._redirects:
            self.rejected += 1
            status, location = self._redirects.pop(0)
            response = self._refuse(status)
            response.headers["Location"] = location
            return response
        if self._reject:
            self.rejected += 1
            return self._refuse(self._reject.pop(0))
        if self.token is not None and auth != f"Bearer {self.token}":
            self.rejected += 1
            return self._refuse(401)
        return None

    @staticmethod
    def _refuse(status: int) -> Response:
        phrase = http.HTTPStatus(status).phrase
        body = json.dumps({"error": {"message": phrase, "code": status}}).encode()
        headers = Headers(
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return Response(status, phrase, headers, body)

    # -- connection --------------------------------------------------------------------------
    # -- sending -----------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_sim{next(self._ids):06d}"

    async def _send(self, conn: Conn, event: dict[str, Any]) -> None:
        event = {"event_id": self._new_id("event"), **event}
        if event["type"] in ("session.created", "session.updated"):
            event["session"] = {k: v for k, v in event["session"].items() if not k.startswith("_")}
        self.sent.append(event)
        await conn.ws.send(json.dumps(event))

    async def _send_text(self, conn: Conn, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(text)

    async def _error(self, conn: Conn, message: str, *, code: str | None = None) -> None:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": None}
        self.errors_sent.append(error)
        with contextlib.suppress(ConnectionClosed):
            await self._send(conn, {"type": "error", "error": error})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
