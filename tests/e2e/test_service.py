"""End to end: ``voice-device run`` as a subprocess, driven only through its control socket.

The service talks to the simulator on loopback and to paced ALSA PCMs (a private PulseAudio
with null sinks behind ALSA's ``pulse`` plugin), under a fake systemd notify socket, with
gpiozero's mock pins. What is asserted is what a kiosk program or a user would notice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from service_harness import TOKEN, Service, appends, running_service
from waiting import until

from device.control import IDLE_TIMEOUT_S
from device.data import DIR as DATA_DIR
from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator

pytestmark = pytest.mark.simulator(token=TOKEN, reply_seconds=2.0)

AUDIO = DATA_DIR


@pytest.fixture
async def service(pulse: PrivatePulse, sim: Simulator, tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(pulse, sim, tmp_path) as s:
        yield s


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
        [
            "pacat",
            "--playback",
            "--device=cap",
            "--raw",
            "--format=s16le",
            "--rate=48000",
            "--channels=1",
            str(raw),
        ],
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
        lambda: any(e.get("event") == "transcript" and e["role"] == "user" for e in service.events),
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
    await until(
        lambda: service.statuses()[-2:] == ["reconnecting", "connected"],
        what="reconnecting then connected",
    )
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
    await until(
        lambda: any(e["type"] == "response.output_audio.delta" for e in sim.sent),
        what="the reply is streaming",
    )
    t0 = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(service.proc.wait, 5)
    assert code == 0, service.output()[-3000:]
    assert time.monotonic() - t0 < 2.0
    assert service.notify.values("STOPPING")
    assert not os.path.exists(service.socket), "the control socket was left behind"
    # The model was told goodbye properly: a normal close, not a dropped connection.
    await until(lambda: len(sim.close_codes) >= 1, what="the simulator saw the close")
    assert sim.close_codes[-1] == 1000
    # A `subscribe` client was attached (the harness's): a clean shutdown logs no error.
    log = service.output()
    assert not [ln for ln in log.splitlines() if ln.startswith("ERROR")], log[-3000:]
    assert "Traceback" not in log and "CancelledError" not in log


async def test_half_duplex_mutes_the_mic_while_the_speaker_plays(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    audio = (
        'capture = "pulse_capture"\nplayback = "pulse_playback"\nrate = 48000\nhalf_duplex = true'
    )
    async with running_service(pulse, sim, tmp_path, audio=audio) as service:
        assert (await service.cmd("connect"))["ok"]
        await until(lambda: appends(sim) >= 20, what="the mic streams while the speaker is quiet")
        assert (await service.cmd("send_message", text="Tell me something"))["ok"]
        await until(
            lambda: any(e["type"] == "response.output_audio.delta" for e in sim.sent),
            what="the reply is streaming",
        )
        await asyncio.sleep(0.4)  # past the jitter buffer: the speaker is playing now
        during = appends(sim)
        await asyncio.sleep(0.8)
        assert appends(sim) - during <= 1, "the mic was sent while the speaker played"
        await until(lambda: any(e["type"] == "response.done" for e in sim.sent), what="reply sent")
        await asyncio.sleep(1.5)  # the last of the 2 s reply leaves the speaker
        after = appends(sim)
        await asyncio.sleep(0.6)
        assert appends(sim) - after >= 15, "the mic did not come back after the reply"


async def test_sighup_rereads_the_config_and_never_kills_the_service(
    service: Service, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    text = config.read_text()
    assert 'log_level = "debug"' in text
    reloads = len(service.notify.values("RELOADING"))
    # 1. a good file: the log level changes, the service keeps running
    config.write_text(text.replace('log_level = "debug"', 'log_level = "warning"'))
    service.proc.send_signal(signal.SIGHUP)
    await until(lambda: len(service.notify.values("RELOADING")) > reloads, 5, "RELOADING=1")
    await until(lambda: "configuration read again" in service.output(), 5, "reload logged")
    assert service.proc.poll() is None, "SIGHUP killed the service"
    assert (await service.cmd("status"))["ok"]
    quiet_from = len(service.output())
    assert (await service.cmd("mute"))["ok"] and (await service.cmd("unmute"))["ok"]
    assert (await service.cmd("connect"))["ok"]
    assert (await service.cmd("disconnect"))["ok"]
    chatter = [
        ln for ln in service.output()[quiet_from:].splitlines() if ln.startswith(("DEBUG", "INFO"))
    ]
    assert not chatter, f"log level not applied: {chatter[:3]}"
    # 2. a broken file: said loudly, the running configuration kept, still serving
    config.write_text(text + "[audio]\nrate = 1\n")
    service.proc.send_signal(signal.SIGHUP)
    await until(lambda: "keeping the running configuration" in service.output(), 5, "refused")
    assert service.proc.poll() is None
    assert (await service.cmd("status"))["ok"]
    assert os.path.exists(service.socket)


async def test_200_idle_control_clients_cannot_lock_out_a_fresh_status(service: Service) -> None:
    idle = []
    try:
        for _ in range(200):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(service.socket))
            idle.append(sock)
        before = service.rss_mb()
        started = time.monotonic()
        reply = await service.cmd("status")
        assert reply["ok"], reply
        assert time.monotonic() - started < IDLE_TIMEOUT_S + 2
        assert service.rss_mb() - before < 40
        assert service.proc.poll() is None
    finally:
        for sock in idle:
            sock.close()
