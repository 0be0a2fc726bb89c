"""RealtimeSession against the local simulator over real websockets on loopback."""

from __future__ import annotations

import asyncio
import json
import time
import wave
from typing import Any

import pytest
from creds import token_credential
from openai_conformance import validate_client
from recorder import Recorder
from waiting import until

from device.data import DIR as DATA_DIR
from device.devtools.simulator import Simulator
from device.realtime import AuthError, ConfigError, CredentialError, NotConnectedError
from device.realtime.models import OpenAIRealtimeModel
from device.realtime.notices import (
    MuteChanged,
    SpeakingChanged,
    TranscriptNotice,
)
from device.session import RealtimeSession, ReconnectPolicy, ToolRegistry

AUDIO = DATA_DIR
TOKEN = "fake-test-SECRET-abcdef0123456789"
pytestmark = pytest.mark.simulator(token=TOKEN)
FRAME_BYTES = 960  # 20 ms at 24 kHz mono s16le
SILENCE = bytes(FRAME_BYTES)


def speech() -> bytes:
    with wave.open(str(AUDIO / "weather_question.wav")) as w:
        assert w.getframerate() == 24000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return bytes(w.readframes(w.getnframes()))


class ClockSink:
    """Plays at real-time rate by the wall clock: ``played_ms`` is what a speaker would have
    emitted so far. Used where the test is about the session, not about ALSA."""

    def __init__(self) -> None:
        self.items: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.current: str | None = None
        self.interrupts = 0

    def play(self, item_id: str, pcm: bytes) -> None:
        if item_id not in self.started:
            self.started[item_id] = time.monotonic()
        self.items[item_id] = self.items.get(item_id, 0.0) + len(pcm) / 48
        self.current = item_id

    def play_cue(self, pcm: bytes) -> None:
        """Cues are not the model's audio: nothing to account."""

    def played_ms(self, item_id: str) -> int:
        if item_id not in self.started:
            return 0
        elapsed = (time.monotonic() - self.started[item_id]) * 1000
        return int(min(elapsed, self.items[item_id]))

    def is_playing(self) -> bool:
        return self.current is not None and self.played_ms(self.current) < self.items[self.current]

    def interrupt(self) -> tuple[str, int] | None:
        if self.current is None:
            return None
        item, heard = self.current, self.played_ms(self.current)
        self.current = None
        self.interrupts += 1
        return item, heard


def sent(sim: Simulator, kind: str) -> list[dict[str, Any]]:
    return [e for e in sim.received if e.get("type") == kind]


async def test_connect_reports_connecting_then_connected_and_configures_session(
    sim: Simulator,
) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
    rec = Recorder(session)
    assert session.status == "disconnected"
    await session.connect(token_credential(TOKEN))
    assert session.status == "connected"
    assert rec.statuses() == ["connecting", "connected"]
    (update,) = sent(sim, "session.update")
    validate_client({k: v for k, v in update.items() if k != "_conn"})
    assert update["session"]["audio"]["output"]["voice"] == "marin"
    assert update["session"]["audio"]["input"]["format"]["rate"] == 24000
    assert sim.auth_headers[-1] == f"Bearer {TOKEN}"
    await session.disconnect()
    assert session.status == "disconnected"
    assert rec.statuses()[-1] == "disconnected"


async def test_mute_sends_no_audio_and_unmute_resumes(sim: Simulator) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
    rec = Recorder(session)
    await session.connect(token_credential(TOKEN))

    async def stream(n: int) -> list[bool]:
        results = []
        for _ in range(n):
            results.append(session.send_audio(SILENCE))
            await asyncio.sleep(0.005)
        return results

    assert all(await stream(10))
    await until(lambda: len(sent(sim, "input_audio_buffer.append")) == 10)
    session.mute()
    assert session.muted
    assert not any(await stream(20))
    await asyncio.sleep(0.2)
    assert len(sent(sim, "input_audio_buffer.append")) == 10, "audio left the device while muted"
    session.unmute()
    assert all(await stream(5))
    await until(lambda: len(sent(sim, "input_audio_buffer.append")) == 15)
    assert [n.muted for n in rec.notices if isinstance(n, MuteChanged)] == [True, False]
    await session.disconnect()


async def test_frames_queued_before_mute_are_discarded_not_sent_later(sim: Simulator) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), max_backlog_frames=100)
    await session.connect(token_credential(TOKEN))
    for _ in range(30):  # queued synchronously: the writer has not run yet
        session.send_audio(SILENCE)
    session.mute()
    await asyncio.sleep(0.3)
    assert sent(sim, "input_audio_buffer.append") == []
    assert session.stats.frames_dropped_muted == 30
    await session.disconnect()


async def test_send_message_sends_item_and_response_create_and_model_answers(
    sim: Simulator,
) -> None:
    sink = ClockSink()
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), sink=sink)
    rec = Recorder(session)
    await session.connect(token_credential(TOKEN))
    await session.send_message("What's the weather in Lyon?")
    await sim.wait_for("response.create")
    kinds = [e["type"] for e in sim.received if e["type"] != "session.update"]
    assert kinds[:2] == ["conversation.item.create", "response.create"]
    item = sent(sim, "conversation.item.create")[0]["item"]
    assert item["content"][0]["text"] == "What's the weather in Lyon?"
    await until(lambda: any(isinstance(n, TranscriptNotice) for n in rec.notices))
    transcript = next(n for n in rec.notices if isinstance(n, TranscriptNotice))
    assert transcript.role == "assistant" and "Lyon" in transcript.text
    assert sum(sink.items.values()) > 100, "no model audio reached the sink"
    await session.disconnect()


async def test_send_message_while_disconnected_fails_clearly() -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    with pytest.raises(NotConnectedError, match="not connected"):
        await session.send_message("hello")


async def test_tool_call_round_trip_sends_output_then_response_create(sim: Simulator) -> None:
    tools = ToolRegistry()
    calls: list[str] = []

    @tools.tool(
        description="Weather for a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    async def get_weather(city: str) -> dict[str, Any]:
        calls.append(city)
        return {"city": city, "temp_c": 21}

    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), tools=tools)
    await session.connect(token_credential(TOKEN))
    update = sent(sim, "session.update")[0]
    assert update["session"]["tools"][0]["name"] == "get_weather"
    sim.script_tool_call("get_weather", {"city": "Lyon"})
    await session.send_message("weather?")
    await sim.wait_for("response.create", count=2)
    assert calls == ["Lyon"]
    outputs = [
        e
        for e in sent(sim, "conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    ]
    assert json.loads(outputs[0]["item"]["output"]) == {"city": "Lyon", "temp_c": 21}
    order = [e["type"] for e in sim.received]
    last_output = max(i for i, e in enumerate(sim.received) if e in outputs)
    assert "response.create" in order[last_output + 1 :]
    await session.disconnect()


@pytest.mark.parametrize("tool_name", ["no_such_tool", "broken"])
async def test_unknown_or_failing_tool_reports_error_to_model(
    sim: Simulator, tool_name: str
) -> None:
    tools = ToolRegistry()

    def broken() -> None:
        raise RuntimeError("sensor offline")

    tools.add("broken", broken, "always fails")
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), tools=tools)
    rec = Recorder(session)
    await session.connect(token_credential(TOKEN))
    sim.script_tool_call(tool_name, {})
    await session.send_message("go")
    await sim.wait_for("response.create", count=2)
    output = next(
        e["item"]["output"]
        for e in sent(sim, "conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    )
    assert "error" in json.loads(output)
    assert any(e.code == "tool" for e in rec.errors())
    assert session.status == "connected"
    await session.disconnect()


async def talk_over(session: RealtimeSession, sim: Simulator) -> dict[str, Any]:
    """Speak into the session in real time until the model is interrupted; the truncate."""
    pcm = speech()
    for i in range(0, len(pcm), FRAME_BYTES):
        session.send_audio(pcm[i : i + FRAME_BYTES])
        await asyncio.sleep(0.02)
        if sent(sim, "conversation.item.truncate"):
            break
    return await sim.wait_for("conversation.item.truncate")


async def test_barge_in_interrupts_and_truncates_to_what_was_heard(sim: Simulator) -> None:
    sink = ClockSink()
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), sink=sink)
    await session.connect(token_credential(TOKEN))
    await session.send_message("Tell me a long story")
    await until(lambda: sink.is_playing())
    await asyncio.sleep(0.5)  # the model has been speaking for a while
    truncate = await talk_over(session, sim)
    assert sink.interrupts >= 1
    item = truncate["item_id"]
    assert 300 <= truncate["audio_end_ms"] <= sim.audio_sent_ms[item]
    heard = sink.items[item]
    assert truncate["audio_end_ms"] <= heard
    await session.disconnect()


class FixedPositionSink(ClockSink):
    """Reports 250 ms played whatever the clock says: the truncate must use the sink's
    figure, not the time since the audio started."""

    def played_ms(self, item_id: str) -> int:
        return 250 if item_id in self.started else 0


async def test_truncate_uses_what_the_sink_reports_as_played(sim: Simulator) -> None:
    sink = FixedPositionSink()
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), sink=sink)
    await session.connect(token_credential(TOKEN))
    await session.send_message("Tell me a long story")
    await until(lambda: sink.is_playing())
    await asyncio.sleep(0.6)  # well past 250 ms of wall-clock playing
    truncate = await talk_over(session, sim)
    assert truncate["audio_end_ms"] == 250
    await session.disconnect()


async def test_the_model_speaks_until_the_speaker_is_silent_not_until_the_server_is_done() -> None:
    # pace=0: the whole 1 s reply and response.done arrive at once, as real servers burst.
    async with Simulator(token=TOKEN, pace=0, reply_seconds=1.0) as fast:
        sink = ClockSink()
        session = RealtimeSession(OpenAIRealtimeModel(url=fast.url), sink=sink)
        changes: list[tuple[bool, float, bool]] = []
        session.subscribe(
            lambda n: (
                changes.append((n.speaking, time.monotonic(), sink.is_playing()))
                if isinstance(n, SpeakingChanged)
                else None
            )
        )
        await session.connect(token_credential(TOKEN))
        await session.send_message("Say something short")
        await until(lambda: len(changes) >= 2, timeout=10)
        (on, t_on, _), (off, t_off, playing_at_off) = changes[:2]
        assert on and not off
        assert t_off - t_on >= 0.9, "the activity LED went dark while the reply still played"
        assert not playing_at_off
        await session.disconnect()


async def test_server_close_gives_closed(sim: Simulator) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
    rec = Recorder(session)
    await session.connect(token_credential(TOKEN))
    await sim.drop(code=1011)
    await until(lambda: session.status == "closed")
    assert rec.statuses() == ["connecting", "connected", "closed"]
    assert any("1011" in e.message for e in rec.errors())
    assert not session.send_audio(SILENCE)


async def test_handshake_401_is_a_clear_auth_error_and_closed(sim: Simulator) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
    rec = Recorder(session)
    with pytest.raises(AuthError, match="401") as info:
        await session.connect(token_credential("fake-wrong-SECRET-999"))
    assert session.status == "closed"
    assert rec.errors()[-1].code == "auth"
    assert "fake-wrong-SECRET-999" not in str(info.value)
    assert all("SECRET" not in e.message for e in rec.errors())


async def test_expired_credential_is_refused_before_dialing(sim: Simulator) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
    with pytest.raises(CredentialError, match="expired"):
        await session.connect(token_credential(TOKEN, minutes=-1))
    assert session.status == "closed"
    assert sim.connections == 0


async def test_auto_reconnect_after_drop_keeps_mute_and_reconfigures(sim: Simulator) -> None:
    session = RealtimeSession(
        OpenAIRealtimeModel(url=sim.url),
        auto_reconnect=True,
        reconnect_policy=ReconnectPolicy(first=0.05),
    )
    rec = Recorder(session)
    await session.connect(token_credential(TOKEN))
    session.mute()
    await sim.drop(code=1006)
    await until(lambda: rec.statuses()[-1:] == ["connected"] and len(rec.statuses()) >= 4)
    assert rec.statuses() == ["connecting", "connected", "reconnecting", "connected"]
    assert session.muted
    assert len(sent(sim, "session.update")) == 2
    session.unmute()
    assert session.send_audio(SILENCE)
    await until(lambda: len(sent(sim, "input_audio_buffer.append")) == 1)
    await session.disconnect()


def test_plain_ws_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        OpenAIRealtimeModel(url="ws://api.example.com/v1/realtime").endpoint()
    with pytest.raises(ConfigError, match="loopback"):
        OpenAIRealtimeModel(url="ws://localhost.example.com/v1/realtime").endpoint()
    # Real loopback addresses are fine: the simulator, a local proxy.
    for url in ("ws://127.0.0.2:9/rt", "ws://[::1]:9/rt", "ws://localhost:9/rt"):
        assert OpenAIRealtimeModel(url=url).endpoint().startswith(url)
