"""The session against xAI Grok's dialect of the protocol, over a real websocket: flat session
config, ``conversation.created`` instead of ``session.created``, ``ping`` events to ignore."""

from __future__ import annotations

import asyncio
import logging
import wave

import pytest
from creds import token_credential
from waiting import until

from device.data import QUESTION
from device.devtools.simulator import Simulator
from device.realtime.events import SessionConfig
from device.realtime.models import GrokRealtimeModel
from device.realtime.notices import Notice, StatusChanged, TranscriptNotice
from device.session import RealtimeSession

TOKEN = "xai-test-SECRET-42"
pytestmark = pytest.mark.simulator(token=TOKEN, dialect="xai", reply_seconds=1.0, pace=2.0)


async def test_grok_session_is_configured_flat_and_answers_a_message(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    notices: list[Notice] = []
    session = RealtimeSession(GrokRealtimeModel(url=sim.url), config=SessionConfig(voice="eve"))
    session.subscribe(notices.append)
    await session.connect(token_credential(TOKEN))
    assert [n.status.value for n in notices if isinstance(n, StatusChanged)] == [
        "connecting",
        "connected",
    ]
    update = next(e for e in sim.received if e["type"] == "session.update")["session"]
    assert update["voice"] == "eve" and "type" not in update
    assert update["turn_detection"]["type"] == "server_vad"
    assert update["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    await session.send_message("Bonjour from Lyon")
    await until(
        lambda: any(
            isinstance(n, TranscriptNotice) and n.role == "assistant" and "Lyon" in n.text
            for n in notices
        )
    )
    await asyncio.sleep(1.2)  # a couple of ping events arrive meanwhile
    assert sum(1 for e in sim.sent if e["type"] == "ping") >= 2
    assert session.stats.protocol_errors == 0
    assert not [r for r in caplog.records if "unknown" in r.getMessage().lower()]
    await session.disconnect()


async def test_grok_spoken_turn_uses_its_top_level_turn_detection(sim: Simulator) -> None:
    notices: list[Notice] = []
    session = RealtimeSession(GrokRealtimeModel(url=sim.url))
    session.subscribe(notices.append)
    await session.connect(token_credential(TOKEN))
    with wave.open(str(QUESTION)) as w:
        pcm = w.readframes(w.getnframes()) + bytes(48000)  # the question, then silence
    for i in range(0, len(pcm), 960):
        session.send_audio(pcm[i : i + 960])
        await asyncio.sleep(0.002)
    await until(lambda: any(isinstance(n, TranscriptNotice) and n.role == "user" for n in notices))
    await until(
        lambda: any(isinstance(n, TranscriptNotice) and n.role == "assistant" for n in notices)
    )
    assert any(e["type"] == "input_audio_buffer.speech_started" for e in sim.sent)
    await session.disconnect()
