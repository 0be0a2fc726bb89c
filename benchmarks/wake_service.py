"""The service waiting for its wake word: ``voice-device run``, disconnected, reading the paced
microphone (48 kHz, PulseAudio), with ``[wake] model = "okay_nabu"`` and, for comparison, with
no wake model (the mic is read either way). CPU per minute of the whole process, and per thread.

    python -m benchmarks.wake_service [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
from pathlib import Path

from benchmarks import Row, table
from benchmarks.service import (
    BEARER,
    CLI,
    KEY_ENV,
    Notify,
    cpu_seconds,
    thread_cpu,
    thread_note,
    write_config,
)
from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator


async def idle_cpu(seconds: float, wake_model: str) -> tuple[float, str]:
    """CPU s/min of a disconnected service (``wake_model`` empty: no wake word) and the
    per-thread note."""
    with (
        tempfile.TemporaryDirectory(prefix="vd-bench-wake-") as tmp,
        PrivatePulse(rate=48000, channels=1) as pulse,
    ):
        directory = Path(tmp)
        async with Simulator(pace=1.0) as sim:
            config = write_config(directory, sim.url)
            text = config.read_text().replace("autoconnect = true", "autoconnect = false")
            config.write_text(text + f'[wake]\nmodel = "{wake_model}"\n')
            notify = Notify(directory)
            env = pulse.env()
            env.update({KEY_ENV: BEARER, "GPIOZERO_PIN_FACTORY": "mock"})
            env["NOTIFY_SOCKET"] = str(notify.path)
            proc = subprocess.Popen(
                [str(CLI), "run", "--config", str(config)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await notify.ready(30)
                await asyncio.sleep(3)  # the model loaded, the mic streaming
                cpu0, threads0 = cpu_seconds(proc.pid), thread_cpu(proc.pid)
                await asyncio.sleep(seconds)
                per_min = (cpu_seconds(proc.pid) - cpu0) * 60 / seconds
                note = thread_note(threads0, thread_cpu(proc.pid), seconds)
                if sim.connections:
                    raise RuntimeError("the service connected while waiting for its wake word")
            finally:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return per_min, note


def rows(seconds: float = 60.0) -> list[Row]:
    without, _ = asyncio.run(idle_cpu(seconds, ""))
    with_wake, note = asyncio.run(idle_cpu(seconds, "okay_nabu"))
    return [
        Row(
            "wake: service disconnected, listening for the wake word (CPU)",
            with_wake,
            None,
            "s/min",
            note=f"{note}; the same service without a wake model: {without:.2f}",
        ),
        Row(
            "wake: the wake word's share of it",
            with_wake - without,
            None,
            "s/min",
            note="16 kHz resampling, detector and gate woken every 20 ms in the running "
            "service (benchmarks.wake times the same work back to back, warm)",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    print(table(rows(args.seconds)))


if __name__ == "__main__":
    main()
