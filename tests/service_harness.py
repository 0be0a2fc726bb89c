"""Run ``voice-device run`` as a subprocess, the way systemd would, and watch it.

The service gets a config pointing at a simulator on loopback and at paced ALSA PCMs (a
private PulseAudio), a fake ``NOTIFY_SOCKET`` and gpiozero's mock pins; tests drive it only
through its control socket::

    async with running_service(pulse, sim, tmp_path) as service:
        await service.cmd("connect")
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from notify_listener import NotifyListener
from waiting import until

from device.control import request, stream_events
from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator

CLI = Path(sys.executable).parent / "voice-device"
KEY_ENV = "VOICE_DEVICE_E2E_KEY"
#: What the service is given as its API key; tests assert it never reaches the log.
TOKEN = "fake-e2e-SECRET-0123456789abcdef"


class Service:
    """One running ``voice-device run`` and the means to watch it."""

    def __init__(
        self, proc: subprocess.Popen[bytes], socket: Path, notify: NotifyListener, log: Path
    ) -> None:
        self.proc = proc
        self.socket = socket
        self.notify = notify
        self.log = log
        self.events: list[dict[str, Any]] = []

    async def cmd(self, cmd: str, **fields: Any) -> dict[str, Any]:
        return await asyncio.to_thread(request, self.socket, {"cmd": cmd, **fields}, 10.0)

    def subscribe(self) -> None:
        def read() -> None:
            with contextlib.suppress(Exception):
                for event in stream_events(self.socket):
                    self.events.append(event)

        threading.Thread(target=read, daemon=True).start()

    def statuses(self) -> list[str]:
        return [e["status"] for e in self.events if e.get("event") == "status"]

    def errors(self) -> list[str]:
        return [e["message"] for e in self.events if e.get("event") == "error"]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")


def appends(sim: Simulator, conn: int | None = None) -> int:
    """Mic frames the simulator received (on connection ``conn``, or on all)."""
    return sum(
        1
        for e in sim.received
        if e["type"] == "input_audio_buffer.append" and (conn is None or e["_conn"] == conn)
    )


@contextlib.asynccontextmanager
async def running_service(
    pulse: PrivatePulse,
    sim: Simulator,
    directory: Path,
    *,
    audio: str = "",
    extra: str = "",
    model_url: str = "",
    wrap: Sequence[str] = (),
) -> AsyncIterator[Service]:
    """Start the service; on exit SIGTERM it and check that no secret reached its log.

    ``audio`` replaces the ``[audio]`` keys (default: the private PulseAudio's PCMs);
    ``extra`` is appended to the config; ``model_url`` replaces the simulator's URL; ``wrap``
    is a command prefix the service is started under (it must ``exec`` the service, so the
    process is the service).
    """
    sock = directory / "control.sock"
    config = directory / "config.toml"
    audio = audio or 'capture = "pulse_capture"\nplayback = "pulse_playback"\nrate = 48000'
    config.write_text(
        f'[model]\nurl = "{model_url or sim.url}"\n'
        f'[credential]\nsource = "env"\nenv = "{KEY_ENV}"\n'
        f"[audio]\n{audio}\n"
        f'[control]\nsocket = "{sock}"\n'
        '[behaviour]\nearcons = false\nlog_level = "debug"\n'
        f"{extra}"
    )
    log = directory / "service.log"
    with NotifyListener() as notify, open(log, "wb") as out:
        env = pulse.env()
        env.update(notify.env(watchdog_usec=4_000_000))
        env[KEY_ENV] = TOKEN
        env["GPIOZERO_PIN_FACTORY"] = "mock"
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("STATE_DIRECTORY", str(directory / "state"))
        proc = subprocess.Popen(
            [*wrap, str(CLI), "run", "--config", str(config)], env=env, stdout=out, stderr=out
        )
        service = Service(proc, sock, notify, log)
        try:
            await asyncio.to_thread(lambda: notify.wait_for("READY", timeout=20.0))
            service.subscribe()
            await until(lambda: bool(service.events) or proc.poll() is not None, 5, "subscribed")
            yield service
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        assert "SECRET" not in log.read_text(errors="replace"), "the API key reached the log"
