"""The daily budget: each limit reached → refused, naming the limit; next local day → allowed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from usage_clock import LOCAL, FakeClock

from device.usage import Budget, LimitsSection, TokenUsage, UsageLedger, UsageStore

OUT_AUDIO = [2400, 3100, 2800, 3900, 2600]  # output audio tokens of scripted responses


def connect(budget: Budget, ledger: UsageLedger, clock: FakeClock) -> datetime:
    assert budget.allows_connect(ledger, clock.now()) is None
    ledger.connected()
    return clock.now()


def test_output_audio_limit_overrun_by_at_most_the_response_in_progress() -> None:
    clock = FakeClock()
    ledger = UsageLedger(clock.now, clock.monotonic)
    budget = Budget(LimitsSection(daily_output_audio_tokens=12000))
    started = connect(budget, ledger, clock)
    responses = 0
    for tokens in OUT_AUDIO:
        responses += 1
        before = ledger.today().tokens.output_audio_tokens
        clock.advance(10)
        ledger.add_response(TokenUsage(output_tokens=tokens, output_audio_tokens=tokens))
        hit = budget.check(ledger, started, clock.now())
        if hit is not None:
            break
    else:
        pytest.fail("the limit was never reached")
    assert responses == 4 and before < 12000  # allowed to start: the day was under the limit
    assert hit.key == "limits.daily_output_audio_tokens"
    assert str(hit).startswith(
        "limits.daily_output_audio_tokens: 12200 of 12000 output audio tokens used today"
    )
    ledger.latch_limit(hit.key, hit.limit)
    ledger.disconnected()
    refusal = budget.allows_connect(ledger, clock.now())
    assert refusal is not None and refusal.message == hit.message


@pytest.mark.parametrize(
    ("limits", "key"),
    [
        (LimitsSection(daily_input_audio_tokens=2000), "limits.daily_input_audio_tokens"),
        (LimitsSection(daily_output_audio_tokens=3000), "limits.daily_output_audio_tokens"),
        (LimitsSection(daily_connected_minutes=2), "limits.daily_connected_minutes"),
        (LimitsSection(max_session_minutes=1.5), "limits.max_session_minutes"),
    ],
)
def test_each_limit_refuses_until_the_next_local_day(
    tmp_path: Path, limits: LimitsSection, key: str
) -> None:
    clock = FakeClock(datetime(2026, 12, 3, 22, 0, tzinfo=LOCAL))
    store = UsageStore(tmp_path / "usage.json")
    ledger = store.load(clock.now, clock.monotonic)
    budget = Budget(limits)
    started = connect(budget, ledger, clock)
    hit = None
    for _ in range(100):  # 30-second turns until a limit stops the conversation
        wake = budget.next_check(ledger, started, clock.now())
        step = 30.0 if wake is None else min(30.0, (wake - clock.now()).total_seconds())
        clock.advance(step)
        if wake is None or clock.now() < wake:
            ledger.add_response(TokenUsage(input_audio_tokens=700, output_audio_tokens=900))
        hit = budget.check(ledger, started, clock.now())
        if hit:
            break
    assert hit is not None and hit.key == key
    ledger.latch_limit(hit.key, hit.limit)
    ledger.disconnected()
    store.save(ledger)

    # Later the same day, after a restart (same config): still refused, same message.
    clock.advance(3600)
    ledger = UsageStore(tmp_path / "usage.json").load(clock.now, clock.monotonic)
    refusal = budget.allows_connect(ledger, clock.now())
    assert refusal is not None and str(refusal) == str(hit) and refusal.key == key
    # A raised limit (SIGHUP or restart) allows connecting again the same day.
    raised = {
        f: getattr(limits, f) * 10
        for f in (
            "daily_connected_minutes",
            "daily_output_audio_tokens",
            "daily_input_audio_tokens",
            "max_session_minutes",
        )
    }
    assert Budget(replace(limits, **raised)).allows_connect(ledger, clock.now()) is None
    assert Budget(LimitsSection()).allows_connect(ledger, clock.now()) is None
    # One minute before local midnight: still refused; one minute after: allowed.
    midnight = datetime(2026, 12, 4, 0, 0, tzinfo=LOCAL)
    clock.advance((midnight - clock.now()).total_seconds() - 60)
    assert str(budget.allows_connect(ledger, clock.now())) == str(hit)
    clock.advance(120)
    assert budget.allows_connect(ledger, clock.now()) is None


def test_time_limits_are_hit_when_the_timer_says() -> None:
    clock = FakeClock()
    ledger = UsageLedger(clock.now, clock.monotonic)
    budget = Budget(LimitsSection(daily_connected_minutes=10, max_session_minutes=4))
    # 7 minutes connected earlier today.
    ledger.connected()
    clock.advance(7 * 60)
    ledger.disconnected()
    clock.advance(600)
    started = connect(budget, ledger, clock)
    wake = budget.next_check(ledger, started, clock.now())
    assert wake == started + timedelta(minutes=3)  # the daily limit comes first now
    clock.advance(3 * 60 - 1)
    assert budget.check(ledger, started, clock.now()) is None
    clock.advance(1)
    hit = budget.check(ledger, started, clock.now())
    assert hit is not None and hit.key == "limits.daily_connected_minutes"
    assert str(hit).startswith("limits.daily_connected_minutes: 10 of 10 minutes connected today")


def test_session_limit_timer_and_disconnected_means_no_timer() -> None:
    clock = FakeClock()
    ledger = UsageLedger(clock.now, clock.monotonic)
    budget = Budget(LimitsSection(daily_connected_minutes=600, max_session_minutes=15))
    started = connect(budget, ledger, clock)
    assert budget.next_check(ledger, started, clock.now()) == started + timedelta(minutes=15)
    assert budget.next_check(ledger, None, clock.now()) is None
    assert Budget(LimitsSection()).next_check(ledger, started, clock.now()) is None


def test_daily_connected_limit_rechecks_at_midnight() -> None:
    clock = FakeClock(datetime(2026, 12, 3, 23, 55, tzinfo=LOCAL))
    ledger = UsageLedger(clock.now, clock.monotonic)
    budget = Budget(LimitsSection(daily_connected_minutes=30))
    started = connect(budget, ledger, clock)
    wake = budget.next_check(ledger, started, clock.now())
    assert wake == datetime(2026, 12, 4, 0, 0, tzinfo=LOCAL)
    clock.advance(300)
    assert budget.check(ledger, started, clock.now()) is None
    # The new day counts from midnight: 30 minutes from there.
    assert budget.next_check(ledger, started, clock.now()) == wake + timedelta(minutes=30)


def test_usage_of_limits_lists_set_limits_only() -> None:
    clock = FakeClock()
    ledger = UsageLedger(clock.now, clock.monotonic)
    ledger.add_response(TokenUsage(output_audio_tokens=4500))
    figures = Budget(LimitsSection(daily_output_audio_tokens=12000)).usage_of_limits(
        ledger, clock.now()
    )
    assert figures == {"limits.daily_output_audio_tokens": {"used": 4500, "limit": 12000}}
