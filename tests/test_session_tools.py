"""Tool calls through a real session and the simulator: a slow tool holds up nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from creds import token_credential
from recorder import Recorder
from waiting import until

from device.devtools.simulator import Simulator
from device.realtime.models import GrokRealtimeModel, OpenAIRealtimeModel
from device.realtime.notices import MuteChanged
from device.session import RealtimeSession, ToolRegistry

TOKEN = "tools-test-SECRET-9"
FRAME = bytes(960)


async def test_a_slow_tool_blocks_neither_audio_nor_mute_and_its_reply_follows() -> None:
    release, started = asyncio.Event(), asyncio.Event()
    tools = ToolRegistry()

    @tools.tool(description="Takes its time")
    async def lookup() -> str:
        started.set()
        await release.wait()
        return "found"

    async with Simulator(token=TOKEN) as sim:
        session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), tools=tools)
        watch = Recorder(session)
        await session.connect(token_credential(TOKEN))
        sim.script_tool_call("lookup", {})
        await session.send_message("look it up")
        await until(lambda: started.is_set() and not session.response_active)
        # the tool is still running: the microphone streams and mute acts at once
        for _ in range(5):
            assert session.send_audio(FRAME)
        await sim.wait_for("input_audio_buffer.append", count=5)
        session.mute()
        assert watch.notices[-1] == MuteChanged(True) and not session.send_audio(FRAME)
        assert len([e for e in sim.received if e["type"] == "response.create"]) == 1
        release.set()
        await sim.wait_for("response.create", count=2)
        received = list(sim.received)
        (out_at,) = [
            i
            for i, e in enumerate(received)
            if e.get("item", {}).get("type") == "function_call_output"
        ]
        assert json.loads(received[out_at]["item"]["output"]) == "found"
        creates = [i for i, e in enumerate(received) if e["type"] == "response.create"]
        assert len(creates) == 2 and creates[0] < out_at < creates[1]
        await session.disconnect()


@pytest.mark.parametrize("dialect", ["openai", "xai"])
async def test_two_tools_in_one_response_get_one_create_after_both_outputs(dialect: str) -> None:
    # A strict peer refuses a create while an output is missing, and a second create while a
    # response is active: the batch must be answered whole, then asked for once.
    release = asyncio.Event()
    tools = ToolRegistry()

    @tools.tool(description="Slow")
    async def get_time() -> str:
        await release.wait()
        return "noon"

    @tools.tool(description="Broken")
    async def get_weather(city: str) -> str:
        raise RuntimeError(f"no forecast for {city}")

    model = GrokRealtimeModel if dialect == "xai" else OpenAIRealtimeModel
    async with Simulator(token=TOKEN, dialect=dialect, strict=True) as sim:
        session = RealtimeSession(model(url=sim.url), tools=tools)
        await session.connect(token_credential(TOKEN))
        sim.script_tool_batch([("get_time", {}), ("get_weather", {"city": "Lyon"})])
        await session.send_message("time and weather?")
        await until(lambda: outputs(sim) == 1, what="the failing tool's output")
        assert creates(sim) == 1  # only the user's: nothing asked while the slow tool runs
        release.set()
        await sim.wait_for("response.create", count=2)
        await until(lambda: not session.response_active and creates(sim) == 2, what="reply")
        received = list(sim.received)
        kinds = [e["type"] for e in received]
        last_output = max(i for i, e in enumerate(received) if is_output(e))
        assert kinds.index("response.create", last_output) > last_output
        assert outputs(sim) == 2 and creates(sim) == 2  # exactly one create for the batch
        assert sim.refused_creates == []
        failed = next(e for e in received if is_output(e) and "Lyon" in e["item"]["output"])
        assert "no forecast for Lyon" in failed["item"]["output"]  # a raising tool still answers
        await session.disconnect()


def is_output(event: dict[str, Any]) -> bool:
    return bool(event.get("item", {}).get("type") == "function_call_output")


def outputs(sim: Simulator) -> int:
    return sum(1 for e in sim.received if is_output(e))


def creates(sim: Simulator) -> int:
    return sum(1 for e in sim.received if e["type"] == "response.create")
