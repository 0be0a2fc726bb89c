"""Wake word end → connected → first held frame on the wire.

    python -m benchmarks.wake_connect [--rounds 20]

The service's wake path in one process: the capture fan-out (:class:`MicFanout`, the 24 kHz
frames the ALSA reader would deliver), the :class:`WakePart` with the ``okay_nabu`` model, a
real :class:`RealtimeSession` and the simulator on loopback. Each round is "okay nabu" from
espeak-ng (voices x speeds in turn) followed by a question in one breath; the audio up to the
end of the wake word is delivered at once, from there on in real time (20 ms frames), as a
microphone would. Measured from the moment the frame holding the wake word's acoustic end is
delivered: ``connected`` (detection, connect, ``session.updated``), and the simulator
receiving the first held frame. The detector fires 90-200 ms after the acoustic end (see
``benchmarks.wake``), so that is part of the first figure.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import Row, median, percentile
from benchmarks.wake import _edges, _wav
from device.audio.fanout import MicFanout
from device.devtools.simulator import Simulator
from device.realtime.models import OpenAIRealtimeModel
from device.realtime.notices import Notice, StatusChanged
from device.realtime.status import TransportStatus
from device.session import RealtimeSession
from device.wake.config import WakeSection
from device.wake.part import WakePart

RATE = 24000
FRAME = 480
CASES = [(v, s) for v in ("en", "en-us", "en+m3", "en-gb-x-rp") for s in (140, 175, 210)]


def _espeak24(text: str, voice: str, speed: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), text]
        subprocess.run(cmd, check=True, capture_output=True)
        return _wav(out, RATE)


def utterance(voice: str, speed: int) -> tuple[np.ndarray, int]:
    """2 s silence (past the refractory time), "okay nabu", 50 ms, a question, 1 s silence;
    with the wake word's end (24 kHz samples)."""
    wake = _espeak24("okay nabu", voice, speed)
    wake = wake[: _edges(wake)[1]]
    question = _espeak24("when does the museum close?", voice, speed)
    question = question[_edges(question)[0] :]
    lead, gap, tail = (np.zeros(n, np.int16) for n in (2 * RATE, RATE // 20, RATE))
    return np.concatenate([lead, wake, gap, question, tail]), len(lead) + len(wake)


async def _provider() -> dict[str, Any]:
    expires = datetime.fromtimestamp(time.time() + 1800, UTC).isoformat()
    return {"kind": "token", "token": "bench", "expiresAt": expires}


async def _round(
    sim: Simulator, session: RealtimeSession, mic: MicFanout, case: tuple[str, int]
) -> tuple[float, float] | None:
    audio, end = utterance(*case)
    connected: list[float] = []

    def on_notice(notice: Notice) -> None:
        if isinstance(notice, StatusChanged) and notice.status is TransportStatus.CONNECTED:
            connected.append(time.perf_counter())

    off = session.subscribe(on_notice)
    before = len(sim.received)
    frames = [audio[i : i + FRAME].tobytes() for i in range(0, len(audio) // FRAME * FRAME, FRAME)]
    first_live = end // FRAME  # the frame holding the wake word's end
    mic.deliver(frames[:first_live])
    t_end = time.perf_counter()
    try:
        for k, frame in enumerate(frames[first_live:]):
            mic.deliver([frame])
            if k == 0:
                t_end = time.perf_counter()
            arrived = _first_append(sim, before)
            if connected and arrived is not None:
                return (connected[0] - t_end) * 1000, (arrived - t_end) * 1000
            await asyncio.sleep(max(0.0, t_end + (k + 1) * 0.02 - time.perf_counter()))
        return None  # not detected
    finally:
        off()
        await session.disconnect()


def _first_append(sim: Simulator, since: int) -> float | None:
    for event, at in zip(sim.received[since:], sim.received_at[since:], strict=False):
        if event["type"] == "input_audio_buffer.append":
            return at
    return None


async def measure(rounds: int) -> tuple[list[float], list[float], int]:
    to_connected: list[float] = []
    to_wire: list[float] = []
    async with Simulator(pace=1.0, reply_seconds=0.5) as sim:
        session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), credential_provider=_provider)
        mic = MicFanout("bench")
        part = WakePart(
            WakeSection(model="okay_nabu"),
            session=session,
            mic=mic,
            send=session.send_audio,
            publish=lambda event: None,
        )
        async with part:
            for n in range(rounds):
                got = await _round(sim, session, mic, CASES[n % len(CASES)])
                if got is not None:
                    to_connected.append(got[0])
                    to_wire.append(got[1])
    return to_connected, to_wire, rounds


def rows(rounds: int = 20) -> list[Row]:
    to_connected, to_wire, n = asyncio.run(measure(rounds))
    if not to_connected:
        return [Row("wake: end → connected", float("nan"), None, "ms", note="never detected")]
    note = f"{len(to_connected)}/{n} rounds detected (12 espeak voice x speed cases)"
    gaps = [w - c for c, w in zip(to_connected, to_wire, strict=True)]
    return [
        Row(
            "wake: wake word end → connected",
            median(to_connected),
            percentile(to_connected, 99),
            "ms",
            note=note + "; includes the detector's 90-200 ms",
        ),
        Row(
            "wake: connected → first held frame on the wire",
            median(gaps),
            percentile(gaps, 99),
            "ms",
            note="loopback websocket; frames released in 200 ms chunks",
        ),
        Row(
            "wake: wake word end → first held frame on the wire",
            median(to_wire),
            percentile(to_wire, 99),
            "ms",
            note="what the user waits for: the question starts reaching the model",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    for row in rows(args.rounds):
        print(" | ".join(row.cells()))


if __name__ == "__main__":
    main()
