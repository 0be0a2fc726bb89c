"""Fault injection on the running service (``voice-device run`` as a subprocess): missing audio
hardware, a model flooding audio, a crashing config. Each asserts what the user or the kiosk
sees, that the service keeps running, and (in the harness) that no secret reaches the log."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from service_harness import CLI, TOKEN, appends, running_service, until

from device.audio.pulse import PrivatePulse
from device.simulator import Simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(token=TOKEN, reply_seconds=2.0) as s:
        yield s


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
    assert "pin 22" in proc.stderr and "leds.status" in proc.stderr
