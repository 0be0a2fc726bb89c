"""The simulator must behave like the GA server where the device depends on it, or every other
test proves nothing: its events conform to openai-python's schema, its VAD finds real speech,
it refuses what the real server refuses, and it paces audio at real time."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import wave
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from openai_conformance import validate_server

from device.data import DIR as DATA_DIR
from device.devtools.simulator import Simulator, main

AUDIO = DATA_DIR
TOKEN = "fake-sim-SECRET-0000"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def speech(name: str = "hello_world.wav") -> bytes:
    with wave.open(str(AUDIO / name)) as w:
        return bytes(w.readframes(w.getnframes()))


async def recv_until(ws: Any, kind: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            got.append(event)
            if event["type"] == kind:
                return got


@contextlib.asynccontextmanager
async def dial(**options: Any) -> AsyncIterator[tuple[Simulator, Any]]:
    """A simulator and one authorised client connection to it, past ``session.created``."""
    async with Simulator(token=TOKEN, **options) as sim:  # noqa: SIM117 (the url comes from sim)
        async with websockets.connect(sim.url, additional_headers=HEADERS) as ws:
            await recv_until(ws, "session.created")
            yield sim, ws


def conforms(events: list[dict[str, Any]]) -> None:
    for event in events:
        if event["type"] in ("session.created", "session.updated"):
            # Real servers add a session id the GA schema does not declare.
            event = {**event, "session": {k: v for k, v in event["session"].items() if k != "id"}}
        validate_server(event)


async def test_speech_turn_is_detected_answered_and_schema_conformant() -> None:
    async with dial(pace=0) as (sim, ws):
        pcm = speech() + bytes(24000 * 2)  # the phrase, then one second of silence
        for i in range(0, len(pcm), 960):
            chunk = base64.b64encode(pcm[i : i + 960]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        events = await recv_until(ws, "response.done")
    kinds = [e["type"] for e in events]
    for expected in (
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "response.created",
        "response.output_audio.delta",
        "response.output_audio_transcript.done",
    ):
        assert expected in kinds, f"{expected} missing from {kinds}"
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    phrase_ms = len(speech()) // 48
    assert 0 <= started["audio_start_ms"] < stopped["audio_end_ms"] <= phrase_ms + 100
    assert events[-1]["response"]["status"] == "completed"
    conforms(sim.sent)


async def test_speech_during_a_reply_cancels_it() -> None:
    async with dial(pace=1.0) as (sim, ws):
        await ws.send(json.dumps({"type": "response.create"}))
        await recv_until(ws, "response.output_audio.delta")
        pcm = speech()
        for i in range(0, len(pcm), 960):
            chunk = base64.b64encode(pcm[i : i + 960]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        events = await recv_until(ws, "response.done")
    assert "input_audio_buffer.speech_started" in [e["type"] for e in events]
    assert events[-1]["response"]["status"] == "cancelled"
    conforms(sim.sent)


async def test_refuses_what_the_real_server_refuses() -> None:
    async with Simulator(token=TOKEN) as sim:
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(sim.url, additional_headers={"Authorization": "Bearer x"})
        assert info.value.response.status_code == 401
        async with websockets.connect(sim.url, additional_headers=HEADERS) as ws:
            await recv_until(ws, "session.created")
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            (err,) = [e for e in await recv_until(ws, "error")]
            assert err["error"]["code"] == "input_audio_buffer_commit_empty"
            await ws.send(
                json.dumps(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": "nope",
                        "content_index": 0,
                        "audio_end_ms": 10,
                    }
                )
            )
            err = (await recv_until(ws, "error"))[-1]
            assert err["error"]["code"] == "item_not_found"
            await ws.send("{not json")
            err = (await recv_until(ws, "error"))[-1]
            assert "JSON" in err["error"]["message"]
    conforms(sim.sent)


async def test_truncate_past_the_audio_sent_is_an_error() -> None:
    async with dial(pace=0, reply_seconds=1.0) as (sim, ws):
        await ws.send(json.dumps({"type": "response.create"}))
        events = await recv_until(ws, "response.done")
        item = next(e for e in events if e["type"] == "response.output_audio.delta")["item_id"]
        assert sim.audio_sent_ms[item] == 1000
        for end, ok in ((1000, True), (1001, False)):
            await ws.send(
                json.dumps(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": item,
                        "content_index": 0,
                        "audio_end_ms": end,
                    }
                )
            )
            reply = json.loads(await ws.recv())
            assert (reply["type"] == "conversation.item.truncated") is ok, reply


async def test_reply_audio_is_paced_at_real_time() -> None:
    async with dial(pace=1.0, reply_seconds=1.0) as (_sim, ws):
        await ws.send(json.dumps({"type": "response.create"}))
        await recv_until(ws, "response.output_audio.delta")
        t0 = time.monotonic()
        await recv_until(ws, "response.done")
        elapsed = time.monotonic() - t0
    assert 0.8 <= elapsed <= 2.0, f"1 s of audio took {elapsed:.2f} s"


async def test_lead_sends_that_much_audio_ahead_then_real_time() -> None:
    async with dial(pace=1.0, reply_seconds=1.0, lead_ms=500) as (_sim, ws):
        await ws.send(json.dumps({"type": "response.create"}))
        await recv_until(ws, "response.output_audio.delta")
        t0 = time.monotonic()
        events = await recv_until(ws, "response.done")
        elapsed = time.monotonic() - t0
    audio_ms = sum(
        len(base64.b64decode(e["delta"])) // 48
        for e in events
        if e["type"] == "response.output_audio.delta"
    )
    # The whole second arrives, but half a second sooner than at plain real time.
    assert audio_ms >= 900
    assert 0.3 <= elapsed <= 0.8, f"1 s of audio with 0.5 s lead took {elapsed:.2f} s"


def test_cli_rejects_unknown_reply_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--reply", "karaoke"])
    assert info.value.code == 2
    assert "karaoke" in capsys.readouterr().err
