"""Several microphone listeners on the real capture (paced PulseAudio PCM): the session's stream
to the simulator is untouched by a 16 kHz listener, a raising one, one that blocks the loop once
and one that never reads, and
nothing captured while muted reaches the wire."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr

from .conftest import best_correlation, load_speech, run_scenario, to_device

pytestmark = pytest.mark.paced


def test_extra_listeners_leave_the_sessions_stream_whole_and_muted_frames_off_the_wire(
    tmp_path: Path, pulse_factory: Any
) -> None:
    speech = load_speech("weather_question.wav")
    infile = tmp_path / "in.raw"
    infile.write_bytes(to_device(speech, 48000, 2, "S16_LE"))
    pulse = pulse_factory(capture_file=infile)
    total, mute_at, unmute_at = 150, 50, 100
    result = run_scenario(
        {
            "kind": "listeners",
            "device": "paced_capture",
            "rate": 48000,
            "channels": 2,
            "frames": total,
            "mute_at": mute_at,
            "unmute_at": unmute_at,
            "block_at": 20,
            "block_s": 0.3,
            "out": str(tmp_path),
            "timeout_s": 30,
        },
        pulse.alsa_config_path,
    )
    assert result["frames"] >= total
    assert result["muted_frames"] == unmute_at - mute_at
    wire = (tmp_path / "wire.raw").read_bytes()
    unmuted = (tmp_path / "unmuted.raw").read_bytes()
    muted = (tmp_path / "muted.raw").read_bytes()
    # Every frame offered while unmuted reached the wire, in order, byte for byte; and not
    # one more frame: none of the 50 captured while muted.
    assert result["wire_frames"] == result["unmuted_frames"]
    assert wire == unmuted
    assert len(muted) == 50 * 960 and muted not in wire
    # The session's stream is the speech (the first stretch, before the mute).
    first = np.frombuffer(unmuted[: mute_at * 960], dtype="<i2")
    assert best_correlation(speech[: len(first)], first) > 0.9
    # The 16 kHz listener heard the same speech, in 20 ms frames, muted stretch included (mute
    # gating is the session's job; a wake-word detector stays off while muted by the app).
    got16 = np.frombuffer((tmp_path / "16k.raw").read_bytes(), dtype="<i2")
    assert result["sizes_16k"] == [640]
    assert result["frames_16k"] >= result["frames"] - 3
    ref16 = soxr.resample(speech.astype(np.float32), 24000, 16000, quality="HQ")
    assert best_correlation(ref16[: len(got16)], got16) > 0.9
    # The raising listener was called for (nearly) every frame and logged once; the queue
    # nobody read kept only its newest 5 frames.
    assert result["raised"] >= result["frames"] - 3
    assert result["stderr"].count("failed on a frame") == 1
    assert "RuntimeError: wake-word detector bug" in result["stderr"]
    assert result["unread_dropped"] >= result["frames_16k"] - 5
    # The listener that held the loop for 300 ms delayed the stream but cost none of it (the
    # byte-exact comparison above), and was named once.
    assert result["stderr"].count("listeners must be cheap") == 1
