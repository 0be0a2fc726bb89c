"""The usage part in process: a real RealtimeSession against the simulator on loopback, with
the wall clock injected so the local day can change (the service tests cannot move time)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from creds import token_credential
from waiting import until

from device.commands import CommandTable
from device.devtools.simulator import Simulator
from device.realtime.errors import LimitError
from device.realtime.models import GrokRealtimeModel, OpenAIRealtimeModel
from device.realtime.notices import ErrorNotice, LimitReached, Notice, StatusChanged
from device.session import RealtimeSession
from device.usage import IdleSettings, LimitsSection, UsageStore
from device.usage.part import UsagePart
from device.usage.tokens import TokenUsage

TOKEN = "fake-part-SECRET-0123456789abcdef"
pytestmark = pytest.mark.simulator(token=TOKEN, reply_seconds=3.0, pace=0)


def credential() -> dict[str, Any]:
    return token_credential(TOKEN)


class ShiftedClock:
    """The real local time plus ``offset`` (moved by the test)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now().astimezone() + self.offset


async def test_a_token_limit_closes_refuses_and_the_next_day_allows_again(
    sim: Simulator, tmp_path: Path
) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
    notices: list[Notice] = []
    session.subscribe(notices.append)
    table = CommandTable(session)
    events: list[dict[str, Any]] = []
    table.subscribe_events(events.append)
    clock = ShiftedClock()
    store = UsageStore(tmp_path / "usage.json")
    limits = LimitsSection(daily_output_audio_tokens=50)
    async with UsagePart(session, table, limits, IdleSettings(), store=store, clock=clock) as part:
        await session.connect(credential())
        await session.send_message("Tell me about the weather")  # 3 s of speech: 60 tokens
        await until(lambda: session.status == "closed", what="closed by the limit")
        await until(lambda: sim.close_codes == [1000], what="a clean close (1000)")
        errors = [n for n in notices if isinstance(n, ErrorNotice)]
        assert errors[-1].code == "limit"
        assert "limits.daily_output_audio_tokens" in errors[-1].message
        assert LimitReached("daily_output_audio_tokens") in notices
        assert {"event": "limit", "limit": "daily_output_audio_tokens"} in events
        used = [e for e in events if e.get("event") == "usage"]
        assert len(used) == 1 and used[0]["response"] == sim.usage_sent[0]

        # Every connect is refused with the limit's name; nothing is dialled.
        with pytest.raises(LimitError, match="daily_output_audio_tokens"):
            await session.connect(credential())
        reply = await table.dispatch({"cmd": "connect"})
        assert not reply["ok"] and "daily_output_audio_tokens" in reply["error"]
        assert session.status == "closed" and sim.connections == 1

        # Tomorrow (local day): the limit clears (LED back) and connecting works.
        clock.offset = timedelta(days=1)
        await part.tick()
        assert notices[-1] == LimitReached(None)
        await session.connect(credential())
        assert session.status == "connected" and sim.connections == 2
        await session.disconnect()


async def test_raising_the_limit_on_reload_allows_connecting_at_once(
    sim: Simulator, tmp_path: Path
) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
    notices: list[Notice] = []
    session.subscribe(notices.append)
    table = CommandTable(session)
    store = UsageStore(tmp_path / "usage.json")
    limits = LimitsSection(daily_output_audio_tokens=50)
    async with UsagePart(session, table, limits, IdleSettings(), store=store) as part:
        await session.connect(credential())
        await session.send_message("Hello")
        await until(lambda: session.status == "closed", what="closed by the limit")
        part.reconfigure(LimitsSection(daily_output_audio_tokens=500), IdleSettings())
        await until(lambda: notices[-1] == LimitReached(None), what="the limit cleared")
        await session.connect(credential())
        assert session.status == "connected"
        await session.disconnect()
    saved = store.path.read_text()
    assert TOKEN not in saved and "SECRET" not in saved
    assert StatusChanged(session.status) in notices


async def test_xai_usage_is_counted_as_the_simulator_reported_it(tmp_path: Path) -> None:
    async with Simulator(token=TOKEN, dialect="xai", reply_seconds=1.0, pace=0) as sim:
        session = RealtimeSession(GrokRealtimeModel(url=sim.url))
        table = CommandTable(session)
        store = UsageStore(tmp_path / "usage.json")
        async with UsagePart(session, table, LimitsSection(), IdleSettings(), store=store) as part:
            await session.connect(credential())
            for n, text in enumerate(("Hello", "And again"), start=1):
                await session.send_message(text)

                def counted(n: int = n) -> bool:
                    return part.ledger.today().responses == n

                await until(counted, what="counted")
            reply = await table.dispatch({"cmd": "usage"})
            await session.disconnect()
        expected = TokenUsage()
        for figures in sim.usage_sent:
            expected += TokenUsage.from_mapping(figures)
        assert len(sim.usage_sent) == 2
        assert reply["ok"] and reply["days"][0]["tokens"] == expected.to_mapping()
        assert expected.output_audio_tokens == 40  # two 1 s answers at 20 tokens/s


async def test_a_held_talk_button_holds_off_idle_and_any_press_restarts_it(
    sim: Simulator, tmp_path: Path
) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
    table = CommandTable(session)
    store = UsageStore(tmp_path / "usage.json")
    async with UsagePart(session, table, LimitsSection(), IdleSettings(30), store=store) as part:
        await session.connect(credential())
        idle = part.meter.idle
        armed = idle.deadline
        assert armed is not None
        part.on_button("begin_turn")  # push-to-talk: no server VAD says the user speaks
        assert idle.deadline is None  # never idle while the talk button is held
        part.on_button("end_turn")
        released = idle.deadline
        assert released is not None and released >= armed
        await until(lambda: part.ledger.monotonic() > released - 30, what="time moves")
        part.on_button("toggle_mute")  # any press is activity
        assert (idle.deadline or 0) > released
        await session.disconnect()
