"""Runs one ALSA scenario in a fresh process and prints a JSON result on stdout.

alsa-lib reads its configuration once per process (at the first PCM open) and caches it, so each
test starts this script with its own ``ALSA_CONFIG_PATH``. Usage::

    python scenario.py '{"kind": "capture", ...}'
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from device.audio import (  # noqa: E402
    AlsaCapture,
    AlsaPlayback,
    AudioFault,
    CaptureConfig,
    PlaybackConfig,
)
from device.earcons import earcon  # noqa: E402


async def run_capture(spec: dict[str, Any]) -> dict[str, Any]:
    faults: list[dict[str, Any]] = []
    in_loop: list[bool] = []
    loop = asyncio.get_running_loop()

    def on_fault(fault: AudioFault) -> None:
        in_loop.append(asyncio.get_running_loop() is loop)
        faults.append({"kind": fault.kind, "message": fault.message, "device": fault.device})

    config = CaptureConfig(
        device=spec["device"],
        rate=spec.get("rate", 48000),
        fmt=spec.get("fmt", "S16_LE"),
        channels=spec.get("channels", 1),
        max_queue_frames=spec.get("max_queue_frames", 50),
    )
    cap = AlsaCapture(config, on_fault=on_fault)
    want = spec.get("frames", 50)
    duration = spec.get("duration_s", 0.0)
    consumer_stall = spec.get("consumer_stall_s", 0.0)
    frames: list[bytes] = []
    times: list[float] = []
    alive_during: list[bool] = []

    block_at = spec.get("block_loop_at", -1)

    async def consume() -> None:
        async for frame in cap.frames():
            if consumer_stall and not frames:
                await asyncio.sleep(consumer_stall)
            if len(frames) == block_at:
                time.sleep(spec["block_loop_s"])  # noqa: ASYNC251 (stop the whole loop on purpose)
            frames.append(frame)
            times.append(time.monotonic())
            if len(frames) >= want:
                return

    task = asyncio.create_task(consume())
    deadline = spec.get("timeout_s", 20.0)
    if duration:
        await asyncio.sleep(duration)
        alive_during.append(cap.alive())
        task.cancel()
    else:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, deadline)
        alive_during.append(cap.alive())
    await asyncio.sleep(0)
    await cap.aclose()
    if spec.get("out"):
        Path(spec["out"]).write_bytes(b"".join(frames))
    return {
        "frames": len(frames),
        "sizes": sorted({len(f) for f in frames}),
        "times": times,
        "faults": faults,
        "faults_in_loop": all(in_loop),
        "alive": alive_during[0],
        "alive_after_close": cap.alive(),
        "stats": vars(cap.stats),
    }


async def run_playback(spec: dict[str, Any]) -> dict[str, Any]:
    faults: list[dict[str, Any]] = []
    pcm = Path(spec["input"]).read_bytes() if spec.get("input") else b""
    config = PlaybackConfig(
        device=spec["device"],
        rate=spec.get("rate", 48000),
        channels=spec.get("channels", 1),
        start_threshold_ms=spec.get("start_threshold_ms", 60),
        max_buffer_ms=spec.get("max_buffer_ms", 30000),
    )
    pb = AlsaPlayback(
        config, on_fault=lambda f: faults.append({"kind": f.kind, "message": f.message})
    )
    pb.start()
    result: dict[str, Any] = {}
    chunk = spec.get("chunk_bytes", 4800)
    gap_after = spec.get("gap_after_bytes", 0)
    gap_s = spec.get("gap_s", 0.0)
    item = spec.get("item", "item_1")
    t0 = time.monotonic()
    for i in range(0, len(pcm), chunk):
        if gap_after and i == gap_after:
            await asyncio.sleep(gap_s)
        pb.play(item, pcm[i : i + chunk])
        await asyncio.sleep(spec.get("chunk_pause_s", 0.0))
    for name in spec.get("earcons_after", []):
        while pb.is_playing() and time.monotonic() - t0 < 20:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        pb.play_cue(earcon(name))
    if spec.get("interrupt_after_s") is not None:
        # Wait until audio is sounding, then interrupt a known time later.
        while pb.played_ms(item) == 0 and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.005)
        await asyncio.sleep(spec["interrupt_after_s"])
        before = pb.played_ms(item)
        t_interrupt = time.perf_counter_ns()
        result["interrupt"] = pb.interrupt()
        result["played_before_interrupt"] = before
        await asyncio.sleep(0.3)
        # perf_counter_ns() is per process: measure here, hand back the difference.
        last_drop = pb.stats.last_drop_ns
        result["drop_latency_ns"] = last_drop - t_interrupt if last_drop else None
        result["period_ms"] = config.period_ms
        result["played_after"] = pb.played_ms(item)
        result["is_playing_after"] = pb.is_playing()
    else:
        limit = spec.get("timeout_s", 20.0)
        while pb.is_playing() and time.monotonic() - t0 < limit:
            await asyncio.sleep(0.02)
        await asyncio.sleep(spec.get("linger_s", 0.1))
    if spec.get("duration_s"):
        await asyncio.sleep(max(0.0, spec["duration_s"] - (time.monotonic() - t0)))
    result["alive"] = pb.alive()
    result["played_ms"] = pb.played_ms(item)
    pb.close()
    result["faults"] = faults
    result["stats"] = vars(pb.stats)
    return result


async def run_listeners(spec: dict[str, Any]) -> dict[str, Any]:
    """The real capture feeding the session (connected to the simulator) plus extra listeners:
    one at 16 kHz, one that raises on every frame, one that blocks the loop once for
    ``block_s``, a queue listener nobody reads. The session's
    listener mutes at frame ``mute_at`` and unmutes at ``unmute_at``, as a button would."""
    import base64
    from datetime import UTC, datetime, timedelta

    from device.devtools.simulator import Simulator
    from device.realtime.models import OpenAIRealtimeModel
    from device.session import RealtimeSession

    config = CaptureConfig(device=spec["device"], rate=spec["rate"], channels=spec["channels"])
    cap = AlsaCapture(config)
    total, mute_at, unmute_at = spec["frames"], spec["mute_at"], spec["unmute_at"]
    unmuted: list[bytes] = []
    muted: list[bytes] = []
    at16: list[bytes] = []
    raised = [0]
    async with Simulator() as sim:
        session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
        expires = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
        await session.connect({"kind": "token", "token": "t", "expiresAt": expires})

        def to_session(frame: bytes) -> None:  # what app.py does, plus the mute button
            n = len(unmuted) + len(muted)
            if n == mute_at:
                session.mute()
            elif n == unmute_at:
                session.unmute()
            (muted if session.muted else unmuted).append(frame)
            session.send_audio(frame)

        def broken(frame: bytes) -> None:
            raised[0] += 1
            raise RuntimeError("wake-word detector bug")

        blocked = [0]

        def blocking(frame: bytes) -> None:
            blocked[0] += 1
            if blocked[0] == spec.get("block_at", -1):
                time.sleep(spec["block_s"])  # holds up the whole loop, on purpose

        cap.listen(16000, broken)  # registered first: it runs before the session's listener
        cap.listen(24000, blocking)
        cap.listen(24000, to_session)
        cap.listen(16000, at16.append)
        unread = cap.fanout.queue(16000, 5)
        cap.start()
        deadline = time.monotonic() + spec.get("timeout_s", 30)
        while len(unmuted) + len(muted) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await cap.aclose()

        def appends() -> list[bytes]:
            return [
                base64.b64decode(e["audio"])
                for e in sim.received
                if e["type"] == "input_audio_buffer.append"
            ]

        while len(appends()) < len(unmuted) and time.monotonic() < deadline + 5:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # anything else in flight would arrive now
        wire = appends()
        await session.disconnect()
    out = Path(spec["out"])
    for name, frames in (("wire", wire), ("unmuted", unmuted), ("muted", muted), ("16k", at16)):
        (out / f"{name}.raw").write_bytes(b"".join(frames))
    return {
        "frames": len(unmuted) + len(muted),
        "wire_frames": len(wire),
        "unmuted_frames": len(unmuted),
        "muted_frames": len(muted),
        "frames_16k": len(at16),
        "sizes_16k": sorted({len(f) for f in at16}),
        "raised": raised[0],
        "unread_dropped": unread.dropped,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    runners = {"capture": run_capture, "playback": run_playback, "listeners": run_listeners}
    runner = runners[spec["kind"]]
    result = asyncio.run(runner(spec))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
