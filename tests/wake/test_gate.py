"""WakeGate as plain calls: what leaves the device around a wake word (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pytest

from device.wake.detector import Detection
from device.wake.gate import (
    Action,
    Forward,
    HeldDropped,
    Interrupt,
    Release,
    WakeDetected,
    WakeGate,
)

A = TypeVar("A", bound=Action)
RAMP = 30000  # 24 kHz test frames carry their own sample index (mod RAMP)
LAG = 2400  # the scripted detector fires 150 ms after the end of the wake word


class ScriptedDetector:
    """Fires at fixed sample indices of its own clock (restarted by reset), dating the end of
    the wake word ``LAG`` samples back, as the real detector does."""

    name = "okay_nabu"

    def __init__(self, at: list[int]) -> None:
        self.at = sorted(at)
        self.clock = 0
        self.fed = 0
        self.resets = 0

    def feed(self, pcm: bytes) -> list[Detection]:
        old, self.clock = self.clock, self.clock + len(pcm) // 2
        self.fed += len(pcm) // 2
        return [Detection(self.name, t - LAG, t, 0.9) for t in self.at if old < t <= self.clock]

    def reset(self) -> None:
        self.clock = 0
        self.resets += 1


def ramp(start: int, n: int) -> bytes:
    return (np.arange(start, start + n) % RAMP).astype(np.int16).tobytes()


def indices(frames: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(frames), dtype=np.int16).astype(np.int64)


class Mic:
    """Feeds the gate one capture frame at a time at both rates, in either order."""

    def __init__(self, gate: WakeGate, ms: int = 20, order: str = "16k-first") -> None:
        self.gate, self.ms, self.order = gate, ms, order
        self.n16 = self.n24 = 0
        self.sent: list[bytes] = []
        self.actions: list[Action] = []

    def frame(self, *, skip_24k: bool = False) -> list[Action]:
        f16 = bytes(self.ms * 16 * 2)
        f24 = ramp(self.n24, self.ms * 24)
        calls: list[Callable[[], list[Action]]] = [
            lambda: self.gate.on_frame_16k(f16),
            lambda: self.gate.on_frame_24k(f24),
        ]
        if skip_24k:
            calls.pop()
        if self.order == "24k-first":
            calls.reverse()
        out = [a for call in calls for a in call()]
        self.n16 += self.ms * 16
        self.n24 += self.ms * 24
        self.take(out)
        return out

    def run(self, seconds: float) -> list[Action]:
        out: list[Action] = []
        for _ in range(round(seconds * 1000 / self.ms)):
            out += self.frame()
        return out

    def take(self, actions: list[Action]) -> list[Action]:
        for a in actions:
            self.actions.append(a)
            if isinstance(a, Release):
                self.sent += a.frames
            elif isinstance(a, Forward):
                self.sent.append(a.frame)
        return actions


def of(kind: type[A], actions: list[Action]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]


def test_listening_forwards_nothing_and_keeps_only_the_preroll() -> None:
    gate = WakeGate(ScriptedDetector([]), preroll_ms=100)
    mic = Mic(gate)
    assert mic.run(30.0) == []
    assert mic.sent == []
    # 100 ms pre-roll + 300 ms look-back + one 20 ms frame + 20 ms slack, never more
    assert gate.kept_samples <= 2400 + 7200 + 480 + 480


@pytest.mark.parametrize("order", ["16k-first", "24k-first"])
@pytest.mark.parametrize("preroll_ms", [0, 250])
def test_release_starts_at_wake_end_minus_preroll_and_the_seam_is_exact(
    order: str, preroll_ms: int
) -> None:
    end16 = 16000 + 1234  # inside a frame, not on a frame boundary
    gate = WakeGate(ScriptedDetector([end16 + LAG]), preroll_ms=preroll_ms)
    mic = Mic(gate, order=order)
    mic.run(2.0)
    assert of(WakeDetected, mic.actions) == [WakeDetected("okay_nabu", end16)]
    assert mic.sent == []  # nothing leaves before the session is up
    mic.take(gate.on_status("connecting"))
    mic.run(0.7)
    assert mic.sent == []
    mic.take(gate.on_status("connected"))
    assert len(of(Release, mic.actions)) == 1
    mic.run(1.0)
    got = indices(mic.sent)
    first = end16 * 3 // 2 - preroll_ms * 24
    # first sample is exactly the end of the wake word minus the pre-roll; then every sample
    # once, in order, through the release -> live seam to the last frame captured
    assert np.array_equal(got, np.arange(first, mic.n24) % RAMP)


def test_preroll_zero_sends_no_sample_from_before_the_end_of_the_wake_word() -> None:
    end16 = 8000
    gate = WakeGate(ScriptedDetector([end16 + LAG]), preroll_ms=0)
    mic = Mic(gate, ms=7)  # odd frame size: the cut falls inside a frame
    mic.run(1.0)
    mic.take(gate.on_status("connected"))
    assert indices(mic.sent)[0] == end16 * 3 // 2 % RAMP


def test_max_hold_bounds_memory_keeps_the_start_and_reports_the_gap() -> None:
    end16 = 16000
    gate = WakeGate(ScriptedDetector([end16 + LAG]), max_hold_s=1.0)
    mic = Mic(gate)
    mic.run(1.5)
    mic.take(gate.on_status("connecting"))
    for _ in range(20):
        mic.run(1.0)
        assert gate.kept_samples <= 24000
    released = mic.take(gate.on_status("connected"))
    (rel,) = of(Release, released)
    held = indices(list(rel.frames))
    assert np.array_equal(held, np.arange(24000, 48000) % RAMP)  # the question's start
    assert rel.dropped_samples == mic.n24 - 48000
    mic.run(0.2)
    live = indices(mic.sent)[24000:]
    assert np.array_equal(live, np.arange(mic.n24 - 4800, mic.n24) % RAMP)


def test_failed_connect_drops_held_audio_and_listens_again() -> None:
    gate = WakeGate(ScriptedDetector([16000 + LAG, 80000 + LAG]))
    mic = Mic(gate)
    mic.run(1.5)
    mic.take(gate.on_status("connecting"))
    dropped = mic.take(gate.on_status("closed"))
    # held from the end of the wake word (24000 at 24 kHz) to the last frame captured
    assert of(HeldDropped, dropped) == [HeldDropped(mic.n24 - 24000, "not connected")]
    assert gate.mode == "listening" and gate.kept_samples <= 7200 + 960
    mic.run(4.0)
    assert of(WakeDetected, mic.actions) == [
        WakeDetected("okay_nabu", 16000),
        WakeDetected("okay_nabu", 80000),
    ]
    assert mic.sent == []


def test_muted_nothing_analysed_nothing_kept_nothing_sent() -> None:
    det = ScriptedDetector([16000])
    gate = WakeGate(det, preroll_ms=500)
    mic = Mic(gate)
    gate.on_muted(True)
    assert mic.run(3.0) == []
    assert det.fed == 0 and gate.kept_samples == 0
    mic.take(gate.on_status("connecting"))
    mic.take(gate.on_status("connected"))
    mic.run(1.0)
    assert mic.sent == [] and of(Release, mic.actions) == []


def test_muting_while_holding_drops_the_held_audio() -> None:
    gate = WakeGate(ScriptedDetector([16000 + LAG]))
    mic = Mic(gate)
    mic.run(2.0)
    mic.take(gate.on_status("connecting"))
    assert of(HeldDropped, mic.take(gate.on_muted(True))) == [HeldDropped(24000, "muted")]
    assert gate.kept_samples == 0
    mic.run(0.5)
    mic.take(gate.on_status("connected"))
    mic.run(0.5)
    assert mic.sent == []
    mic.take(gate.on_muted(False))
    mic.run(0.1)
    assert np.array_equal(indices(mic.sent), np.arange(mic.n24 - 2400, mic.n24) % RAMP)


def test_unmute_restarts_the_detector_on_the_gate_clock() -> None:
    det = ScriptedDetector([8000 + LAG])
    gate = WakeGate(det)
    mic = Mic(gate)
    gate.on_muted(True)
    mic.run(2.0)  # 32000 samples at 16 kHz counted, not analysed
    gate.on_muted(False)
    assert det.resets == 1
    mic.run(1.0)
    assert of(WakeDetected, mic.actions) == [WakeDetected("okay_nabu", 32000 + 8000)]


def test_connected_wake_word_interrupts_and_audio_flows() -> None:
    gate = WakeGate(ScriptedDetector([16000]), status="connected")
    mic = Mic(gate)
    mic.run(2.0)
    assert of(Interrupt, mic.actions) == [Interrupt("okay_nabu")]
    assert of(WakeDetected, mic.actions) == []
    assert np.array_equal(indices(mic.sent), np.arange(0, mic.n24) % RAMP)


def test_button_connect_without_wake_word_sends_only_live_audio() -> None:
    gate = WakeGate(ScriptedDetector([]), preroll_ms=500)
    mic = Mic(gate)
    mic.run(1.0)
    mic.take(gate.on_status("connecting"))
    mic.run(0.5)
    mic.take(gate.on_status("connected"))
    start = mic.n24
    mic.run(0.5)
    assert of(Release, mic.actions) == []
    assert np.array_equal(indices(mic.sent), np.arange(start, mic.n24) % RAMP)


def test_reconnecting_sends_nothing_and_ignores_the_wake_word() -> None:
    gate = WakeGate(ScriptedDetector([32000]), status="connected")
    mic = Mic(gate)
    mic.run(1.0)
    sent = len(mic.sent)
    mic.take(gate.on_status("reconnecting"))
    mic.run(2.0)
    assert len(mic.sent) == sent
    assert of(WakeDetected, mic.actions) == [] and of(Interrupt, mic.actions) == []


def test_without_a_model_nothing_is_kept_and_connected_audio_flows() -> None:
    gate = WakeGate(None, preroll_ms=500)
    mic = Mic(gate)
    mic.run(2.0)
    assert gate.kept_samples == 0 and mic.sent == []
    mic.take(gate.on_status("connected"))
    mic.run(0.2)
    assert np.array_equal(indices(mic.sent), np.arange(mic.n24 - 4800, mic.n24) % RAMP)


def test_unknown_status_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'online'"):
        WakeGate(None).on_status("online")


def test_a_fan_out_that_stops_the_24k_stream_while_muted_does_not_skew_the_cut() -> None:
    gate = WakeGate(ScriptedDetector([24000 + LAG]))
    mic = Mic(gate)
    mic.run(1.0)
    gate.on_muted(True)
    for _ in range(100):  # 2 s muted: only the 16 kHz listener is called
        mic.frame(skip_24k=True)
    gate.on_muted(False)
    mic.run(2.0)
    mic.take(gate.on_status("connected"))
    end16 = 48000 + 24000  # the detector restarted at unmute (3 s in), fires 1.5 s later
    assert of(WakeDetected, mic.actions) == [WakeDetected("okay_nabu", end16)]
    assert indices(mic.sent)[0] == end16 * 3 // 2 % RAMP
