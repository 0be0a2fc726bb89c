"""The simulator's replies: responses (speech or tool calls), truncation, usage figures."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import time
from typing import Any

from websockets.exceptions import ConnectionClosed

from ..realtime.pcm import BYTES_PER_MS
from .simaudio import (
    CHUNK_MS,
    INPUT_AUDIO_TOKENS_PER_S,
    OUTPUT_AUDIO_TOKENS_PER_S,
    audio_tokens,
    text_tokens,
    tone,
    usage,
)
from .simbase import Conn, SimulatorBase


class SimulatorReplies(SimulatorBase):
    """Responses: paced speech with transcript deltas, scripted tool calls, ``usage``."""

    def _reply_for(self, conn: Conn) -> tuple[str, bytes]:
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

    def start_response(self, conn: Conn) -> None:
        conn.response = asyncio.create_task(self._respond(conn))

    async def _respond(self, conn: Conn) -> None:
        response_id = self._new_id("resp")
        conn.response_id = response_id
        conn.cancel_reason = ""
        conn.out_ms, conn.out_text = 0, 0
        status = "completed"
        response = {"id": response_id, "object": "realtime.response", "output": []}
        await self._send(
            conn, {"type": "response.created", "response": {**response, "status": "in_progress"}}
        )
        failure = self._failures.pop(0) if self._failures else None
        try:
            if failure is not None:
                status = "failed"
            elif self._tool_calls:
                await self._call_tools(conn, response_id, self._tool_calls.pop(0))
            else:
                await self._speak(conn, response_id)
        except asyncio.CancelledError:
            status = "cancelled"
        done: dict[str, Any] = {**response, "status": status, "usage": self._usage(conn)}
        if status == "cancelled":
            reason = conn.cancel_reason or "client_cancelled"
            done["status_details"] = {"type": "cancelled", "reason": reason}
        elif failure is not None:
            error = {"type": "server_error", "code": failure[1], "message": failure[0]}
            done["status_details"] = {"type": "failed", "error": error}
        with contextlib.suppress(ConnectionClosed):
            await self._send(conn, {"type": "response.done", "response": done})

    def _usage(self, conn: Conn) -> dict[str, Any]:
        """This response's usage (see :mod:`.simaudio`); the context grows by its output."""
        instructions = conn.session.get("instructions")
        prompt = text_tokens(instructions) if isinstance(instructions, str) else 0
        audio_in, text_in = conn.context
        context = (audio_in, text_in + prompt)
        out_audio = audio_tokens(conn.out_ms, OUTPUT_AUDIO_TOKENS_PER_S)
        figures = usage(context, conn.cached, out_audio, conn.out_text)
        conn.cached = context
        conn.context = (
            audio_in + audio_tokens(conn.out_ms, INPUT_AUDIO_TOKENS_PER_S),
            text_in + conn.out_text,
        )
        self.usage_sent.append(figures)
        return figures

    async def _call_tools(
        self, conn: Conn, response_id: str, calls: list[tuple[str, dict[str, Any]]]
    ) -> None:
        conn.pending_calls.clear()
        for index, (name, arguments) in enumerate(calls):
            await self._call_tool(conn, response_id, index, name, arguments)

    async def _call_tool(
        self, conn: Conn, response_id: str, index: int, name: str, arguments: dict[str, Any]
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
        where = {"response_id": response_id, "output_index": index}
        conn.pending_calls.add(call_id)
        conn.out_text += text_tokens(name + args)
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

    async def _speak(self, conn: Conn, response_id: str) -> None:
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
        item = {"id": item_id, "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}  # fmt: skip
        added = {"response_id": response_id, "output_index": 0, "item": item}
        await self._send(conn, {"type": "response.output_item.added", **added})
        words = text.split(" ")
        chunk = CHUNK_MS * BYTES_PER_MS
        chunks = max(1, math.ceil(len(pcm) / chunk))
        started = time.monotonic()
        for i in range(chunks):
            if i * len(words) // chunks != (i + 1) * len(words) // chunks or i == 0:
                lo, hi = i * len(words) // chunks, (i + 1) * len(words) // chunks
                await self._say_words(conn, where, " ".join(words[lo : max(hi, lo + 1)]))
            await self._send_audio(conn, where, pcm[i * chunk : (i + 1) * chunk])
            if self.pace > 0:
                due = started + ((i + 1) * CHUNK_MS - self.lead_ms) / 1000 / self.pace
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            else:
                await asyncio.sleep(0)
        await self._send(conn, {"type": "response.output_audio.done", **where})
        await self._send(
            conn, {"type": "response.output_audio_transcript.done", **where, "transcript": text}
        )

    async def _say_words(self, conn: Conn, where: dict[str, Any], piece: str) -> None:
        if piece:
            conn.out_text += text_tokens(piece + " ")
            delta = {
                "type": "response.output_audio_transcript.delta",
                **where,
                "delta": piece + " ",
            }
            await self._send(conn, delta)

    async def _send_audio(self, conn: Conn, where: dict[str, Any], data: bytes) -> None:
        delta = base64.b64encode(data).decode()
        await self._send(conn, {"type": "response.output_audio.delta", **where, "delta": delta})
        sent_ms = len(data) // BYTES_PER_MS
        conn.out_ms += sent_ms
        conn.items[str(where["item_id"])] += sent_ms
        self.audio_sent_ms[str(where["item_id"])] += sent_ms

    async def _truncate(self, conn: Conn, event: dict[str, Any]) -> None:
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
