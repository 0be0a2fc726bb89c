"""The conversation core as plain function calls: no socket, no sleep, no clock."""

from __future__ import annotations

import json

import pytest

from device.realtime.batches import MAX_CALLS_IN_FLIGHT
from device.realtime.conversation import MAX_IDS, Conversation
from device.realtime.effects import (
    Configured,
    Output,
    Play,
    PurgeAudio,
    RunTool,
    SessionExpired,
    SetupFailed,
    StopPlayback,
    WatchPlayback,
    clean_text,
)
from device.realtime.events import (
    AppendAudio,
    AudioDelta,
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
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    ToolCallStarted,
    TranscriptDone,
    TruncateItem,
    UpdateSession,
    Usage,
    UserTextAdded,
)
from device.realtime.notices import (
    ErrorNotice,
    MuteChanged,
    ResponseStarted,
    ResponseUsage,
    SpeakingChanged,
    TranscriptNotice,
    UserSpeech,
)
from device.realtime.providers import OPENAI, XAI, ProviderInfo

MS_20 = bytes(960)  # 20 ms of 24 kHz mono s16le
PTT = SessionConfig(turn_detection=None)


#: What OpenAI GA confirms at the least (``session.type``); other fields are not echoed.
GA_UPDATED = SessionUpdated("sess_1", session_type="realtime")


def live(config: SessionConfig | None = None, provider: ProviderInfo = OPENAI) -> Conversation:
    conv = Conversation(config or SessionConfig(), provider=provider)
    assert isinstance(conv.start(), UpdateSession)
    updated = GA_UPDATED if provider.session_type else SessionUpdated("sess_1")
    assert conv.receive(updated) == [Configured()]
    return conv


def speak(
    conv: Conversation, response: str = "resp_1", item: str = "item_1", ms: int = 1000
) -> None:
    """The model starts a response and sends ``ms`` of audio for ``item``."""
    conv.receive(ResponseCreated(response))
    for _ in range(ms // 20):
        conv.receive(AudioDelta(response, item, MS_20))


def kinds(outputs: list[Output]) -> list[type]:
    return [type(o) for o in outputs]


# ------------------------------------------------------------------ purity


# ------------------------------------------------------------------ setup


def test_start_configures_and_session_updated_makes_it_live() -> None:
    conv = Conversation(SessionConfig(voice="cedar"))
    assert conv.start() == UpdateSession(SessionConfig(voice="cedar"))
    assert conv.send_audio(MS_20) == "offline"  # not confirmed yet: nothing streams
    assert conv.receive(GA_UPDATED) == [Configured()]
    assert conv.send_audio(MS_20) == AppendAudio(MS_20)


@pytest.mark.parametrize(
    ("echo", "named"),
    [
        (
            {"session_type": "realtime", "turn_detection": "none"},
            "turn detection 'none' instead of 'server_vad'",
        ),
        ({"session_type": "transcription"}, "session type 'transcription'"),
        (
            {"session_type": "realtime", "input_format": "audio/pcmu"},
            "input audio format 'audio/pcmu'",
        ),
        (
            {"session_type": "realtime", "output_rate": 16000},
            "output audio rate 16000 instead of 24000",
        ),
    ],
)
def test_a_session_confirmed_differently_is_refused_naming_the_difference(
    echo: dict[str, object], named: str
) -> None:
    conv = Conversation(SessionConfig(), provider=OPENAI)
    conv.start()
    (failed,) = conv.receive(SessionUpdated("s", **echo))  # type: ignore[arg-type]
    assert isinstance(failed, SetupFailed) and failed.rejected
    assert named in failed.message
    assert conv.send_audio(MS_20) == "offline"


def test_a_different_voice_is_a_warning_not_a_failure() -> None:
    conv = Conversation(SessionConfig(voice="marin"))
    conv.start()
    echo = SessionUpdated(
        "s", "realtime", "server_vad", "alloy", "audio/pcm", 24000, "audio/pcm", 24000
    )
    out = conv.receive(echo)
    assert out[-1] == Configured()
    (warning,) = out[:-1]
    assert warning == ErrorNotice("session", "openai confirmed voice 'alloy' instead of 'marin'")


def test_a_ga_peer_that_does_not_name_the_session_type_is_warned_about() -> None:
    conv = Conversation(SessionConfig(), provider=OPENAI)
    conv.start()
    (warning, configured) = conv.receive(SessionUpdated("s"))
    assert configured == Configured()
    assert isinstance(warning, ErrorNotice) and "session type 'realtime'" in warning.message


def test_the_providers_default_voice_is_what_an_empty_voice_is_compared_with() -> None:
    conv = Conversation(SessionConfig(turn_detection=None), provider=XAI)
    conv.start()
    assert conv.receive(SessionUpdated("s", turn_detection="none", voice="eve")) == [Configured()]


def test_an_error_before_session_updated_fails_the_setup() -> None:
    conv = Conversation(SessionConfig(), provider=OPENAI)
    conv.start()
    (refused,) = conv.receive(ServerError("bad voice", "invalid_value", "invalid_request_error"))
    assert refused == SetupFailed(
        "openai refused the session configuration: invalid_value: bad voice", True
    )
    conv.start()
    (failed,) = conv.receive(ServerError("overloaded", None, "server_error"))
    assert isinstance(failed, SetupFailed) and not failed.rejected


# ------------------------------------------------------------------ mute


def test_muted_means_no_frame_is_sent_and_queued_frames_are_purged() -> None:
    conv = live()
    assert conv.send_audio(MS_20) == AppendAudio(MS_20)
    assert conv.mute() == [PurgeAudio(), MuteChanged(True)]
    assert conv.mute() == []  # no second notice
    assert all(conv.send_audio(MS_20) == "muted" for _ in range(50))
    assert conv.unmute() == [MuteChanged(False)]
    assert conv.send_audio(MS_20) == AppendAudio(MS_20)


def test_mute_survives_a_reconnect() -> None:
    conv = live()
    conv.mute()
    conv.connection_lost()
    conv.start()
    conv.receive(GA_UPDATED)
    assert conv.send_audio(MS_20) == "muted"


# ------------------------------------------------------------------ barge-in


def test_barge_in_stops_playback_drops_late_audio_and_truncates_to_what_was_heard() -> None:
    conv = live()
    speak(conv, ms=1000)
    assert conv.speaking
    assert conv.receive(SpeechStarted("user_1")) == [StopPlayback(), UserSpeech(True)]
    # the driver silenced the speaker after 420 ms had been heard
    assert conv.interrupted("item_1", 420.7) == [
        SpeakingChanged(False),
        TruncateItem("item_1", 420),
    ]
    # audio the server still sends for the interrupted response is not played
    assert conv.receive(AudioDelta("resp_1", "item_1", MS_20)) == []


def test_the_truncate_never_claims_more_than_the_model_sent() -> None:
    conv = live()
    speak(conv, ms=200)
    conv.receive(SpeechStarted("u"))
    assert conv.interrupted("item_1", 5000)[-1] == TruncateItem("item_1", 200)
    assert conv.interrupted("unknown_item", 300) == [TruncateItem("unknown_item", 0)]


def test_xai_barge_in_also_cancels_the_response_and_openai_does_not() -> None:
    xai = live(provider=XAI)
    speak(xai)
    assert xai.receive(SpeechStarted("u")) == [StopPlayback(), CancelResponse(), UserSpeech(True)]
    openai = live()
    speak(openai)
    assert openai.receive(SpeechStarted("u")) == [StopPlayback(), UserSpeech(True)]
    idle = live(provider=XAI)
    assert idle.receive(SpeechStarted("u")) == [StopPlayback(), UserSpeech(True)]  # no cancel


@pytest.mark.parametrize("provider", [OPENAI, XAI])
def test_a_local_barge_in_wake_word_does_what_speech_started_does(provider: ProviderInfo) -> None:
    by_server, local = live(provider=provider), live(provider=provider)
    speak(by_server)
    speak(local)
    # The same silence and cancel; only the server's VAD reports that the user is speaking.
    by_server_out = by_server.receive(SpeechStarted("u"))
    assert by_server_out[-1] == UserSpeech(True)
    assert local.barge_in() == by_server_out[:-1]
    assert local.interrupted("item_1", 300) == [SpeakingChanged(False), TruncateItem("item_1", 300)]
    assert local.receive(AudioDelta("resp_1", "item_1", MS_20)) == []  # the rest is not played
    assert Conversation(SessionConfig(), provider=provider).barge_in() == []  # not live


@pytest.mark.parametrize("provider", [OPENAI, XAI])
def test_cancelling_nothing_is_not_reported_as_an_error(provider: ProviderInfo) -> None:
    conv = live(provider=provider)
    assert conv.receive(ServerError("no response", "response_cancel_not_active")) == []
    xai_text = "Cancellation failed: no active response found"
    assert conv.receive(ServerError(xai_text, None, "invalid_request_error")) == []
    # Any other error still reaches the user.
    (notice,) = conv.receive(ServerError("Cancellation failed: busy", "oops"))
    assert isinstance(notice, ErrorNotice) and "busy" in notice.message


# ------------------------------------------------------------------ speaking state


def test_speaking_lasts_until_the_speaker_is_silent_not_until_the_server_is_done() -> None:
    conv = live()
    conv.receive(ResponseCreated("r"))
    out = conv.receive(AudioDelta("r", "i", MS_20))
    assert out == [SpeakingChanged(True), Play("i", MS_20)]
    assert conv.receive(AudioDelta("r", "i", MS_20)) == [Play("i", MS_20)]  # no second notice
    assert conv.receive(ResponseDone("r")) == [WatchPlayback(), ResponseUsage("r", None)]
    assert conv.speaking  # the burst is still playing
    assert conv.playback_finished() == [SpeakingChanged(False)]


def test_a_newer_response_keeps_the_model_speaking() -> None:
    conv = live()
    speak(conv, "r1", "i1", 100)
    conv.receive(ResponseDone("r1"))
    speak(conv, "r2", "i2", 100)
    assert conv.playback_finished() == []  # r2 is under way
    assert conv.speaking


def test_transcripts_become_notices() -> None:
    conv = live()
    assert conv.receive(InputTranscript("u", "hello")) == [TranscriptNotice("user", "hello")]
    assert conv.receive(TranscriptDone("a", "hi!")) == [TranscriptNotice("assistant", "hi!")]
    assert conv.receive(TranscriptDone("a", "")) == []


# ------------------------------------------------------------------ messages


def test_unconfirmed_messages_are_reported_when_the_connection_drops() -> None:
    conv = live()
    first = conv.send_message("one")
    assert kinds(first) == [SendUserText, CreateResponse]
    conv.send_message("two")
    assert isinstance(first[0], SendUserText)
    conv.receive(UserTextAdded(first[0].item_id))  # the server confirmed the first
    assert conv.unconfirmed == 1
    (notice,) = conv.connection_lost()
    assert isinstance(notice, ErrorNotice) and notice.code == "network"
    assert notice.message.startswith("1 message(s) from send_message were not confirmed")
    assert conv.connection_lost() == []  # reported once


def test_a_deliberate_disconnect_reports_nothing() -> None:
    conv = live()
    conv.send_message("one")
    assert conv.connection_lost(report=False) == []


def test_an_empty_message_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        live().send_message("  ")


# ------------------------------------------------------------------ push-to-talk


def test_push_to_talk_streams_only_while_held_and_commits_the_turn() -> None:
    conv = live(PTT)
    assert conv.send_audio(MS_20) == "push_to_talk"
    assert conv.begin_turn() == [StopPlayback(), ClearAudio()]
    for _ in range(5):
        assert conv.send_audio(MS_20) == AppendAudio(MS_20)
    assert conv.end_turn() == [CommitAudio(), CreateResponse()]
    assert conv.send_audio(MS_20) == "push_to_talk"


def test_pressing_talk_while_the_model_answers_cancels_it_first() -> None:
    conv = live(PTT)
    speak(conv)
    assert conv.begin_turn() == [StopPlayback(), CancelResponse(), ClearAudio()]


def test_a_push_to_talk_turn_under_100_ms_is_not_committed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    conv = live(PTT)
    conv.begin_turn()
    for _ in range(4):  # 80 ms
        conv.send_audio(MS_20)
    caplog.set_level("INFO", "device.conversation")
    assert conv.end_turn() == []
    assert "80 ms is too short" in caplog.text
    conv.begin_turn()
    assert conv.end_turn() == []  # nothing said at all
    conv.begin_turn()
    for _ in range(5):  # 100 ms
        conv.send_audio(MS_20)
    assert conv.end_turn() == [CommitAudio(), CreateResponse()]
    conv.begin_turn()
    for _ in range(5):  # 100 ms offered, but one frame was lost on the way (a full backlog)
        conv.send_audio(MS_20)
    conv.audio_lost(len(MS_20))
    assert conv.end_turn() == []  # the server would hold 80 ms: not committed


# ------------------------------------------------------------------ tools


def test_tool_calls_of_one_response_get_exactly_one_response_create_after_all_outputs() -> None:
    conv = live()
    conv.receive(ResponseCreated("r"))
    assert conv.receive(ToolCall("c1", "weather", '{"city": "Lyon"}')) == [
        RunTool("c1", "weather", '{"city": "Lyon"}')
    ]
    assert conv.receive(ToolCall("c2", "time", "{}")) == [RunTool("c2", "time", "{}")]
    assert conv.tool_result("c2", '"noon"') == [SendToolOutput("c2", '"noon"')]  # r not done
    assert conv.receive(ResponseDone("r")) == [ResponseUsage("r", None)]  # c1 still running
    out = conv.tool_result("c1", '{"t": 21}')
    assert out == [SendToolOutput("c1", '{"t": 21}'), CreateResponse()]
    assert conv.tool_result("c1", "again") == []  # answered once


def test_outputs_that_arrive_before_the_response_is_done_wait_for_it() -> None:
    conv = live()
    conv.receive(ResponseCreated("r"))
    conv.receive(ToolCall("c1", "a", "{}"))
    conv.receive(ToolCall("c2", "b", "{}"))
    assert conv.tool_result("c1", "1") == [SendToolOutput("c1", "1")]
    assert conv.tool_result("c2", "2") == [SendToolOutput("c2", "2")]
    assert conv.receive(ResponseDone("r")) == [CreateResponse(), ResponseUsage("r", None)]


def test_a_slow_tool_never_holds_up_audio_mute_or_barge_in() -> None:
    conv = live()
    conv.receive(ResponseCreated("r"))
    conv.receive(ToolCall("slow", "lookup", "{}"))
    conv.receive(ResponseDone("r"))
    assert conv.send_audio(MS_20) == AppendAudio(MS_20)
    assert conv.mute() == [PurgeAudio(), MuteChanged(True)]
    speak(conv, "r2", "i2", 100)
    assert conv.receive(SpeechStarted("u")) == [StopPlayback(), UserSpeech(True)]
    assert conv.tool_result("slow", "{}") == [SendToolOutput("slow", "{}"), CreateResponse()]


def test_a_tool_name_given_only_when_the_call_started_is_used() -> None:
    conv = live()
    conv.receive(ToolCallStarted("item", "c1", "weather"))
    assert conv.receive(ToolCall("c1", None, "{}")) == [RunTool("c1", "weather", "{}")]


def test_a_cancelled_response_sends_its_outputs_but_asks_for_no_reply() -> None:
    conv = live()
    conv.receive(ResponseCreated("r"))
    conv.receive(ToolCall("c1", "a", "{}"))
    conv.receive(ResponseDone("r", "cancelled"))
    assert conv.tool_result("c1", "{}") == [SendToolOutput("c1", "{}")]


def test_results_of_an_earlier_connection_are_not_sent_to_the_new_one() -> None:
    conv = live()
    conv.receive(ToolCall("c1", "a", "{}"))
    conv.connection_lost()
    conv.start()
    conv.receive(GA_UPDATED)
    assert conv.tool_result("c1", "{}") == []


def test_a_flood_of_tool_calls_is_answered_without_running_them_all() -> None:
    conv = live()
    ran = [o for i in range(1000) for o in conv.receive(ToolCall(f"c{i}", "x", "{}"))]
    running = [o for o in ran if isinstance(o, RunTool)]
    refused = [o for o in ran if isinstance(o, SendToolOutput)]
    assert len(running) == 32 and len(refused) == 1000 - 32
    assert "error" in json.loads(refused[0].output)


def _fill_tool_slots(conv: Conversation, n: int = MAX_CALLS_IN_FLIGHT) -> None:
    """``n`` slow calls of response ``r0`` that keep running."""
    conv.receive(ResponseCreated("r0"))
    for i in range(n):
        assert conv.receive(ToolCall(f"slow{i}", "x", "{}")) == [RunTool(f"slow{i}", "x", "{}")]


def _creates(out: list[Output]) -> int:
    return sum(isinstance(o, CreateResponse) for o in out)


def test_a_response_whose_every_call_is_refused_still_gets_its_reply() -> None:
    conv = live()
    _fill_tool_slots(conv)
    conv.receive(ResponseCreated("r1"))
    refused = [o for c in ("a", "b") for o in conv.receive(ToolCall(c, "x", "{}"))]
    assert [type(o) for o in refused] == [SendToolOutput, SendToolOutput]  # no create mid-response
    assert all("error" in json.loads(o.output) for o in refused if isinstance(o, SendToolOutput))
    done = conv.receive(ResponseDone("r1"))
    assert done == [CreateResponse(), ResponseUsage("r1", None)]
    # r0's batch is still answered on its own, once.
    assert _creates(conv.receive(ResponseDone("r0"))) == 0
    late = [o for i in range(MAX_CALLS_IN_FLIGHT) for o in conv.tool_result(f"slow{i}", "{}")]
    assert _creates(late) == 1 and late[-1] == CreateResponse()


def test_a_refused_call_counts_as_answered_next_to_a_running_one() -> None:
    conv = live()
    _fill_tool_slots(conv, MAX_CALLS_IN_FLIGHT - 1)
    conv.receive(ResponseCreated("r1"))
    assert conv.receive(ToolCall("a", "x", "{}")) == [RunTool("a", "x", "{}")]
    (refusal,) = conv.receive(ToolCall("b", "x", "{}"))
    assert isinstance(refusal, SendToolOutput) and refusal.call_id == "b"
    assert _creates(conv.receive(ResponseDone("r1"))) == 0  # "a" is still running
    assert conv.tool_result("a", "1") == [SendToolOutput("a", "1"), CreateResponse()]


def test_a_refused_call_outside_any_response_is_answered_on_its_own() -> None:
    conv = live()
    conv.receive(ResponseCreated("r0"))
    for i in range(MAX_CALLS_IN_FLIGHT):
        conv.receive(ToolCall(f"slow{i}", "x", "{}"))
    conv.receive(ResponseDone("r0"))  # the slow calls keep running
    out = conv.receive(ToolCall("late", "x", "{}"))  # no response is active
    assert [type(o) for o in out] == [SendToolOutput, CreateResponse]


# ------------------------------------------------------------------ bounded memory


def test_per_item_and_per_call_maps_stay_bounded() -> None:
    conv = live()
    for i in range(2_000):
        conv.receive(ResponseCreated(f"r{i}"))
        conv.receive(AudioDelta(f"r{i}", f"i{i}", b"\0\0"))
        conv.receive(SpeechStarted("u"))
        conv.receive(ToolCallStarted(f"it{i}", f"c{i}", "n" * 100))
    assert len(conv._received_ms) <= MAX_IDS
    assert len(conv._interrupted) <= MAX_IDS
    assert len(conv._tool_names) <= MAX_IDS


# ------------------------------------------------------------------ errors


def test_a_failed_response_passes_the_servers_reason_through() -> None:
    conv = live()
    conv.receive(ResponseCreated("r"))
    done = ResponseDone(
        "r", "failed", error_message="Rate limit reached", error_code="rate_limit_exceeded"
    )
    assert conv.receive(done) == [
        ErrorNotice(
            "server", "the model's response failed: rate_limit_exceeded: Rate limit reached"
        ),
        ResponseUsage("r", None),
    ]
    assert conv.receive(ResponseDone("r2", "failed")) == [
        ErrorNotice("server", "the model's response failed"),
        ResponseUsage("r2", None),
    ]


def test_server_error_texts_are_escaped_cut_and_throttled() -> None:
    conv = live()
    forged = "oops\nDec 03 22:00:00 pi systemd[1]: Started evil.service"
    (notice,) = conv.receive(ServerError(forged, "x"))
    assert isinstance(notice, ErrorNotice)
    assert "\n" not in notice.message and "oops\\nDec 03" in notice.message
    (long,) = conv.receive(ServerError("y" * 100_000, "big"))
    assert isinstance(long, ErrorNotice) and len(long.message) <= 502
    shown = [n for _ in range(1000) for n in conv.receive(ServerError("same", "rep"))]
    assert [n.message for n in shown if isinstance(n, ErrorNotice)] == [
        "rep: same",
        "rep: same (repeated 10 times)",
        "rep: same (repeated 100 times)",
        "rep: same (repeated 1000 times)",
    ]


def test_clean_text_escapes_every_control_character() -> None:
    assert clean_text("a\r\nb\x1b[31m\u2028c") == "a\\r\\nb\\x1b[31m\\u2028c"


def test_session_expired_asks_for_a_renewal_not_an_error() -> None:
    assert live().receive(ServerError("60 minutes", "session_expired")) == [SessionExpired()]


def test_responses_that_never_finish_do_not_pile_up_tool_batches() -> None:
    conv = live()
    for i in range(5_000):
        conv.receive(ResponseCreated(f"r{i}"))
        conv.receive(ToolCall(f"c{i}", "x", "{}"))
        assert conv.tool_result(f"c{i}", "{}") == [SendToolOutput(f"c{i}", "{}")]
    assert len(conv._tools._batches) <= 64 and len(conv._tools) == 0


def test_speech_and_each_response_are_reported_with_the_servers_usage() -> None:
    """The usage part learns of user speech, each response's start, and its usage."""
    conv = live()
    assert conv.receive(SpeechStopped("u")) == [UserSpeech(False)]
    assert conv.receive(ResponseCreated("r")) == [ResponseStarted("r")]
    figures = Usage(
        total_tokens=70,
        input_tokens=30,
        output_tokens=40,
        input=InputTokens(audio_tokens=25, text_tokens=5),
        output=OutputTokens(audio_tokens=40),
    )
    assert conv.receive(ResponseDone("r", usage=figures)) == [ResponseUsage("r", figures)]
    assert conv.response_id is None
