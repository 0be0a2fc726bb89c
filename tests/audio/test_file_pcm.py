"""Bit-exact (unpaced) ALSA tests over the ``file`` plugin: known speech in, known speech out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import (
    best_correlation,
    from_device,
    load_speech,
    run_scenario,
    to_device,
    write_conf,
)


def _capture_conf(tmp_path: Path, infile: Path, rate: int, channels: int, fmt: str) -> str:
    return write_conf(
        tmp_path / "test.conf",
        f"""
pcm.fcap {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
pcm.pcap {{
    type plug
    slave {{ pcm "fcap"; rate {rate}; channels {channels}; format {fmt} }}
}}
""",
    )


@pytest.mark.parametrize(
    ("rate", "channels", "fmt", "device"),
    [
        (48000, 2, "S16_LE", "pcap"),
        (48000, 2, "S32_LE", "pcap"),
        (48000, 1, "S32_LE", "fcap"),
        (44100, 1, "S16_LE", "pcap"),
        (24000, 1, "S16_LE", "fcap"),
    ],
)
def test_capture_delivers_the_speech(
    tmp_path: Path, rate: int, channels: int, fmt: str, device: str
) -> None:
    speech = load_speech()
    infile = tmp_path / "in.raw"
    infile.write_bytes(to_device(speech, rate, channels, fmt))
    conf = _capture_conf(tmp_path, infile, rate, channels, fmt)
    out = tmp_path / "captured.raw"
    n_frames = len(speech) // 480 - 2  # stay inside the file: past its end reads are stale
    result = run_scenario(
        {
            "kind": "capture",
            "device": device,
            "rate": rate,
            "channels": channels,
            "fmt": fmt,
            "frames": n_frames,
            "max_queue_frames": 10_000,
            "out": str(out),
        },
        conf,
    )
    assert result["frames"] == n_frames
    assert result["sizes"] == [960]
    assert result["faults"] == []
    got = np.frombuffer(out.read_bytes(), dtype="<i2")
    corr = best_correlation(speech[: len(got)], got)
    assert corr > 0.9, f"correlation {corr:.3f}"


def test_model_audio_reaches_the_playback_file_at_48k(tmp_path: Path) -> None:
    speech = load_speech("weather_question.wav")
    pcm_in = tmp_path / "model.raw"
    pcm_in.write_bytes(speech.tobytes())
    out = tmp_path / "played.raw"
    conf = write_conf(
        tmp_path / "test.conf",
        f"""
pcm.fplay {{
    type file
    slave.pcm "null"
    file "{out}"
    format "raw"
}}
pcm.pplay {{
    type plug
    slave {{ pcm "fplay"; rate 48000; channels 2; format S16_LE }}
}}
""",
    )
    result = run_scenario(
        {"kind": "playback", "device": "pplay", "rate": 48000, "channels": 2, "input": str(pcm_in)},
        conf,
    )
    assert result["faults"] == []
    raw = out.read_bytes()
    frames_48k = len(raw) // 4
    # All of it arrived (give or take the resampler's few samples of delay).
    assert abs(frames_48k - 2 * len(speech)) < 200, (frames_48k, 2 * len(speech))
    stereo = np.frombuffer(raw, dtype="<i2").reshape(-1, 2)
    assert np.array_equal(stereo[:, 0], stereo[:, 1])
    back = from_device(raw, 48000, 2)
    corr = best_correlation(speech / 32768, back)
    assert corr > 0.95, f"correlation {corr:.3f}"
    assert result["played_ms"] >= len(speech) * 1000 // 24000 - 10
    assert result["stats"]["underruns"] == 0


def test_playback_mono_device_through_plug(tmp_path: Path) -> None:
    speech = load_speech()
    pcm_in = tmp_path / "model.raw"
    pcm_in.write_bytes(speech.tobytes())
    out = tmp_path / "played.raw"
    conf = write_conf(
        tmp_path / "test.conf",
        f'pcm.fplay {{ type file; slave.pcm "null"; file "{out}"; format "raw" }}\n',
    )
    result = run_scenario(
        {"kind": "playback", "device": "fplay", "rate": 16000, "channels": 1, "input": str(pcm_in)},
        conf,
    )
    assert result["faults"] == []
    back = from_device(out.read_bytes(), 16000, 1)
    assert best_correlation(speech / 32768, back) > 0.9
