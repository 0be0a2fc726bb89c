"""Audio and accounting helpers of the simulator: synthetic speech and token usage.

Usage model (documented in docs/providers.md): OpenAI bills realtime audio per token; we count
**10 tokens per second of user audio** and **20 tokens per second of model audio**, and one
text token per 4 characters. Each response's input is the whole conversation so far (audio and
text, both directions) plus the instructions; the part that was already the input of the
previous response counts as cached, as the real server's prompt cache does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..realtime.pcm import RATE
from ..realtime.providers import OPENAI, XAI

CHUNK_MS = 40
#: The voices each provider documents (the provider records); the real servers answer any other
#: with ``invalid_value``, and so does the simulator.
OPENAI_VOICES = OPENAI.voices
XAI_VOICES = XAI.voices
VAD_RMS = 600.0  # int16 RMS above which a 20 ms frame counts as voice
VAD_ONSET_MS = 60
INPUT_AUDIO_TOKENS_PER_S = 10
OUTPUT_AUDIO_TOKENS_PER_S = 20
CHARS_PER_TEXT_TOKEN = 4


def audio_tokens(ms: int, per_second: int) -> int:
    return math.ceil(ms * per_second / 1000) if ms > 0 else 0


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TEXT_TOKEN) if text else 0


def usage(
    context: tuple[int, int], cached: tuple[int, int], out_audio: int, out_text: int
) -> dict[str, Any]:
    """A GA ``response.usage``: ``context``/``cached`` are (audio, text) input tokens."""
    audio_in, text_in = context
    cached_audio, cached_text = min(cached[0], audio_in), min(cached[1], text_in)
    input_tokens, output_tokens = audio_in + text_in, out_audio + out_text
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "image_tokens": 0,
            "cached_tokens": cached_audio + cached_text,
            "cached_tokens_details": {
                "text_tokens": cached_text,
                "audio_tokens": cached_audio,
                "image_tokens": 0,
            },
        },
        "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
    }


def tone(text: str, *, seconds: float | None = None) -> bytes:
    """Speech-like audio for ``text``: a voiced buzz with syllable envelopes, 24 kHz s16le."""
    duration = seconds if seconds is not None else min(10.0, max(3.0, 0.1 * len(text)))
    n = int(duration * RATE)
    t = np.arange(n, dtype=np.float64) / RATE
    pitch = 140.0 + 20.0 * np.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = 0.55 + 0.45 * np.sin(2 * math.pi * 4.0 * t) ** 2
    edge = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    pcm = (voice * syllables * edge * 6000.0).astype("<i2")
    return bytes(pcm.tobytes())
