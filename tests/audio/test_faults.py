"""Fault handling: missing devices, lost devices, overruns, the bounded frame queue."""

from __future__ import annotations

import asyncio
import errno
import os
import select
import threading
import time
from pathlib import Path
from typing import Any

import alsaaudio
import numpy as np
import pytest

from device.audio import AlsaCapture, AlsaPlayback, AudioFault, CaptureConfig, PlaybackConfig
from device.audio import capture as capture_mod
from device.audio import playback as playback_mod
from device.realtime.errors import ConfigError

from .conftest import best_correlation, load_speech, run_scenario, to_device, write_conf

MISSING = "plughw:CARD=voicedevicenosuchcard"


def test_missing_capture_device_is_reported_and_retried(tmp_path: Path) -> None:
    conf = write_conf(tmp_path / "empty.conf", "\n")
    result = run_scenario(
        {"kind": "capture", "device": MISSING, "frames": 1, "duration_s": 3.0}, conf
    )
    kinds = [f["kind"] for f in result["faults"]]
    assert kinds == ["missing"]  # reported once per outage, not once per retry
    message = result["faults"][0]["message"]
    assert f'capture device "{MISSING}" not available' in message
    assert result["faults"][0]["device"] == MISSING
    assert result["faults_in_loop"] is True
    assert result["stats"]["open_attempts"] >= 3  # 0 s, 0.5 s, 1.5 s (then 3.5 s)
    assert result["alive"] is True
    assert result["alive_after_close"] is False


def test_missing_playback_device_is_reported_and_audio_discarded(tmp_path: Path) -> None:
    conf = write_conf(tmp_path / "empty.conf", "\n")
    pcm_in = tmp_path / "x.raw"
    pcm_in.write_bytes(b"\x00\x01" * 4800)
    result = run_scenario(
        {
            "kind": "playback",
            "device": MISSING,
            "input": str(pcm_in),
            "timeout_s": 1.0,
            "duration_s": 1.2,
        },
        conf,
    )
    assert [f["kind"] for f in result["faults"]] == ["missing"]
    assert f'playback device "{MISSING}" not available' in result["faults"][0]["message"]
    assert result["alive"] is True
    assert result["played_ms"] == 0
    assert result["stats"]["open_attempts"] >= 2


def test_capture_recovers_when_the_device_appears(tmp_path: Path) -> None:
    """The file plugin fails to open while its infile is missing: a device that comes back."""
    speech = load_speech()
    infile = tmp_path / "late.raw"
    conf = write_conf(
        tmp_path / "test.conf",
        f'pcm.late {{ type file; slave.pcm "null"; file "/dev/null"; infile "{infile}";'
        ' format "raw" }\n',
    )
    data = to_device(speech, 48000, 1, "S16_LE")

    def appear() -> None:
        time.sleep(0.8)
        infile.write_bytes(data)

    t = threading.Thread(target=appear)
    t.start()
    try:
        result = run_scenario(
            {"kind": "capture", "device": "late", "frames": 20, "timeout_s": 10}, conf
        )
    finally:
        t.join()
    assert [f["kind"] for f in result["faults"]] == ["missing", "recovered"]
    assert result["frames"] == 20


# ---------------------------------------------------------------- fake PCM, in process


class FakeCapturePCM:
    """Scripted stand-in for a non-blocking ``alsaaudio.PCM`` that can fail on demand (no
    ALSA test PCM vanishes mid-stream): 20 ms periods of 48 kHz mono, one per read. Its poll
    descriptor is a pipe that is readable like an unpaced device's, except after an overrun:
    like a real stream left prepared, it stays quiet until the next read starts it."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.closed = False
        self.n = 0
        self._r, self._w = os.pipe()
        self._armed = False
        self._arm(True)

    def _arm(self, readable: bool) -> None:
        if readable and not self._armed:
            os.write(self._w, b"x")
        elif not readable and self._armed:
            os.read(self._r, 1)
        self._armed = readable

    def polldescriptors(self) -> list[tuple[int, int]]:
        return [(self._r, select.POLLIN)]

    def polldescriptors_revents(self, descriptors: list[tuple[int, int]]) -> int:
        return select.POLLIN

    def read(self) -> tuple[int, bytes]:
        self._arm(True)  # a read (re)starts the stream
        step = self.script.pop(0) if self.script else "data"
        if step == "empty":
            return 0, b""
        if step == "overrun":
            self._arm(False)  # prepared again: no wake-up until somebody reads
            return -32, b""
        if step == "fail":
            raise alsaaudio.ALSAAudioError("No such device [fake]")
        self.n += 1
        return 960, (np.full(960, self.n, dtype="<i2")).tobytes()

    def close(self) -> None:
        if not self.closed:
            os.close(self._r)
            os.close(self._w)
        self.closed = True


async def _collect(cap: AlsaCapture, n: int, timeout: float = 10.0) -> list[bytes]:
    out: list[bytes] = []

    async def run() -> None:
        async for frame in cap.frames():
            out.append(frame)
            if len(out) >= n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


async def test_overrun_is_counted_logged_once_per_second_and_capture_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults: list[AudioFault] = []
    cap = AlsaCapture(CaptureConfig(device="fake"), on_fault=faults.append)
    pcm = FakeCapturePCM(["data"] * 5 + ["overrun"] * 3 + ["data"] * 5 + ["overrun"])
    cap._open = lambda: pcm  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="device.audio.capture"):
        frames = await _collect(cap, 30)
    await cap.aclose()
    assert len(frames) == 30
    assert cap.stats.overruns == 4
    assert faults == []  # overruns are not faults
    assert len([r for r in caplog.records if "overrun" in r.message]) == 1
    assert pcm.closed


def test_a_busy_event_loop_delays_the_microphone_but_loses_none_of_it(
    tmp_path: Path, pulse_factory: Any
) -> None:
    """Capture is read on the event loop: blocking the loop for 0.6 s (three times the ALSA
    buffer) must cost delay, not audio."""
    speech = load_speech("weather_question.wav")
    infile = tmp_path / "in.raw"
    infile.write_bytes(to_device(speech, 48000, 2, "S16_LE"))
    pulse = pulse_factory(capture_file=infile)
    out = tmp_path / "captured.raw"
    result = run_scenario(
        {
            "kind": "capture",
            "device": "paced_capture",
            "rate": 48000,
            "channels": 2,
            "frames": 150,
            "block_loop_at": 50,
            "block_loop_s": 0.6,
            "out": str(out),
            "timeout_s": 30,
        },
        pulse.alsa_config_path,
    )
    assert result["faults"] == []
    times = np.array(result["times"])
    assert np.max(np.diff(times)) >= 0.55  # the stall really happened
    got = np.frombuffer(out.read_bytes(), dtype="<i2")
    assert len(got) == 150 * 480
    # One unbroken stretch of the speech: a gap would misalign everything after the stall.
    assert best_correlation(speech[: len(got)], got) > 0.9


async def test_an_overrun_on_the_last_read_of_a_wake_up_still_restarts_the_stream() -> None:
    cap = AlsaCapture(CaptureConfig(device="fake"))
    budget = capture_mod.MAX_READS_PER_WAKE
    # The first wake-up reads a full budget of periods but the last read overruns; the read
    # after it (which restarts a real stream) must still happen in that same wake-up.
    pcm = FakeCapturePCM(["data"] * (budget - 1) + ["overrun", "empty"] + ["data"] * 40)
    cap._open = lambda: pcm  # type: ignore[method-assign]
    frames = await _collect(cap, budget + 5)
    await cap.aclose()
    assert cap.stats.overruns == 1
    assert len(frames) == budget + 5


async def test_a_failing_consumer_does_not_stop_the_microphone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[bytes] = []

    def consumer(frame: bytes) -> None:
        got.append(frame)
        if len(got) % 3 == 0:
            raise RuntimeError("bug in the consumer")

    cap = AlsaCapture(CaptureConfig(device="fake"), on_frame=consumer)
    pcm = FakeCapturePCM([])
    cap._open = lambda: pcm  # type: ignore[method-assign]
    with caplog.at_level("ERROR", logger="device.audio.capture"):
        cap.start()
        deadline = time.monotonic() + 5
        while len(got) < 30 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    assert len(got) >= 30
    assert cap.alive()
    await cap.aclose()
    assert len([r for r in caplog.records if "consumer" in r.message]) == 1  # rate-limited


async def test_a_descriptor_that_wakes_with_nothing_to_read_falls_back_to_a_timer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cap = AlsaCapture(CaptureConfig(device="fake"))
    pcm = FakeCapturePCM(["empty"] * (capture_mod.MAX_EMPTY_WAKES + 20))
    cap._open = lambda: pcm  # type: ignore[method-assign]
    with caplog.at_level("INFO", logger="device.audio.capture"):
        frames = await _collect(cap, 10)
    await cap.aclose()
    assert len(frames) == 10
    assert any("nothing to read" in r.message for r in caplog.records)
    assert pcm.closed


async def test_lost_device_is_reopened_and_recovery_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(capture_mod, "BACKOFF_START_S", 0.05)
    loop = asyncio.get_running_loop()
    faults: list[tuple[AudioFault, bool]] = []
    cap = AlsaCapture(
        CaptureConfig(device="hw:CARD=usbmic"),
        on_fault=lambda f: faults.append((f, asyncio.get_running_loop() is loop)),
    )
    pcms = [FakeCapturePCM(["data"] * 3 + ["fail"]), FakeCapturePCM([])]
    opens: list[Any] = []

    def open_next() -> Any:
        pcm = pcms.pop(0)
        opens.append(pcm)
        return pcm

    cap._open = open_next  # type: ignore[method-assign]
    await _collect(cap, 10)
    assert cap.alive()
    await cap.aclose()
    kinds = [f.kind for f, _ in faults]
    assert kinds == ["lost", "recovered"]
    assert 'capture device "hw:CARD=usbmic" failed: No such device' in faults[0][0].message
    assert all(on_loop for _, on_loop in faults)
    assert all(p.closed for p in opens)


@pytest.mark.parametrize("missing_first", [False, True])
async def test_capture_device_that_fails_on_every_first_read_stays_faulted_and_backs_off(
    monkeypatch: pytest.MonkeyPatch, missing_first: bool
) -> None:
    """A device that opens and then fails at once has not recovered: one fault for the whole
    outage (no recovered/lost pairs) and reopen attempts ever further apart."""
    monkeypatch.setattr(capture_mod, "BACKOFF_START_S", 0.1)
    faults: list[AudioFault] = []
    cap = AlsaCapture(CaptureConfig(device="hw:CARD=usbmic"), on_fault=faults.append)
    opens: list[float] = []
    pcms: list[FakeCapturePCM] = []

    def open_failing() -> Any:
        opens.append(time.monotonic())
        if missing_first and len(opens) == 1:
            raise alsaaudio.ALSAAudioError("No such file or directory [fake]")
        pcm = FakeCapturePCM(["fail"])
        pcms.append(pcm)
        return pcm

    cap._open = open_failing  # type: ignore[method-assign]
    cap.start()
    await asyncio.sleep(2.0)
    assert cap.alive()  # retrying counts as alive
    await cap.aclose()
    assert [f.kind for f in faults] == ["missing" if missing_first else "lost"]
    assert cap.faulted
    assert all(p.closed for p in pcms)
    _assert_growing_backoff(opens, 0.1)


def _assert_growing_backoff(opens: list[float], start: float) -> None:
    """Open attempts at 0, start, 3·start, 7·start, ...: each wait doubles the previous one."""
    gaps = np.diff(opens)
    assert len(gaps) >= 3, opens  # 0.1 + 0.2 + 0.4 (+ 0.8) s fit in 2 s; a fixed 0.1 s: ~20
    assert len(gaps) <= 5, opens
    for i, gap in enumerate(gaps):
        assert start * 2**i - 0.01 <= gap <= start * 2**i + 0.15, (i, gaps)


class FakePlaybackPCM:
    """Scripted stand-in for a non-blocking playback ``alsaaudio.PCM`` (no ALSA test PCM can be
    unplugged), without poll descriptors (like the null plugin: topped up on a timer).
    ``avail()`` reports an empty buffer, or the next value of ``avail_script``;
    once ``unplugged`` it returns ``-ENODEV`` (pyalsaaudio 0.11 returns avail()'s errors
    instead of raising) and ``write`` raises, as pyalsaaudio does for every error but -EPIPE."""

    BUFFER = 3840  # 4 periods of 20 ms at 48 kHz

    def __init__(self, avail_script: list[int] | None = None, unplugged: bool = False) -> None:
        self.avail_script = list(avail_script or [])
        self.unplugged = unplugged
        self.avail_calls = 0
        self.written = 0
        self.closed = False

    def info(self) -> dict[str, Any]:
        return {"buffer_size": self.BUFFER}

    def polldescriptors(self) -> list[tuple[int, int]]:
        return []

    def avail(self) -> int:
        self.avail_calls += 1
        if self.avail_script:
            return self.avail_script.pop(0)
        return -errno.ENODEV if self.unplugged else self.BUFFER

    def write(self, data: Any) -> int:
        if self.unplugged:
            raise alsaaudio.ALSAAudioError("No such device [fake]")
        self.written += len(data)  # frames: rows of the (frames, channels) array
        return len(data)

    def drop(self) -> None:
        if self.unplugged:
            raise alsaaudio.ALSAAudioError("No such device [fake]")

    def close(self) -> None:
        self.closed = True


async def _wait_for(cond: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_unplugged_speaker_is_reported_lost_while_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(playback_mod, "BACKOFF_START_S", 0.05)
    faults: list[AudioFault] = []
    pb = AlsaPlayback(PlaybackConfig(device="hw:CARD=usbspk"), on_fault=faults.append)
    # -EPIPE from avail() is an xrun (the stream ran dry), not a lost device.
    first = FakePlaybackPCM(avail_script=[-errno.EPIPE, -errno.EPIPE])
    second = FakePlaybackPCM()
    pcms = [first, second]
    pb._open = lambda: pcms.pop(0)  # type: ignore[method-assign]
    pb.start()
    try:
        await _wait_for(lambda: first.avail_calls >= 4)  # idle: avail() polled every 0.25 s
        assert faults == []
        assert pb.stats.open_attempts == 1
        first.unplugged = True  # while idle: no reply is playing
        t = time.monotonic()
        await _wait_for(lambda: bool(faults))
        assert time.monotonic() - t < 0.5
        assert [f.kind for f in faults] == ["lost"]
        assert faults[0].device == "hw:CARD=usbspk"
        assert 'playback device "hw:CARD=usbspk" failed: No such device' in faults[0].message
        assert first.closed
        # The reopened device is proven with a period of silence, then reported recovered.
        await _wait_for(lambda: len(faults) == 2)
        assert [f.kind for f in faults] == ["lost", "recovered"]
        assert second.written == PlaybackConfig().period_frames
        assert not pb.faulted
        pb.play("item_1", b"\x00\x01" * 4800)  # 200 ms: plays on the reopened device
        await _wait_for(lambda: second.written >= 9600 + 960)
        assert pb.alive()
    finally:
        pb.close()


@pytest.mark.parametrize("missing_first", [False, True])
async def test_speaker_that_fails_right_after_every_open_stays_faulted_and_backs_off(
    monkeypatch: pytest.MonkeyPatch, missing_first: bool
) -> None:
    monkeypatch.setattr(playback_mod, "BACKOFF_START_S", 0.1)
    faults: list[AudioFault] = []
    pb = AlsaPlayback(PlaybackConfig(device="hw:CARD=usbspk"), on_fault=faults.append)
    opens: list[float] = []
    pcms: list[FakePlaybackPCM] = []

    def open_broken() -> Any:
        opens.append(time.monotonic())
        if missing_first and len(opens) == 1:
            raise alsaaudio.ALSAAudioError("No such file or directory [fake]")
        pcm = FakePlaybackPCM(unplugged=True)
        pcms.append(pcm)
        return pcm

    pb._open = open_broken  # type: ignore[method-assign]
    pb.start()
    try:
        await asyncio.sleep(2.0)
        assert pb.alive()
        assert pb.faulted
    finally:
        pb.close()
    await asyncio.sleep(0)  # deliver on_fault calls still queued on the loop
    assert [f.kind for f in faults] == ["missing" if missing_first else "lost"]
    assert all(p.closed for p in pcms)
    _assert_growing_backoff(opens, 0.1)


async def test_crashed_capture_is_not_alive() -> None:
    faults: list[AudioFault] = []
    cap = AlsaCapture(CaptureConfig(device="fake"), on_fault=faults.append)

    def boom() -> Any:
        raise RuntimeError("bug")

    cap._open = boom  # type: ignore[method-assign]
    agen = cap.frames()
    task = asyncio.ensure_future(agen.__anext__())
    for _ in range(200):
        await asyncio.sleep(0.01)
        if not cap.alive():
            break
    assert not cap.alive()
    assert [f.kind for f in faults] == ["crashed"]
    await cap.aclose()
    with pytest.raises(StopAsyncIteration):
        await task


async def test_slow_consumer_drops_oldest_frames() -> None:
    cap = AlsaCapture(CaptureConfig(device="fake", rate=24000, max_queue_frames=5))
    pcm = FakeCapturePCM([])
    cap._open = lambda: pcm  # type: ignore[method-assign]
    agen = cap.frames()
    first = await asyncio.wait_for(agen.__anext__(), 5)
    # Stall the consumer while the reader keeps producing.
    while cap.stats.frames < 40:
        await asyncio.sleep(0.01)
    newest = cap.stats.frames
    rest = [await agen.__anext__() for _ in range(5)]
    await cap.aclose()
    await agen.aclose()
    assert len(first) == 960
    assert cap.stats.dropped >= 30
    # The survivors are the newest frames, in order: their values increase and are recent.
    values = [int(np.frombuffer(f, dtype="<i2")[0]) for f in rest]
    assert values == sorted(values)
    assert values[0] >= newest // 2 - 5  # two frames per fake read


async def test_playback_play_never_blocks_and_bounds_its_buffer() -> None:
    pb = AlsaPlayback(PlaybackConfig(device="fake", max_buffer_ms=1000))
    # No start(): nothing drains, so the queue fills to the limit.
    chunk = b"\x00\x01" * 2400  # 100 ms
    t = time.perf_counter()
    for _ in range(15):
        pb.play("item_1", chunk)
    assert time.perf_counter() - t < 0.05
    assert pb.stats.dropped_ms == 500
    assert pb.is_playing()
    assert pb.interrupt() == ("item_1", 0)
    assert not pb.is_playing()
    assert pb.interrupt() is None


async def test_earcons_are_never_reported_as_the_model_item() -> None:
    pb = AlsaPlayback(PlaybackConfig(device="fake"))
    pb.play_cue(b"\x00\x01" * 2400)
    assert pb.is_playing()
    assert pb.interrupt() is None
    pb.play_cue(b"\x00\x01" * 2400)
    pb.play("item_9", b"\x00\x01" * 2400)
    assert pb.interrupt() == ("item_9", 0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PlaybackConfig(rate=4000), "audio.playback_rate: expected >= 8000, got 4000"),
        (lambda: PlaybackConfig(channels=0), "audio.playback_channels: expected >= 1, got 0"),
        (lambda: PlaybackConfig(start_threshold_ms=-5), "audio.start_threshold_ms"),
        (
            lambda: PlaybackConfig(period_ms=40, max_buffer_ms=20),
            "audio.max_buffer_ms: expected >= period_ms (40), got 20",
        ),
        (lambda: CaptureConfig(period_ms=0), "audio.period_ms: expected >= 1, got 0"),
        (lambda: CaptureConfig(fmt="S24_LE"), "audio.format: expected S16_LE or S32_LE"),
    ],
)
def test_bad_audio_settings_name_the_key_and_the_value(make: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value)
