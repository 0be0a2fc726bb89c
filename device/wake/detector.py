"""On-device wake word detection with pymicro-wakeword (microWakeWord TFLite models).

:class:`WakeDetector` takes 16 kHz mono PCM16 in frames of any size and returns a
:class:`Detection` for each wake word, stamped with the sample index (counted from the first
sample fed since the last :meth:`WakeDetector.reset`) at which the model fired. The model
fires once it has heard the whole phrase: measured on espeak-ng speech, 0-150 ms after the
phrase's acoustic end, so that index is the detector's "end of the wake word".

A detection fires on the rising edge (the model's averaged probability crossing its cutoff)
and not again until the probability has fallen back and ``refractory_s`` has passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymicro_features import MicroFrontend
from pymicro_wakeword import MicroWakeWord

from ..realtime.errors import ConfigError
from .config import model_json_path

RATE = 16000
_CHUNK_BYTES = 320  # 10 ms, the frontend's step


@dataclass(frozen=True)
class Detection:
    """A wake word heard; ``end_sample`` is the 16 kHz sample index where the model fired."""

    model: str
    end_sample: int
    probability: float

    @property
    def time_s(self) -> float:
        return self.end_sample / RATE


def load_model(model: str) -> MicroWakeWord:
    """Load a built-in model by name or a microWakeWord JSON model file; errors name
    ``wake.model``."""
    path = model_json_path(model)
    try:
        return MicroWakeWord.from_config(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"wake.model: cannot load {path}: {exc}") from None


class WakeDetector:
    """Streaming wake word detector (16 kHz mono PCM16 in, :class:`Detection` out)."""

    def __init__(self, model: str, refractory_s: float = 2.0) -> None:
        self._mww = load_model(model)
        #: Model id, e.g. ``okay_nabu`` (the JSON file's stem for a model file).
        self.name: str = self._mww.id
        #: The phrase, e.g. ``Okay Nabu``.
        self.wake_word: str = self._mww.wake_word
        self._cutoff = float(self._mww.probability_cutoff)
        self._refractory = round(refractory_s * RATE)
        self._frontend = MicroFrontend()
        self._pending = b""
        self._consumed = 0
        self._armed = True
        self._quiet_until = 0

    @property
    def samples(self) -> int:
        """Samples analysed since the last reset (the clock of ``Detection.end_sample``)."""
        return self._consumed

    def feed(self, pcm: bytes) -> list[Detection]:
        """Analyse ``pcm`` (16 kHz mono PCM16, any length); detections it completed."""
        data = self._pending + pcm if self._pending else pcm
        found: list[Detection] = []
        pos = 0
        end = len(data)
        while pos + _CHUNK_BYTES <= end:
            result = self._frontend.process_samples(data[pos : pos + _CHUNK_BYTES])
            read = result.samples_read
            pos += read * 2
            self._consumed += read
            if read == 0:  # pragma: no cover - the frontend always consumes a step
                break
            if not result.features:
                continue
            features = np.asarray(result.features, dtype=np.float32).reshape(1, 1, -1)
            prob = self._mww.process_streaming_prob(features)
            if prob is None:
                continue
            detection = self._edge(prob)
            if detection is not None:
                found.append(detection)
        self._pending = data[pos:]
        return found

    def _edge(self, prob: float) -> Detection | None:
        if prob <= self._cutoff:
            self._armed = True
            return None
        if not self._armed or self._consumed < self._quiet_until:
            return None
        self._armed = False
        self._quiet_until = self._consumed + self._refractory
        return Detection(self.name, self._consumed, float(prob))

    def reset(self) -> None:
        """Forget all audio (after a gap in the stream, e.g. mute): the clock restarts at 0."""
        self._frontend.reset()
        self._mww.reset()
        self._pending = b""
        self._consumed = 0
        self._armed = True
        self._quiet_until = 0

    def close(self) -> None:
        self._mww.close()
