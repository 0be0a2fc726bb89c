"""Barge-in: how fast the speaker goes quiet, and how true the truncate is.

    python -m benchmarks.bargein [--rounds 10]

A real :class:`RealtimeSession` with :class:`AlsaPlayback` on a real-time paced PCM (private
PulseAudio null sink, its monitor recorded) talks to the simulator. Each round asks a question,
waits until the reply has played for 0.8-1.8 s, then streams recorded speech into the session;
the simulator's VAD sends ``speech_started``. Measured per round:

* ``speech_started`` handled (the sink's ``interrupt()`` called) → the writer thread's
  ``pcm.drop()`` done: the speaker is silenced (target ≤ one period + 10 ms = 30 ms);
* ``audio_end_ms`` sent in ``conversation.item.truncate`` minus the audio of that item that
  really reached the sink, read off the monitor recording (target within ±20 ms).

Runs as its own process: alsa-lib reads ``ALSA_CONFIG_PATH`` at the first PCM it opens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from benchmarks import Row, median, percentile, table
from device.audio.playback import AlsaPlayback, PlaybackConfig
from device.data import QUESTION
from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator
from device.realtime.models import OpenAIRealtimeModel
from device.session import RealtimeSession

RATE = 48000
PERIOD_MS = 20


class TimedPlayback(AlsaPlayback):
    """The real sink, noting when the session asked it to stop."""

    interrupt_ns = 0

    def interrupt(self) -> tuple[str, int] | None:
        self.interrupt_ns = time.perf_counter_ns()
        return super().interrupt()


def voiced_ms(raw: bytes) -> int:
    """Milliseconds of sound (1 ms windows above a low RMS) in 48 kHz mono s16le."""
    x = np.frombuffer(raw[: len(raw) // 96 * 96], dtype="<i2").astype(np.float32)
    windows = x.reshape(-1, 48)
    rms = np.sqrt((windows * windows).mean(axis=1))
    return int((rms > 200).sum())


async def measure(rounds: int) -> tuple[list[float], list[float]]:
    with wave.open(str(QUESTION)) as w:
        speech = w.readframes(w.getnframes())
    silence_ms: list[float] = []
    errors_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="vd-bargein-") as tmp:
        monitor = Path(tmp) / "monitor.raw"
        with PrivatePulse(monitor_file=monitor, rate=RATE, channels=1) as pulse:
            os.environ["ALSA_CONFIG_PATH"] = pulse.alsa_config_path
            async with Simulator(pace=1.0, reply_seconds=3.0) as sim:
                playback = TimedPlayback(
                    PlaybackConfig(device="pulse_playback", rate=RATE, period_ms=PERIOD_MS)
                )
                playback.start()
                session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), sink=playback)
                expires = time.time() + 1800
                await session.connect(
                    {"kind": "token", "token": "bench", "expiresAt": _iso(expires)}
                )
                try:
                    for _ in range(rounds):
                        silence, error = await _round(sim, session, playback, monitor, speech)
                        silence_ms.append(silence)
                        errors_ms.append(error)
                finally:
                    await session.disconnect()
                    playback.close()
    return silence_ms, errors_ms


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()


async def _round(
    sim: Simulator,
    session: RealtimeSession,
    playback: TimedPlayback,
    monitor: Path,
    speech: bytes,
) -> tuple[float, float]:
    while playback.is_playing() or session.response_active:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    start = monitor.stat().st_size
    sent_before = len(sim.sent)
    truncates = len([e for e in sim.received if e["type"] == "conversation.item.truncate"])
    await session.send_message("Tell me something long.")
    while not any(e["type"] == "response.output_audio.delta" for e in sim.sent[sent_before:]):
        await asyncio.sleep(0.005)
    item = next(
        e["item_id"] for e in sim.sent[sent_before:] if e["type"] == "response.output_audio.delta"
    )
    target = random.uniform(800, 1800)
    while playback.played_ms(item) < target:
        await asyncio.sleep(0.005)
    for i in range(0, len(speech), 960):
        session.send_audio(speech[i : i + 960])
        await asyncio.sleep(0.02)
        if len([e for e in sim.received if e["type"] == "conversation.item.truncate"]) > truncates:
            break
    truncate = [e for e in sim.received if e["type"] == "conversation.item.truncate"][-1]
    silence = (playback.stats.last_drop_ns - playback.interrupt_ns) / 1e6
    await asyncio.sleep(
        1.5
    )  # the monitor recording catches up (no new reply: VAD never saw the end)
    with open(monitor, "rb") as f:
        f.seek(start)
        heard = voiced_ms(f.read())
    for _ in range(40):  # the user stops talking: the VAD closes the turn (and answers it)
        session.send_audio(bytes(960))
        await asyncio.sleep(0.02)
    if os.environ.get("BARGEIN_DEBUG"):
        print(truncate["audio_end_ms"], heard, playback.played_ms(item), sim.audio_sent_ms[item])
    return silence, float(truncate["audio_end_ms"] - heard)


def rows(rounds: int = 10) -> list[Row]:
    silence, errors = asyncio.run(measure(rounds))
    p99 = percentile(silence, 99)
    worst = max(errors, key=abs)
    return [
        Row(
            "barge-in: speech_started → speaker silenced",
            median(silence),
            p99,
            "ms",
            f"≤ {PERIOD_MS + 10} ms",
            p99 <= PERIOD_MS + 10,
            f"{rounds} barge-ins",
        ),
        Row(
            "barge-in: truncate audio_end_ms minus audio really played",
            median(errors),
            percentile([abs(e) for e in errors], 99),
            "ms",
            "within ±20 ms",
            abs(worst) <= 20,
            f"worst {worst:+.0f} ms; p99 column is |error|",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(table(rows(args.rounds)))


if __name__ == "__main__":
    main()
