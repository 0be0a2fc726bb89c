"""The whole service against a baseline client, on paced audio and the loopback simulator.

    python -m benchmarks.service [--seconds 60]

Both ``voice-device run`` and the baseline (openai-python's ``AsyncOpenAI().realtime.connect()``,
see ``baseline_client.py``) stream the virtual microphone (a private PulseAudio null sink behind
ALSA, real-time paced) to the same simulator, which talks back for the whole run (``greet``
mode), so both are full duplex at once. Figures: CPU seconds per minute and peak RSS of each
process (from ``/proc``, measured the same way for both), start to ``READY=1``, and the time from
the simulator dropping the connection to audio flowing on the new one.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Row, median, percentile, table
from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator

CLI = Path(sys.executable).parent / "voice-device"
KEY_ENV = "VOICE_DEVICE_BENCH_KEY"
BEARER = "fake-bench"  # not a secret: the simulator accepts any key
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (``comm``, digits folded) of process ``pid``."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")].rstrip("0123456789")
        if task.name == str(pid):
            name = "event loop"  # the main thread; other Python threads keep the process name
        fields = text.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def thread_note(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    """``name a.bc`` CPU s/min per thread over the window, busiest first."""
    per = {k: (v - before.get(k, 0.0)) * 60 / seconds for k, v in after.items()}
    busy = sorted(((v, k) for k, v in per.items() if v >= 0.005), reverse=True)
    return "per thread: " + ", ".join(f"{k} {v:.2f}" for v, k in busy)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Notify:
    """A bare NOTIFY_SOCKET: the time the first READY=1 arrives."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)

    async def ready(self, timeout: float) -> float:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while True:
                data = await loop.sock_recv(self.sock, 4096)
                if b"READY=1" in data.split(b"\n"):
                    return time.monotonic()


def write_config(directory: Path, url: str, period_ms: int = 20, rate: int = 48000) -> Path:
    config = directory / "config.toml"
    config.write_text(
        f'[model]\nurl = "{url}"\n'
        f'[credential]\nsource = "env"\nenv = "{KEY_ENV}"\n'
        f'[audio]\ncapture = "pulse_capture"\nplayback = "pulse_playback"\nrate = {rate}\n'
        f"period_ms = {period_ms}\n"
        f'[control]\nsocket = "{directory / "control.sock"}"\n'
        "[behaviour]\nautoconnect = true\nearcons = false\n"
    )
    return config


async def measure(seconds: float, period_ms: int = 20, rate: int = 48000) -> list[Row]:
    """``rate``: the service's ``audio.rate`` (48 kHz: it resamples to the model's 24 kHz
    itself; 24 kHz: PulseAudio's server does, as it does for the baseline)."""
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="vd-bench-") as tmp,
        PrivatePulse(rate=48000, channels=1) as pulse,
    ):
        directory = Path(tmp)
        async with Simulator(pace=1.0, greet=True, reply_seconds=seconds + 30) as sim:
            notify = Notify(directory)
            env = pulse.env()
            env.update({KEY_ENV: BEARER, "GPIOZERO_PIN_FACTORY": "mock"})
            env["NOTIFY_SOCKET"] = str(notify.path)
            started = time.monotonic()
            config = write_config(directory, sim.url, period_ms, rate)
            service = subprocess.Popen(
                [str(CLI), "run", "--config", str(config)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            baseline = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.baseline_client",
                    "--base-url",
                    f"http://127.0.0.1:{sim.port}/v1",
                    "--capture",
                    "pulse_capture",
                    "--playback",
                    "pulse_playback",
                    "--seconds",
                    str(seconds + 20),
                ],
                env=pulse.env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                ready_s = await notify.ready(30) - started
                rows.append(Row("start to READY=1", ready_s, None, "s", "≤ 1.5 s", ready_s <= 1.5))
                # Let both settle (connected, audio flowing both ways), then measure a window.
                while sim.connections < 2:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(3)
                cpu0 = {p.pid: cpu_seconds(p.pid) for p in (service, baseline)}
                threads0 = thread_cpu(service.pid)
                await asyncio.sleep(seconds)
                threads = thread_note(threads0, thread_cpu(service.pid), seconds)
                per_min = {
                    p.pid: (cpu_seconds(p.pid) - cpu0[p.pid]) * 60 / seconds
                    for p in (service, baseline)
                }
                ours, theirs = per_min[service.pid], per_min[baseline.pid]
                ratio = ours / theirs if theirs else float("nan")
                rows.append(
                    Row(
                        "CPU per minute, full duplex (ours)",
                        ours,
                        None,
                        "s/min",
                        "≤ 0.4x baseline",
                        ratio <= 0.4,
                        f"{ratio:.2f}x the baseline; {threads}",
                    )
                )
                rows.append(Row("CPU per minute, full duplex (baseline)", theirs, None, "s/min"))
                rss, base_rss = peak_rss_mb(service.pid), peak_rss_mb(baseline.pid)
                rows.append(Row("peak RSS (ours)", rss, None, "MB", "≤ 60 MB", rss <= 60))
                rows.append(Row("peak RSS (baseline)", base_rss, None, "MB"))
                rows.append(await reconnect_time(sim))
            finally:
                for proc in (service, baseline):
                    proc.terminate()
                for proc in (service, baseline):
                    try:
                        proc.wait(5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
    return rows


async def reconnect_time(sim: Simulator, rounds: int = 10) -> Row:
    """Drop the service's connection ``rounds`` times; time drop → first append on the new one."""
    samples = []
    for _ in range(rounds):
        before = sim.connections
        dropped = time.perf_counter()
        await sim.drop(1006, bearer=BEARER)
        while True:
            await asyncio.sleep(0.005)
            new = [
                t
                for e, t in zip(sim.received, sim.received_at, strict=True)
                if e["_conn"] >= before
                and sim.bearer_of.get(e["_conn"]) == BEARER
                and e["type"] == "input_audio_buffer.append"
            ]
            if new:
                samples.append(new[0] - dropped)
                break
            if time.perf_counter() - dropped > 30:
                raise RuntimeError("the service did not reconnect within 30 s")
        await asyncio.sleep(1.0)
    p99 = percentile(samples, 99)
    return Row(
        "reconnect: drop → audio flowing",
        median(samples),
        p99,
        "s",
        "≤ 1.5 s",
        p99 <= 1.5,
        f"{rounds} drops",
    )


def rows(seconds: float = 60.0, period_ms: int = 20, rate: int = 48000) -> list[Row]:
    measured = asyncio.run(measure(seconds, period_ms, rate))
    tags = [f"period_ms = {period_ms}"] * (period_ms != 20) + [f"rate = {rate}"] * (rate != 48000)
    if not tags:
        return measured
    return [dataclasses.replace(r, name=f"{r.name} [{', '.join(tags)}]") for r in measured]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--period-ms", type=int, default=20, help="the service's audio.period_ms")
    parser.add_argument("--rate", type=int, default=48000, help="the service's audio.rate")
    args = parser.parse_args()
    print(table(rows(args.seconds, args.period_ms, args.rate)))


if __name__ == "__main__":
    main()
