"""The model's audio format, defined once: 24 kHz mono PCM16 (s16le).

Every sample between the device and a realtime model has this format: the mic frames sent
(20 ms each), the model's audio deltas, earcons, and the accounting of what was heard.
"""

from __future__ import annotations

#: Samples per second.
RATE = 24000
#: Bytes per sample (signed 16-bit little-endian, one channel).
SAMPLE_BYTES = 2
#: Bytes of audio per second and per millisecond (48).
BYTES_PER_S = RATE * SAMPLE_BYTES
BYTES_PER_MS = BYTES_PER_S // 1000
#: One mic frame: 20 ms, 480 samples, 960 bytes.
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_BYTES


def duration_ms(nbytes: int) -> int:
    """Whole milliseconds of audio in ``nbytes`` bytes."""
    return nbytes // BYTES_PER_MS


def byte_count(ms: int) -> int:
    """Bytes of ``ms`` milliseconds of audio."""
    return ms * BYTES_PER_MS
