"""A local stand-in for the OpenAI Realtime GA server (and xAI's dialect), on loopback.

It speaks enough of the protocol for the device to be developed, tested and benchmarked
without a network or an API key: ``session.created/updated``, audio appends with an energy VAD
(``speech_started`` cancels the running response on OpenAI, like ``interrupt_response``; xAI
leaves that to the client), manual commits, text messages, tool calls (one or a batch per
response), truncation checked against the audio really sent, replies whose audio deltas are
paced at real time (or faster), and ``usage`` in every ``response.done``. It also injects
faults on demand: closes with any code (1006 = TCP abort), handshake rejections and redirects,
``session_expired``, raw frames and a stalled peer that stops answering pings.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ..realtime.pcm import BYTES_PER_MS
from .simaudio import (
    INPUT_AUDIO_TOKENS_PER_S,
    OPENAI_VOICES,
    VAD_ONSET_MS,
    VAD_RMS,
    XAI_VOICES,
    audio_tokens,
    text_tokens,
)
from .simbase import Conn
from .simreplies import SimulatorReplies


class Simulator(SimulatorReplies):
    """``async with Simulator(token=...) as sim:`` — then point a model at ``sim.url``.

    ``token`` None accepts any bearer. ``reply`` is ``"tone"`` (synthetic speech) or ``"echo"``
    (the user's committed audio played back). ``pace`` 1.0 streams reply audio at real time,
    2.0 twice as fast, 0 as fast as the socket takes it. ``lead_ms`` lets the paced audio run
    that far ahead of real time, as real models do (they generate faster than they speak), so a
    client's jitter buffer holds more than its start threshold.
    """

    async def _handler(self, ws: ServerConnection) -> None:
        auth = ws.request.headers.get("Authorization", "") if ws.request is not None else ""
        conn = Conn(self.connections, ws, auth.removeprefix("Bearer "))
        self.bearer_of[conn.index] = conn.bearer
        self.connections += 1
        self._conns[conn.index] = conn
        if self._stalled:
            ws.transport.pause_reading()
        try:
            await self._greet_connection(conn)
            async for message in ws:
                event = await self._parse(conn, message)
                if event is not None:
                    await self._dispatch(conn, event)
        except ConnectionClosed:
            pass
        finally:
            if conn.response is not None:
                conn.response.cancel()
            self._conns.pop(conn.index, None)
            self.close_codes.append(ws.close_code)

    async def _greet_connection(self, conn: Conn) -> None:
        session_id = f"sess_sim{conn.index}"
        if self.dialect == "xai":
            conn.session = {
                "id": session_id,
                "object": "realtime.session",
                "model": "grok-voice-latest",
                "voice": XAI_VOICES[0],
                "turn_detection": {"type": "server_vad"},
            }
            await self._send(conn, {"type": "session.created", "session": dict(conn.session)})
            conversation = {"id": f"conv_sim{conn.index}", "object": "realtime.conversation"}
            await self._send(conn, {"type": "conversation.created", "conversation": conversation})
            self._spawn(self._pings(conn))
        else:
            conn.session = {"type": "realtime", "id": session_id, "model": "gpt-realtime"}
            await self._send(conn, {"type": "session.created", "session": dict(conn.session)})

    async def _parse(self, conn: Conn, message: str | bytes) -> dict[str, Any] | None:
        if isinstance(message, bytes):
            await self._error(conn, "binary frames are not supported")
            return None
        try:
            event = json.loads(message)
        except ValueError:
            await self._error(conn, "The server could not parse the JSON.")
            return None
        if not isinstance(event, dict):
            await self._error(conn, "An event must be a JSON object.")
            return None
        return event

    async def _dispatch(self, conn: Conn, event: dict[str, Any]) -> None:
        self.received.append({**event, "_conn": conn.index})
        self.received_at.append(time.perf_counter())
        if self.on_receive is not None:
            self.on_receive(event)
        self._changed.set()
        kind = event.get("type")
        handlers = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit_request,
            "input_audio_buffer.clear": self._clear_request,
            "conversation.item.create": self._item_create,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
            "conversation.item.truncate": self._truncate,
        }
        handler = handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self._error(conn, f"Invalid value: '{kind}'.", code="invalid_value")
            return
        await handler(conn, event)

    # -- client events -----------------------------------------------------------------------

    def _voice_and_detection(self, session: dict[str, Any]) -> tuple[Any, Any, bool]:
        """(voice, turn_detection, whether turn_detection was given) in this dialect's shape."""
        if self.dialect == "xai":
            return session.get("voice"), session.get("turn_detection"), "turn_detection" in session
        audio = session.get("audio")
        audio = audio if isinstance(audio, dict) else {}
        out, inp = audio.get("output"), audio.get("input")
        voice = out.get("voice") if isinstance(out, dict) else None
        inp = inp if isinstance(inp, dict) else {}
        return voice, inp.get("turn_detection"), "turn_detection" in inp

    def _session_problem(self, session: dict[str, Any]) -> str | None:
        voice, td, given = self._voice_and_detection(session)
        voices = (XAI_VOICES if self.dialect == "xai" else OPENAI_VOICES) + self.custom_voices
        if voice is not None and voice not in voices:
            return (
                f"Invalid value: '{voice}'. Supported values are: "
                + ", ".join(f"'{v}'" for v in voices)
                + "."
            )
        kind = td.get("type") if isinstance(td, dict) else None
        if self.dialect == "xai" and given and td is not None and kind != "server_vad":
            return f"Invalid value: '{kind}'. turn_detection.type must be 'server_vad' or null."
        return None

    async def _session_update(self, conn: Conn, event: dict[str, Any]) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            await self._error(conn, "Missing required parameter: 'session'.")
            return
        problem = self._session_problem(session)
        if problem is not None:
            await self._error(conn, problem, code="invalid_value")
            return
        first = "_configured" not in conn.session
        conn.session.update(session)
        if self.turn_detection_off:
            self._switch_off_turn_detection(conn)
        conn.session["_configured"] = True
        await self._send(conn, {"type": "session.updated", "session": conn.session})
        if first and self.greet:
            self.start_response(conn)

    async def _commit_request(self, conn: Conn, event: dict[str, Any]) -> None:
        if len(conn.buffer) < 100 * BYTES_PER_MS:
            await self._error(
                conn,
                "Error committing input audio buffer: buffer too small. Expected at least"
                " 100ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
            return
        await self._commit(conn, self._new_id("item"))

    async def _clear_request(self, conn: Conn, event: dict[str, Any]) -> None:
        self._clear_buffer(conn)
        await self._send(conn, {"type": "input_audio_buffer.cleared"})

    async def _item_create(self, conn: Conn, event: dict[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            await self._error(conn, "Missing required parameter: 'item'.")
            return
        item = {"id": self._new_id("item"), **item}
        conn.session.setdefault("_history", []).append(item)
        self._count_item(conn, item)
        added = {"previous_item_id": None, "item": item}
        await self._send(conn, {"type": "conversation.item.added", **added})
        await self._send(conn, {"type": "conversation.item.done", **added})

    @staticmethod
    def _count_item(conn: Conn, item: dict[str, Any]) -> None:
        """A text item or a function output joins the conversation's text tokens."""
        if item.get("type") == "function_call_output":
            conn.pending_calls.discard(str(item.get("call_id")))
            text = str(item.get("output", ""))
        else:
            content = item.get("content")
            parts = content if isinstance(content, list) else []
            text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
        audio, texts = conn.context
        conn.context = (audio, texts + text_tokens(text))

    async def _response_create(self, conn: Conn, event: dict[str, Any]) -> None:
        if conn.response is not None and not conn.response.done():
            self.refused_creates.append("conversation_already_has_active_response")
            await self._error(
                conn,
                "Conversation already has an active response in progress.",
                code="conversation_already_has_active_response",
            )
            return
        if self.strict and conn.pending_calls:
            self.refused_creates.append("missing_function_call_output")
            await self._error(
                conn,
                f"response.create before the output of {len(conn.pending_calls)} function "
                "call(s) of the previous response: send every output, then one response.create.",
                code="missing_function_call_output",
            )
            return
        self.start_response(conn)

    async def _response_cancel(self, conn: Conn, event: dict[str, Any]) -> None:
        if conn.response is None or conn.response.done():
            if self.dialect == "xai":
                await self._error(conn, "No active response to cancel.")
            else:
                await self._error(
                    conn,
                    "Cancellation failed: no active response found",
                    code="response_cancel_not_active",
                )
            return
        conn.cancel_reason = "client_cancelled"
        conn.response.cancel()

    # -- input audio -------------------------------------------------------------------------

    async def _append(self, conn: Conn, event: dict[str, Any]) -> None:
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
            if self._interrupts(detection) and conn.response is not None:
                conn.cancel_reason = conn.cancel_reason or "turn_detected"
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
                self.start_response(conn)

    def _switch_off_turn_detection(self, conn: Conn) -> None:
        """A server that ignores the turn detection asked for (see ``turn_detection_off``)."""
        if self.dialect == "xai":
            conn.session["turn_detection"] = None
            return
        audio = conn.session.get("audio")
        audio = dict(audio) if isinstance(audio, dict) else {}
        inp = audio.get("input")
        audio["input"] = {**(inp if isinstance(inp, dict) else {}), "turn_detection": None}
        conn.session["audio"] = audio

    def _interrupts(self, detection: dict[str, Any]) -> bool:
        """OpenAI cancels the response on speech (``interrupt_response``); xAI does not."""
        return self.dialect != "xai" and bool(detection.get("interrupt_response", True))

    async def _pings(self, conn: Conn) -> None:
        """xAI sends keepalive ``ping`` events the client must ignore."""
        with contextlib.suppress(ConnectionClosed):
            while conn.index in self._conns:
                await asyncio.sleep(0.5)
                await self._send(conn, {"type": "ping", "timestamp": int(time.time() * 1000)})

    def _turn_detection(self, conn: Conn) -> dict[str, Any] | None:
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

    async def _commit(self, conn: Conn, item_id: str, *, speech_ms: int | None = None) -> None:
        pcm = bytes(conn.buffer)
        self._clear_buffer(conn)
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        conn.session.setdefault("_history", []).append({**item, "_pcm": pcm})
        heard_ms = speech_ms if speech_ms is not None else len(pcm) // BYTES_PER_MS
        audio, texts = conn.context
        conn.context = (audio + audio_tokens(heard_ms, INPUT_AUDIO_TOKENS_PER_S), texts)
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

    def _clear_buffer(self, conn: Conn) -> None:
        conn.buffer_start_ms += len(conn.buffer) // BYTES_PER_MS
        conn.buffer.clear()
