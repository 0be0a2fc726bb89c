"""Barge-in under server VAD, per provider, over a real websocket: xAI does not cancel the
response when the user starts talking, so the session sends ``response.cancel``; OpenAI
cancels on its own, so the session does not."""

from __future__ import annotations

import asyncio
import wave

import pytest
from creds import token_credential
from recorder import Recorder
from waiting import until

from device.data import QUESTION
from device.devtools.simulator import Simulator
from device.realtime.models import GrokRealtimeModel, OpenAIRealtimeModel, RealtimeModel
from device.session import RealtimeSession

TOKEN = "bargein-test-SECRET-7"


class HeldSink:
    """Plays until interrupted; reports 200 ms heard."""

    def __init__(self) -> None:
        self.current: str | None = None

    def play(self, item_id: str, pcm: bytes) -> None:
        self.current = item_id

    def play_cue(self, pcm: bytes) -> None:
        """Cues are not the model's audio: nothing to hold."""

    def is_playing(self) -> bool:
        return self.current is not None

    def played_ms(self, item_id: str) -> int:
        return 200 if item_id == self.current else 0

    def interrupt(self) -> tuple[str, int] | None:
        item, self.current = self.current, None
        return None if item is None else (item, 200)


@pytest.mark.parametrize("dialect", ["openai", "xai"])
async def test_barge_in_cancels_the_response_only_where_the_provider_does_not(
    dialect: str,
) -> None:
    async with Simulator(token=TOKEN, dialect=dialect, reply_seconds=4.0, pace=1.0) as sim:
        model: RealtimeModel = (
            GrokRealtimeModel(url=sim.url) if dialect == "xai" else OpenAIRealtimeModel(url=sim.url)
        )
        sink = HeldSink()
        session = RealtimeSession(model, sink=sink)
        watch = Recorder(session)
        await session.connect(token_credential(TOKEN))
        await session.send_message("Tell me a long story")
        await until(lambda: session.response_active and sink.is_playing())
        with wave.open(str(QUESTION)) as w:
            pcm = w.readframes(w.getnframes())
        for i in range(0, len(pcm), 960):
            session.send_audio(pcm[i : i + 960])
            await asyncio.sleep(0.002)
            if any(e["type"] == "conversation.item.truncate" for e in sim.received):
                break
        truncate = await sim.wait_for("conversation.item.truncate")
        assert 0 < truncate["audio_end_ms"] <= 200  # what the sink heard, capped at what came
        cancels = [e for e in sim.received if e["type"] == "response.cancel"]
        if dialect == "xai":
            assert len(cancels) == 1
        else:
            assert cancels == []
        assert not [e for e in watch.errors() if "cancel" in e.message]
        await session.disconnect()
