"""Fault injection on the running service (``voice-device run`` as a subprocess): missing audio
hardware, a model flooding audio, a crashing config. Each asserts what the user or the kiosk
sees, that the service keeps running, and (in the harness) that no secret reaches the log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from service_harness import CLI, TOKEN, appends, running_service
from waiting import until

from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator

pytestmark = pytest.mark.simulator(token=TOKEN, reply_seconds=2.0)


async def test_missing_microphone_is_named_and_the_service_keeps_working(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    audio = 'capture = "no_such_mic"\nplayback = "pulse_playback"\nrate = 48000'
    async with running_service(pulse, sim, tmp_path, audio=audio) as service:
        # A kiosk that asks (or subscribed late) learns what is wrong, naming the device.
        for _ in range(100):
            state = await service.cmd("status")
            if any("no_such_mic" in f for f in state.get("faults", [])):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"status never named the missing microphone: {state}")
        await until(
            lambda: any("no_such_mic" in v for v in service.notify.values("STATUS")),
            5,
            "STATUS= shows the fault",
        )
        # The speaker side and the model still work: a typed question is answered.
        assert (await service.cmd("connect"))["ok"]
        await until(lambda: service.statuses()[-1:] == ["connected"], what="connected")
        assert (await service.cmd("send_message", text="Can you hear me in Lyon?"))["ok"]
        await until(
            lambda: any(
                e.get("event") == "transcript" and "Lyon" in e["text"] for e in service.events
            ),
            what="the answer",
        )
        assert appends(sim) == 0, "audio was sent without a microphone"
        # It keeps retrying in the background without flooding the log.
        await asyncio.sleep(2.0)
        assert service.proc.poll() is None
        assert service.output().count("not available") < 10


async def test_model_flooding_audio_keeps_memory_bounded_and_the_service_responsive(
    pulse: PrivatePulse, tmp_path: Path
) -> None:
    # Ten minutes of reply audio, sent as fast as the socket takes it.
    async with (
        Simulator(token=TOKEN, pace=0, reply_seconds=600) as sim,
        running_service(
            pulse,
            sim,
            tmp_path,
            audio='capture = "pulse_capture"\nplayback = "pulse_playback"\nrate = 48000\n'
            "max_buffer_ms = 5000",
        ) as service,
    ):
        assert (await service.cmd("connect"))["ok"]
        await until(lambda: service.statuses()[-1:] == ["connected"], what="connected")
        before = service.rss_mb()
        assert (await service.cmd("send_message", text="Talk for ten minutes."))["ok"]
        peak = before
        while not any(e["type"] == "response.output_audio.done" for e in sim.sent):
            peak = max(peak, service.rss_mb())
            reply = await asyncio.wait_for(service.cmd("status"), 2.0)
            assert reply["status"] == "connected", reply
            await asyncio.sleep(0.1)
        peak = max(peak, service.rss_mb())
        # 600 s of 24 kHz audio is 28.8 MB of PCM; the 5 s buffer holds 0.24 MB of it.
        assert peak - before < 15, f"RSS grew {peak - before:.1f} MB while flooded"
        await until(lambda: "buffer full" in service.output(), 5, "the drop is logged")
        assert service.output().count("buffer full") <= 3, "the drop warning floods the log"


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[audio]\nrate = "fast"\n')
    proc = subprocess.run(
        [str(CLI), "run", "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2  # the unit's RestartPreventExitStatus
    assert 'audio.rate: expected integer, got "fast"' in proc.stderr


def test_gpio_pin_taken_twice_is_a_config_error_naming_the_pin(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[buttons]\nconnect = 22\n")  # 22 is the status LED's default
    proc = subprocess.run(
        [str(CLI), "run", "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "GPIO22 is assigned to both the connect button and the status LED" in proc.stderr
    assert "buttons.connect = 22" in proc.stderr and "leds.status = 22" in proc.stderr


class SilentResolver:
    """A DNS server on loopback that takes every query and never answers: a hung lookup."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 53))
        self.sock.settimeout(0.2)
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.sock.recvfrom(4096)
                self.queries += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


async def test_sigterm_while_a_dns_lookup_hangs_exits_within_5_s(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and unshare to give the service its own resolv.conf")
    host = "127.0.0.77"
    resolver = SilentResolver(host)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {host}\noptions timeout:30 attempts:1\n")
    # The real glibc resolver, in a private mount namespace that sees our resolv.conf.
    wrap = [unshare, "--mount", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"']
    wrap.append(str(resolv))
    try:
        async with running_service(
            pulse,
            sim,
            tmp_path,
            model_url="wss://vd-hang-test.example/v1/realtime",
            extra="autoconnect = true\n",
            wrap=wrap,
        ) as service:
            await until(lambda: resolver.queries > 0, 10, "the service's lookup is hanging")
            assert (await service.cmd("status"))["status"] == "connecting"
            t0 = time.monotonic()
            service.proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(service.proc.wait, 10)
            elapsed = time.monotonic() - t0
            assert code == 0, service.output()[-3000:]
            assert elapsed < 5.0, f"exit took {elapsed:.1f} s (TimeoutStopSec=10 would SIGKILL)"
            assert service.notify.values("STOPPING")
            assert not os.path.exists(service.socket)
    finally:
        resolver.close()
