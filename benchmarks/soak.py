"""Soak: ``voice-device run`` for ten minutes of real use; RSS and open files must not grow.

    python -m benchmarks.soak [--minutes 10]     (make soak; not part of make test)

The service streams the paced virtual microphone to the simulator, which talks back the whole
time; every 30 s a kiosk client subscribes, toggles mute and sends a message, and every minute
the simulator drops the connection (the service reconnects). RSS and open file descriptors
are sampled every 5 s; after a one-minute warm-up the last minute's mean may exceed the first
minute's by at most 5 MB and 2 descriptors, and the service must log no playback underrun.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.service import BEARER, CLI, KEY_ENV, write_config
from device.control import request
from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator

RSS_SLACK_MB = 5.0
FD_SLACK = 2


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def underrun_lines(log: Path) -> list[str]:
    """The service's log lines that report a playback underrun (the speaker ran dry)."""
    return [line for line in log.read_text(errors="replace").splitlines() if "underrun" in line]


async def kiosk(sock: Path) -> None:
    """What a kiosk program does now and then, through the control socket."""
    await asyncio.to_thread(request, sock, {"cmd": "status"}, 5.0)
    await asyncio.to_thread(request, sock, {"cmd": "mute"}, 5.0)
    await asyncio.sleep(1)
    await asyncio.to_thread(request, sock, {"cmd": "unmute"}, 5.0)
    await asyncio.to_thread(request, sock, {"cmd": "send_message", "text": "Still there?"}, 5.0)


async def soak(minutes: float) -> int:
    samples: list[tuple[float, float, int]] = []
    with (
        tempfile.TemporaryDirectory(prefix="vd-soak-") as tmp,
        PrivatePulse(rate=48000, channels=1) as pulse,
    ):
        directory = Path(tmp)
        async with Simulator(pace=1.0, greet=True, reply_seconds=20) as sim:
            env = pulse.env()
            env.update({KEY_ENV: BEARER, "GPIOZERO_PIN_FACTORY": "mock"})
            log_path = directory / "service.log"
            proc = subprocess.Popen(
                [str(CLI), "run", "--config", str(write_config(directory, sim.url))],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log_path.open("wb"),
            )
            sock = directory / "control.sock"
            start = time.monotonic()
            end = start + minutes * 60
            next_kiosk, next_drop = start + 30, start + 60
            try:
                while time.monotonic() < end:
                    if proc.poll() is not None:
                        print(f"the service exited with {proc.returncode}", file=sys.stderr)
                        return 1
                    now = time.monotonic()
                    if now >= next_kiosk and sock.exists():
                        next_kiosk += 30
                        try:
                            await kiosk(sock)
                        except Exception as exc:  # report, keep soaking
                            print(f"kiosk request failed: {exc}", file=sys.stderr)
                    if now >= next_drop:
                        next_drop += 60
                        await sim.drop(1006)
                    samples.append((now - start, rss_mb(proc.pid), open_fds(proc.pid)))
                    print(
                        f"{samples[-1][0]:6.0f} s  RSS {samples[-1][1]:6.1f} MB  "
                        f"fds {samples[-1][2]}",
                        flush=True,
                    )
                    await asyncio.sleep(5)
            finally:
                proc.terminate()
                proc.wait(10)
                underruns = underrun_lines(log_path)
    warm = [s for s in samples if 60 <= s[0] < 120]
    last = [s for s in samples if s[0] >= samples[-1][0] - 60]
    if not warm or not last:
        print("too short to judge: run at least 3 minutes", file=sys.stderr)
        return 1
    rss_growth = sum(s[1] for s in last) / len(last) - sum(s[1] for s in warm) / len(warm)
    fd_growth = max(s[2] for s in last) - max(s[2] for s in warm)
    ok = rss_growth <= RSS_SLACK_MB and fd_growth <= FD_SLACK and not underruns
    print(
        f"RSS growth {rss_growth:+.1f} MB (≤ {RSS_SLACK_MB:g}), open fds {fd_growth:+d} "
        f"(≤ {FD_SLACK}), playback underrun warnings {len(underruns)} (0), "
        f"{sim.connections} connections: {'ok' if ok else 'FAILED'}"
    )
    for line in underruns[:5]:
        print(f"  {line}")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(soak(args.minutes)))


if __name__ == "__main__":
    main()
