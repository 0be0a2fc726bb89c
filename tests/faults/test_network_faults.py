"""Fault injection on the model connection: what the user sees, and that nothing leaks.

Each test drives a real RealtimeSession (auto-reconnect on, as the service runs it) against the
simulator on loopback and asserts the status a user would see on the LED, that the session
heals or stops cleanly, and that the API key never reaches the logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import websockets.asyncio.server
from creds import fresh_credential
from recorder import Recorder
from waiting import until

from device.devtools.simulator import Simulator
from device.realtime import AuthError, CredentialError, CredentialSourceError
from device.realtime.codec import encode_pcm
from device.realtime.credentials import Credential
from device.realtime.errors import NotConnectedError, SessionRejected
from device.realtime.events import SessionConfig
from device.realtime.models import OpenAIRealtimeModel
from device.session import RealtimeSession, ReconnectPolicy
from device.transport import MAX_MESSAGE

TOKEN = "fake-fault-SECRET-7777777777777777"
pytestmark = pytest.mark.simulator(token=TOKEN)
FRAME = bytes(960)


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG)
    yield
    # caplog.text here would hold only the teardown's records: check every phase.
    for when in ("setup", "call", "teardown"):
        for record in caplog.get_records(when):
            assert "SECRET" not in record.getMessage(), f"a secret reached the logs: {record}"


def make_session(
    sim: Simulator, provider: Callable[[], Awaitable[Credential]] | None = None
) -> RealtimeSession:
    async def default_provider() -> Credential:
        return fresh_credential(TOKEN)

    return RealtimeSession(
        OpenAIRealtimeModel(url=sim.url),
        credential_provider=provider or default_provider,
        auto_reconnect=True,
        reconnect_policy=ReconnectPolicy(first=0.05, cap=0.5),
    )


@pytest.mark.parametrize("code", [1001, 1006, 1011])
async def test_server_drop_mid_response_reconnects_and_audio_flows_again(
    sim: Simulator, code: int
) -> None:
    session = make_session(sim)
    watch = Recorder(session)
    await session.connect()
    await session.send_message("talk for a while")
    await sim.wait_for("response.create")
    await asyncio.sleep(0.3)  # mid-response
    await sim.drop(code=code)
    await until(lambda: watch.statuses()[-2:] == ["reconnecting", "connected"])
    assert sim.connections == 2
    assert session.send_audio(FRAME)
    await until(lambda: any(e["type"] == "input_audio_buffer.append" for e in sim.received))
    # nothing from before the drop is replayed on the new connection
    second = [e for e in sim.received if e.get("_conn") == 1]
    assert [e["type"] for e in second][:2] == ["session.update", "input_audio_buffer.append"]
    await session.disconnect()


async def test_frames_offered_while_reconnecting_are_dropped_not_replayed(sim: Simulator) -> None:
    session = make_session(sim)
    await session.connect()
    sim.reject_next(503, count=3)  # keep it away for a few attempts
    await sim.drop(code=1006)
    await until(lambda: session.status == "reconnecting")
    assert not any(session.send_audio(FRAME) for _ in range(50))
    await until(lambda: session.status == "connected")
    await asyncio.sleep(0.2)
    assert not any(e["type"] == "input_audio_buffer.append" for e in sim.received)
    assert session.stats.frames_dropped_offline >= 50
    await session.disconnect()


@pytest.mark.parametrize("status", [401, 403])
async def test_handshake_auth_failure_refetches_once_then_closed_without_storm(
    sim: Simulator, status: int
) -> None:
    fetched = 0

    async def provider() -> Credential:
        nonlocal fetched
        fetched += 1
        return fresh_credential(TOKEN)

    session = make_session(sim, provider)
    watch = Recorder(session)
    await session.connect()
    sim.reject_next(status, count=100)
    await sim.drop(code=1006)
    await until(lambda: session.status == "closed")
    await asyncio.sleep(1.0)
    attempts = sim.rejected
    assert attempts <= 3, f"retry storm: {attempts} handshakes after auth failure"
    assert fetched == 2  # the first, and one forced refresh after the 401/403
    assert watch.errors()[-1].code == "auth" and str(status) in watch.errors()[-1].message
    assert session.status == "closed"


async def test_expired_credential_from_source_is_refreshed_before_connect(sim: Simulator) -> None:
    issued: list[Credential] = []

    async def provider() -> Credential:
        # the first one expires within 30 s
        cred = fresh_credential(TOKEN, minutes=0.25 if not issued else 30)
        issued.append(cred)
        return cred

    session = make_session(sim, provider)
    await session.connect()
    assert len(issued) == 1
    await sim.drop(code=1006)
    await until(lambda: session.status == "connected" and sim.connections == 2)
    assert len(issued) == 2, "a nearly expired credential was reused for the reconnect"
    await session.disconnect()


async def test_expired_explicit_credential_is_refused_clearly(sim: Simulator) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
    watch = Recorder(session)
    with pytest.raises(CredentialError, match="expired"):
        await session.connect(fresh_credential(TOKEN, minutes=-5))
    assert session.status == "closed" and watch.errors()[-1].code == "credential"
    assert sim.connections == 0


async def test_an_already_expired_credential_from_the_source_is_retried_not_fatal(
    sim: Simulator,
) -> None:
    issued: list[Credential] = []

    async def lagging() -> Credential:
        # the backend hands out stale ones
        cred = fresh_credential(TOKEN, minutes=-1 if len(issued) < 2 else 30)
        issued.append(cred)
        return cred

    session = make_session(sim, lagging)
    watch = Recorder(session)
    session._credential = None
    await session.connect()  # auto_reconnect: retried with backoff, not closed for good
    await until(lambda: session.status == "connected", timeout=10)
    assert len(issued) == 3
    stale = [e for e in watch.errors() if e.code == "credential"]
    assert stale and "expired" in stale[0].message
    assert "closed" not in watch.statuses()
    await session.disconnect()


async def test_credential_source_down_keeps_retrying_then_heals(sim: Simulator) -> None:
    calls = 0

    async def flaky() -> Credential:
        nonlocal calls
        calls += 1
        if calls in (2, 3):
            raise CredentialSourceError(
                "credential.url: https://backend/cred unreachable (refused)"
            )
        return fresh_credential(TOKEN)

    session = make_session(sim, flaky)
    watch = Recorder(session)
    session._credential = None
    await session.connect()
    session._credential = None  # force a fetch on reconnect
    await sim.drop(code=1006)
    await until(lambda: session.status == "connected" and sim.connections == 2)
    assert calls >= 4
    assert any("unreachable" in e.message for e in watch.errors())


async def test_session_expired_error_renews_the_session(sim: Simulator) -> None:
    session = make_session(sim)
    watch = Recorder(session)
    await session.connect()
    await sim.expire_session()
    await until(lambda: watch.statuses()[-2:] == ["reconnecting", "connected"])
    assert sim.connections == 2
    assert session.status == "connected"
    await session.disconnect()


def audio_delta(b64: str) -> str:
    """A well-formed GA audio delta event carrying ``b64`` as its audio."""
    return json.dumps(
        {
            "type": "response.output_audio.delta",
            "response_id": "r",
            "item_id": "i",
            "delta": b64,
            "event_id": "e",
            "output_index": 0,
            "content_index": 0,
        }
    )


@pytest.mark.parametrize(
    "raw",
    [
        "{this is not json",
        json.dumps({"type": "brand.new.thing", "x": 1}),
        audio_delta("!!!notbase64!!!"),
        audio_delta("AAAA" + "AQ=="),
        audio_delta("AQ=="),
    ],
    ids=["malformed-json", "unknown-type", "invalid-base64", "bad-padding", "odd-length-pcm"],
)
async def test_bad_events_are_reported_and_the_session_carries_on(sim: Simulator, raw: str) -> None:
    session = make_session(sim)
    watch = Recorder(session)
    await session.connect()
    await sim.send_raw(raw)
    await session.send_message("still there?")
    await until(lambda: session.stats.deltas_received > 0)
    assert session.status == "connected"
    assert sim.connections == 1
    # a bad event is reported once, as a protocol error; an unknown type is only logged, and
    # "AAAA" + "AQ==" decodes as base64 (4 bytes of PCM), so it is played, not refused
    reported = [e for e in watch.errors() if e.code == "protocol"]
    expected = 0 if "brand.new.thing" in raw or "AAAAAQ==" in raw else 1
    assert len(reported) == session.stats.protocol_errors == expected
    assert all("\n" not in e.message and len(e.message) <= 501 for e in reported)
    await session.disconnect()


async def test_frame_over_max_size_reconnects_cleanly(sim: Simulator) -> None:
    session = make_session(sim)
    watch = Recorder(session)
    await session.connect()
    # Eight seconds of audio in one delta (far more than any server sends) is under the limit.
    pcm = b"\x01\x00" * (24_000 * 8)
    big = {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i",
           "delta": encode_pcm(pcm)}  # fmt: skip
    await sim.send_raw(json.dumps(big))
    await until(lambda: session.stats.deltas_received == 1)
    assert sim.connections == 1 and session.status == "connected"
    await sim.send_raw("x" * (MAX_MESSAGE + 1))
    await until(lambda: watch.statuses()[-2:] == ["reconnecting", "connected"], timeout=20)
    assert session.status == "connected" and sim.connections == 2
    await session.disconnect()


async def test_ping_timeout_when_server_stops_answering(sim: Simulator) -> None:
    session = RealtimeSession(
        OpenAIRealtimeModel(url=sim.url),
        credential_provider=lambda: _async(fresh_credential(TOKEN)),
        auto_reconnect=True,
        reconnect_policy=ReconnectPolicy(first=0.05, cap=0.5),
        connector=_fast_ping_connector,
    )
    watch = Recorder(session)
    await session.connect()
    sim.stall()
    await until(lambda: "reconnecting" in watch.statuses(), timeout=10)
    sim.unstall()
    await until(lambda: session.status == "connected" and sim.connections >= 2, timeout=15)
    await session.disconnect()


async def _async(value: Credential) -> Credential:
    return value


async def _fast_ping_connector(model: Any, credential: Credential) -> Any:
    from device.transport import open_connection

    return await open_connection(model, credential, ping_interval=0.3, ping_timeout=0.6)


async def test_auth_error_on_first_connect_raises_without_retry(sim: Simulator) -> None:
    session = make_session(sim)
    sim.reject_next(401, count=100)
    with pytest.raises(AuthError):
        await session.connect()
    await asyncio.sleep(0.5)
    assert session.status == "closed"
    assert sim.rejected <= 2


async def test_credential_source_down_at_first_connect_retries_instead_of_giving_up(
    sim: Simulator,
) -> None:
    calls = 0

    async def down_then_up() -> Credential:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("connection refused")  # a provider that is not ours, raising raw
        if calls == 2:
            raise CredentialSourceError("credential.url: https://backend/cred returned garbage")
        return fresh_credential(TOKEN)

    session = make_session(sim, down_then_up)
    watch = Recorder(session)
    await session.connect()  # returns: the retries run in the background
    await until(lambda: session.status == "connected")
    assert watch.statuses()[:2] == ["connecting", "reconnecting"]
    messages = [e.message for e in watch.errors()]
    assert any("could not get a credential: OSError" in m for m in messages)
    assert any("garbage" in m for m in messages)
    await session.disconnect()


async def test_missing_key_in_the_source_is_closed_not_retried(sim: Simulator) -> None:
    calls = 0

    async def no_key() -> Credential:
        nonlocal calls
        calls += 1
        raise CredentialError("credential.env: environment variable OPENAI_API_KEY is not set")

    session = make_session(sim, no_key)
    watch = Recorder(session)
    with pytest.raises(CredentialError, match="OPENAI_API_KEY"):
        await session.connect()
    await asyncio.sleep(0.3)
    assert session.status == "closed" and calls == 1
    assert watch.errors()[-1].code == "credential"


async def test_websockets_debug_log_never_shows_the_key_or_a_signed_url(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="websockets")
    session = make_session(sim)
    await session.connect()
    await session.disconnect()
    signed = f"{sim.url}&sig=SECRET-signature-1234"
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
    sim.token = None  # the signed URL itself is the credential
    expires = fresh_credential(TOKEN).expires_at
    await session.connect({"kind": "url", "url": signed, "expiresAt": expires})
    await session.disconnect()
    handshake = [r.getMessage() for r in caplog.records if r.name.startswith("websockets")]
    assert any("Authorization" in line for line in handshake), "websockets logged no headers"
    # the autouse fixture asserts that "SECRET" is nowhere in the captured log


async def test_no_message_is_lost_silently_when_the_socket_dies_under_it(sim: Simulator) -> None:
    """A kiosk keeps sending while the server drops the connection: every send_message either
    reaches the model, raises, or is reported as not delivered."""
    session = make_session(sim)
    watch = Recorder(session)
    await session.connect()
    accepted = 0
    drop = asyncio.create_task(sim.drop(code=1006))
    while True:
        try:
            await session.send_message(f"message {accepted}")
        except NotConnectedError:
            break
        accepted += 1
        await asyncio.sleep(0)
    assert session.status == "reconnecting"  # the LED says so the moment sends stop working
    await drop
    await until(lambda: session.status == "connected")
    delivered = sum(e["type"] == "conversation.item.create" for e in sim.received)
    reported = sum(
        int(e.message.split()[0])
        for e in watch.errors()
        if "were not confirmed by the model" in e.message
    )
    # A message the server got may also be reported (its confirmation was lost with the
    # socket); a message neither delivered nor reported would be lost silently.
    assert delivered + reported >= accepted, (accepted, delivered, reported)
    await session.disconnect()


async def test_a_refused_session_configuration_closes_instead_of_retrying(
    sim: Simulator,
) -> None:
    session = RealtimeSession(
        OpenAIRealtimeModel(url=sim.url),
        config=SessionConfig(voice="hal9000"),
        credential_provider=lambda: _async(fresh_credential(TOKEN)),
        auto_reconnect=True,
        reconnect_policy=ReconnectPolicy(first=0.05, cap=0.5),
    )
    watch = Recorder(session)
    with pytest.raises(SessionRejected, match="hal9000"):
        await session.connect()
    await asyncio.sleep(0.5)
    assert session.status == "closed"
    assert sim.connections == 1  # no retry storm: the same configuration would fail again
    error = watch.errors()[-1]
    assert error.code == "session" and "refused the session configuration" in error.message


async def test_a_server_error_during_setup_is_retried_not_fatal() -> None:
    """Only a refused configuration (invalid_request_error) is final; a server hiccup while
    the session is being set up is one failed attempt among others."""
    attempts = 0

    async def handler(ws: Any) -> None:
        nonlocal attempts
        attempts += 1
        await ws.send(json.dumps({"type": "session.created", "session": {"id": "sess_1"}}))
        async for message in ws:
            if json.loads(message).get("type") != "session.update":
                continue
            if attempts == 1:
                error = {
                    "type": "server_error",
                    "code": None,
                    "message": "try again",
                    "param": None,
                }
                await ws.send(json.dumps({"type": "error", "error": error}))
            else:
                await ws.send(json.dumps({"type": "session.updated", "session": {"id": "s"}}))

    async with websockets.asyncio.server.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        session = RealtimeSession(
            OpenAIRealtimeModel(url=f"ws://127.0.0.1:{port}/v1/realtime"),
            credential_provider=lambda: _async(fresh_credential(TOKEN)),
            auto_reconnect=True,
            reconnect_policy=ReconnectPolicy(first=0.05, cap=0.5),
        )
        watch = Recorder(session)
        await session.connect()
        await until(lambda: session.status == "connected")
        assert attempts == 2
        assert any(
            "session setup failed: server_error: try again" in e.message for e in watch.errors()
        )
        await session.disconnect()


async def test_an_unconfirmed_message_is_reported_on_a_normal_close_and_not_carried_over(
    sim: Simulator,
) -> None:
    session = make_session(sim)
    watch = Recorder(session)
    await session.connect()
    sim.stall()  # the server stops reading: the message is never confirmed
    await session.send_message("Are you there?")
    await asyncio.sleep(0.2)
    sim.unstall(existing=False)
    await sim.drop(code=1000)  # a normal close: no reconnect, status closed
    await until(lambda: session.status == "closed")
    lost = [e for e in watch.errors() if "not confirmed" in e.message]
    assert len(lost) == 1 and lost[0].message.startswith("1 message(s)")
    # A new connection starts with a clean slate: its confirmed message is not "lost".
    await session.connect()
    await session.send_message("Hello again")
    await sim.wait_for("conversation.item.create")
    await asyncio.sleep(0.2)
    await sim.drop(code=1011)
    await until(lambda: session.status == "connected")
    assert len([e for e in watch.errors() if "not confirmed" in e.message]) == 1
    await session.disconnect()
