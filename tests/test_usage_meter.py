"""UsageMeter: what the app feeds, when it wakes, and why it stops."""

from __future__ import annotations

from datetime import datetime

import pytest
from usage_clock import LOCAL, FakeClock

from device.usage import LimitsSection, TokenUsage, UsageLedger, UsageMeter

SECOND_OF_AUDIO = 48000  # bytes of 24 kHz mono PCM16


def meter(clock: FakeClock, limits: LimitsSection, idle_s: float = 0) -> UsageMeter:
    return UsageMeter(UsageLedger(clock.now, clock.monotonic), limits, idle_s)


def run_until_wake(m: UsageMeter, clock: FakeClock) -> None:
    wake = m.wake_at()
    assert wake is not None, "no timer armed"
    clock.advance(wake - clock.monotonic())


def test_idle_conversation_stops_at_the_deadline_not_while_talking() -> None:
    clock = FakeClock()
    m = meter(clock, LimitsSection(), idle_s=120)
    m.on_connected()
    clock.advance(100)
    m.on_user_speaking(True)
    clock.advance(300)  # a long question: never idle meanwhile
    assert m.wake_at() is None and m.check() is None
    m.on_user_speaking(False)
    m.on_model_talking(True)
    m.on_audio_received(5 * SECOND_OF_AUDIO)
    clock.advance(300)  # a long answer
    assert m.check() is None
    m.on_model_talking(False)
    started_idle = clock.monotonic()
    run_until_wake(m, clock)
    assert clock.monotonic() - started_idle == pytest.approx(120)
    stop = m.check()
    assert stop is not None and stop.reason == "idle" and stop.limit is None
    m.on_disconnected()
    assert m.wake_at() is None
    assert m.refuse_connect() is None  # idle is not a limit: the next press connects
    assert m.ledger.today().audio_received_s == pytest.approx(5)


def test_connected_minutes_limit_fires_on_the_timer_and_refuses_connect() -> None:
    clock = FakeClock()
    m = meter(clock, LimitsSection(daily_connected_minutes=10), idle_s=3600)
    m.on_connected()
    m.on_audio_sent(3 * SECOND_OF_AUDIO)
    run_until_wake(m, clock)
    assert clock.monotonic() == pytest.approx(1000 + 600)
    stop = m.check()
    assert stop is not None and stop.reason == "limit" and stop.limit is not None
    assert stop.limit.key == "limits.daily_connected_minutes"
    m.on_disconnected()
    refusal = m.refuse_connect()
    assert refusal is not None and str(refusal) == str(stop.limit)
    assert m.ledger.today().audio_sent_s == pytest.approx(3)


def test_session_limit_counts_across_a_reconnect_and_is_latched() -> None:
    clock = FakeClock()
    m = meter(clock, LimitsSection(max_session_minutes=5))
    m.on_connected()
    clock.advance(180)
    m.on_disconnected(conversation_over=False)  # reconnecting
    clock.advance(20)
    m.on_connected(new_conversation=False)
    run_until_wake(m, clock)
    assert clock.monotonic() == pytest.approx(1000 + 300)
    stop = m.check()
    assert stop is not None and stop.limit is not None
    assert stop.limit.key == "limits.max_session_minutes"
    m.on_disconnected()
    assert str(m.refuse_connect()) == str(stop.limit)
    m.reconfigure(LimitsSection(max_session_minutes=30), idle_s=0)  # SIGHUP raised it
    assert m.refuse_connect() is None


def test_token_limit_stops_after_the_response_that_reached_it() -> None:
    clock = FakeClock(datetime(2026, 12, 3, 23, 0, tzinfo=LOCAL))
    m = meter(clock, LimitsSection(daily_input_audio_tokens=1500))
    m.on_connected()
    assert m.on_response_done(TokenUsage(input_audio_tokens=900)) is None
    hit = m.on_response_done(TokenUsage(input_audio_tokens=900))
    assert hit is not None and hit.key == "limits.daily_input_audio_tokens"
    assert str(hit).startswith("limits.daily_input_audio_tokens: 1800 of 1500 input audio")
    m.on_disconnected()
    assert m.refuse_connect() is not None
    clock.advance(3600)  # the next local day
    assert m.refuse_connect() is None
