"""A local stand-in for the OpenAI Realtime GA server, on a loopback websocket.

It speaks enough of the GA protocol for the device to be developed, tested and benchmarked
without a network or an API key: ``session.created/updated``, audio appends with an energy VAD
(``speech_started`` cancels the running response, like ``interrupt_response``), manual commits,
text messages, tool calls, truncation checked against the audio really sent, and replies whose
audio deltas are paced at real time (or faster). It also injects faults on demand: closes with
any code (1006 = TCP abort), handshake rejections, ``session_expired``, raw frames and a stalled
peer that stops answering pings.

``voice-device simulate`` runs one from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http
import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import redact  # noqa: F401 (installs the log filter on websockets.server)

log = logging.getLogger("device.simulator")

RATE = 24000
BYTES_PER_MS = RATE * 2 // 1000  # 48
CHUNK_MS = 40
#: The voices gpt-realtime accepts; the real server answers any other with ``invalid_value``.
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
VAD_RMS = 600.0  # int16 RMS above which a 20 ms frame counts as voice
VAD_ONSET_MS = 60


def tone(text: str, *, seconds: float | None = None) -> bytes:
    """Speech-like audio for ``text``: a voiced buzz with syllable envelopes, 24 kHz s16le."""
    duration = seconds if seconds is not None else min(10.0, max(3.0, 0.1 * len(text)))
    n = int(duration * RATE)
    t = np.arange(n, dtype=np.float64) / RATE
    pitch = 140.0 + 20.0 * np.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = 0.55 + 0.45 * np.sin(2 * math.pi * 4.0 * t) ** 2
    edge = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    pcm = (voice * syllables * edge * 6000.0).astype("<i2")
    return bytes(pcm.tobytes())


@dataclass
class _Conn:
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


class Simulator:
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
    ) -> None:
        if reply not in ("tone", "echo"):
            raise ValueError(f'reply must be "tone" or "echo", got {reply!r}')
        if dialect not in ("openai", "xai"):
            raise ValueError(f'dialect must be "openai" or "xai", got {dialect!r}')
        #: ``"xai"``: Grok's flavour — ``conversation.created`` instead of ``session.created``,
        #: a flat session (``turn_detection`` at its top level) and ``ping`` keepalive events.
        self.dialect = dialect
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
        self._conns: dict[int, _Conn] = {}
        self._ids = itertools.count(1)
        self._reject: list[int] = []
        self._tool_calls: list[tuple[str, dict[str, Any]]] = []
        self._stalled = False
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> Simulator:
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

    async def __aenter__(self) -> Simulator:
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
        self._tool_calls.append((name, arguments))

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

    async def _handler(self, ws: ServerConnection) -> None:
        auth = ws.request.headers.get("Authorization", "") if ws.request is not None else ""
        conn = _Conn(self.connections, ws, auth.removeprefix("Bearer "))
        self.bearer_of[conn.index] = conn.bearer
        self.connections += 1
        self._conns[conn.index] = conn
        if self._stalled:
            ws.transport.pause_reading()
        try:
            session_id = f"sess_sim{conn.index}"
            if self.dialect == "xai":
                conn.session = {"id": session_id}
                await self._send(
                    conn,
                    {
                        "type": "conversation.created",
                        "conversation": {
                            "id": f"conv_sim{conn.index}",
                            "object": "realtime.conversation",
                        },
                    },
                )
                self._spawn(self._pings(conn))
            else:
                conn.session = {"type": "realtime", "id": session_id, "model": "gpt-realtime"}
                await self._send(conn, {"type": "session.created", "session": dict(conn.session)})
            async for message in ws:
                if isinstance(message, bytes):
                    await self._error(conn, "binary frames are not supported")
                    continue
                try:
                    event = json.loads(message)
                except ValueError:
                    await self._error(conn, "The server could not parse the JSON.")
                    continue
                if not isinstance(event, dict):
                    await self._error(conn, "An event must be a JSON object.")
                    continue
                await self._dispatch(conn, event)
        except ConnectionClosed:
            pass
        finally:
            if conn.response is not None:
                conn.response.cancel()
            self._conns.pop(conn.index, None)
            self.close_codes.append(ws.close_code)

    async def _dispatch(self, conn: _Conn, event: dict[str, Any]) -> None:
        self.received.append({**event, "_conn": conn.index})
        self.received_at.append(time.perf_counter())
        if self.on_receive is not None:
            self.on_receive(event)
        self._changed.set()
        match event.get("type"):
            case "session.update":
                session = event.get("session")
                if not isinstance(session, dict):
                    await self._error(conn, "Missing required parameter: 'session'.")
                    return
                audio = session.get("audio")
                output = audio.get("output") if isinstance(audio, dict) else None
                voice = output.get("voice") if isinstance(output, dict) else None
                if self.dialect == "openai" and voice is not None and voice not in OPENAI_VOICES:
                    await self._error(
                        conn,
                        f"Invalid value: '{voice}'. Supported values are: "
                        + ", ".join(f"'{v}'" for v in OPENAI_VOICES)
                        + ".",
                        code="invalid_value",
                    )
                    return
                first = "_configured" not in conn.session
                conn.session.update(session)
                conn.session["_configured"] = True
                await self._send(conn, {"type": "session.updated", "session": conn.session})
                if first and self.greet:
                    conn.response = asyncio.create_task(self._respond(conn))
            case "input_audio_buffer.append":
                await self._append(conn, event)
            case "input_audio_buffer.commit":
                if len(conn.buffer) < 100 * BYTES_PER_MS:
                    await self._error(
                        conn,
                        "Error committing input audio buffer: buffer too small. Expected at least"
                        " 100ms of audio.",
                        code="input_audio_buffer_commit_empty",
                    )
                    return
                await self._commit(conn, self._new_id("item"))
            case "input_audio_buffer.clear":
                self._clear_buffer(conn)
                await self._send(conn, {"type": "input_audio_buffer.cleared"})
            case "conversation.item.create":
                item = event.get("item")
                if not isinstance(item, dict):
                    await self._error(conn, "Missing required parameter: 'item'.")
                    return
                item = {"id": self._new_id("item"), **item}
                conn.session.setdefault("_history", []).append(item)
                await self._send(
                    conn,
                    {"type": "conversation.item.added", "previous_item_id": None, "item": item},
                )
                await self._send(
                    conn, {"type": "conversation.item.done", "previous_item_id": None, "item": item}
                )
            case "response.create":
                if conn.response is not None and not conn.response.done():
                    await self._error(
                        conn,
                        "Conversation already has an active response in progress.",
                        code="conversation_already_has_active_response",
                    )
                    return
                conn.response = asyncio.create_task(self._respond(conn))
            case "response.cancel":
                if conn.response is None or conn.response.done():
                    await self._error(
                        conn,
                        "Cancellation failed: no active response found",
                        code="response_cancel_not_active",
                    )
                    return
                conn.response.cancel()
            case "conversation.item.truncate":
                await self._truncate(conn, event)
            case _:
                await self._error(
                    conn, f"Invalid value: '{event.get('type')}'.", code="invalid_value"
                )

    # -- input audio -------------------------------------------------------------------------

    async def _append(self, conn: _Conn, event: dict[str, Any]) -> None:
        try:
            pcm = base64.b64decode(str(event.get("audio", "")), validate=True)
        except ValueError:
            await self._error(conn, "Invalid 'audio'. Expected base64-encoded audio.")
            return
        conn.buffer += pcm
        frame_ms = len(pcm) // BYTES_PER_MS
        conn.appended_ms += frame_ms
        detection = self._turn_detection(conn)
        if detection is None or not pcm:
            return
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32)
        rms = float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0
        if rms >= VAD_RMS:
            conn.voiced_ms += frame_ms
            conn.silent_ms = 0
        else:
            conn.silent_ms += frame_ms
            if not conn.speaking:
                conn.voiced_ms = 0
        if not conn.speaking and conn.voiced_ms >= VAD_ONSET_MS:
            conn.speaking = True
            conn.speech_item = self._new_id("item")
            conn.speech_from = conn.appended_ms - conn.voiced_ms
            start = max(0, conn.speech_from - 300)
            await self._send(
                conn,
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": start,
                    "item_id": conn.speech_item,
                },
            )
            if detection.get("interrupt_response", True) and conn.response is not None:
                conn.response.cancel()
        silence = int(detection.get("silence_duration_ms") or 500)
        if conn.speaking and conn.silent_ms >= silence:
            conn.speaking = False
            conn.voiced_ms = 0
            conn.speech_ms = conn.appended_ms - conn.silent_ms - conn.speech_from
            await self._send(
                conn,
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": conn.appended_ms - conn.silent_ms,
                    "item_id": conn.speech_item,
                },
            )
            await self._commit(conn, conn.speech_item, speech_ms=conn.speech_ms)
            if detection.get("create_response", True) and (
                conn.response is None or conn.response.done()
            ):
                conn.response = asyncio.create_task(self._respond(conn))

    async def _pings(self, conn: _Conn) -> None:
        """xAI sends keepalive ``ping`` events the client must ignore."""
        with contextlib.suppress(ConnectionClosed):
            while conn.index in self._conns:
                await asyncio.sleep(0.5)
                await self._send(conn, {"type": "ping", "timestamp": int(time.time() * 1000)})

    def _turn_detection(self, conn: _Conn) -> dict[str, Any] | None:
        if self.dialect == "xai" and "turn_detection" in conn.session:
            td = conn.session["turn_detection"]
            return td if isinstance(td, dict) else None
        audio = conn.session.get("audio")
        if isinstance(audio, dict):
            inp = audio.get("input")
            if isinstance(inp, dict) and "turn_detection" in inp:
                td = inp["turn_detection"]
                return td if isinstance(td, dict) else None
        return {"type": "server_vad"}

    async def _commit(self, conn: _Conn, item_id: str, *, speech_ms: int | None = None) -> None:
        pcm = bytes(conn.buffer)
        self._clear_buffer(conn)
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        conn.session.setdefault("_history", []).append({**item, "_pcm": pcm})
        await self._send(
            conn,
            {"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": item_id},
        )
        seconds = (speech_ms if speech_ms is not None else len(pcm) // BYTES_PER_MS) / 1000
        await self._send(
            conn,
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": f"({seconds:.1f} s of speech)",
                "usage": {"type": "duration", "seconds": round(seconds, 2)},
            },
        )

    def _clear_buffer(self, conn: _Conn) -> None:
        conn.buffer_start_ms += len(conn.buffer) // BYTES_PER_MS
        conn.buffer.clear()

    # -- responses ---------------------------------------------------------------------------

    def _reply_for(self, conn: _Conn) -> tuple[str, bytes]:
        history: list[dict[str, Any]] = conn.session.get("_history", [])
        last = history[-1] if history else {}
        if last.get("type") == "function_call_output":
            text = f"Here is what I found: {last.get('output', '')}"
        elif last.get("type") == "message":
            content = last.get("content") or [{}]
            first = content[0] if isinstance(content[0], dict) else {}
            if first.get("type") == "input_text":
                text = f"You said: {first.get('text', '')}"
            else:
                text = "I heard you. Here is my answer."
                if self.reply == "echo" and last.get("_pcm"):
                    return text, last["_pcm"]
        else:
            text = "Hello! How can I help?"
        return text, tone(text, seconds=self.reply_seconds)

    async def _respond(self, conn: _Conn) -> None:
        response_id = self._new_id("resp")
        conn.response_id = response_id
        status = "completed"
        await self._send(
            conn,
            {
                "type": "response.created",
                "response": {
                    "id": response_id,
                    "object": "realtime.response",
                    "status": "in_progress",
                    "output": [],
                },
            },
        )
        try:
            if self._tool_calls:
                await self._call_tool(conn, response_id, *self._tool_calls.pop(0))
            else:
                await self._speak(conn, response_id)
        except asyncio.CancelledError:
            status = "cancelled"
        with contextlib.suppress(ConnectionClosed):
            await self._send(
                conn,
                {
                    "type": "response.done",
                    "response": {
                        "id": response_id,
                        "object": "realtime.response",
                        "status": status,
                        "output": [],
                    },
                },
            )

    async def _call_tool(
        self, conn: _Conn, response_id: str, name: str, arguments: dict[str, Any]
    ) -> None:
        item_id, call_id = self._new_id("item"), self._new_id("call")
        args = json.dumps(arguments)
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "call_id": call_id,
            "name": name,
            "arguments": "",
        }
        where = {"response_id": response_id, "output_index": 0}
        await self._send(conn, {"type": "response.output_item.added", **where, "item": item})
        await self._send(
            conn,
            {
                "type": "response.function_call_arguments.delta",
                **where,
                "item_id": item_id,
                "call_id": call_id,
                "delta": args,
            },
        )
        await self._send(
            conn,
            {
                "type": "response.function_call_arguments.done",
                **where,
                "item_id": item_id,
                "call_id": call_id,
                "name": name,
                "arguments": args,
            },
        )
        done = {**item, "status": "completed", "arguments": args}
        await self._send(conn, {"type": "response.output_item.done", **where, "item": done})

    async def _speak(self, conn: _Conn, response_id: str) -> None:
        text, pcm = self._reply_for(conn)
        item_id = self._new_id("item")
        conn.items[item_id] = 0
        self.audio_sent_ms[item_id] = 0
        where = {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
        }
        item = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        await self._send(
            conn,
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            },
        )
        words = text.split(" ")
        chunk = CHUNK_MS * BYTES_PER_MS
        chunks = max(1, math.ceil(len(pcm) / chunk))
        started = time.monotonic()
        for i in range(chunks):
            if i * len(words) // chunks != (i + 1) * len(words) // chunks or i == 0:
                lo, hi = i * len(words) // chunks, (i + 1) * len(words) // chunks
                piece = " ".join(words[lo : max(hi, lo + 1)])
                if piece:
                    await self._send(
                        conn,
                        {
                            "type": "response.output_audio_transcript.delta",
                            **where,
                            "delta": piece + " ",
                        },
                    )
            data = pcm[i * chunk : (i + 1) * chunk]
            await self._send(
                conn,
                {
                    "type": "response.output_audio.delta",
                    **where,
                    "delta": base64.b64encode(data).decode(),
                },
            )
            sent_ms = len(data) // BYTES_PER_MS
            conn.items[item_id] += sent_ms
            self.audio_sent_ms[item_id] += sent_ms
            if self.pace > 0:
                due = started + ((i + 1) * CHUNK_MS - self.lead_ms) / 1000 / self.pace
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            else:
                await asyncio.sleep(0)
        await self._send(conn, {"type": "response.output_audio.done", **where})
        await self._send(
            conn, {"type": "response.output_audio_transcript.done", **where, "transcript": text}
        )

    async def _truncate(self, conn: _Conn, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        end = event.get("audio_end_ms")
        if not isinstance(item_id, str) or item_id not in conn.items:
            await self._error(
                conn, f"Item with item_id '{item_id}' not found.", code="item_not_found"
            )
            return
        if not isinstance(end, int) or end < 0 or end > conn.items[item_id]:
            await self._error(
                conn,
                f"Audio content of {conn.items[item_id]}ms is shorter than {end}ms.",
                code="invalid_value",
            )
            return
        await self._send(
            conn,
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": end,
            },
        )

    # -- sending -----------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_sim{next(self._ids):06d}"

    async def _send(self, conn: _Conn, event: dict[str, Any]) -> None:
        event = {"event_id": self._new_id("event"), **event}
        if event["type"] in ("session.created", "session.updated"):
            event["session"] = {k: v for k, v in event["session"].items() if not k.startswith("_")}
        self.sent.append(event)
        await conn.ws.send(json.dumps(event))

    async def _send_text(self, conn: _Conn, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(text)

    async def _error(self, conn: _Conn, message: str, *, code: str | None = None) -> None:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": None}
        self.errors_sent.append(error)
        with contextlib.suppress(ConnectionClosed):
            await self._send(conn, {"type": "error", "error": error})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def main(argv: list[str] | None = None) -> int:
    """``voice-device simulate``: serve a simulator until interrupted."""
    parser = argparse.ArgumentParser(prog="voice-device simulate", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--pace", type=float, default=1.0, help="reply speed (1 = real time)")
    parser.add_argument(
        "--lead-ms", type=int, default=0, help="paced audio runs this far ahead of real time"
    )
    parser.add_argument("--reply", choices=("tone", "echo"), default="tone")
    parser.add_argument("--token", default=None, help="accept only this bearer (default: any)")
    parser.add_argument("--greet", action="store_true", help="speak first on every session")
    parser.add_argument("--dialect", choices=("openai", "xai"), default="openai")
    parser.add_argument("--reply-seconds", type=float, default=None, help="length of replies")
    args = parser.parse_args(argv)

    async def serve_forever() -> None:
        sim = Simulator(
            token=args.token,
            host=args.host,
            port=args.port,
            reply=args.reply,
            pace=args.pace,
            lead_ms=args.lead_ms,
            greet=args.greet,
            reply_seconds=args.reply_seconds,
            dialect=args.dialect,
        )
        async with sim:
            print(f"simulator listening on {sim.url}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever())
    return 0
