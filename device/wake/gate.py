"""The wake gate: which microphone audio may leave the device around a wake word. No I/O.

The app hands every captured frame to the gate at both rates (``on_frame_16k`` for the
detector, ``on_frame_24k`` for the model) plus every status and mute change, and performs the
actions it gets back. The two streams are aligned by counting samples: 16 kHz sample ``s`` is
24 kHz sample ``s * 3 / 2`` (so call both for every frame, muted or not; muted frames are
counted and discarded unseen; if a fan-out stops one rate while muted, the clocks are
re-aligned on unmute).

- Disconnected, unmuted: 16 kHz frames go to the detector; 24 kHz frames are kept only as far
  back as ``preroll_ms`` needs, plus the detector's look-back (300 ms: it fires after the end
  of the wake word and dates the end back), one frame and 20 ms of slack; nothing is forwarded.
- Wake word: :class:`WakeDetected`. From ``end of the wake word - preroll_ms`` on, 24 kHz audio
  is held (the first ``max_hold_s`` of it) until ``connected``, which returns :class:`Release`
  with the held frames; every later frame comes back as :class:`Forward`, so the model gets
  one unbroken stream. ``disconnected``/``closed`` instead drops it (:class:`HeldDropped`).
- Connected: frames are forwarded; a wake word returns :class:`Interrupt` (cut a reply that is
  playing, as a barge-in does) and is otherwise ignored.
- Muted: nothing is analysed, nothing is kept (held audio is dropped), nothing is forwarded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

from ..realtime.pcm import RATE
from .detector import LOOKBACK_SAMPLES, Detection

_SLACK_24K = 480  # 20 ms: detector step granularity and listener call order
_LOOKBACK_24K = LOOKBACK_SAMPLES * 3 // 2
Mode = Literal["listening", "holding", "connecting", "live", "paused"]
STATUSES = ("disconnected", "connecting", "connected", "reconnecting", "closed")


@dataclass(frozen=True)
class WakeDetected:
    """Play the connect earcon, emit ``{"event":"wake","model":...}`` and ``connect()``."""

    model: str
    #: 16 kHz sample index (gate clock) where the wake word ended.
    end_sample: int


@dataclass(frozen=True)
class Interrupt:
    """A wake word while connected: interrupt the reply if one is playing (barge-in)."""

    model: str


@dataclass(frozen=True)
class Release:
    """Send these held 24 kHz frames to the session, in order, now (before any later frame)."""

    frames: tuple[bytes, ...]
    #: Samples not held because ``max_hold_s`` was reached (a gap before the live stream).
    dropped_samples: int = 0


@dataclass(frozen=True)
class Forward:
    """Send this live 24 kHz frame to the session."""

    frame: bytes


@dataclass(frozen=True)
class HeldDropped:
    """Held audio discarded (the connect failed, or the microphone was muted)."""

    samples: int
    reason: Literal["not connected", "muted"]


Action = WakeDetected | Interrupt | Release | Forward | HeldDropped


class Detector(Protocol):
    name: str

    def feed(self, pcm: bytes) -> list[Detection]: ...

    def reset(self) -> None: ...


class WakeGate:
    """Route mic audio around a wake word (see the module docstring)."""

    def __init__(
        self,
        detector: Detector | None,
        *,
        preroll_ms: int = 0,
        max_hold_s: float = 5.0,
        status: str = "disconnected",
        muted: bool = False,
    ) -> None:
        self._detector = detector
        self._preroll24 = preroll_ms * 24
        self._max_hold24 = round(max_hold_s * RATE)
        self._n16 = 0
        self._n24 = 0
        self._det_offset = 0
        self._muted = muted
        self._mode: Mode = "listening"
        self._ring: deque[tuple[int, bytes]] = deque()
        self._ring_samples = 0
        self._hold: list[bytes] = []
        self._hold_samples = 0
        self._hold_dropped = 0
        self._cut24 = 0
        self.on_status(status)

    # ------------------------------------------------------------------ introspection

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def kept_samples(self) -> int:
        """24 kHz samples in memory (pre-roll ring plus held audio)."""
        return self._ring_samples + self._hold_samples

    # ------------------------------------------------------------------ inputs

    def on_frame_16k(self, pcm: bytes) -> list[Action]:
        """A captured frame at 16 kHz (mono PCM16)."""
        if self._muted or self._detector is None:
            self._n16 += len(pcm) // 2
            return []
        detections = self._detector.feed(pcm)
        self._n16 += len(pcm) // 2
        actions: list[Action] = []
        for d in detections:
            end16 = self._det_offset + d.end_sample
            if self._mode == "listening":
                actions.append(WakeDetected(d.model, end16))
                self._start_hold(end16)
            elif self._mode == "live":
                actions.append(Interrupt(d.model))
        return actions

    def on_frame_24k(self, pcm: bytes) -> list[Action]:
        """A captured frame at 24 kHz (mono PCM16), the model's rate."""
        start = self._n24
        self._n24 += len(pcm) // 2
        if self._muted:
            return []
        if self._mode == "live":
            return [Forward(pcm)]
        if self._mode == "holding":
            self._hold_append(start, pcm)
        elif self._mode == "listening" and self._detector is not None:
            self._ring_append(start, pcm)
        return []

    def on_status(self, status: str) -> list[Action]:
        """The session's status changed (``connected`` means the session is configured)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r} (expected one of {', '.join(STATUSES)})")
        actions: list[Action] = []
        if status == "connected":
            if self._mode == "holding":
                actions.append(Release(tuple(self._hold), self._hold_dropped))
                self._clear_hold()
            self._mode = "live"
        elif status in ("disconnected", "closed"):
            actions += self._drop_hold("not connected")
            self._mode = "listening"
        elif status == "connecting" and self._mode != "holding":
            self._mode = "connecting"
        elif status == "reconnecting" and self._mode != "holding":
            self._mode = "paused"
        if self._mode != "listening":
            self._clear_ring()
        return actions

    def on_muted(self, muted: bool) -> list[Action]:
        """Mute state changed. Muting forgets everything; unmuting restarts the detector."""
        if muted == self._muted:
            return []
        self._muted = muted
        actions: list[Action] = []
        if muted:
            self._clear_ring()
            if self._mode == "holding":
                actions += self._drop_hold("muted")
                self._mode = "connecting"
        else:
            # Nothing was kept while muted, so re-align the clocks here: a fan-out that stops
            # one rate's listener while muted (the session's) must not skew the pre-roll cut.
            self._n24 = self._n16 * 3 // 2
            if self._detector is not None:
                self._detector.reset()
                self._det_offset = self._n16
        return actions

    # ------------------------------------------------------------------ internals

    def _ring_append(self, start: int, pcm: bytes) -> None:
        n = len(pcm) // 2
        self._ring.append((start, pcm))
        self._ring_samples += n
        keep = self._preroll24 + _LOOKBACK_24K + n + _SLACK_24K
        while self._ring and self._ring_samples - len(self._ring[0][1]) // 2 >= keep:
            self._ring_samples -= len(self._ring.popleft()[1]) // 2

    def _clear_ring(self) -> None:
        self._ring.clear()
        self._ring_samples = 0

    def _start_hold(self, end16: int) -> None:
        self._mode = "holding"
        self._cut24 = max(0, end16 * 3 // 2 - self._preroll24)
        self._clear_hold()
        ring = list(self._ring)
        self._clear_ring()
        for start, pcm in ring:
            self._hold_append(start, pcm)

    def _hold_append(self, start: int, pcm: bytes) -> None:
        n = len(pcm) // 2
        if start + n <= self._cut24:
            return
        if start < self._cut24:
            pcm = pcm[(self._cut24 - start) * 2 :]
            n = len(pcm) // 2
        room = self._max_hold24 - self._hold_samples
        if n > room:
            self._hold_dropped += n - room
            pcm = pcm[: room * 2]
            n = room
        if n:
            self._hold.append(pcm)
            self._hold_samples += n

    def _drop_hold(self, reason: Literal["not connected", "muted"]) -> list[Action]:
        if self._mode != "holding":
            return []
        dropped = HeldDropped(self._hold_samples, reason)
        self._clear_hold()
        return [dropped]

    def _clear_hold(self) -> None:
        self._hold = []
        self._hold_samples = 0
        self._hold_dropped = 0
