"""End to end: the wake word in ``voice-device run``, with espeak-ng speech played in real time
into the virtual microphone (a private PulseAudio's null sink behind ALSA's ``pulse`` plugin)
and the simulator as the model. What is asserted is what the user and the model would notice:
whether the conversation opens, and exactly which audio left the device.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soxr
from service_harness import TOKEN, Service, appends, running_service
from waiting import until
from wake.speech import DEVICE_AUDIO, espeak, read_wav, silence, voiced_end, voiced_start

from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator

pytestmark = pytest.mark.simulator(token=TOKEN, reply_seconds=1.0)

RATE = 24000
WAKE = "okay nabu"
QUESTION = "when does the museum close?"
OTHER_QUESTION = "what will the weather be like tomorrow?"
WAKE_CONFIG = '[wake]\nmodel = "okay_nabu"\npreroll_ms = 0\n'


def trimmed(text: str) -> np.ndarray:
    audio = espeak(text, RATE)
    return audio[round(voiced_start(audio, RATE) * RATE) : round(voiced_end(audio, RATE) * RATE)]


def one_breath(question: str, gap_s: float = 0.05) -> tuple[np.ndarray, float, float]:
    """0.5 s silence, "okay nabu", ``gap_s``, ``question``, 1 s silence (24 kHz); with the
    wake word's acoustic end and the question's start in seconds."""
    wake = trimmed(WAKE)
    wake_end = 0.5 + len(wake) / RATE
    audio = np.concatenate(
        [silence(0.5, RATE), wake, silence(gap_s, RATE), trimmed(question), silence(1.0, RATE)]
    )
    return audio, wake_end, wake_end + gap_s


async def say(pulse: PrivatePulse, audio: np.ndarray, directory: Path) -> None:
    """Play 24 kHz ``audio`` into the virtual microphone, in real time, until it is done."""
    raw = directory / "say.raw"
    up = np.asarray(soxr.resample(audio, RATE, 48000), dtype=np.int16)
    raw.write_bytes(up.astype("<i2").tobytes())
    pacat = ["pacat", "--playback", "--device=cap", "--raw", "--format=s16le", "--rate=48000"]
    proc = subprocess.Popen([*pacat, "--channels=1", str(raw)], env=pulse.pa_env())
    assert await asyncio.to_thread(proc.wait) == 0


def wire(sim: Simulator, conn: int | None = None) -> np.ndarray:
    """Every mic sample the model received (on connection ``conn``, or on all), in order."""
    chunks = [
        base64.b64decode(e["audio"])
        for e in sim.received
        if e["type"] == "input_audio_buffer.append" and (conn is None or e["_conn"] == conn)
    ]
    return np.frombuffer(b"".join(chunks), dtype="<i2")


def find(haystack: np.ndarray, needle: np.ndarray) -> tuple[int, float]:
    """Where ``needle`` best matches in ``haystack`` and the normalised correlation there."""
    if len(haystack) < len(needle):
        return 0, 0.0
    h, n = haystack.astype(np.float64), needle.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(h) + len(n))))
    corr = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(n, size)), size)
    corr = corr[: len(h) - len(n) + 1]
    at = int(np.argmax(corr))
    norm = np.linalg.norm(n) * np.linalg.norm(h[at : at + len(n)])
    return at, float(corr[at] / norm) if norm else 0.0


def wakes(service: Service) -> list[dict[str, object]]:
    return [e for e in service.events if e.get("event") == "wake"]


async def test_the_question_said_in_one_breath_reaches_the_model_and_the_wake_word_does_not(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    audio, wake_end, question_start = one_breath(QUESTION)
    question = trimmed(QUESTION)
    async with running_service(pulse, sim, tmp_path, extra=WAKE_CONFIG) as service:
        assert "listening for the wake word" in service.output()
        await say(pulse, audio, tmp_path)
        await until(lambda: "connected" in service.statuses(), 10, "connected by the wake word")
        assert wakes(service) == [{"event": "wake", "model": "okay_nabu"}]
        assert service.statuses()[:2] == ["connecting", "connected"]
        # The live stream continues after the held speech: wait until the question is past.
        await until(lambda: len(wire(sim)) > len(audio) - wake_end * RATE, 10, "the stream")
    got = wire(sim)
    at, peak = find(got, question)
    assert peak > 0.9, f"the question did not reach the model intact (correlation {peak:.2f})"
    # Where the wire starts, on the source's clock (the question is at ``at`` in the wire).
    first = question_start - at / RATE
    assert first <= question_start  # all of the question
    assert first >= wake_end - 0.05, f"audio from {wake_end - first:.3f} s before the wake end"
    _, wake_peak = find(got, trimmed(WAKE))
    assert wake_peak < 0.5, f"the wake word itself was sent (correlation {wake_peak:.2f})"
    assert sim.connections == 1


def other_sound(seconds: float) -> np.ndarray:
    """Speech (other wake words and look-alikes), silence and tones, no "okay nabu"."""
    sentences = [
        "hey jarvis, when does the museum close?",
        "okay, now tell me about the weather tomorrow.",
        "alexa, play some music in the kitchen.",
        "a banana, a nap, and a cup of tea.",
        "OK, nobody knows the trouble I have seen.",
    ]
    parts: list[np.ndarray] = []
    for voice in ("en", "en-us"):
        for text in sentences:
            parts += [espeak(text, RATE, voice=voice), silence(0.4, RATE)]
    parts += [read_wav(DEVICE_AUDIO / "weather_question.wav", RATE), silence(2.0, RATE)]
    t = np.arange(RATE * 2) / RATE
    for tone in (0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * (200 + 600 * t) * t)):
        parts += [(tone * 32767).astype(np.int16), silence(1.0, RATE)]
    once = np.concatenate(parts)
    return np.tile(once, int(np.ceil(seconds * RATE / len(once))))[: round(seconds * RATE)]


@pytest.mark.timeout(240)
async def test_a_minute_of_other_sound_opens_nothing_and_sends_nothing(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    # Played in real time, so one minute here; the detector itself is held to five minutes
    # of such material without a false alarm in tests/wake/test_detector.py.
    async with running_service(pulse, sim, tmp_path, extra=WAKE_CONFIG) as service:
        await say(pulse, other_sound(60.0), tmp_path)
        assert (await service.cmd("status"))["status"] == "disconnected"
        assert wakes(service) == []
        assert service.statuses() == []
        assert "listening for the wake word" in service.output()
        assert "wake word okay_nabu heard" not in service.output()
    assert sim.connections == 0
    assert appends(sim) == 0


async def test_the_wake_word_is_not_heard_while_muted(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    audio, _, _ = one_breath(QUESTION)
    async with running_service(pulse, sim, tmp_path, extra=WAKE_CONFIG) as service:
        assert (await service.cmd("mute"))["ok"]
        await say(pulse, audio, tmp_path)
        assert (await service.cmd("unmute"))["ok"]
        # Proof that the muted one went unheard: the same words now open the conversation,
        # once, after the unmute.
        again, wake_end, _ = one_breath(OTHER_QUESTION)
        await say(pulse, again, tmp_path)
        await until(lambda: "connected" in service.statuses(), 10, "connected after unmute")
        events = [e.get("event") for e in service.events]
        assert events.count("wake") == 1
        unmuted = service.events.index({"event": "muted", "muted": False})
        assert events.index("wake") > unmuted
        past = len(again) - wake_end * RATE
        await until(lambda: len(wire(sim)) > past, 10, "the stream past the question")
    _, peak = find(wire(sim), trimmed(QUESTION))
    assert peak < 0.5, "speech said while muted reached the model"
    assert find(wire(sim), trimmed(OTHER_QUESTION))[1] > 0.9


async def test_the_wake_word_cuts_a_reply_like_a_barge_in(
    pulse: PrivatePulse, tmp_path: Path
) -> None:
    # Half duplex: the mic is not sent while the speaker plays, so the model's own VAD cannot
    # hear the user; only the wake word, heard on the device, can cut the reply.
    audio_keys = 'capture = "pulse_capture"\nplayback = "pulse_playback"\nrate = 48000'
    async with (
        Simulator(token=TOKEN, reply_seconds=10.0) as sim,
        running_service(
            pulse, sim, tmp_path, audio=f"{audio_keys}\nhalf_duplex = true", extra=WAKE_CONFIG
        ) as service,
    ):
        assert (await service.cmd("connect"))["ok"]
        assert (await service.cmd("send_message", text="tell me a long story"))["ok"]
        await until(
            lambda: {"event": "speaking", "speaking": True} in service.events, 10, "speaking"
        )
        await say(pulse, np.concatenate([trimmed(WAKE), silence(0.5, RATE)]), tmp_path)
        truncate = await sim.wait_for("conversation.item.truncate", timeout=10)
        await until(
            lambda: {"event": "speaking", "speaking": False} in service.events, 5, "silenced"
        )
        assert 0 < truncate["audio_end_ms"] <= sim.audio_sent_ms[truncate["item_id"]]
        assert truncate["audio_end_ms"] < 9000, "the reply was not cut"
        assert not any(e["type"] == "input_audio_buffer.speech_started" for e in sim.sent)
        assert wakes(service) == []  # no second connect: already connected
        assert service.statuses().count("connected") == 1


async def test_a_failed_connect_drops_the_held_speech_and_listens_again(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    sim.reject_next(401, count=2)  # the refused credential is fetched again once
    first, _, _ = one_breath(QUESTION)
    second, wake_end, _ = one_breath(OTHER_QUESTION)
    async with running_service(pulse, sim, tmp_path, extra=WAKE_CONFIG) as service:
        await say(pulse, first, tmp_path)
        await until(lambda: "closed" in service.statuses(), 10, "closed by the 401")
        assert any("401" in message for message in service.errors()), service.errors()
        assert sim.rejected == 2
        assert appends(sim) == 0
        await say(pulse, second, tmp_path)
        await until(lambda: "connected" in service.statuses(), 10, "the second wake word")
        assert len(wakes(service)) == 2
        past = len(second) - wake_end * RATE
        await until(lambda: len(wire(sim)) > past, 10, "the stream past the question")
    got = wire(sim)
    assert find(got, trimmed(OTHER_QUESTION))[1] > 0.9
    assert find(got, trimmed(QUESTION))[1] < 0.5, "speech held for the failed connect was sent"
