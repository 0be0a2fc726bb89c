"""On-device wake word detection with pymicro-wakeword (microWakeWord TFLite models).

:class:`WakeDetector` takes 16 kHz mono PCM16 in frames of any size and returns a
:class:`Detection` for each wake word, stamped with the sample index (counted from the first
sample fed since the last :meth:`WakeDetector.reset`) at which the model fired. That index is
the detector's estimate of the end of the wake word (see below).

A detection fires on the rising edge (the model's averaged probability crossing its cutoff)
and not again until the probability has fallen back and ``refractory_s`` has passed.

The averaged probability (``sliding_window_size`` inferences of 30 ms) crosses the cutoff
90-200 ms after the phrase's acoustic end (espeak-ng speech, six voices, three speeds): said in
one breath, that much of the question would be lost. So each inference's own probability is
tracked too, and a detection is stamped with the first inference of the run above
:data:`RISE` that led to it: -30..+60 ms from the acoustic end on the same speech (and never
more than :data:`LOOKBACK_SAMPLES` before the detection).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from pymicro_features import MicroFrontend
from pymicro_wakeword import MicroWakeWord

from ..realtime.errors import ConfigError
from .config import model_json_path

RATE = 16000
_CHUNK_BYTES = 320  # 10 ms, the frontend's step
#: A single inference above this probability starts the run that ends in a detection.
RISE = 0.5
#: The end of the wake word is placed at most this long before the detection fired.
LOOKBACK_SAMPLES = 4800  # 300 ms


@dataclass(frozen=True)
class Detection:
    """A wake word heard. Sample indices are 16 kHz, counted from the detector's (re)start."""

    model: str
    #: Estimated end of the wake word (the start of the rise that led to the detection).
    end_sample: int
    #: Where the averaged probability crossed the cutoff (what ``end_sample`` corrects).
    fired_sample: int
    probability: float

    @property
    def time_s(self) -> float:
        return self.end_sample / RATE


def load_model(model: str) -> tuple[MicroWakeWord, int]:
    """Load a built-in model by name or a microWakeWord JSON model file, set up to return each
    inference's own probability; with the model's averaging window. Errors name
    ``wake.model``."""
    path = model_json_path(model)
    try:
        config = MicroWakeWord.from_config(path)
        config.close()
        mww = MicroWakeWord(
            config.id,
            wake_word=config.wake_word,
            tflite_model=config.tflite_model,
            probability_cutoff=config.probability_cutoff,
            sliding_window_size=1,
            trained_languages=config.trained_languages,
            libtensorflowlite_c_path=config.libtensorflowlite_c_path,
        )
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ConfigError(f"wake.model: cannot load {path}: {exc}") from None
    return mww, int(config.sliding_window_size)


class WakeDetector:
    """Streaming wake word detector (16 kHz mono PCM16 in, :class:`Detection` out)."""

    def __init__(self, model: str, refractory_s: float = 2.0) -> None:
        self._mww, window = load_model(model)
        #: Model id, e.g. ``okay_nabu`` (the JSON file's stem for a model file).
        self.name: str = self._mww.id
        #: The phrase, e.g. ``Okay Nabu``.
        self.wake_word: str = self._mww.wake_word
        self._cutoff = float(self._mww.probability_cutoff)
        self._stride = int(self._mww.stride)
        self._refractory = round(refractory_s * RATE)
        self._frontend = MicroFrontend()
        self._window: deque[float] = deque(maxlen=window)
        self._pending = b""
        self._consumed = 0
        self._features = 0
        self._rise: int | None = None
        self._armed = True
        self._quiet_until = 0

    @property
    def samples(self) -> int:
        """Samples analysed since the last reset (the clock of the detections)."""
        return self._consumed

    def feed(self, pcm: bytes) -> list[Detection]:
        """Analyse ``pcm`` (16 kHz mono PCM16, any length); detections it completed."""
        data = self._pending + pcm if self._pending else pcm
        found: list[Detection] = []
        pos = 0
        while pos + _CHUNK_BYTES <= len(data):
            result = self._frontend.process_samples(data[pos : pos + _CHUNK_BYTES])
            if result.samples_read == 0:  # pragma: no cover - it always consumes a step
                break
            pos += result.samples_read * 2
            self._consumed += result.samples_read
            if not result.features:
                continue
            self._features += 1
            features = np.asarray(result.features, dtype=np.float32).reshape(1, 1, -1)
            raw = self._mww.process_streaming_prob(features)
            if raw is None or self._features % self._stride:
                continue  # no inference on this step
            detection = self._infer(float(raw))
            if detection is not None:
                found.append(detection)
        self._pending = data[pos:]
        return found

    def _infer(self, raw: float) -> Detection | None:
        if raw > RISE:
            if self._rise is None:
                self._rise = self._consumed
        else:
            self._rise = None
        self._window.append(raw)
        if len(self._window) < (self._window.maxlen or 1):
            return None
        mean = sum(self._window) / len(self._window)
        if mean <= self._cutoff:
            self._armed = True
            return None
        if not self._armed or self._consumed < self._quiet_until:
            return None
        self._armed = False
        self._quiet_until = self._consumed + self._refractory
        end = self._consumed if self._rise is None else self._rise
        end = max(end, self._consumed - LOOKBACK_SAMPLES)
        return Detection(self.name, end, self._consumed, mean)

    def reset(self, *, reload: bool = True) -> None:
        """Forget all audio (after a gap in the stream, e.g. mute): the clock restarts at 0."""
        self._frontend.reset()
        if reload:
            self._mww.reset()
        self._window.clear()
        self._pending = b""
        self._consumed = 0
        self._features = 0
        self._rise = None
        self._armed = True
        self._quiet_until = 0

    def close(self) -> None:
        self._mww.close()
