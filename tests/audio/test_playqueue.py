"""The speaker's bookkeeping as plain calls: a fake clock and made-up ALSA figures stand in for
the device (the paced tests in test_paced.py prove the same accounting end to end)."""

from __future__ import annotations

import numpy as np
import pytest

from device.audio.playqueue import COALESCE_BYTES, CUE, PlayQueue

RATE = 48000  # device frames per second


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def pcm(ms: int, value: int = 1000) -> bytes:
    return np.full(24 * ms, value, dtype="<i2").tobytes()


def make(clock: Clock, **kwargs: int) -> PlayQueue:
    return PlayQueue(device_rate=RATE, clock=clock, **kwargs)


def write_all(q: PlayQueue, max_samples: int = 1 << 30) -> list[tuple[str, int]]:
    """Take everything startable and 'write' it at 48 kHz (two device frames per sample)."""
    out = []
    while q.startable(idle=False):
        taken = q.take(max_samples)
        assert taken is not None
        item, samples, _ = taken
        q.wrote(item, 2 * len(samples))
        out.append((item, 2 * len(samples)))
    return out


def test_the_jitter_buffer_starts_an_item_at_the_threshold_or_after_the_timeout() -> None:
    clock = Clock()
    q = make(clock, start_threshold_ms=60, period_ms=20)
    q.push("a", pcm(40))
    assert not q.startable(idle=True)  # 40 of 60 ms
    assert q.startable(idle=False)  # a stream already playing just continues
    q.push("a", pcm(20))
    assert q.startable(idle=True)
    q2 = make(clock, start_threshold_ms=60, period_ms=20)
    q2.push("b", pcm(20))  # a short final chunk...
    clock.t += 0.059
    assert not q2.startable(idle=True)
    clock.t += 0.002  # ...starts once nothing more arrived for the start timeout
    assert q2.startable(idle=True)
    q3 = make(clock, start_threshold_ms=60)
    q3.push("c", pcm(20))
    q3.push("d", pcm(20))  # another item follows: the head one is complete
    assert q3.startable(idle=True)
    q4 = make(clock, start_threshold_ms=60)
    q4.push_cue(pcm(20))  # a cue never waits
    assert q4.startable(idle=True)


def test_played_position_follows_avail_and_the_clock_but_never_passes_what_was_written() -> None:
    clock = Clock()
    q = make(clock)
    q.push("a", pcm(200))
    assert write_all(q) == [("a", 9600)]
    q.observe(queued=9600)  # avail(): all 200 ms still in ALSA
    assert q.played_ms("a") == 0
    clock.t += 0.050
    assert q.played_ms("a") == 50  # extrapolated on the clock
    q.observe(queued=6000)  # ALSA says 75 ms played (the device runs a little fast)
    assert q.played_ms("a") == 75
    clock.t += 0.030
    assert q.played_ms("a") == 105
    assert q.is_playing()
    clock.t += 1.0
    assert q.played_ms("a") == 200  # never past what was written
    assert not q.is_playing()


def test_interrupt_reports_the_sounding_item_and_what_of_it_was_heard() -> None:
    clock = Clock()
    q = make(clock)
    q.push("a", pcm(100))
    q.push("b", pcm(100))
    q.push("b", pcm(300))  # still queued here, not yet written
    write_all(q, max_samples=2400 * 2)  # 100 ms of a, 200 ms of b
    q.observe(queued=q.queued_estimate())  # all 300 ms written are still in ALSA
    clock.t += 0.150  # a fully, b 50 ms
    assert (q.played_ms("a"), q.played_ms("b")) == (100, 50)
    assert q.interrupt() == ("b", 50)
    assert not q.is_playing()
    assert q.pending_bytes == 0
    clock.t += 1.0
    assert q.played_ms("b") == 50  # what was dropped was never heard
    assert q.interrupt() is None  # nothing left


def test_an_item_only_queued_is_reported_with_zero_ms() -> None:
    q = make(Clock())
    q.push("a", pcm(100))
    assert q.interrupt() == ("a", 0)


def test_a_cue_is_never_the_heard_item_and_counts_toward_nothing() -> None:
    clock = Clock()
    q = make(clock)
    q.push_cue(pcm(100))
    q.push("item_9", pcm(100))
    write_all(q)
    q.observe(queued=9600)
    clock.t += 0.050  # the cue is sounding, the item waits behind it in ALSA
    assert q.played_ms(CUE) == 0
    assert q.interrupt() == ("item_9", 0)
    only_cue = make(clock)
    only_cue.push_cue(pcm(100))
    write_all(only_cue)
    only_cue.observe(queued=4800)
    clock.t += 0.02
    assert only_cue.is_playing()
    assert only_cue.interrupt() is None


def test_a_run_dry_stream_counts_only_what_was_played() -> None:
    clock = Clock()
    q = make(clock)
    q.push("a", pcm(100))
    write_all(q)
    q.observe(queued=4800)
    clock.t += 0.040
    q.forget_stream()  # the device was lost 40 ms in
    clock.t += 1.0
    assert q.played_ms("a") == 40
    assert not q.is_playing()


def test_one_sample_deltas_are_coalesced_and_the_queue_is_bounded_by_bytes() -> None:
    q = make(Clock(), max_buffer_ms=1000)
    dropped = sum(q.push("a", b"\x01\x00") for _ in range(30_000))  # 1.25 s in 1-sample deltas
    assert q.pending_bytes == 48000  # 1000 ms of 24 kHz s16le
    assert dropped == 2 * 30_000 - 48000
    assert q.entries <= 48000 // COALESCE_BYTES + 1
    taken = q.take(1 << 30)  # one take spans the item's entries
    assert taken is not None and q.take(1) is None
    assert taken[1].tobytes() == b"\x01\x00" * 24000  # in order, nothing lost inside the bound


def test_the_queue_is_bounded_by_entries_when_items_alternate() -> None:
    q = make(Clock(), max_entries=100)
    dropped = sum(q.push(f"item_{i % 2}", b"\x01\x00") for i in range(1000))
    assert q.entries == 100
    # Once full, only the last entry's item can still grow (it is coalesced, not a new entry).
    assert q.pending_bytes == 2 * 100 + 2 * 450
    assert dropped == 2 * 1000 - q.pending_bytes


def test_take_hands_out_the_push_time_once_and_at_most_what_was_asked() -> None:
    q = make(Clock())
    q.push("a", pcm(100), t_ns=42)
    q.push("b", pcm(100), t_ns=43)
    first = q.take(1000)
    second = q.take(1 << 30)
    assert first is not None and second is not None
    assert (first[0], len(first[1]), first[2]) == ("a", 1000, 42)
    assert (second[0], len(second[1]), second[2]) == ("a", 1400, 0)  # stops at the next item
    third = q.take(1 << 30)
    assert third is not None and (third[0], len(third[1]), third[2]) == ("b", 2400, 43)
    assert q.take(10) is None


@pytest.mark.parametrize("ms", [0, 1])
def test_empty_and_odd_input_is_harmless(ms: int) -> None:
    q = make(Clock())
    assert q.push("a", pcm(ms) + b"\x01") == 0 or ms == 0
    assert q.pending_bytes == 48 * ms
