"""End to end: ``voice-device run`` as a subprocess, driven only through its control socket.

The service talks to the simulator on loopback and to paced ALSA PCMs (a private PulseAudio
with null sinks behind ALSA's ``pulse`` plugin), under a fake systemd notify socket, with
gpiozero's mock pins. What is asserted is what a kiosk program or a user would notice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from notify_listener import NotifyListener

from device.audio.pulse import PrivatePulse
from device.control import request, stream_events
from device.data import DIR as DATA_DIR
from device.simulator import Simulator

AUDIO = DATA_DIR
TOKEN = "sk-e2e-SECRET-0123456789abcdef"
KEY_ENV = "VOICE_DEVICE_E2E_KEY"
CLI = Path(sys.executable).parent / "voice-device"


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePulse]:
    monitor = tmp_path_factory.mktemp("pulse") / "speaker.raw"
    with PrivatePulse(monitor_file=monitor, rate=48000, channels=1) as p:
        yield p


class Service:
    """One running ``voice-device run`` and the means to watch it."""

    def __init__(self, proc: subprocess.Popen[bytes], socket: Path, notify: NotifyListener,
                 log: Path) -> None:
        self.proc = proc
        self.socket = socket
        self.notify = notify
        self.log = log
        self.events: list[dict[str, Any]] = []
        self._reader: threading.Thread | None = None

    async def cmd(self, cmd: str, **fields: Any) -> dict[str, Any]:
        return await asyncio.to_thread(request, self.socket, {"cmd": cmd, **fields}, 10.0)

    def subscribe(self) -> None:
        def read() -> None:
            for event in stream_events(self.socket):
                self.events.append(event)

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def statuses(self) -> list[str]:
        return [e["status"] for e in self.events if e.get("event") == "status"]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        await asyncio.sleep(0.02)


def appends(sim: Simulator, conn: int | None = None) -> int:
    return sum(
        1
        for e in sim.received
        if e["type"] == "input_audio_buffer.append" and (conn is None or e["_conn"] == conn)
    )


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(token=TOKEN, reply_seconds=2.0) as s:
        yield s


@pytest.fixture
async def service(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> AsyncIterator[Service]:
    sock = tmp_path / "control.sock"
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[model]
url = "{sim.url}"
[credential]
source = "env"
env = "{KEY_ENV}"
[audio]
capture = "pulse_capture"
playback = "pulse_playback"
rate = 48000
[control]
socket = "{sock}"
[behaviour]
earcons = false
log_level = "debug"
"""
    )
    log = tmp_path / "service.log"
    with NotifyListener() as notify, open(log, "wb") as out:
        env = pulse.env()
        env.update(notify.env(watchdog_usec=4_000_000))
        env[KEY_ENV] = TOKEN
        env["GPIOZERO_PIN_FACTORY"] = "mock"
        env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.Popen(
            [str(CLI), "run", "--config", str(config)], env=env, stdout=out, stderr=out
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
        text = log.read_text(errors="replace")
        assert "SECRET" not in text, "the API key reached the service log"


def speech_raw(path: Path) -> Path:
    """The question as 48 kHz mono raw, ready to be played into the virtual microphone."""
    with wave.open(str(AUDIO / "weather_question.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    up = np.repeat(pcm, 2)  # 24 → 48 kHz; crude, but the simulator's VAD only needs energy
    raw = path / "question.raw"
    raw.write_bytes(up.astype("<i2").tobytes() + bytes(48000 * 2))
    return raw


def speak_into_mic(pulse: PrivatePulse, raw: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["pacat", "--playback", "--device=cap", "--raw", "--format=s16le", "--rate=48000",
         "--channels=1", str(raw)],
        env=pulse.pa_env(),
    )


async def test_status_mute_and_message_through_the_control_socket(
    service: Service, sim: Simulator
) -> None:
    assert (await service.cmd("status")) == {"ok": True, "status": "disconnected", "muted": False}
    reply = await service.cmd("connect")
    assert reply["ok"], reply
    await until(lambda: service.statuses()[-1:] == ["connected"], what="connected")
    assert service.statuses() == ["connecting", "connected"]
    assert any(v.startswith("connected") for v in service.notify.values("STATUS"))
    await until(lambda: appends(sim) >= 25, what="the mic streams (silence) while live")

    assert (await service.cmd("mute"))["ok"]
    await until(lambda: {"event": "muted", "muted": True} in service.events, what="muted event")
    muted_at = appends(sim)
    await asyncio.sleep(1.0)
    assert appends(sim) == muted_at, "audio left the device while muted"
    assert (await service.cmd("status"))["muted"] is True
    assert (await service.cmd("unmute"))["ok"]
    await until(lambda: appends(sim) >= muted_at + 10, what="audio resumes after unmute")

    assert (await service.cmd("send_message", text="Is it sunny in Lyon?"))["ok"]
    await until(
        lambda: any(
            e.get("event") == "transcript" and e["role"] == "assistant" and "Lyon" in e["text"]
            for e in service.events
        ),
        what="assistant transcript",
    )
    bad = await service.cmd("send_message")
    assert not bad["ok"] and "text" in bad["error"]


async def test_spoken_question_is_answered_on_the_speaker(
    service: Service, sim: Simulator, pulse: PrivatePulse, tmp_path: Path
) -> None:
    assert (await service.cmd("connect"))["ok"]
    await until(lambda: service.statuses()[-1:] == ["connected"], what="connected")
    assert pulse.monitor_file is not None
    heard_before = pulse.monitor_file.stat().st_size if pulse.monitor_file.exists() else 0
    player = speak_into_mic(pulse, speech_raw(tmp_path))
    try:
        await until(
            lambda: any(e["type"] == "response.output_audio.done" for e in sim.sent),
            timeout=20,
            what="the simulator heard the question and answered",
        )
    finally:
        player.wait(10)
    assert any(e["type"] == "input_audio_buffer.speech_started" for e in sim.sent)
    await until(
        lambda: any(
            e.get("event") == "transcript" and e["role"] == "user" for e in service.events
        ),
        what="user transcript event",
    )
    await asyncio.sleep(2.5)  # the 2 s answer plays out
    with open(pulse.monitor_file, "rb") as f:
        f.seek(heard_before)
        speaker = np.frombuffer(f.read(), dtype="<i2")
    loud = np.abs(speaker.astype(np.int32)) > 2000
    # The answer is ~2 s of voiced tone: at least a second of it must have reached the speaker.
    assert loud.sum() / 48000 > 0.3, f"only {loud.sum()} loud samples reached the speaker"


async def test_reconnects_after_a_drop_and_audio_flows_again(
    service: Service, sim: Simulator
) -> None:
    assert (await service.cmd("connect"))["ok"]
    await until(lambda: service.statuses()[-1:] == ["connected"], what="connected")
    await until(lambda: appends(sim, 0) > 5, what="audio on the first connection")
    await sim.drop(code=1006)
    await until(lambda: service.statuses()[-2:] == ["reconnecting", "connected"],
                what="reconnecting then connected")
    await until(lambda: appends(sim, 1) > 5, what="audio on the new connection")
    assert (await service.cmd("status"))["status"] == "connected"


async def test_auth_failure_ends_closed_without_a_retry_storm(
    service: Service, sim: Simulator
) -> None:
    assert (await service.cmd("connect"))["ok"]
    await until(lambda: service.statuses()[-1:] == ["connected"], what="connected")
    sim.reject_next(401, count=100)
    await sim.drop(code=1006)
    await until(lambda: service.statuses()[-1:] == ["closed"], what="closed")
    await asyncio.sleep(1.5)
    assert sim.rejected <= 3
    errors = [e for e in service.events if e.get("event") == "error"]
    assert any("401" in e["message"] for e in errors)
    assert service.proc.poll() is None, "the service died on an auth error"
    assert (await service.cmd("status"))["status"] == "closed"


async def test_sigterm_mid_response_exits_cleanly(service: Service, sim: Simulator) -> None:
    assert (await service.cmd("connect"))["ok"]
    await until(lambda: service.statuses()[-1:] == ["connected"], what="connected")
    assert (await service.cmd("send_message", text="Tell me a story"))["ok"]
    await until(lambda: any(e["type"] == "response.output_audio.delta" for e in sim.sent),
                what="the reply is streaming")
    t0 = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(service.proc.wait, 5)
    assert code == 0, service.output()[-3000:]
    assert time.monotonic() - t0 < 2.0
    assert service.notify.values("STOPPING")
    assert not os.path.exists(service.socket), "the control socket was left behind"
