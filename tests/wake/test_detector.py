"""The wake word detector on real speech (espeak-ng), and the gate fed by it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soxr

from device.realtime.errors import ConfigError
from device.wake.cli import detect_pcm, wake_test
from device.wake.detector import WakeDetector
from device.wake.gate import Forward, Release, WakeDetected, WakeGate

from .speech import (
    espeak,
    false_alarm_material,
    silence,
    voiced_end,
    voiced_start,
)

WAKE = "okay nabu"
QUESTION = "when does the museum close?"


def wake_then_question(gap_s: float, rate: int = 16000) -> tuple[np.ndarray, float, float]:
    """0.5 s silence, "okay nabu" (trimmed), ``gap_s``, the question (trimmed), 1 s silence;
    with the wake word's acoustic end and the question's start, in seconds."""
    wake = espeak(WAKE, rate)
    wake = wake[: round(voiced_end(wake, rate) * rate)]
    question = espeak(QUESTION, rate)
    question = question[round(voiced_start(question, rate) * rate) :]
    audio = np.concatenate([silence(0.5, rate), wake, silence(gap_s, rate), question])
    wake_end = 0.5 + len(wake) / rate
    return np.concatenate([audio, silence(1.0, rate)]), wake_end, wake_end + gap_s


@pytest.mark.parametrize("frame_bytes", [7, 320, 640, 1 << 20])
def test_okay_nabu_is_detected_once_at_the_end_of_the_wake_word(frame_bytes: int) -> None:
    audio, wake_end, _ = wake_then_question(0.3)
    detector = WakeDetector("okay_nabu")
    pcm = audio.tobytes()
    found = []
    for i in range(0, len(pcm), frame_bytes):
        found += detector.feed(pcm[i : i + frame_bytes])
    assert len(found) == 1, found
    (d,) = found
    assert d.model == "okay_nabu"
    assert abs(d.time_s - wake_end) <= 0.1, (d.time_s, wake_end)
    assert d.end_sample <= d.fired_sample <= d.end_sample + 4800
    assert len(audio) - 160 < detector.samples <= len(audio)  # all but a partial 10 ms step


def test_the_question_said_in_one_breath_reaches_the_model_and_the_wake_word_does_not() -> None:
    a16, wake_end, question_start = wake_then_question(0.05, 16000)
    a24, _, _ = wake_then_question(0.05, 24000)
    gate = WakeGate(WakeDetector("okay_nabu"), preroll_ms=0)
    sent: list[bytes] = []
    detected: list[WakeDetected] = []
    for k in range(len(a16) // 320):
        actions = gate.on_frame_16k(a16[k * 320 : (k + 1) * 320].tobytes())
        actions += gate.on_frame_24k(a24[k * 480 : (k + 1) * 480].tobytes())
        for a in actions:
            if isinstance(a, WakeDetected):
                detected.append(a)
                gate.on_status("connecting")
            elif isinstance(a, Forward):
                sent.append(a.frame)
        if k == 100 and detected:  # the session comes up 2 s in
            (release,) = gate.on_status("connected")
            assert isinstance(release, Release)
            sent += release.frames
    assert len(detected) == 1
    wire = np.frombuffer(b"".join(sent), dtype=np.int16)
    first = len(a24) // 480 * 480 - len(wire)  # where the wire starts in the source
    assert np.array_equal(wire, a24[first : first + len(wire)])  # in order, no gap/duplicate
    assert first == detected[0].end_sample * 3 // 2
    # nothing from more than a few ms before the wake word's end; all of the question
    assert first / 24000 >= wake_end - 0.05
    assert first / 24000 <= question_start
    question = espeak(QUESTION, 24000)
    question = question[round(voiced_start(question, 24000) * 24000) :].astype(np.float64)
    corr = np.correlate(wire.astype(np.float64), question, mode="valid")
    at = int(np.argmax(corr))
    peak = corr[at] / np.linalg.norm(question) / np.linalg.norm(wire[at : at + len(question)])
    assert peak > 0.99
    assert abs((first + at) / 24000 - question_start) < 0.002


def test_refractory_time_suppresses_a_quick_repeat() -> None:
    wake = espeak(WAKE)
    twice = np.concatenate([silence(0.5), wake, silence(0.3), wake, silence(0.5)]).tobytes()
    assert len(detect_pcm(twice, "okay_nabu", refractory_s=0.2)) == 2
    assert len(detect_pcm(twice, "okay_nabu", refractory_s=2.0)) == 1


def test_five_minutes_of_other_sound_detect_nothing() -> None:
    audio = false_alarm_material()
    assert len(audio) == 300 * 16000
    assert detect_pcm(audio.tobytes(), "okay_nabu", refractory_s=0.0) == []


def test_wake_test_reads_any_wav_and_returns_detection_times(tmp_path: Path) -> None:
    import wave

    audio, wake_end, _ = wake_then_question(0.3, 16000)
    stereo48 = soxr.resample(audio, 16000, 48000).astype(np.int16)
    path = tmp_path / "mic.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(np.repeat(stereo48, 2).tobytes())
    (t,) = wake_test(path, "okay_nabu")
    assert abs(t - wake_end) <= 0.1


def test_unknown_model_and_bad_model_files_name_wake_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r'^wake\.model: unknown model "okay_nabo"'):
        WakeDetector("okay_nabo")
    with pytest.raises(ConfigError, match=r"^wake\.model: model file not found"):
        WakeDetector(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"^wake\.model: .*not a JSON model description"):
        WakeDetector(str(bad))
    desc = {"type": "micro", "model": "x.tflite", "wake_word": "X", "micro": {}}
    bad.write_text(json.dumps(desc))
    with pytest.raises(ConfigError, match=r"micro\.probability_cutoff"):
        WakeDetector(str(bad))
    desc["micro"] = {"probability_cutoff": 0.9, "sliding_window_size": 5}
    bad.write_text(json.dumps(desc))
    with pytest.raises(ConfigError, match=r"x\.tflite not found"):
        WakeDetector(str(bad))
    (tmp_path / "x.tflite").write_bytes(b"not a model at all")
    with pytest.raises(ConfigError, match=r"^wake\.model: .*x\.tflite is not a TensorFlow Lite"):
        WakeDetector(str(bad))


def test_a_model_file_path_loads_like_the_builtin(tmp_path: Path) -> None:
    import pymicro_wakeword

    models = Path(pymicro_wakeword.__file__).parent / "models"
    (tmp_path / "okay_nabu.tflite").write_bytes((models / "okay_nabu.tflite").read_bytes())
    (tmp_path / "mine.json").write_text((models / "okay_nabu.json").read_text())
    audio, wake_end, _ = wake_then_question(0.3)
    (d,) = detect_pcm(audio.tobytes(), str(tmp_path / "mine.json"))
    assert abs(d.time_s - wake_end) <= 0.1
