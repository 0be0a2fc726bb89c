"""The wire codecs: conformance with openai-python's GA types, round trips, fuzzing."""

from __future__ import annotations

import contextlib
import json
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai_conformance import validate_client, validate_server

from device.realtime import OpenAICodec, ProtocolError, XAICodec
from device.realtime.events import (
    AppendAudio,
    AudioCommitted,
    AudioDelta,
    AudioDone,
    CachedTokens,
    CancelResponse,
    ClearAudio,
    CommitAudio,
    CreateResponse,
    InputTokens,
    InputTranscript,
    OutputTokens,
    ResponseCreated,
    ResponseDone,
    SendToolOutput,
    SendUserText,
    ServerError,
    SessionConfig,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallStarted,
    ToolSpec,
    TranscriptDelta,
    TranscriptDone,
    TruncateItem,
    UpdateSession,
    Usage,
    UserTextAdded,
)
from device.realtime.events import ClientEvent as ClientEventUnion
from device.realtime.events import ServerEvent as ServerEventUnion

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

CLIENT_EVENTS = [
    UpdateSession(SessionConfig()),
    UpdateSession(SessionConfig(turn_detection=None, transcription_model=None)),
    UpdateSession(
        SessionConfig(
            instructions="Be brief.",
            voice="cedar",
            turn_detection="server_vad",
            vad_threshold=0.6,
            silence_duration_ms=400,
            prefix_padding_ms=300,
            tools=(WEATHER,),
        )
    ),
    UpdateSession(SessionConfig(turn_detection="semantic_vad", output_modalities=("text",))),
    AppendAudio(b"\x01\x00\xff\x7f" * 240),
    CommitAudio(),
    ClearAudio(),
    SendUserText("What's the weather in Lyon?"),
    SendUserText("And tomorrow?", "msg_0123456789abcdef"),
    SendToolOutput("call_1", json.dumps({"temp_c": 21})),
    CreateResponse(),
    CancelResponse(),
    TruncateItem("item_9", 1234),
]

SERVER_EVENTS = [
    SessionCreated(""),
    SessionUpdated("", session_type="realtime"),
    SessionUpdated(
        "",  # the GA schema has no session id (real servers add one)
        session_type="realtime",
        turn_detection="server_vad",
        voice="marin",
        input_format="audio/pcm",
        input_rate=24000,
        output_format="audio/pcm",
        output_rate=24000,
    ),
    SessionUpdated("", session_type="realtime", turn_detection="none"),
    UserTextAdded("item_t1"),
    ServerError(
        "Your session hit the maximum duration of 60 minutes.",
        "session_expired",
        "invalid_request_error",
    ),
    ServerError("boom"),
    SpeechStarted("item_u1", 120),
    SpeechStopped("item_u1", 1800),
    AudioCommitted("item_u1"),
    ResponseCreated("resp_1"),
    ResponseDone("resp_1", "cancelled"),
    ResponseDone("resp_1", "cancelled", reason="turn_detected"),
    ResponseDone(
        "resp_2",
        usage=Usage(
            total_tokens=310,
            input_tokens=110,
            output_tokens=200,
            input=InputTokens(
                audio_tokens=100,
                text_tokens=10,
                cached_tokens=64,
                cached=CachedTokens(audio_tokens=60, text_tokens=4),
            ),
            output=OutputTokens(audio_tokens=180, text_tokens=20),
        ),
    ),
    ResponseDone(
        "resp_3", "failed", error_message="The model is overloaded.", error_code="server_error"
    ),
    AudioDelta("resp_1", "item_a1", b"\x00\x01" * 480),
    AudioDone("resp_1", "item_a1"),
    TranscriptDelta("item_a1", "Hel"),
    TranscriptDone("item_a1", "Hello there."),
    TextDelta("item_a1", "Hi"),
    TextDone("item_a1", "Hi!"),
    InputTranscript("item_u1", "What's the weather?"),
    ToolCallStarted("item_f1", "call_1", "get_weather"),
    ToolCall("call_1", "get_weather", '{"city":"Lyon"}', "item_f1"),
]


@pytest.mark.parametrize(
    ("union", "examples"),
    [(ClientEventUnion, CLIENT_EVENTS), (ServerEventUnion, SERVER_EVENTS)],
    ids=["client", "server"],
)
def test_the_round_trips_cover_every_event_class(union: Any, examples: list[Any]) -> None:
    """Wyoming's rule: a new event class without a round-trip example fails here."""
    missing = set(typing.get_args(union)) - {type(e) for e in examples}
    assert not missing, f"no round-trip example for {sorted(c.__name__ for c in missing)}"


@pytest.mark.parametrize("event", CLIENT_EVENTS, ids=lambda e: type(e).__name__)
def test_every_client_event_is_valid_ga_with_no_unknown_keys(event: Any) -> None:
    validate_client(json.loads(OpenAICodec().encode(event)))


@pytest.mark.parametrize("event", CLIENT_EVENTS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("codec_cls", [OpenAICodec, XAICodec])
def test_client_event_round_trip(codec_cls: type[OpenAICodec], event: Any) -> None:
    codec = codec_cls()
    back = codec.decode_client(codec.encode(event))
    if isinstance(event, UpdateSession):
        # An empty voice means "the provider's default": the wire carries the resolved one.
        event = UpdateSession(codec.info.resolve(event.config))
    if isinstance(event, UpdateSession) and codec_cls is XAICodec:
        # xAI has no input transcription setting nor output modalities; the rest survives.
        assert back.config.voice == event.config.voice  # type: ignore[union-attr]
        assert back.config.turn_detection == event.config.turn_detection  # type: ignore[union-attr]
        assert back.config.tools == event.config.tools  # type: ignore[union-attr]
        assert back.config.instructions == event.config.instructions  # type: ignore[union-attr]
    else:
        assert back == event


@pytest.mark.parametrize("event", SERVER_EVENTS, ids=lambda e: type(e).__name__)
def test_server_event_round_trip_and_examples_are_valid_ga(event: Any) -> None:
    codec = OpenAICodec()
    wire = codec.encode_server(event)
    validate_server(wire)
    assert codec.decode(json.dumps(wire)) == event


def test_session_update_is_ga_shaped_not_beta() -> None:
    wire = json.loads(OpenAICodec().encode(UpdateSession(SessionConfig(voice="marin"))))
    session = wire["session"]
    assert session["type"] == "realtime"
    assert "voice" not in session and "modalities" not in session
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}


def test_xai_session_update_is_flat() -> None:
    wire = json.loads(
        XAICodec().encode(UpdateSession(SessionConfig(voice="eve", tools=(WEATHER,))))
    )
    session = wire["session"]
    assert "type" not in session
    assert session["voice"] == "eve"
    assert session["turn_detection"] == {"type": "server_vad"}
    assert session["tools"][0]["name"] == "get_weather"


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (
            {"type": "response.audio.delta", "response_id": "r", "item_id": "i", "delta": "AAA="},
            AudioDelta("r", "i", b"\x00\x00"),
        ),
        (
            {"type": "response.audio_transcript.done", "item_id": "i", "transcript": "hi"},
            TranscriptDone("i", "hi"),
        ),
        ({"type": "response.text.done", "item_id": "i", "text": "hi"}, TextDone("i", "hi")),
        (
            {"type": "response.function_call_arguments.done", "call_id": "c", "arguments": "{}"},
            ToolCall("c", None, "{}"),
        ),
    ],
)
def test_beta_spellings_and_missing_tool_name_are_accepted(
    wire: dict[str, Any], expected: Any
) -> None:
    assert OpenAICodec().decode(json.dumps(wire)) == expected


def test_unknown_and_keepalive_events_are_ignored_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    codec = XAICodec()
    with caplog.at_level("INFO", logger="device.realtime"):
        for _ in range(5):
            assert codec.decode('{"type":"brand.new.event","x":1}') is None
        assert codec.decode('{"type":"ping"}') is None
        assert codec.decode('{"type":"conversation.created","conversation":{}}') is None
    lines = [r.getMessage() for r in caplog.records if "brand.new.event" in r.getMessage()]
    assert len(lines) == 1


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"{not json", "malformed JSON"),
        ("[1,2]", "JSON object"),
        ('{"no":"type"}', "type"),
        ('{"type":"response.output_audio.delta","item_id":"i","delta":"AA=="}', "response_id"),
        (
            '{"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"%%%"}',
            "base64",
        ),
        (
            '{"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"AAA"}',
            "base64",
        ),
        (
            '{"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"AQ=="}',
            "odd byte count",
        ),
        ('{"type":"response.done","response":"done"}', "response"),
        ('{"type":"error","error":{"message":5}}', "message"),
        (b"\xff\xfe\x00garbage", "malformed JSON"),
    ],
)
def test_malformed_input_is_one_protocol_error_naming_the_problem(data: Any, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle):
        OpenAICodec().decode(data)


LONG = "x" * 257  # one past the longest id the codec accepts
FIT = "y" * 256


@pytest.mark.parametrize("codec_cls", [OpenAICodec, XAICodec])
@pytest.mark.parametrize(
    ("wire", "field"),
    [
        ({"type": "response.output_audio.delta", "response_id": LONG, "item_id": "i",
          "delta": "AAAAAA=="}, "response_id"),
        ({"type": "response.output_audio.delta", "response_id": "r", "item_id": LONG,
          "delta": "AAAAAA=="}, "item_id"),
        ({"type": "response.output_audio.done", "response_id": "r", "item_id": LONG}, "item_id"),
        ({"type": "response.output_text.delta", "item_id": LONG, "delta": "a"}, "item_id"),
        ({"type": "response.output_audio_transcript.done", "item_id": LONG}, "item_id"),
        ({"type": "input_audio_buffer.speech_started", "item_id": LONG}, "item_id"),
        ({"type": "response.created", "response": {"id": LONG}}, "id"),
        ({"type": "response.done", "response": {"id": LONG, "status": "completed"}}, "id"),
        ({"type": "response.output_item.added", "item": {"type": "function_call", "id": "i",
          "call_id": LONG, "name": "f"}}, "call_id"),
        ({"type": "response.output_item.added", "item": {"type": "function_call", "id": "i",
          "call_id": "c", "name": LONG}}, "name"),
        ({"type": "response.function_call_arguments.done", "call_id": LONG, "arguments": "{}"},
         "call_id"),
        ({"type": "response.function_call_arguments.done", "call_id": "c", "name": LONG,
          "arguments": "{}"}, "name"),
    ],
)  # fmt: skip
def test_an_overlong_id_or_tool_name_is_a_protocol_error_naming_the_field(
    codec_cls: type[OpenAICodec], wire: dict[str, Any], field: str
) -> None:
    """The conversation remembers hundreds of ids and names: a peer cannot make each one
    megabytes long. 256 characters still pass (OpenAI's are ~30)."""
    codec = codec_cls()
    with pytest.raises(ProtocolError, match=f"'{field}' is 257 characters long"):
        codec.decode(json.dumps(wire))
    fits = json.loads(json.dumps(wire).replace(LONG, FIT))
    assert codec.decode(json.dumps(fits)) is not None


def test_an_unknown_type_is_remembered_and_logged_cut_short(
    caplog: pytest.LogCaptureFixture,
) -> None:
    codec = OpenAICodec()
    with caplog.at_level("INFO", logger="device.realtime"):
        for n in range(300):
            assert codec.decode(json.dumps({"type": f"{n:03d}" + "z" * 100_000})) is None
    remembered = codec._unknown.seen
    assert len(remembered) == 256 and all(len(kind) <= 80 for kind in remembered)
    assert caplog.records and all(len(r.getMessage()) < 200 for r in caplog.records)
    error_like = codec.decode(json.dumps({"type": "e" * 100_000 + ".error"}))
    assert isinstance(error_like, ServerError) and len(error_like.message) < 200
    assert len(error_like.event_type) <= 80


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
event_types = st.sampled_from(
    [
        "response.output_audio.delta",
        "response.audio.delta",
        "response.done",
        "response.created",
        "error",
        "session.updated",
        "response.function_call_arguments.done",
        "response.output_item.added",
        "input_audio_buffer.speech_started",
        "conversation.item.input_audio_transcription.completed",
        "response.output_audio_transcript.done",
        "response.output_text.done",
        "zzz",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes_only_raise_protocol_error(data: bytes) -> None:
    for codec in (OpenAICodec(), XAICodec()):
        with contextlib.suppress(ProtocolError):
            codec.decode(data)


@settings(max_examples=600, deadline=None)
@given(
    event_types,
    st.dictionaries(
        st.sampled_from(
            [
                "response_id",
                "item_id",
                "delta",
                "response",
                "error",
                "session",
                "call_id",
                "arguments",
                "name",
                "item",
                "transcript",
                "text",
                "audio_start_ms",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_fuzz_event_shaped_json_only_raises_protocol_error(
    kind: str, fields: dict[str, Any]
) -> None:
    data = json.dumps({"type": kind, **fields})
    for codec in (OpenAICodec(), XAICodec()):
        with contextlib.suppress(ProtocolError):
            codec.decode(data)


@pytest.mark.parametrize("codec_cls", [OpenAICodec, XAICodec])
def test_a_user_text_item_added_is_a_confirmation_and_other_items_are_not(
    codec_cls: type[OpenAICodec],
) -> None:
    def added(role: str, content: list[dict[str, Any]], kind: str = "added") -> str:
        item = {"id": "item_1", "type": "message", "role": role, "content": content}
        return json.dumps({"type": f"conversation.item.{kind}", "item": item})

    codec = codec_cls()
    text = [{"type": "input_text", "text": "What's the weather?"}]
    assert codec.decode(added("user", text)) == UserTextAdded("item_1")
    assert codec.decode(added("user", text, "created")) == UserTextAdded("item_1")  # beta
    assert codec.decode(added("user", [{"type": "input_audio", "transcript": None}])) is None
    assert codec.decode(added("assistant", [{"type": "output_audio"}])) is None
    with pytest.raises(ProtocolError):
        codec.decode(json.dumps({"type": "conversation.item.added", "item": "nope"}))
