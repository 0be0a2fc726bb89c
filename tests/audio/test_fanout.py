"""The microphone fan-out as plain calls: rates, shared resampling, failing and slow listeners."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from device.audio.fanout import MicFanout

from .conftest import best_correlation, load_speech


def frames_24k(speech: np.ndarray[Any, Any]) -> list[bytes]:
    n = len(speech) // 480 * 480
    return [speech[i : i + 480].tobytes() for i in range(0, n, 480)]


def test_each_listener_gets_20_ms_frames_at_its_own_rate() -> None:
    speech = load_speech()
    fan = MicFanout("mic")
    at24: list[bytes] = []
    at16a: list[bytes] = []
    at16b: list[bytes] = []
    fan.listen(24000, at24.append)
    fan.listen(16000, at16a.append)
    fan.listen(16000, at16b.append)
    frames = frames_24k(speech)
    for frame in frames:
        fan.deliver([frame])
    assert at24 == frames  # the model's rate: the very frames, untouched
    assert {len(f) for f in at16a} == {640}  # 320 samples = 20 ms at 16 kHz
    assert len(at16a) >= len(frames) - 3  # minus the resampler's start-up delay
    # One resampling per rate per frame: both 16 kHz listeners got the same objects.
    assert all(a is b for a, b in zip(at16a, at16b, strict=True))
    assert fan.rates() == [16000, 24000]
    got = np.frombuffer(b"".join(at16a), dtype="<i2")
    import soxr

    reference = soxr.resample(speech.astype(np.float32), 24000, 16000, quality="HQ")
    assert best_correlation(reference[: len(got)], got) > 0.9


def test_a_raising_listener_is_kept_logged_once_and_the_others_get_every_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fan = MicFanout("mic")
    good: list[bytes] = []
    calls = [0]

    def broken(frame: bytes) -> None:
        calls[0] += 1
        raise RuntimeError("detector bug")

    fan.listen(16000, broken)
    fan.listen(24000, good.append)
    frame = bytes(960)
    with caplog.at_level("ERROR", logger="device.audio.capture"):
        for _ in range(100):
            fan.deliver([frame])
    assert len(good) == 100
    assert calls[0] >= 97  # still called: a listener that raises is kept
    assert len([r for r in caplog.records if "broken" in r.message]) == 1


def test_a_slow_listener_is_named_once(caplog: pytest.LogCaptureFixture) -> None:
    fan = MicFanout("mic")
    fan.listen(24000, lambda frame: time.sleep(0.01))
    with caplog.at_level("WARNING", logger="device.audio.capture"):
        for _ in range(3):
            fan.deliver([bytes(960)])
    slow = [r for r in caplog.records if "must be cheap" in r.message]
    assert len(slow) == 1


def test_unsubscribe_stops_delivery_and_drops_an_unused_rate() -> None:
    fan = MicFanout("mic")
    got: list[bytes] = []
    stop = fan.listen(16000, got.append)
    fan.deliver([bytes(960)] * 5)
    n = len(got)
    stop()
    stop()  # twice is harmless
    fan.deliver([bytes(960)] * 5)
    assert len(got) == n
    assert fan.rates() == []
    assert len(fan) == 0


@pytest.mark.parametrize("rate", [0, 4000, 16000.0, 400000])
def test_a_bad_rate_is_refused_with_its_name(rate: Any) -> None:
    with pytest.raises(ValueError, match="listener rate"):
        MicFanout("mic").listen(rate, print)


async def test_a_queue_listener_that_falls_behind_loses_its_oldest_frames_only() -> None:
    fan = MicFanout("mic")
    live: list[bytes] = []
    fan.listen(24000, live.append)
    queue = fan.queue(24000, max_frames=5)
    frames = [np.full(480, i, dtype="<i2").tobytes() for i in range(50)]
    fan.deliver(frames)  # the queue's consumer has not run at all
    assert live == frames
    assert queue.dropped == 45
    got = []
    queue.close()
    async for frame in queue:
        got.append(frame)
    assert got == frames[-5:]
    assert len(fan) == 1  # closing unsubscribed it
    await asyncio.sleep(0)
