"""Tool calls through a real session and the simulator: a slow tool holds up nothing."""

from __future__ import annotations

import asyncio
import json

from creds import token_credential
from recorder import Recorder
from waiting import until

from device.devtools.simulator import Simulator
from device.realtime.models import OpenAIRealtimeModel
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
