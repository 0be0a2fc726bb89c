"""Usage totals per local day, and the state file that keeps them across restarts and kill -9."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from usage_clock import LOCAL, FakeClock

from device.usage import DayTotals, TokenUsage, UsageLedger, UsageStore, local_clock, state_dir

# Scripted response.done figures: (input audio, input text, cached, output audio, output text).
SCRIPT = [(812, 40, 0, 1250, 61), (903, 52, 640, 1710, 88), (455, 12, 790, 640, 30)]


def usage(a_in: int, t_in: int, cached: int, a_out: int, t_out: int) -> TokenUsage:
    return TokenUsage.from_mapping(
        {
            "input_tokens": a_in + t_in,
            "output_tokens": a_out + t_out,
            "input_token_details": {
                "audio_tokens": a_in,
                "text_tokens": t_in,
                "cached_tokens": cached,
            },
            "output_token_details": {"audio_tokens": a_out, "text_tokens": t_out},
        }
    )


def scripted_day(clock: FakeClock) -> UsageLedger:
    ledger = UsageLedger(clock.now, clock.monotonic)
    ledger.connected()
    for figures in SCRIPT:
        ledger.add_audio_sent(2.5)
        clock.advance(20)
        ledger.add_response(usage(*figures))
        ledger.add_audio_received(3.25)
    clock.advance(5)
    ledger.disconnected()
    return ledger


def test_totals_equal_the_sum_of_the_scripted_figures() -> None:
    clock = FakeClock()
    today = scripted_day(clock).today()
    assert today.responses == 3
    assert today.tokens.input_audio_tokens == sum(s[0] for s in SCRIPT)
    assert today.tokens.cached_tokens == sum(s[2] for s in SCRIPT)
    assert today.tokens.output_audio_tokens == sum(s[3] for s in SCRIPT)
    assert today.tokens.output_tokens == sum(s[3] + s[4] for s in SCRIPT)
    assert today.tokens.total_tokens == sum(sum(s) - s[2] for s in SCRIPT)
    assert today.connected_s == pytest.approx(65.0)
    assert today.audio_sent_s == pytest.approx(7.5)
    assert today.audio_received_s == pytest.approx(9.75)


def test_connected_time_counts_while_open_and_stops_at_disconnect() -> None:
    clock = FakeClock()
    ledger = UsageLedger(clock.now, clock.monotonic)
    ledger.connected()
    clock.advance(90)
    assert ledger.today().connected_s == pytest.approx(90)  # live, before any accrual
    ledger.disconnected()
    clock.advance(600)
    assert ledger.today().connected_s == pytest.approx(90)


def test_connected_time_is_split_at_local_midnight() -> None:
    clock = FakeClock(datetime(2026, 12, 3, 23, 59, 0, tzinfo=LOCAL))
    ledger = UsageLedger(clock.now, clock.monotonic)
    ledger.connected()
    clock.advance(150)
    ledger.add_response(usage(1, 0, 0, 2, 0))
    ledger.disconnected()
    assert ledger.day(date(2026, 12, 3)).connected_s == pytest.approx(60)
    assert ledger.day(date(2026, 12, 4)).connected_s == pytest.approx(90)
    assert ledger.day(date(2026, 12, 3)).responses == 0
    assert ledger.today().responses == 1


def test_wall_clock_step_does_not_count_as_connected_time() -> None:
    clock = FakeClock()
    ledger = UsageLedger(clock.now, clock.monotonic)
    ledger.connected()
    clock.wall += timedelta(hours=3)  # NTP sets the clock of a Pi without an RTC
    clock.advance(30)
    ledger.disconnected()
    assert ledger.today().connected_s == pytest.approx(30)


def test_only_the_last_30_days_are_kept(tmp_path: Path) -> None:
    clock = FakeClock()
    ledger = UsageLedger(clock.now, clock.monotonic)
    for _ in range(40):
        ledger.add_response(None)
        clock.advance(86400)
    store = UsageStore(tmp_path / "usage.json")
    store.save(ledger)
    days = json.loads(store.path.read_text())["days"]
    assert len(days) == 29  # today has nothing yet; the 29 days before it are kept
    assert min(days) == (clock.now().date() - timedelta(days=29)).isoformat()


def test_totals_survive_a_reload(tmp_path: Path) -> None:
    clock = FakeClock()
    ledger = scripted_day(clock)
    UsageStore(tmp_path / "usage.json").save(ledger)
    again = UsageStore(tmp_path / "usage.json").load(clock.now, clock.monotonic)
    assert again.today() == ledger.today()
    assert list(again.days()) == list(ledger.days())


def test_maybe_save_writes_at_most_every_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    store = UsageStore(tmp_path / "usage.json", interval_s=5.0)
    ledger = store.load(clock.now, clock.monotonic)
    ledger.add_response(usage(*SCRIPT[0]))
    assert store.maybe_save(ledger, now=100.0)
    ledger.add_response(usage(*SCRIPT[1]))
    assert not store.maybe_save(ledger, now=104.9)
    assert json.loads(store.path.read_text())["days"]["2026-12-03"]["responses"] == 1
    assert store.maybe_save(ledger, now=105.0)
    assert json.loads(store.path.read_text())["days"]["2026-12-03"]["responses"] == 2
    assert not store.maybe_save(ledger, now=200.0)  # nothing changed: no write


def test_state_directory_from_systemd_environment(tmp_path: Path) -> None:
    assert state_dir({"STATE_DIRECTORY": str(tmp_path)}) == tmp_path
    assert state_dir({"STATE_DIRECTORY": f"{tmp_path}:/other"}) == tmp_path
    assert state_dir({}) == Path("/var/lib/voice-device")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"version": 1, "days": {"2026-12-03": {"resp', "not a valid usage file"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b'{"version": 7}', '"version": 1'),
        (b'{"version": 1, "days": {"yesterday": {}}}', "'yesterday' is not a date"),
        (
            b'{"version": 1, "days": {"2026-12-03": {"connected_s": -4}}}',
            "days.2026-12-03.connected_s",
        ),
    ],
)
def test_corrupt_file_is_reported_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, problem: str
) -> None:
    path = tmp_path / "usage.json"
    path.write_bytes(content)
    clock = FakeClock()
    store = UsageStore(path)
    with caplog.at_level(logging.WARNING, logger="device.usage"):
        ledger = store.load(clock.now, clock.monotonic)
    (record,) = caplog.records
    assert str(path) in record.getMessage() and problem in record.getMessage()
    assert (tmp_path / "usage.json.corrupt").read_bytes() == content
    assert ledger.today().responses == 0
    assert store.maybe_save(ledger, now=0.0)  # replaced at once, even with nothing used yet
    assert store.load(clock.now, clock.monotonic).today().responses == 0
    assert len(caplog.records) == 1


def test_unreadable_file_is_reported_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.json"
    path.mkdir()  # reading it fails with EISDIR, whoever runs the test
    with caplog.at_level(logging.WARNING, logger="device.usage"):
        UsageStore(path).load()
    assert "cannot read it" in caplog.text and str(path) in caplog.text


def test_failing_save_is_a_warning_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    clock = FakeClock()
    store = UsageStore(blocker / "usage.json", interval_s=0)
    ledger = store.load(clock.now, clock.monotonic)
    ledger.add_response(None)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="device.usage"):
        assert not store.maybe_save(ledger, now=1.0)
        assert not store.maybe_save(ledger, now=2.0)
    assert len(caplog.records) == 1 and "cannot save usage" in caplog.text
    blocker.unlink()
    assert store.maybe_save(ledger, now=3.0)
    assert json.loads(store.path.read_text())["days"]["2026-12-03"]["responses"] == 1


CHILD = """
import sys, time
from pathlib import Path
from device.usage import TokenUsage, UsageStore
store = UsageStore(Path(sys.argv[1]), interval_s=float(sys.argv[2]))
ledger = store.load()
ledger.connected()
n = 0
while True:
    n += 1
    ledger.add_response(TokenUsage(output_audio_tokens=100, output_tokens=100))
    if store.maybe_save(ledger, time.monotonic()):
        print(n, flush=True)
        time.sleep(0.002)
"""


def _run_child_and_kill(path: Path, interval: float, saves: int) -> int:
    """Start a recording process, SIGKILL it after ``saves`` saves; the last count it saved."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(interval)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None
    last = 0
    for _ in range(saves):
        line = proc.stdout.readline()
        assert line, "the recording process ended"
        last = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return last


def _month_of_history(path: Path) -> None:
    """29 earlier days of figures, so each save writes a file of some size."""
    today = local_clock().date()
    days = {
        today - timedelta(days=n): DayTotals(
            tokens=TokenUsage(input_tokens=n * 1000, output_audio_tokens=n * 777),
            connected_s=n * 61.5,
            responses=n,
        )
        for n in range(1, 30)
    }
    UsageStore(path).save(UsageLedger(days=days))


def test_kill_9_loses_at_most_the_unsaved_interval(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    started = time.monotonic()
    last_saved = _run_child_and_kill(path, interval=0.2, saves=3)
    ran_s = time.monotonic() - started
    ledger = UsageStore(path).load()
    today = ledger.today()
    # Everything the process reported saved is there; what came after the last save is not
    # (the process may have saved once more between its report and the kill).
    assert today.responses >= last_saved
    assert today.tokens.output_audio_tokens == 100 * today.responses
    assert 0 < today.connected_s <= ran_s
    assert not list(tmp_path.glob(".usage.json.*.tmp"))  # a killed save's leftovers are gone


MID_WRITE_CHILD = """
import os, sys, time
from pathlib import Path
from device.usage import TokenUsage, UsageStore
store = UsageStore(Path(sys.argv[1]))
ledger = store.load()
ledger.add_response(TokenUsage(output_audio_tokens=100))
store.save(ledger)
print(ledger.today().responses, flush=True)
ledger.add_response(TokenUsage(output_audio_tokens=100))
real_write = os.write
def half_then_hang(fd, data):
    real_write(fd, bytes(data[: len(data) // 2]))
    print("half written", flush=True)
    time.sleep(120)
os.write = half_then_hang
store.save(ledger)
"""


def test_kill_9_in_the_middle_of_a_save_keeps_the_previous_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.json"
    _month_of_history(path)
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", MID_WRITE_CHILD, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert proc.stdout is not None
        saved = int(proc.stdout.readline())
        assert proc.stdout.readline() == "half written\n"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with caplog.at_level(logging.WARNING, logger="device.usage"):
            ledger = UsageStore(path).load()
        assert not caplog.records, caplog.text
        assert ledger.today().responses == saved  # the interrupted save is lost, nothing else
        assert len(list(ledger.days())) == 30
        assert not list(tmp_path.glob(".usage.json.*.tmp"))
