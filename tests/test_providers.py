"""The provider record and what differs between OpenAI and xAI, driven against the simulator's
two dialects over real loopback websockets (issue 12 xAI items, issue 10 part 5)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from creds import fresh_credential
from websockets.asyncio.client import ClientConnection

from device.data import QUESTION
from device.devtools.simulator import Simulator
from device.realtime.codec import Codec
from device.realtime.credentials import parse_credential
from device.realtime.errors import ConfigError, CredentialError
from device.realtime.events import (
    AudioDelta,
    CancelResponse,
    CreateResponse,
    ResponseDone,
    ServerError,
    SessionConfig,
    SessionUpdated,
    SpeechStarted,
    UpdateSession,
)
from device.realtime.models import GrokRealtimeModel, OpenAIRealtimeModel, RealtimeModel, model_for
from device.realtime.providers import OPENAI, XAI, is_cancel_not_active, provider_info
from device.transport import open_connection

TOKEN = "prov-test-SECRET-77"
DIALECTS = ["openai", "xai"]


def model(dialect: str, url: str) -> RealtimeModel:
    return GrokRealtimeModel(url=url) if dialect == "xai" else OpenAIRealtimeModel(url=url)


@asynccontextmanager
async def dialled(dialect: str, **options: Any) -> AsyncIterator[tuple[Simulator, Any, Any]]:
    """A simulator of ``dialect``, a connection to it through the transport, and the codec."""
    async with Simulator(token=TOKEN, dialect=dialect, **options) as sim:
        m = model(dialect, sim.url)
        ws = await open_connection(m, fresh_credential(TOKEN, minutes=5), ping_interval=None)
        try:
            yield sim, ws, m.codec()
        finally:
            await ws.close()


async def next_of(ws: ClientConnection, codec: Codec, cls: type, timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            event = codec.decode(await ws.recv())
            if isinstance(event, cls):
                return event


def test_the_record_holds_each_providers_facts() -> None:
    assert (OPENAI.default_voice, XAI.default_voice) == ("marin", "eve")
    assert set(XAI.voices) == {"eve", "ara", "rex", "sal", "leo"}
    assert (OPENAI.api_key_env, XAI.api_key_env) == ("OPENAI_API_KEY", "XAI_API_KEY")
    assert OPENAI.server_cancels_on_speech and not XAI.server_cancels_on_speech
    assert OPENAI.url_credentials and not XAI.url_credentials
    assert "semantic_vad" in OPENAI.turn_detections and "semantic_vad" not in XAI.turn_detections
    assert GrokRealtimeModel().provider_info is XAI
    assert OpenAIRealtimeModel().provider_info is OPENAI
    assert model_for("xai").name == XAI.default_model and model_for("xai").url == XAI.url
    with pytest.raises(ConfigError, match=r"model\.provider"):
        provider_info("anthropic")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_no_voice_sends_the_providers_default_and_the_server_accepts_it(
    dialect: str,
) -> None:
    async with dialled(dialect, pace=0) as (sim, ws, codec):
        await ws.send(codec.encode(UpdateSession(SessionConfig())))
        updated = await next_of(ws, codec, SessionUpdated)
    expected = provider_info(dialect).default_voice
    assert updated.voice == expected
    update = next(e for e in sim.received if e["type"] == "session.update")["session"]
    sent = update["voice"] if dialect == "xai" else update["audio"]["output"]["voice"]
    assert sent == expected
    assert not sim.errors_sent


@pytest.mark.parametrize(("dialect", "voice"), [("openai", "eve"), ("xai", "marin")])
async def test_the_other_providers_voice_is_refused_by_the_simulator(
    dialect: str, voice: str
) -> None:
    async with dialled(dialect, pace=0) as (_sim, ws, codec):
        await ws.send(codec.encode(UpdateSession(SessionConfig(voice=voice))))
        error = await next_of(ws, codec, ServerError)
    assert error.code == "invalid_value" and voice in error.message


async def test_xai_refuses_semantic_vad_on_the_wire_and_in_config() -> None:
    async with dialled("xai", pace=0) as (_sim, ws, codec):
        await ws.send(codec.encode(UpdateSession(SessionConfig(turn_detection="semantic_vad"))))
        error = await next_of(ws, codec, ServerError)
    assert "semantic_vad" in error.message
    with pytest.raises(ConfigError, match=r"model\.turn_detection.*xAI"):
        XAI.check_config(SessionConfig(turn_detection="semantic_vad"))
    XAI.check_config(SessionConfig(turn_detection=None))
    OPENAI.check_config(SessionConfig(turn_detection="semantic_vad"))


@pytest.mark.parametrize("threshold", [math.nan, -0.1, 1.5, math.inf])
def test_vad_threshold_out_of_range_names_the_key(threshold: float) -> None:
    for info in (OPENAI, XAI):
        with pytest.raises(ConfigError, match=r"model\.vad_threshold"):
            info.check_config(SessionConfig(vad_threshold=threshold))


async def test_a_url_credential_is_refused_for_xai_without_dialling() -> None:
    async with Simulator(dialect="xai") as sim:
        expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        cred = parse_credential({"kind": "url", "url": sim.url, "expiresAt": expires})
        with pytest.raises(CredentialError, match="xAI has no signed websocket URLs"):
            await open_connection(GrokRealtimeModel(url=sim.url), cred)
        assert sim.connections == 0
        # OpenAI does sign URLs: the same credential dials.
        ws = await open_connection(OpenAIRealtimeModel(url=sim.url), cred, ping_interval=None)
        await ws.close()
        assert sim.connections == 1


def speech_then_silence() -> bytes:
    with wave.open(str(QUESTION)) as w:
        return bytes(w.readframes(w.getnframes())) + bytes(48000)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_barge_in_cancels_on_the_server_only_where_the_record_says_so(
    dialect: str,
) -> None:
    """OpenAI cancels the running response on speech_started; xAI keeps talking until the
    client sends response.cancel, and its "nothing to cancel" error is recognised as benign."""
    info = provider_info(dialect)
    async with dialled(dialect, pace=1.0, reply_seconds=6.0) as (sim, ws, codec):
        await ws.send(codec.encode(UpdateSession(SessionConfig())))
        await next_of(ws, codec, SessionUpdated)
        await ws.send(codec.encode(CreateResponse()))
        await sim.wait_for("response.create")
        pcm = speech_then_silence()[: 48 * 1500]  # 1.5 s of the question: speech starts
        for i in range(0, len(pcm), 960):
            chunk = base64.b64encode(pcm[i : i + 960]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        await next_of(ws, codec, SpeechStarted)
        if info.server_cancels_on_speech:
            done = await next_of(ws, codec, ResponseDone)
            assert (done.status, done.reason) == ("cancelled", "turn_detected")
        else:
            for _ in range(8):  # 320 ms more of the reply: the server did not stop it
                await next_of(ws, codec, AudioDelta)
            assert not [e for e in sim.sent if e["type"] == "response.done"]
            await ws.send(codec.encode(CancelResponse()))
            done = await next_of(ws, codec, ResponseDone)
            assert (done.status, done.reason) == ("cancelled", "client_cancelled")
        await ws.send(codec.encode(CancelResponse()))  # nothing running any more
        error = await next_of(ws, codec, ServerError)
        assert is_cancel_not_active(info, error.code, error.message)
