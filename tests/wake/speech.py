"""Real speech for the wake word tests: espeak-ng (22050 Hz) resampled with soxr."""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import soxr

DEVICE_AUDIO = Path(__file__).resolve().parents[2] / "device" / "data"


def espeak(text: str, rate: int = 16000, *, voice: str = "en", speed: int = 175) -> np.ndarray:
    """``text`` spoken by espeak-ng as mono int16 at ``rate``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        return read_wav(out, rate)


def read_wav(path: Path, rate: int) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        src = w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        audio = audio.reshape(-1, w.getnchannels()).mean(axis=1).astype(np.int16)
    if src == rate:
        return np.asarray(audio)
    return np.asarray(soxr.resample(audio, src, rate), dtype=np.int16)


def silence(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def voiced_end(audio: np.ndarray, rate: int = 16000) -> float:
    """Seconds at which the last 10 ms window louder than 2 % of the peak ends."""
    win = rate // 100
    n = len(audio) // win
    rms = np.sqrt(np.mean(audio[: n * win].astype(np.float64).reshape(n, win) ** 2, axis=1))
    loud = np.nonzero(rms > 0.02 * rms.max())[0]
    return float((loud[-1] + 1) * win / rate)


def voiced_start(audio: np.ndarray, rate: int = 16000) -> float:
    win = rate // 100
    n = len(audio) // win
    rms = np.sqrt(np.mean(audio[: n * win].astype(np.float64).reshape(n, win) ** 2, axis=1))
    loud = np.nonzero(rms > 0.02 * rms.max())[0]
    return float(loud[0] * win / rate)


def false_alarm_material() -> np.ndarray:
    """About 5 minutes of other speech, silence and tones, no "okay nabu"."""
    rate = 16000
    sentences = [
        "hey jarvis, when does the museum close?",
        "okay, now tell me about the weather tomorrow.",
        "hey mycroft, set a timer for ten minutes.",
        "alexa, play some music in the kitchen.",
        "a banana, a nap, and a cup of tea.",
        "the quick brown fox jumps over the lazy dog.",
        "OK, nobody knows the trouble I have seen.",
        "please open the door, it is cold outside.",
    ]
    parts: list[np.ndarray] = []
    for voice in ("en", "en-us", "en+m3"):
        for text in sentences:
            parts += [espeak(text, voice=voice), silence(0.4)]
    for name in ("hello_world.wav", "weather_question.wav"):
        parts += [read_wav(DEVICE_AUDIO / name, rate), silence(0.5)]
    t = np.arange(rate * 3) / rate
    rng = np.random.default_rng(14)
    for tone in (
        0.3 * np.sin(2 * np.pi * 440 * t),
        0.3 * np.sin(2 * np.pi * 1000 * t),
        0.3 * np.sin(2 * np.pi * (200 + 600 * t) * t),  # sweep
        0.05 * rng.standard_normal(len(t)),  # hiss
        0.3 * np.sign(np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * 250 * t),  # beeps
    ):
        parts += [(tone * 32767).astype(np.int16), silence(1.0)]
    once = np.concatenate(parts)
    reps = int(np.ceil(300 * rate / len(once)))
    return np.tile(once, reps)[: 300 * rate]
