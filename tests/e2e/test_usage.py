"""End to end, unattended kiosks (issue 15): ``voice-device run`` against the simulator with a
private state directory. Idle disconnect, usage totals (equal to what the simulator reported,
kept across a restart and a ``kill -9``) and each daily limit."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from service_harness import CLI, TOKEN, Service, running_service
from test_service import speak_into_mic, speech_raw
from waiting import until

from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator
from device.usage import TokenUsage

pytestmark = pytest.mark.simulator(token=TOKEN, reply_seconds=2.0)


def idle_events(service: Service) -> list[dict[str, Any]]:
    return [e for e in service.events if e.get("event") == "idle"]


def sim_total(sim: Simulator) -> dict[str, Any]:
    total = TokenUsage()
    for figures in sim.usage_sent:
        total += TokenUsage.from_mapping(figures)
    return total.to_mapping()


async def run_cli(argv: list[str]) -> str:
    """``voice-device …``: its stdout (it must exit 0)."""
    done = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def usage_events(service: Service) -> list[dict[str, Any]]:
    return [e for e in service.events if e.get("event") == "usage"]


async def ask(service: Service, sim: Simulator, text: str) -> None:
    """One scripted turn: a message, and the service counted the simulator's response."""
    before = len(usage_events(service))
    assert (await service.cmd("send_message", text=text))["ok"]
    await until(lambda: len(usage_events(service)) > before, what="the response was counted")


async def test_idle_disconnects_but_not_while_the_user_speaks_or_the_model_talks(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    async with running_service(pulse, sim, tmp_path, extra="idle_disconnect_s = 1.5\n") as service:
        connected_at = time.monotonic()
        assert (await service.cmd("connect"))["ok"]
        await until(lambda: len(idle_events(service)) == 1, what="the idle event")
        assert time.monotonic() - connected_at >= 1.4
        await until(lambda: service.statuses()[-1:] == ["disconnected"], what="disconnected")
        assert idle_events(service) == [{"event": "idle", "idle_s": 1.5}]

        # The next connect works; a 1.9 s question and a 2 s answer each outlast 1.5 s idle.
        assert (await service.cmd("connect"))["ok"]
        player = speak_into_mic(pulse, speech_raw(tmp_path))
        try:
            await until(
                lambda: any(e["type"] == "response.done" for e in sim.sent),
                timeout=20,
                what="the question was answered",
            )
        finally:
            player.wait(10)
        assert len(idle_events(service)) == 1, "idle fired while the user or the model spoke"
        assert (await service.cmd("status"))["status"] == "connected"
        done_at = time.monotonic()
        await until(lambda: len(idle_events(service)) == 2, what="idle after the answer")
        assert time.monotonic() - done_at >= 1.5, "idle fired before the answer had played"
        await until(lambda: service.statuses()[-1:] == ["disconnected"], what="disconnected")


async def test_usage_equals_the_models_figures_and_survives_restart_and_kill(
    pulse: PrivatePulse, sim: Simulator, tmp_path: Path
) -> None:
    state = tmp_path / "state" / "usage.json"
    state.parent.mkdir()
    state.write_text("{not json")  # a corrupt file: reported and replaced, never fatal
    async with running_service(pulse, sim, tmp_path) as service:
        assert "usage state file" in service.output()
        assert (await service.cmd("connect"))["ok"]
        await ask(service, sim, "What is the weather like?")
        await ask(service, sim, "And tomorrow?")
        usage = await service.cmd("usage")
        today = usage["days"][0]
        assert usage["ok"] and today["date"] == usage["today"] and today["responses"] == 2
        assert today["tokens"] == sim_total(sim)
        assert today["tokens"]["output_token_details"]["audio_tokens"] == 80  # 2 s + 2 s at 20/s
        assert today["audio_received_s"] == pytest.approx(4.0, abs=0.1)
        assert today["audio_sent_s"] > 0.5 and today["connected_s"] > 0.5
        events = usage_events(service)
        assert [e["response"] for e in events] == sim.usage_sent
        shared = json.dumps([usage, events])  # what every socket and MQTT client sees
        assert TOKEN not in shared and "SECRET" not in shared
        assert events[-1]["today"]["tokens"] == sim_total(sim)
        log_lines = [ln for ln in service.output().splitlines() if "response usage:" in ln]
        assert len(log_lines) == 2
        for line, figures in zip(log_lines, sim.usage_sent, strict=True):
            assert f"input {figures['input_tokens']} tokens" in line
            assert f"output {figures['output_tokens']} (audio 40," in line
    # Restarted (after SIGTERM): the same totals.
    async with running_service(pulse, sim, tmp_path) as service:
        again = (await service.cmd("usage"))["days"][0]
        assert again["tokens"] == sim_total(sim) and again["responses"] == 2
        assert (await service.cmd("connect"))["ok"]
        await ask(service, sim, "One more thing")
        # Saved within a few seconds, then killed without any chance to save.
        await until(
            lambda: json.loads(state.read_text())["days"][usage["today"]]["responses"] == 3,
            timeout=10,
            what="the periodic save",
        )
        service.proc.kill()
        await asyncio.to_thread(service.proc.wait, 5)
    async with running_service(pulse, sim, tmp_path) as service:
        after = (await service.cmd("usage"))["days"][0]
        assert after["tokens"] == sim_total(sim) and after["responses"] == 3
        cli = [str(CLI), "usage", "--json", "--socket", str(service.socket)]
        shown = await run_cli(cli)
        assert json.loads(shown)["days"][0]["tokens"] == sim_total(sim)
    # The service stopped: `voice-device usage` reads the state file instead.
    cli = [str(CLI), "usage", "--socket", str(tmp_path / "gone.sock"), "--state-file", str(state)]
    table = await run_cli(cli)
    today_row = next(line for line in table.splitlines() if " today " in line)
    assert f"{sim_total(sim)['output_tokens']} (" in today_row
    saved = state.read_text()
    assert TOKEN not in saved and "SECRET" not in saved
    assert (tmp_path / "state" / "usage.json.corrupt").read_text() == "{not json"


LIMITS = [
    # (the [limits] key, its value, questions asked to use it up; none: time does)
    ("daily_output_audio_tokens", "50", 1),  # one 3 s answer: 60 tokens
    ("daily_input_audio_tokens", "20", 2),  # the 2nd response's context: 30 audio tokens
    ("daily_connected_minutes", "0.03", 0),  # 1.8 s
    ("max_session_minutes", "0.03", 0),
]


@pytest.mark.parametrize(("key", "value", "questions"), LIMITS, ids=[k for k, _, _ in LIMITS])
async def test_each_limit_closes_the_conversation_and_refuses_connect(
    pulse: PrivatePulse, tmp_path: Path, key: str, value: str, questions: int
) -> None:
    async with Simulator(token=TOKEN, reply_seconds=3.0, pace=0) as sim:
        extra = f"[limits]\n{key} = {value}\n"
        async with running_service(pulse, sim, tmp_path, extra=extra) as service:
            assert (await service.cmd("connect"))["ok"]
            for n in range(questions):
                await ask(service, sim, f"Question {n}")
            await until(lambda: service.statuses()[-1:] == ["closed"], what="closed by the limit")
            assert any(f"limits.{key}" in m for m in service.errors())
            assert {"event": "limit", "limit": key} in service.events  # the LED's pattern
            await until(lambda: sim.close_codes == [1000], what="closed cleanly (1000)")
            refused = await service.cmd("connect")
            assert not refused["ok"] and f"limits.{key}" in refused["error"]
            assert sim.connections == 1 and (await service.cmd("status"))["status"] == "closed"
            if key.startswith("daily"):
                limits = (await service.cmd("usage"))["limits"]
                assert limits[f"limits.{key}"]["limit"] == float(value)
        if key.startswith("daily"):  # a daily limit outlives a restart (the state file)
            async with running_service(pulse, sim, tmp_path, extra=extra) as service:
                refused = await service.cmd("connect")
                assert not refused["ok"] and f"limits.{key}" in refused["error"]
                assert sim.connections == 1
                if questions:  # raised in the file + SIGHUP: connecting works at once
                    config = tmp_path / "config.toml"
                    config.write_text(config.read_text().replace(f"= {value}", "= 100000"))
                    service.proc.send_signal(signal.SIGHUP)
                    await until(
                        lambda: {"event": "limit", "limit": None} in service.events,
                        what="the limit cleared on reload",
                    )
                    assert (await service.cmd("connect"))["ok"]
