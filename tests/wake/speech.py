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
