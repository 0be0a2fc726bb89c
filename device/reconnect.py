"""Backoff between reconnect attempts, and the session's counters."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class ReconnectPolicy:
    """Jittered exponential backoff: first retry ≤ ``first`` s, then doubling up to ``cap``."""

    first: float = 0.5
    cap: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        base = min(self.cap, self.first * self.factor**attempt)
        return base * random.uniform(0.5, 1.0)


@dataclass
class SessionStats:
    """Counters a benchmark or ``voice-device status`` can read."""

    frames_sent: int = 0
    frames_dropped_muted: int = 0
    frames_dropped_offline: int = 0
    frames_dropped_backlog: int = 0
    #: Non-audio events dropped because the connection stopped reading (bounded outbox).
    events_dropped: int = 0
    deltas_received: int = 0
    #: Microphone PCM queued for the model / model PCM received (24 kHz mono s16le bytes).
    audio_bytes_sent: int = 0
    audio_bytes_received: int = 0
    protocol_errors: int = 0
