"""The wake part in one process: the real fan-out, a real session and the simulator. What the
service does around the gate: which listeners exist (muted: no 16 kHz listener at all), what
the status LED is told, and that live frames reach the model only through the part."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from creds import token_credential
from waiting import until

from device.audio.fanout import MicFanout
from device.devtools.simulator import Simulator
from device.realtime.models import OpenAIRealtimeModel
from device.realtime.notices import Notice, WakeListening
from device.session import RealtimeSession
from device.wake.config import WakeSection
from device.wake.part import WakePart

from .speech import espeak, false_alarm_material, silence, voiced_end, voiced_start

pytestmark = pytest.mark.simulator(reply_seconds=0.5)


async def credential() -> dict[str, Any]:
    return token_credential("test", minutes=10)


def wake_part(
    session: RealtimeSession,
    mic: MicFanout,
    section: WakeSection | None = None,
    *,
    publish: Callable[[dict[str, Any]], None] = lambda _: None,
    **hooks: Any,
) -> WakePart:
    """The part as the app builds it: the mic's 24 kHz frames go straight to the session."""
    return WakePart(
        section or WakeSection(model="okay_nabu"),
        session=session,
        mic=mic,
        send=session.send_audio,
        publish=publish,
        **hooks,
    )


def frames24(audio16: np.ndarray) -> list[bytes]:
    import soxr

    a24 = np.asarray(soxr.resample(audio16, 16000, 24000), dtype=np.int16)
    return [a24[i : i + 480].tobytes() for i in range(0, len(a24) // 480 * 480, 480)]


async def test_muted_means_no_wake_listener_and_the_led_follows(sim: Simulator) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), credential_provider=credential)
    mic = MicFanout("test")
    told: list[Notice] = []
    events: list[dict[str, Any]] = []
    part = wake_part(session, mic, publish=events.append, notify=told.append)
    async with part:
        assert mic.rates() == [16000, 24000] and told == [WakeListening(True)]
        session.mute()
        assert mic.rates() == [24000], "the microphone is analysed while muted"
        assert told[-1] == WakeListening(False)
        wake = espeak("okay nabu")
        said = np.concatenate([silence(0.5), wake[: round(voiced_end(wake) * 16000)], silence(1)])
        mic.deliver(frames24(said))
        assert events == [] and sim.connections == 0
        session.unmute()
        assert mic.rates() == [16000, 24000] and told[-1] == WakeListening(True)
        mic.deliver(frames24(said))
        assert events == [{"event": "wake", "model": "okay_nabu"}]
        await until(lambda: session.status.value == "connected", 5, "connected")
        assert told[-3:] == [WakeListening(False), WakeListening(True), WakeListening(False)]
        mic.deliver(frames24(silence(0.1)))
        await sim.wait_for("input_audio_buffer.append")
        await session.disconnect()
        assert told[-1] == WakeListening(True)
    assert told[-1] == WakeListening(False) and len(mic) == 0


async def test_five_minutes_without_the_wake_word_connect_nothing_and_send_nothing(
    sim: Simulator,
) -> None:
    # Other speech (other wake words among it), silence and tones, through the part as the
    # service runs it, a second of microphone at a time with the loop turning in between.
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), credential_provider=credential)
    mic = MicFanout("test")
    events: list[dict[str, Any]] = []
    part = wake_part(session, mic, publish=events.append)
    frames = frames24(false_alarm_material())
    assert len(frames) >= 5 * 60 * 50
    async with part:
        for i in range(0, len(frames), 50):
            mic.deliver(frames[i : i + 50])
            await asyncio.sleep(0)
        assert events == [] and part.detections == 0
        assert session.status.value == "disconnected"
    assert sim.connections == 0 and sim.received == []


def utterance(question: str, gap_s: float = 0.2) -> tuple[np.ndarray, int]:
    """0.5 s silence, "okay nabu", ``gap_s``, ``question`` (16 kHz); and the sample (16 kHz)
    where the question starts."""
    wake, said = espeak("okay nabu"), espeak(question)
    wake = wake[: round(voiced_end(wake) * 16000)]
    said = said[round(voiced_start(said) * 16000) :]
    head = np.concatenate([silence(0.5), wake, silence(gap_s)])
    return np.concatenate([head, said]), len(head)


def wire(sim: Simulator) -> bytes:
    """Every mic byte the simulator received, in order."""
    appends = [e for e in sim.received if e["type"] == "input_audio_buffer.append"]
    return b"".join(base64.b64decode(e["audio"]) for e in appends)


class Recorder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


async def say_and_connect(
    part: WakePart, mic: MicFanout, sim: Simulator, audio16: np.ndarray, speech16: int
) -> None:
    """Say ``audio16`` faster than real time (held while the connection opens), then 0.2 s of
    a tone live once connected; the simulator must get exactly the speech from the end of the
    wake word on, then the tone: nothing older, nothing dropped, no gap, no duplicate."""
    said = frames24(audio16)
    for frame in said:  # one frame at a time, as the capture does; the loop is not yielded to
        mic.deliver([frame])
    await until(lambda: part.session.status.value == "connected", 10, "connected")
    live = frames24((8000 * np.sin(2 * np.pi * 440 * np.arange(3200) / 16000)).astype(np.int16))
    mic.deliver(live)
    tail = b"".join(live)
    await until(lambda: wire(sim).endswith(tail), 10, "the live frames on the wire")
    held = wire(sim)[: -len(tail)]
    stream = b"".join(said)
    assert stream.endswith(held), "held speech missing, out of order or older than the wake word"
    question_from = speech16 * 3 // 2 * 2
    assert len(held) >= len(stream) - question_from, "the start of the question was not sent"
    assert len(held) <= len(stream) - question_from + 24000, "audio of the wake word was sent"


@pytest.mark.simulator(reply_seconds=0.2)
async def test_refused_wake_connects_drop_the_held_speech_and_listen_again(
    sim: Simulator,
) -> None:
    refusal: list[str | None] = ["limits.minutes_per_day reached (1 of 1 minutes)"]
    session = RealtimeSession(
        OpenAIRealtimeModel(url=sim.url),
        credential_provider=credential,
        connect_guard=lambda: refusal[0],
    )
    mic = MicFanout("test")
    events: list[dict[str, Any]] = []
    heard, failed = Recorder(), Recorder()
    part = wake_part(session, mic, publish=events.append, acknowledge=heard, connect_failed=failed)
    async with part:
        gate = part.gate
        assert gate is not None
        for n, question in enumerate(["is the museum open", "how much is a ticket"], 1):
            audio, _ = utterance(question)
            for frame in frames24(np.concatenate([audio, silence(1)])):
                mic.deliver([frame])
            assert part.detections == n and heard.calls == n, "one acknowledgement per wake word"
            # The held speech is dropped and the detector listens again, although the second
            # refusal leaves the status "closed" as it was (no StatusChanged).
            await until(lambda: gate.mode == "listening", 5, f"listening after refusal {n}")
            assert gate.kept_samples < 24000 and session.status.value == "closed"
            assert failed.calls == n, "the earcons are not told that the connect failed"
        assert sim.connections == 0 and wire(sim) == b""
        refusal[0] = None  # midnight: the limit no longer holds
        audio, speech = utterance("when does the museum close")
        await say_and_connect(part, mic, sim, audio, speech)
        assert part.detections == heard.calls == 3 and failed.calls == 2
        assert sim.connections == 1 and len(events) == 3
        await session.disconnect()


@pytest.mark.simulator(reply_seconds=0.2)
async def test_nine_seconds_held_all_reach_the_model_in_order(sim: Simulator) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), credential_provider=credential)
    mic = MicFanout("test")
    heard = Recorder()
    part = wake_part(session, mic, WakeSection(model="okay_nabu", max_hold_s=10), acknowledge=heard)
    long = "when does the museum close, and is there a cafe near the entrance where we can sit"
    audio, speech = utterance(long)
    more = [espeak("and do you sell tickets for the exhibition"), espeak("and can children go in")]
    audio = np.concatenate([audio, *more])
    held_s = (len(audio) - speech) / 16000
    assert 8.5 <= held_s <= 9.5, f"{held_s:.1f} s of speech after the wake word"
    async with part:
        await say_and_connect(part, mic, sim, audio, speech)
        assert part.detections == heard.calls == 1
        assert session.stats.frames_dropped_backlog == 0
        await session.disconnect()
