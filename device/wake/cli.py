"""``voice-device wake-test FILE.wav [--model okay_nabu]`` and the doctor's wake check.

The wake-test runs the detector over a recording (any rate, mono or stereo, 16- or 32-bit
PCM; resampled to 16 kHz, stereo averaged) and prints one line per detection: where the wake
word ended (where held audio starts with ``preroll_ms = 0``) and where the model fired::

    1.25 s  okay_nabu  (fired at 1.40 s, p=0.85)

for people tuning a microphone's gain and placement. Exit status 0 with at least one
detection, 1 with none, 2 for an unreadable file or an unknown model.

Register it in ``device/cli.py``::

    from .wake import cli as wake_cli
    wake_cli.add_parser(sub)                         # in _parser()
    case "wake-test": return wake_cli.run(args)     # in main()
"""

from __future__ import annotations

import argparse
import sys
import wave
from pathlib import Path

import numpy as np

from ..realtime.errors import ConfigError, VoiceDeviceError
from .config import BUILTIN_MODELS, WakeSection
from .detector import RATE, Detection, WakeDetector

_FRAME = 320  # 20 ms at 16 kHz, as the capture fan-out delivers it


class WavError(VoiceDeviceError, ValueError):
    """A recording the wake-test cannot read."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("wake-test", help="run the wake word detector over a WAV recording")
    p.add_argument("file", type=Path, help="WAV file (PCM, any rate, mono or stereo)")
    p.add_argument(
        "--model",
        default="okay_nabu",
        help=f"{' | '.join(BUILTIN_MODELS)} or a microWakeWord .json model file",
    )
    p.add_argument("--refractory-s", type=float, default=2.0, help="ignore repeats (seconds)")


def read_wav_16k(path: Path) -> np.ndarray:
    """The recording as 16 kHz mono int16."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise WavError(f"{path}: file not found") from None
    except OSError as exc:
        raise WavError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (wave.Error, EOFError) as exc:
        raise WavError(f"{path}: not a PCM WAV file ({exc})") from None
    if width not in (2, 4):
        raise WavError(f"{path}: {8 * width}-bit samples; expected 16- or 32-bit PCM")
    scale = 32768.0 if width == 2 else 2147483648.0
    audio = np.frombuffer(raw, dtype=np.int16 if width == 2 else np.int32)
    mono = audio.reshape(-1, channels).astype(np.float32).mean(axis=1) / scale
    if rate != RATE:
        import soxr

        mono = soxr.resample(mono, rate, RATE)
    return np.asarray(np.clip(mono * 32768.0, -32768, 32767), dtype=np.int16)


def detect_pcm(pcm16k: bytes, model: str, refractory_s: float = 2.0) -> list[Detection]:
    """Feed 16 kHz PCM16 through a fresh detector in 20 ms frames."""
    detector = WakeDetector(model, refractory_s)
    try:
        found: list[Detection] = []
        step = _FRAME * 2
        for i in range(0, len(pcm16k), step):
            found += detector.feed(pcm16k[i : i + step])
        return found
    finally:
        detector.close()


def wake_test(path: Path | str, model: str = "okay_nabu", refractory_s: float = 2.0) -> list[float]:
    """Times (seconds from the start of the recording) at which ``model``'s wake word ended,
    one per detection in ``path``."""
    pcm = read_wav_16k(Path(path)).tobytes()
    return [d.time_s for d in detect_pcm(pcm, model, refractory_s)]


def run(args: argparse.Namespace) -> int:
    try:
        pcm = read_wav_16k(args.file).tobytes()
        found = detect_pcm(pcm, args.model, args.refractory_s)
    except (WavError, ConfigError) as exc:
        print(f"voice-device: {exc}", file=sys.stderr)
        return 2
    for d in found:
        fired = d.fired_sample / RATE
        print(f"{d.time_s:.2f} s  {d.model}  (fired at {fired:.2f} s, p={d.probability:.2f})")
    if not found:
        print(f"no wake word ({args.model}) in {len(pcm) / 2 / RATE:.1f} s", file=sys.stderr)
    return 0 if found else 1


def check_wake(section: WakeSection) -> tuple[bool, str]:
    """For ``voice-device doctor``: load the configured model; (ok, line)."""
    if not section.enabled:
        return True, "wake word off ([wake] model is empty)"
    try:
        detector = WakeDetector(section.model, section.refractory_s)
    except ConfigError as exc:
        return False, f"{exc}\n      fix: a built-in model ({', '.join(BUILTIN_MODELS)}) or a path"
    name, phrase = detector.name, detector.wake_word
    detector.close()
    return True, f'wake word model {name} ("{phrase}") loaded'
