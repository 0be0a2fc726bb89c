"""Usage surfaces: `voice-device usage` (text and JSON), the usage event, the log line; and no
credential ever reaches the state file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from usage_clock import FakeClock

from device.usage import (
    Budget,
    LimitsSection,
    TokenUsage,
    UsageLedger,
    UsageStore,
    add_usage_parser,
    format_response_log,
    format_usage_text,
    run_usage,
    usage_event,
    usage_json,
)

RESPONSE = {
    "input_tokens": 1234,
    "output_tokens": 567,
    "total_tokens": 1801,
    "input_token_details": {"audio_tokens": 1000, "text_tokens": 234, "cached_tokens": 34},
    "output_token_details": {"audio_tokens": 500, "text_tokens": 67},
}


def week(clock: FakeClock) -> UsageLedger:
    """Yesterday: 2 responses and 5 minutes; today: 1 response and 90 s (still connected)."""
    ledger = UsageLedger(clock.now, clock.monotonic)
    ledger.connected()
    clock.advance(300)
    ledger.add_response(TokenUsage.from_mapping(RESPONSE))
    ledger.add_response(TokenUsage.from_mapping(RESPONSE))
    ledger.add_audio_sent(42.0)
    ledger.disconnected()
    clock.advance(86400)
    ledger.connected()
    clock.advance(90)
    ledger.add_response(TokenUsage.from_mapping(RESPONSE))
    ledger.add_audio_received(12.5)
    return ledger


def test_usage_json_has_today_first_and_seven_days() -> None:
    clock = FakeClock()
    ledger = week(clock)
    budget = Budget(LimitsSection(daily_output_audio_tokens=12000))
    data = usage_json(ledger, clock.now(), budget)
    assert json.loads(json.dumps(data)) == data
    assert data["today"] == "2026-12-04" and len(data["days"]) == 7
    today, yesterday = data["days"][0], data["days"][1]
    assert today["responses"] == 1 and today["connected_s"] == 90.0
    assert today["audio_received_s"] == 12.5
    assert yesterday["date"] == "2026-12-03" and yesterday["responses"] == 2
    assert yesterday["tokens"]["output_token_details"]["audio_tokens"] == 1000
    assert data["days"][2]["responses"] == 0
    assert data["limits"] == {"limits.daily_output_audio_tokens": {"used": 500, "limit": 12000}}


def test_text_table_shows_each_day_and_the_week_total() -> None:
    clock = FakeClock()
    text = format_usage_text(usage_json(week(clock), clock.now(), Budget(LimitsSection())))
    lines = text.splitlines()
    today = next(line for line in lines if line.startswith("2026-12-04 today"))
    assert today.split()[2:] == ["1m30s", "1", "0s", "12s", "1234", "(1000)", "567", "(500)"]
    total = next(line for line in lines if line.startswith("last 7 days"))
    assert total.split()[3:] == ["6m30s", "3", "42s", "12s", "3702", "(3000)", "1701", "(1500)"]
    assert len([line for line in lines if line.startswith("2026-")]) == 7


def test_usage_event_and_log_line() -> None:
    clock = FakeClock()
    ledger = week(clock)
    usage = TokenUsage.from_mapping(RESPONSE)
    event = usage_event(usage, ledger, clock.now())
    assert event["event"] == "usage" and event["response"]["output_tokens"] == 567
    assert event["today"]["responses"] == 1
    line = format_response_log(usage, ledger.today())
    assert line.startswith(
        "response usage: input 1234 tokens (audio 1000, text 234, cached 34), "
        "output 567 (audio 500, text 67), total 1801; today 1 responses"
    )


def cli_args(tmp_path: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_usage_parser(parser.add_subparsers(dest="command"), str(tmp_path / "no-service.sock"))
    return parser.parse_args(["usage", *argv])


def test_cli_reads_the_state_file_when_the_service_is_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock()
    store = UsageStore(tmp_path / "usage.json")
    ledger = week(clock)
    ledger.disconnected()
    store.save(ledger)
    args = cli_args(tmp_path, "--json", "--state-file", str(store.path))
    assert run_usage(args, clock.now) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == usage_json(ledger, clock.now(), Budget(LimitsSection()))
    assert run_usage(cli_args(tmp_path, "--state-file", str(store.path)), clock.now) == 0
    out = capsys.readouterr().out
    assert out.startswith("date") and "2026-12-04 today" in out and "last 7 days" in out
    missing = cli_args(tmp_path, "--state-file", str(tmp_path / "none.json"))
    assert run_usage(missing, clock.now) == 3
    assert "no usage recorded yet" in capsys.readouterr().err


def test_no_credential_in_the_state_file(tmp_path: Path) -> None:
    secret = "sk-proj-usage-test-9f8e7d6c5b4a"
    done = {
        "type": "response.done",
        "response": {
            "id": "resp_1",
            "status": "completed",
            "metadata": {"note": secret},
            "output": [{"type": "message", "content": [{"transcript": secret}]}],
            "usage": RESPONSE,
        },
    }
    clock = FakeClock()
    store = UsageStore(tmp_path / "state" / "usage.json", interval_s=0)
    ledger = store.load(clock.now, clock.monotonic)
    ledger.connected()
    ledger.add_response(TokenUsage.from_mapping(done["response"]["usage"]))  # type: ignore[index]
    clock.advance(30)
    store.maybe_save(ledger, now=1.0)
    ledger.disconnected()
    store.save(ledger)
    written = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir())
    assert b"sk-" not in written and secret.encode() not in written
    assert json.loads(store.path.read_text())["days"]["2026-12-03"]["responses"] == 1
