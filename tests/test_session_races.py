"""Races a user can cause with two buttons (or a kiosk and a button): disconnect while a
connect is under way, connect while the session is reconnecting. Whatever the order, the
status must end true and no second connection may be left streaming."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from creds import fresh_credential
from waiting import until

from device.devtools.simulator import Simulator
from device.realtime.credentials import Credential
from device.realtime.models import OpenAIRealtimeModel
from device.session import RealtimeSession, ReconnectPolicy
from device.transport import open_connection

TOKEN = "fake-race-SECRET-1"
pytestmark = pytest.mark.simulator(token=TOKEN)
FRAME = bytes(960)


def session_tasks() -> int:
    names = ("session-reader", "session-writer")
    return sum(1 for t in asyncio.all_tasks() if t.get_name() in names and not t.done())


async def test_disconnect_during_a_slow_handshake_wins(sim: Simulator) -> None:
    gate = asyncio.Event()

    async def slow(model: Any, credential: Credential) -> Any:
        await gate.wait()  # a slow network: the handshake completes after the user gave up
        return await open_connection(model, credential)

    async def provider() -> Credential:
        return fresh_credential(TOKEN)

    session = RealtimeSession(
        OpenAIRealtimeModel(url=sim.url),
        credential_provider=provider,
        auto_reconnect=True,
        reconnect_policy=ReconnectPolicy(first=0.05),
        connector=slow,
    )
    connecting = asyncio.create_task(session.connect())
    await until(lambda: session.status == "connecting")
    await session.disconnect()  # the user presses the button again
    gate.set()
    await connecting
    await asyncio.sleep(0.3)
    assert session.status == "disconnected"
    assert not session.send_audio(FRAME)
    await until(lambda: len(sim.close_codes) == sim.connections)
    assert set(sim.close_codes) <= {1000}, sim.close_codes
    # and the session still works normally afterwards
    await session.connect()
    assert session.status == "connected"
    await sim.drop(1011)
    await until(lambda: session.status == "connected" and sim.connections >= 3)
    await session.disconnect()


async def test_connect_while_reconnecting_leaves_one_connection(sim: Simulator) -> None:
    session = RealtimeSession(
        OpenAIRealtimeModel(url=sim.url),
        credential_provider=lambda: _value(fresh_credential(TOKEN)),
        auto_reconnect=True,
        reconnect_policy=ReconnectPolicy(first=0.05),
        connect_timeout=30,
    )
    await session.connect()
    sim.stall()  # the next connection hangs before session.updated
    await sim.drop(1006)
    await until(lambda: session.status == "reconnecting" and sim.connections == 2)
    sim.unstall(existing=False)
    await session.connect()  # the user taps connect while it is still trying
    assert session.status == "connected"
    assert session_tasks() == 2, "a reader/writer of the abandoned connection is still running"
    for _ in range(5):
        assert session.send_audio(FRAME)
    await until(lambda: sum(e["type"] == "input_audio_buffer.append" for e in sim.received) == 5)
    assert {e["_conn"] for e in sim.received if e["type"] == "input_audio_buffer.append"} == {2}
    await session.disconnect()
    assert session_tasks() == 0


async def _value(credential: Credential) -> Credential:
    return credential
