"""Shared helpers for the ALSA tests.

Every ALSA scenario runs in a fresh child process (``scenario.py``) with its own
``ALSA_CONFIG_PATH``: alsa-lib reads its configuration at the first PCM open of a process and
caches it, so one pytest process cannot switch between test configurations. The child prints a
JSON result; audio comes back through raw files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr

from device.data import DIR as DATA_DIR
from device.devtools.pulse import SYSTEM_ALSA_CONF, PrivatePulse, PulseUnavailable

SCENARIO = Path(__file__).with_name("scenario.py")
SPEECH_DIR = DATA_DIR


def load_speech(name: str = "hello_world.wav") -> np.ndarray[Any, np.dtype[np.int16]]:
    """The 24 kHz mono int16 samples of a shared speech sample (skip if it is absent)."""
    path = SPEECH_DIR / name
    if not path.exists():
        pytest.skip(f"speech sample {path} not present")
    with wave.open(str(path)) as w:
        assert w.getframerate() == 24000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


def to_device(speech: np.ndarray[Any, Any], rate: int, channels: int, fmt: str) -> bytes:
    """24 kHz mono speech as raw interleaved device audio (HQ resampling, independent of ours)."""
    x = soxr.resample(speech.astype(np.float32) / 32768, 24000, rate, quality="HQ")
    if fmt == "S32_LE":
        y = np.clip(x * 2**31, -(2**31), 2**31 - 1).astype("<i4")
    else:
        y = np.clip(x * 32768, -32768, 32767).astype("<i2")
    return np.repeat(y, channels).tobytes()


def from_device(raw: bytes, rate: int, channels: int) -> np.ndarray[Any, Any]:
    """Raw interleaved S16 device audio → 24 kHz mono float."""
    x = np.frombuffer(raw, dtype="<i2")
    x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1) / 32768
    return np.asarray(soxr.resample(x.astype(np.float32), rate, 24000, quality="HQ"))


def best_correlation(reference: np.ndarray[Any, Any], got: np.ndarray[Any, Any]) -> float:
    """Peak normalized cross-correlation of ``got`` against ``reference`` over all lags."""
    a = reference.astype(np.float64)
    b = got.astype(np.float64)
    n = len(a) + len(b)
    size = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    lag = int(np.argmax(np.abs(xc)))
    if lag >= len(b):
        lag -= size
    # Compare the overlapping parts at the best lag.
    if lag >= 0:
        seg_b, seg_a = b[lag:], a
    else:
        seg_b, seg_a = b, a[-lag:]
    m = min(len(seg_a), len(seg_b))
    seg_a, seg_b = seg_a[:m], seg_b[:m]
    denom = float(np.sqrt(np.dot(seg_a, seg_a) * np.dot(seg_b, seg_b)))
    return float(np.dot(seg_a, seg_b) / denom) if denom else 0.0


def write_conf(path: Path, body: str) -> str:
    """Write an ALSA config file; return the value for ALSA_CONFIG_PATH."""
    path.write_text(body)
    return f"{SYSTEM_ALSA_CONF}:{path}"


def run_scenario(
    spec: dict[str, Any], alsa_config_path: str, timeout: float = 60.0
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PULSE_SERVER"}
    env["ALSA_CONFIG_PATH"] = alsa_config_path
    proc = subprocess.run(
        [sys.executable, str(SCENARIO), json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"scenario failed:\n{proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["stderr"] = proc.stderr
    return result


@pytest.fixture
def pulse_factory(tmp_path: Path) -> Iterator[Any]:
    """Start :class:`PrivatePulse` instances; skip only when the binaries are missing."""
    started: list[PrivatePulse] = []

    def make(**kwargs: Any) -> PrivatePulse:
        if shutil.which("pulseaudio") is None:
            pytest.skip("pulseaudio binary not installed")
        pulse = PrivatePulse(**kwargs)
        try:
            pulse.start()
        except PulseUnavailable as exc:
            if exc.missing_binary:
                pytest.skip(str(exc))
            raise
        started.append(pulse)
        return pulse

    yield make
    for pulse in started:
        pulse.stop()
