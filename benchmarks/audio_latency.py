"""Per-frame cost of the ALSA audio path, capture side and playback side.

    python -m benchmarks.audio_latency

* capture: ``read()`` returning → the 20 ms frame queued on the event loop (downmix, resample,
  re-chunk, hand-off through ``call_soon_threadsafe``), over a real-time paced PCM (private
  PulseAudio) when available, else the unpaced ``file`` plugin;
* playback: ``play()`` of one 20 ms chunk → its ``write()`` returning (hand-off to the writer
  thread, resample, upmix, ALSA write) over the ``file`` plugin, chunks fed every 20 ms with
  no jitter-buffer threshold so queueing does not hide the processing;
* dsp: :class:`~device.audio.capture.CaptureDSP` alone, one 20 ms period of 48 kHz stereo.

alsa-lib reads its configuration at the first PCM open, so this process sets
``ALSA_CONFIG_PATH`` before opening anything: run it as its own process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from device.audio.capture import AlsaCapture, CaptureConfig, CaptureDSP
from device.audio.playback import AlsaPlayback, PlaybackConfig
from device.audio.pulse import SYSTEM_ALSA_CONF, PrivatePulse, PulseUnavailable

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
        finally:
            if pulse is not None:
                pulse.stop()
    return results


def main() -> None:
    for name, r in run().items():
        print(
            f"{name:45s} n={r['n']:5.0f}  "
            f"median {r['median_us']:8.1f} µs  p99 {r['p99_us']:8.1f} µs"
        )


if __name__ == "__main__":
    main()
