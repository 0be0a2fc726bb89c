"""Earcons: short tones for connect, disconnect, mute, unmute and errors, made with numpy.

Every earcon is 24 kHz mono s16le PCM (the playback path's format), at most 250 ms long, and
each tone segment fades in and out (raised cosine) so it starts and ends at silence: no clicks.

::

    sink.play("earcon", earcon("connect"))
    policy = EarconPolicy(); policy.cue(StatusChanged(TransportStatus.CONNECTED))  # "connect"
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np

from .realtime.notices import MuteChanged, Notice, StatusChanged
from .realtime.pcm import BYTES_PER_MS, RATE, SAMPLE_BYTES
from .realtime.status import TransportStatus

#: Peak level of a tone, as a fraction of full scale (quiet enough next to speech).
LEVEL = 0.3
#: Fade-in and fade-out of each tone segment.
FADE_MS = 8.0
#: No earcon is longer than this.
MAX_MS = 250

EarconName = Literal["connect", "disconnect", "mute", "unmute", "error"]

#: Each earcon as (frequency Hz, duration ms) segments; frequency 0 is a pause.
SHAPES: dict[str, tuple[tuple[float, float], ...]] = {
    "connect": ((660.0, 90.0), (990.0, 120.0)),  # rising two-tone
    "disconnect": ((990.0, 90.0), (660.0, 120.0)),  # falling two-tone
    "mute": ((440.0, 110.0),),  # one low tone
    "unmute": ((880.0, 110.0),),  # one high tone
    "error": ((330.0, 80.0), (0.0, 40.0), (330.0, 80.0)),  # two low beeps
}


def tone(freq: float, ms: float, *, rate: int = RATE, level: float = LEVEL) -> np.ndarray:
    """One sine segment of ``ms`` milliseconds as float samples in [-1, 1], faded at both ends.

    ``freq == 0`` gives silence of that length.
    """
    n = round(rate * ms / 1000)
    if freq <= 0 or n == 0:
        return np.zeros(n)
    t = np.arange(n) / rate
    wave = level * np.sin(2 * np.pi * freq * t)
    fade = min(n // 2, round(rate * FADE_MS / 1000))
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)  # 0 → 1, raised cosine
        wave[:fade] *= ramp
        wave[n - fade :] *= ramp[::-1]
    return wave


def synthesize(segments: tuple[tuple[float, float], ...], *, rate: int = RATE) -> bytes:
    """Concatenate ``(freq, ms)`` segments into s16le PCM bytes."""
    parts = [tone(freq, ms, rate=rate) for freq, ms in segments]
    samples = np.concatenate(parts) if parts else np.zeros(0)
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.dtype("<i2"))
    return bytes(pcm.tobytes())


@functools.cache
def earcon(name: str) -> bytes:
    """The PCM (24 kHz mono s16le) of earcon ``name``; raises ``KeyError`` for an unknown one."""
    pcm = synthesize(SHAPES[name])
    assert len(pcm) <= MAX_MS * BYTES_PER_MS
    return pcm


def duration_ms(pcm: bytes, rate: int = RATE) -> float:
    """Length of s16le mono ``pcm`` in milliseconds."""
    return len(pcm) / SAMPLE_BYTES / rate * 1000


class EarconPolicy:
    """Which earcon a notice calls for; pure, so the app plays earcons with or without GPIO.

    ``connect`` on connected, ``disconnect`` on disconnected after connected/reconnecting,
    ``error`` on closed, ``mute``/``unmute`` on mute changes; nothing when not ``enabled``
    (``behaviour.earcons = false``). Feed it every notice in order::

        policy = EarconPolicy()
        session.subscribe(lambda n: (cue := policy.cue(n)) and sink.play_cue(cue))
    """

    def __init__(
        self, enabled: bool = True, status: TransportStatus = TransportStatus.DISCONNECTED
    ) -> None:
        self.enabled = enabled
        self.status = status
        self._connect_played = False  # by wake_heard(), for the connect under way

    def wake_heard(self) -> EarconName | None:
        """The wake word was heard: ``connect`` now, as the acknowledgement, and not again
        when that connect succeeds (one cue per wake word, not two 200 ms apart)."""
        self._connect_played = self.enabled
        return "connect" if self.enabled else None

    def wake_connect_failed(self) -> None:
        """The wake word's connect failed or was refused: the next connect (a button's, after
        a refusal that left the status unchanged) has its own ``connect`` cue again."""
        self._connect_played = False

    def cue(self, notice: Notice) -> EarconName | None:
        """The earcon to play for ``notice`` (``None``: none); remembers the status."""
        name: EarconName | None = None
        match notice:
            case StatusChanged(status):
                name = status_earcon(self.status, status)
                self.status = status
                if status is not TransportStatus.CONNECTING and self._connect_played:
                    self._connect_played = False
                    name = None if name == "connect" else name
            case MuteChanged(muted):
                name = "mute" if muted else "unmute"
            case _:
                pass
        return name if self.enabled else None


def status_earcon(previous: TransportStatus, status: TransportStatus) -> EarconName | None:
    """The earcon for a status change from ``previous`` to ``status``, if any."""
    if status is TransportStatus.CONNECTED:
        return "connect"
    if status is TransportStatus.DISCONNECTED and previous in (
        TransportStatus.CONNECTED,
        TransportStatus.RECONNECTING,
    ):
        return "disconnect"
    if status is TransportStatus.CLOSED:
        return "error"
    return None
