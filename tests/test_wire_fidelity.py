"""Decoding what real peers send (issue 12): usage, failure reasons, events to ignore quietly,
transcripts built from deltas, explicit nulls, error-like unknown events, what session.updated
confirms; and the simulator's usage figures, strict mode and tool batches in both dialects."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from creds import fresh_credential
from openai_conformance import validate_server
from recorder import Recorder
from test_providers import DIALECTS, TOKEN, dialled, model, next_of
from waiting import until

from device.devtools.simulator import INPUT_AUDIO_TOKENS_PER_S, OUTPUT_AUDIO_TOKENS_PER_S, Simulator
from device.realtime import OpenAICodec, XAICodec
from device.realtime.codec import encode_pcm
from device.realtime.conversation import Conversation
from device.realtime.effects import Configured, Play
from device.realtime.errors import SessionRejected
from device.realtime.events import (
    AudioDelta,
    AudioDone,
    CreateResponse,
    ResponseDone,
    SendToolOutput,
    SendUserText,
    ServerError,
    SessionConfig,
    SessionUpdated,
    SpeechStarted,
    TextDelta,
    TextDone,
    ToolCall,
    TranscriptDelta,
    TranscriptDone,
    TruncateItem,
    UpdateSession,
    Usage,
)
from device.realtime.notices import TextNotice, TranscriptNotice
from device.realtime.providers import OPENAI, XAI, provider_info
from device.realtime.setup import Differences, confirmation_differences
from device.session import RealtimeSession

CODECS = [OpenAICodec, XAICodec]


def wire(**obj: Any) -> str:
    return json.dumps(obj)


@pytest.mark.parametrize("codec_cls", CODECS)
def test_a_failed_response_keeps_the_servers_message_and_code(codec_cls: type) -> None:
    done = codec_cls().decode(wire(type="response.done", response={
        "id": "resp_9", "status": "failed", "output": [],
        "status_details": {"type": "failed", "error": {
            "type": "server_error", "code": "model_overloaded", "message": "Try again later."}},
    }))  # fmt: skip
    assert isinstance(done, ResponseDone)
    assert (done.status, done.error_message, done.error_code) == (
        "failed",
        "Try again later.",
        "model_overloaded",
    )


@pytest.mark.parametrize("codec_cls", CODECS)
@pytest.mark.parametrize(
    "kind",
    [
        "conversation.item.input_audio_transcription.updated",
        "input_audio_buffer.dtmf_event_received",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
    ],
)
def test_documented_events_the_device_does_not_use_are_ignored_quietly(
    codec_cls: type, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert codec_cls().decode(wire(type=kind, item_id="i", event_id="e")) is None
    assert not caplog.records


@pytest.mark.parametrize("codec_cls", CODECS)
@pytest.mark.parametrize(
    ("delta", "done", "done_cls"),
    [
        ("response.output_audio_transcript.delta", "response.output_audio_transcript.done",
         TranscriptDone),
        ("response.output_text.delta", "response.output_text.done", TextDone),
    ],
)  # fmt: skip
def test_a_done_without_text_is_completed_from_the_deltas(
    codec_cls: type, delta: str, done: str, done_cls: type
) -> None:
    codec = codec_cls()
    for piece in ("Bonjour ", None, "de ", "Lyon."):
        codec.decode(wire(type=delta, response_id="r", item_id="item_1", delta=piece))
    key = "transcript" if done_cls is TranscriptDone else "text"
    finished = codec.decode(wire(type=done, response_id="r", item_id="item_1", **{key: None}))
    assert finished == done_cls("item_1", "Bonjour de Lyon.")
    # A .done that carries its text wins, and the deltas are forgotten once used.
    codec.decode(wire(type=delta, response_id="r", item_id="item_2", delta="x"))
    given = codec.decode(wire(type=done, response_id="r", item_id="item_2", **{key: "full"}))
    assert given == done_cls("item_2", "full")


@pytest.mark.parametrize("codec_cls", CODECS)
def test_explicit_null_reads_as_an_absent_optional_field(codec_cls: type) -> None:
    codec = codec_cls()
    started = codec.decode(wire(type="input_audio_buffer.speech_started", item_id=None,
                                audio_start_ms=None))  # fmt: skip
    assert started == SpeechStarted("", 0)
    assert isinstance(codec.decode(wire(type="response.text.delta", item_id="i", delta=None)),
                      TextDelta)  # fmt: skip
    assert isinstance(codec.decode(wire(type="response.output_audio_transcript.delta",
                                        item_id="i", delta=None)), TranscriptDelta)  # fmt: skip
    tool = codec.decode(wire(type="response.function_call_arguments.done", call_id="c",
                             name=None, arguments="{}", item_id=None))  # fmt: skip
    assert tool == ToolCall("c", None, "{}", "")


def _live(codec_cls: type[OpenAICodec]) -> Conversation:
    conv = Conversation(SessionConfig(), provider=codec_cls.info)
    conv.start()
    confirmed = SessionUpdated("s", session_type=codec_cls.info.session_type)
    assert conv.receive(confirmed) == [Configured()]
    return conv


@pytest.mark.parametrize("codec_cls", CODECS)
@pytest.mark.parametrize("audio", ["response.output_audio.delta", "response.audio.delta"])
def test_audio_with_a_null_item_id_is_played(codec_cls: type[OpenAICodec], audio: str) -> None:
    codec, conv = codec_cls(), _live(codec_cls)
    pcm = bytes(range(96)) * 10
    delta = wire(type=audio, response_id="r", item_id=None, delta=encode_pcm(pcm))
    for event in (wire(type="response.created", response={"id": "r"}), delta):
        decoded = codec.decode(event)
        assert decoded is not None
        out = conv.receive(decoded)
    assert Play("", pcm) in out
    done = codec.decode(wire(type=audio.replace("delta", "done"), response_id="r", item_id=None))
    assert isinstance(done, AudioDone) and done.item_id == ""
    # Nothing of an item without an id can be truncated: stopping it sends no truncate.
    assert not [o for o in conv.interrupted("", 500.0) if isinstance(o, TruncateItem)]


@pytest.mark.parametrize("codec_cls", CODECS)
@pytest.mark.parametrize(
    ("delta", "done", "key", "shown"),
    [
        ("response.output_text.delta", "response.output_text.done", "text", TextNotice),
        ("response.text.delta", "response.text.done", "text", TextNotice),
        ("response.output_audio_transcript.delta", "response.output_audio_transcript.done",
         "transcript", lambda text: TranscriptNotice("assistant", text)),
        ("response.audio_transcript.delta", "response.audio_transcript.done", "transcript",
         lambda text: TranscriptNotice("assistant", text)),
    ],
)  # fmt: skip
def test_text_with_a_null_item_id_is_shown(
    codec_cls: type, delta: str, done: str, key: str, shown: Any
) -> None:
    codec, conv = codec_cls(), _live(codec_cls)
    for piece in ("Hello ", "there."):
        assert codec.decode(wire(type=delta, response_id="r", item_id=None, delta=piece))
    finished = codec.decode(wire(type=done, response_id="r", item_id=None, **{key: None}))
    assert finished is not None
    assert conv.receive(finished) == [shown("Hello there.")]


@pytest.mark.parametrize("codec_cls", CODECS)
def test_an_input_transcript_with_a_null_item_id_is_shown(codec_cls: type) -> None:
    codec, conv = codec_cls(), _live(codec_cls)
    heard = codec.decode(wire(type="conversation.item.input_audio_transcription.completed",
                              item_id=None, content_index=0, transcript="hi"))  # fmt: skip
    assert heard is not None
    assert conv.receive(heard) == [TranscriptNotice("user", "hi")]


@pytest.mark.parametrize("codec_cls", CODECS)
def test_unknown_error_like_events_become_server_errors(codec_cls: type) -> None:
    codec = codec_cls()
    by_name = codec.decode(wire(type="response.error", message="quota exhausted", code="q"))
    assert by_name == ServerError(
        "quota exhausted", "q", "server_error", event_type="response.error"
    )
    carried = codec.decode(
        wire(type="session.warning", error={"message": "bad audio", "code": "x", "type": "t"})
    )
    assert carried == ServerError("bad audio", "x", "t", event_type="session.warning")
    bare = codec.decode(wire(type="vendor.error"))
    assert isinstance(bare, ServerError) and "vendor.error" in bare.message


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_session_updated_carries_what_the_server_confirmed(dialect: str) -> None:
    config = SessionConfig(voice="ash" if dialect == "openai" else "rex", turn_detection=None)
    async with dialled(dialect, pace=0) as (_sim, ws, codec):
        await ws.send(codec.encode(UpdateSession(config)))
        updated = await next_of(ws, codec, SessionUpdated)
    assert updated.voice == config.voice
    assert updated.turn_detection == "none"
    assert (updated.input_format, updated.input_rate) == ("audio/pcm", 24000)
    assert (updated.output_format, updated.output_rate) == ("audio/pcm", 24000)
    assert updated.session_type == ("realtime" if dialect == "openai" else None)
    assert confirmation_differences(provider_info(dialect), config, updated) == Differences()


def test_a_server_confirming_something_else_is_named() -> None:
    beta = OpenAICodec().decode(wire(type="session.updated", session={
        "id": "s", "turn_detection": None, "voice": "alloy",
        "input_audio_format": "pcm16"}))  # fmt: skip
    assert isinstance(beta, SessionUpdated)
    found = confirmation_differences(OPENAI, SessionConfig(), beta)
    assert any("session type" in f for f in found.warnings)  # not echoed: told, not fatal
    assert found.problems == ("turn detection 'none' instead of 'server_vad'",)
    assert found.warnings[-1] == "voice 'alloy' instead of 'marin'"  # works, but told
    slow = XAICodec().decode(wire(type="session.updated", session={
        "voice": "eve", "turn_detection": {"type": "server_vad"},
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}}))  # fmt: skip
    assert isinstance(slow, SessionUpdated)
    assert confirmation_differences(XAI, SessionConfig(), slow) == Differences(
        problems=("output audio rate 16000 instead of 24000",)
    )


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_failed_responses_reason_reaches_the_user_end_to_end(dialect: str) -> None:
    async with Simulator(token=TOKEN, dialect=dialect, pace=0) as sim:
        session = RealtimeSession(model(dialect, sim.url))
        watch = Recorder(session)
        await session.connect(fresh_credential(TOKEN, minutes=5))
        sim.fail_next_response("The model is overloaded, try again.", "model_overloaded")
        await session.send_message("Hello?")
        await until(lambda: bool(watch.errors()), what="the failure told")
        (error,) = watch.errors()
        assert error.code == "server"
        assert error.message == (
            "the model's response failed: model_overloaded: The model is overloaded, try again."
        )
        assert session.status == "connected"  # one failed reply does not end the session
        await session.send_message("Hello again?")  # and the next one is answered
        await until(lambda: len([e for e in sim.sent if e["type"] == "response.done"]) == 2)
        assert [e["response"]["status"] for e in sim.sent if e["type"] == "response.done"] == [
            "failed",
            "completed",
        ]
        assert len(watch.errors()) == 1
        await session.disconnect()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_peer_confirming_no_turn_detection_fails_setup_clearly(dialect: str) -> None:
    """Asked for server VAD, the peer confirms ``turn_detection: null``: the mic would stream
    into a buffer nobody answers, so the session is not ``connected`` and says why."""
    async with Simulator(token=TOKEN, dialect=dialect, pace=0) as sim:
        sim.turn_detection_off = True
        session = RealtimeSession(model(dialect, sim.url), config=SessionConfig())
        watch = Recorder(session)
        with pytest.raises(SessionRejected, match="turn detection 'none' instead of 'server_vad'"):
            await session.connect(fresh_credential(TOKEN, minutes=5))
        (updated,) = [e for e in sim.sent if e["type"] == "session.updated"]
        echoed = model(dialect, sim.url).codec().decode(json.dumps(updated))
        assert isinstance(echoed, SessionUpdated) and echoed.turn_detection == "none"
        assert session.status == "closed"
        assert "connected" not in watch.statuses()
        assert not session.send_audio(bytes(960))  # not one sample streams
        (error,) = watch.errors()
        assert error.code == "session"
        assert error.message == (
            f"{dialect} confirmed a different session: "
            "turn detection 'none' instead of 'server_vad'"
        )
        assert sim.connections == 1  # the same configuration would fail again: no retry


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_session_confirmed_as_asked_connects_without_a_warning(dialect: str) -> None:
    async with Simulator(token=TOKEN, dialect=dialect, pace=0) as sim:
        session = RealtimeSession(model(dialect, sim.url), config=SessionConfig())
        watch = Recorder(session)
        await session.connect(fresh_credential(TOKEN, minutes=5))
        assert session.status == "connected"
        assert watch.errors() == []
        await session.disconnect()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_usage_follows_the_audio_and_decodes_into_response_done(dialect: str) -> None:
    async with dialled(dialect, pace=0, reply_seconds=2.0) as (sim, ws, codec):
        await ws.send(codec.encode(UpdateSession(SessionConfig(turn_detection=None))))
        await next_of(ws, codec, SessionUpdated)
        await ws.send(codec.encode(SendUserText("What is the weather in Lyon?")))
        await ws.send(codec.encode(CreateResponse()))
        first = await next_of(ws, codec, ResponseDone)
        await ws.send(codec.encode(CreateResponse()))
        second = await next_of(ws, codec, ResponseDone)
    for done in (first, second):
        assert isinstance(done.usage, Usage)
        assert done.usage.output.audio_tokens == 2 * OUTPUT_AUDIO_TOKENS_PER_S
        assert done.usage.output.text_tokens > 0
        assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
    assert first.usage and second.usage
    assert first.usage.input.cached_tokens == 0
    # The second response's input holds the first reply (2 s at the input rate), cached in part.
    assert second.usage.input.audio_tokens == 2 * INPUT_AUDIO_TOKENS_PER_S
    assert second.usage.input.cached_tokens == first.usage.input_tokens
    assert [json.loads(json.dumps(u)) for u in sim.usage_sent] == [
        e["response"]["usage"] for e in sim.sent if e["type"] == "response.done"
    ]
    if dialect == "openai":
        for event in sim.sent:
            if event["type"] == "response.done":
                validate_server(event)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_strict_mode_refuses_a_create_before_every_output_of_a_tool_batch(
    dialect: str,
) -> None:
    async with dialled(dialect, pace=0, strict=True) as (sim, ws, codec):
        await ws.send(codec.encode(UpdateSession(SessionConfig(turn_detection=None))))
        await next_of(ws, codec, SessionUpdated)
        sim.script_tool_batch([("get_time", {}), ("get_weather", {"city": "Lyon"})])
        await ws.send(codec.encode(CreateResponse()))
        calls = [await next_of(ws, codec, ToolCall), await next_of(ws, codec, ToolCall)]
        await next_of(ws, codec, ResponseDone)
        assert [c.name for c in calls] == ["get_time", "get_weather"]
        # One output, then a create: what the issue measured. Strict mode refuses it.
        await ws.send(codec.encode(SendToolOutput(calls[0].call_id, "12:00")))
        await ws.send(codec.encode(CreateResponse()))
        error = await next_of(ws, codec, ServerError)
        assert error.code == "missing_function_call_output"
        # Every output, then one create: answered.
        await ws.send(codec.encode(SendToolOutput(calls[1].call_id, "sunny")))
        await ws.send(codec.encode(CreateResponse()))
        await next_of(ws, codec, AudioDelta)
        await ws.send(codec.encode(CreateResponse()))  # while that response runs
        busy = await next_of(ws, codec, ServerError)
    assert busy.code == "conversation_already_has_active_response"
    assert sim.refused_creates == [
        "missing_function_call_output",
        "conversation_already_has_active_response",
    ]
