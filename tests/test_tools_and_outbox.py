"""Running tool calls, and the bounded outbox: plain calls, no socket."""

from __future__ import annotations

import json

from device.outbox import MAX_PENDING_BYTES, MAX_PENDING_EVENTS, Outbox
from device.realtime.tools import ToolRegistry, run_tool


async def test_an_unknown_tool_with_a_huge_name_yields_a_small_output_and_error() -> None:
    outcome = await run_tool(ToolRegistry(), "x" * 1_000_000, "{}")
    assert len(outcome.output) < 200 and len(outcome.error) < 200
    assert "unknown tool" in json.loads(outcome.output)["error"]
    assert outcome.error.startswith("the model called an unknown tool 'xxx")


async def test_a_raising_tool_still_produces_an_output() -> None:
    tools = ToolRegistry()

    def broken() -> None:
        raise RuntimeError("sensor offline")

    tools.add("broken", broken)
    outcome = await run_tool(tools, "broken", "")
    assert json.loads(outcome.output) == {"error": "RuntimeError: sensor offline"}
    assert outcome.error == "tool 'broken' failed: RuntimeError: sensor offline"
    bad_args = await run_tool(tools, "broken", "[1, 2]")
    assert "arguments must be a JSON object" in json.loads(bad_args.output)["error"]


async def test_sync_and_async_tools_return_their_result_as_json() -> None:
    tools = ToolRegistry()

    @tools.tool(description="Weather")
    async def weather(city: str) -> dict[str, object]:
        return {"city": city, "temp_c": 21}

    tools.add("twice", lambda n: n * 2)
    assert json.loads((await run_tool(tools, "weather", '{"city": "Lyon"}')).output) == {
        "city": "Lyon",
        "temp_c": 21,
    }
    assert (await run_tool(tools, "twice", '{"n": 4}')).output == "8"
    assert tools.specs()[0].description == "Weather"


def test_queued_events_are_bounded_by_count_and_bytes() -> None:
    box = Outbox(max_audio=5)
    big = "o" * 1_000_000
    queued = sum(box.put_event(big) for _ in range(300))  # 300 MB offered
    assert queued == MAX_PENDING_BYTES // len(big)
    assert box.event_bytes <= MAX_PENDING_BYTES
    small = Outbox(max_audio=5)
    assert sum(small.put_event("{}") for _ in range(1000)) == MAX_PENDING_EVENTS
    assert not small.has_room()


def test_audio_keeps_the_newest_frames_and_purge_drops_them_all() -> None:
    box = Outbox(max_audio=3)
    dropped = [box.put_audio(f"a{i}") for i in range(5)]
    assert dropped == [False, False, False, True, True]
    box.put_event("e")
    assert [box.pop().text for _ in range(2)] == ["a2", "a3"]  # type: ignore[union-attr]
    assert box.purge_audio() == 1
    item = box.pop()
    assert item is not None and item.text == "e" and not item.audio
    assert box.pop() is None and box.event_bytes == 0
