"""Per-frame cost of the ALSA audio path, capture side and playback side.

    python -m benchmarks.audio_latency

* capture: ``read()`` returning → the 20 ms frame handed on (downmix, resample, re-chunk; the
  read already runs on the event loop, woken by the PCM's poll descriptor), over a real-time
  paced PCM (private PulseAudio) when available, else the unpaced ``file`` plugin;
* playback: ``play()`` of one 20 ms chunk → its ``write()`` returning (hand-off to the writer
  thread, resample, upmix, ALSA write) over the ``file`` plugin, chunks fed every 20 ms with
  no jitter-buffer threshold so queueing does not hide the processing;
* dsp: :class:`~device.audio.capture.CaptureDSP` alone, one 20 ms period of 48 kHz stereo.

alsa-lib reads its configuration at the first PCM open, so this process sets
``ALSA_CONFIG_PATH`` before opening anything: run it as its own process.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import Row
from benchmarks.codec import rows as codec_rows
from device.audio.capture import AlsaCapture, CaptureConfig, CaptureDSP
from device.audio.playback import AlsaPlayback, PlaybackConfig
from device.devtools.pulse import SYSTEM_ALSA_CONF, PrivatePulse, PulseUnavailable

CAPTURE_FRAMES = 250  # 5 s
PLAYBACK_CHUNKS = 250


def _summary(ns: list[int]) -> dict[str, float]:
    us = sorted(x / 1000 for x in ns)
    p99 = us[min(len(us) - 1, int(len(us) * 0.99))]
    return {"n": len(us), "median_us": statistics.median(us), "p99_us": p99}


def _noise(seconds: float, rate: int, channels: int) -> bytes:
    rng = np.random.default_rng(1)
    n = int(seconds * rate) * channels
    return (rng.standard_normal(n) * 3000).astype("<i2").tobytes()


async def _capture(device: str) -> list[int]:
    cap = AlsaCapture(
        CaptureConfig(device=device, rate=48000, channels=2, max_queue_frames=10_000),
        measure=True,
    )
    count = 0
    async for _ in cap.frames():
        count += 1
        if count >= CAPTURE_FRAMES:
            break
    await cap.aclose()
    assert cap.latencies_ns is not None
    return list(cap.latencies_ns)[10:]  # skip stream start-up


async def _playback(device: str) -> list[int]:
    pb = AlsaPlayback(
        PlaybackConfig(device=device, rate=48000, channels=2, start_threshold_ms=0),
        measure=True,
    )
    pb.start()
    chunk = _noise(0.02, 24000, 1)
    await asyncio.sleep(0.2)  # let the writer open the PCM
    for _ in range(PLAYBACK_CHUNKS):
        pb.play("bench", chunk)
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    pb.close()
    assert pb.latencies_ns is not None
    return list(pb.latencies_ns)[10:]


async def _to_socket(frames: int = 500) -> list[int]:
    """``session.send_audio(frame)`` → the websocket ``send()`` of its append returned, with
    the simulator on loopback reading: the session's share of capture → wire."""
    from device.devtools.simulator import Simulator
    from device.realtime.models import OpenAIRealtimeModel
    from device.session import RealtimeSession
    from device.transport import open_connection

    offered: collections.deque[int] = collections.deque()
    out: list[int] = []

    async def connector(model: Any, credential: Any) -> Any:
        ws = await open_connection(model, credential)
        send = ws.send

        async def timed_send(message: Any, *args: Any, **kwargs: Any) -> None:
            await send(message, *args, **kwargs)
            if isinstance(message, str) and message.startswith('{"type":"input_audio_buffer.app'):
                out.append(time.perf_counter_ns() - offered.popleft())

        ws.send = timed_send  # type: ignore[method-assign]
        return ws

    async with Simulator() as sim:
        session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), connector=connector)
        expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        await session.connect({"kind": "token", "token": "bench", "expiresAt": expires})
        frame = _noise(0.02, 24000, 1)
        for _ in range(frames):
            offered.append(time.perf_counter_ns())
            session.send_audio(frame)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        await session.disconnect()
    return out[10:]


def _dsp() -> list[int]:
    dsp = CaptureDSP(48000, "S16_LE", 2)
    period = _noise(0.02, 48000, 2)
    out = []
    for _ in range(2000):
        t = time.perf_counter_ns()
        dsp.process(period)
        out.append(time.perf_counter_ns() - t)
    return out


def run() -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="audio-bench-") as tmp:
        tmpdir = Path(tmp)
        infile = tmpdir / "in.raw"
        infile.write_bytes(_noise(CAPTURE_FRAMES * 0.02 + 3, 48000, 2))
        conf = tmpdir / "bench.conf"
        pulse: PrivatePulse | None = None
        capture_device = "fcap"
        body = (
            f'pcm.fcap {{ type file; slave.pcm "null"; file "/dev/null"; infile "{infile}";'
            ' format "raw" }\n'
            f'pcm.fplay {{ type file; slave.pcm "null"; file "{tmpdir / "out.raw"}";'
            ' format "raw" }\n'
        )
        if shutil.which("pulseaudio"):
            try:
                pulse = PrivatePulse(capture_file=infile)
                pulse.start()
                capture_device = "paced_capture"
                body += Path(pulse.alsa_config_path.split(":")[1]).read_text()
            except PulseUnavailable as exc:
                print(f"(no private PulseAudio: {exc}; capture is unpaced)")
                pulse = None
        conf.write_text(body)
        os.environ["ALSA_CONFIG_PATH"] = f"{SYSTEM_ALSA_CONF}:{conf}"
        os.environ.pop("PULSE_SERVER", None)
        try:
            paced = "paced" if pulse else "unpaced"
            results[f"capture read→queued ({paced})"] = _summary(
                asyncio.run(_capture(capture_device))
            )
            results["playback play()→written (file plugin)"] = _summary(
                asyncio.run(_playback("fplay"))
            )
            results["capture DSP only (48k stereo → 24k mono)"] = _summary(_dsp())
            results["send_audio()→socket send returned"] = _summary(asyncio.run(_to_socket()))
        finally:
            if pulse is not None:
                pulse.stop()
    return results


def rows() -> list[Row]:
    """The issue's two figures, each an upper bound: the p99 of a sum is at most the sum of
    the p99s of its parts (the parts are measured separately, on the same machine)."""
    r = run()
    capture = next(v for k, v in r.items() if k.startswith("capture read"))
    to_socket = r["send_audio()→socket send returned"]
    play = r["playback play()→written (file plugin)"]
    decode = codec_rows()[1]  # decode of one audio delta, µs
    cw_med = (capture["median_us"] + to_socket["median_us"]) / 1000
    cw_p99 = (capture["p99_us"] + to_socket["p99_us"]) / 1000
    ws_med = (decode.median + play["median_us"]) / 1000
    ws_p99 = ((decode.p99 or decode.median) + play["p99_us"]) / 1000
    return [
        Row(
            "added latency capture → wire (ALSA read returned → append sent)",
            cw_med,
            cw_p99,
            "ms",
            "p99 ≤ 2 ms",
            cw_p99 <= 2.0,
            f"read→queued {capture['p99_us']:.0f} µs + send_audio→socket "
            f"{to_socket['p99_us']:.0f} µs (p99s)",
        ),
        Row(
            "added latency wire → speaker (delta received → written to ALSA)",
            ws_med,
            ws_p99,
            "ms",
            "p99 ≤ 2 ms",
            ws_p99 <= 2.0,
            f"decode {decode.p99 or decode.median:.0f} µs + play→write {play['p99_us']:.0f} µs; "
            "excludes the 60 ms jitter buffer, which is a setting",
        ),
    ]


def main() -> None:
    for name, r in run().items():
        print(
            f"{name:45s} n={r['n']:5.0f}  "
            f"median {r['median_us']:8.1f} µs  p99 {r['p99_us']:8.1f} µs"
        )


if __name__ == "__main__":
    main()
