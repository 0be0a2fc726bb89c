"""The wake word in the running service: the app enters one :class:`WakePart`.

With a model set (``[wake] model``) the part owns the microphone's way to the model: it
listens at 24 kHz (the model's stream) and, while unmuted, at 16 kHz (the detector), feeds
both to a :class:`~device.wake.gate.WakeGate` and carries out its actions:

- ``WakeDetected``: the connect earcon, ``{"event": "wake", "model": ...}`` on the command
  table (control socket, MQTT) and ``session.connect()`` with the configured credential, as
  the connect button does (a failure is reported by the session: an error event, ``closed``;
  whatever the connect ended in, the gate is then told the session's status again, so held
  audio is dropped and the detector listens again even when a refusal left the status
  ``closed`` unchanged; ``connect_failed`` is called, so the earcons forget the cue played);
- ``Release``: the held speech to ``session.send_audio`` in at most :data:`RELEASE_APPENDS`
  appends (the session's mic backlog is bounded by count, 25 by default: all of
  ``max_hold_s`` must fit), in order, before any later live frame (it happens inside the
  ``connected`` notice, on the loop);
- ``Forward``: the live frame to ``send`` (the app's mic path: half-duplex, then the session);
- ``Interrupt``: :meth:`RealtimeSession.interrupt` (a barge-in) when a reply is playing.

While muted, the 16 kHz listener is removed (the microphone is not analysed at all) and the
session refuses every frame. :class:`~device.realtime.notices.WakeListening` goes to
``notify`` (the status LED) whenever "model set, unmuted, disconnected" changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

from ..realtime.errors import VoiceDeviceError
from ..realtime.notices import MuteChanged, Notice, StatusChanged, WakeListening
from ..realtime.status import TransportStatus
from .config import WakeSection
from .detector import WakeDetector
from .gate import Action, Forward, HeldDropped, Interrupt, Release, WakeDetected, WakeGate

log = logging.getLogger("device.wake")

#: Fewest held frames (20 ms) per ``send_audio`` call when the held speech is released.
RELEASE_CHUNK = 10
#: Most ``send_audio`` calls for one release: a few of the session's 25 backlog slots, whatever
#: ``max_hold_s`` (30 s at most: 6 s, 288 KB of PCM, 384 KB of base64 per append).
RELEASE_APPENDS = 5
#: Statuses in which the device listens for the wake word.
_IDLE = (TransportStatus.DISCONNECTED, TransportStatus.CLOSED)


class Mic(Protocol):
    def listen(self, rate: int, callback: Callable[[bytes], object]) -> Callable[[], None]: ...


class Session(Protocol):
    @property
    def status(self) -> TransportStatus: ...
    @property
    def muted(self) -> bool: ...
    def subscribe(self, listener: Callable[[Notice], None]) -> Callable[[], None]: ...
    def send_audio(self, pcm: bytes) -> bool: ...
    def interrupt(self) -> None: ...
    async def connect(self) -> None: ...


class WakePart:
    """``async with WakePart(...)``: the wake word while the service runs (see the module)."""

    def __init__(
        self,
        section: WakeSection,
        *,
        session: Session,
        mic: Mic,
        send: Callable[[bytes], object],
        publish: Callable[[dict[str, Any]], None],
        acknowledge: Callable[[], None] | None = None,
        connect_failed: Callable[[], None] | None = None,
        notify: Callable[[Notice], None] | None = None,
    ) -> None:
        self.section = section
        self.session = session
        self._mic, self._send, self._publish = mic, send, publish
        self._acknowledge, self._notify = acknowledge, notify
        self._connect_failed = connect_failed
        self.detector: WakeDetector | None = None
        self.gate: WakeGate | None = None
        self.detections = 0
        self._off: list[Callable[[], None]] = []
        self._off16: Callable[[], None] | None = None
        self._connect: asyncio.Task[None] | None = None
        self._listening: bool | None = None

    @property
    def listening(self) -> bool:
        """A model is set, the mic is not muted and the session is disconnected."""
        return bool(self._listening)

    async def __aenter__(self) -> WakePart:
        s = self.section
        # Loading the TFLite model takes a while: off the loop.
        self.detector = await asyncio.to_thread(WakeDetector, s.model, s.refractory_s)
        self.gate = WakeGate(
            self.detector,
            preroll_ms=s.preroll_ms,
            max_hold_s=s.max_hold_s,
            status=self.session.status.value,
            muted=self.session.muted,
        )
        self._off.append(self.session.subscribe(self._on_notice))
        self._off.append(self._mic.listen(24000, self._on_24k))
        if not self.session.muted:
            self._off16 = self._mic.listen(16000, self._on_16k)
        log.info('listening for the wake word "%s" (%s)', self.detector.wake_word, s.model)
        self._update_listening()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for off in self._off:
            off()
        self._off.clear()
        self._stop_16k()
        task = self._connect
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        if self._listening:
            self._tell(WakeListening(False))
        if self.detector is not None:
            self.detector.close()

    # ------------------------------------------------------------------ inputs

    def _on_16k(self, pcm: bytes) -> None:
        if self.gate is not None:
            self._apply(self.gate.on_frame_16k(pcm))

    def _on_24k(self, pcm: bytes) -> None:
        if self.gate is not None:
            self._apply(self.gate.on_frame_24k(pcm))

    def _on_notice(self, notice: Notice) -> None:
        if self.gate is None:
            return
        match notice:
            case StatusChanged(status):
                self._apply(self.gate.on_status(status.value))
                self._update_listening()
            case MuteChanged(muted):
                if muted:
                    self._stop_16k()
                self._apply(self.gate.on_muted(muted))
                if not muted and self._off16 is None:
                    self._off16 = self._mic.listen(16000, self._on_16k)
                self._update_listening()
            case _:
                pass

    def _stop_16k(self) -> None:
        if self._off16 is not None:
            self._off16()
            self._off16 = None

    # ------------------------------------------------------------------ actions

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Forward(frame):
                    self._send(frame)
                case Release(frames, dropped):
                    self._release(frames, dropped)
                case WakeDetected(model):
                    self._detected(model)
                case Interrupt(model):
                    log.info("wake word (%s) while connected: interrupting the reply", model)
                    self.session.interrupt()
                case HeldDropped(samples, reason):
                    log.info("held speech dropped (%.2f s): %s", samples / 24000, reason)

    def _release(self, frames: tuple[bytes, ...], dropped: int) -> None:
        if dropped:
            log.warning("held speech over wake.max_hold_s: %.2f s not sent", dropped / 24000)
        chunk = max(RELEASE_CHUNK, math.ceil(len(frames) / RELEASE_APPENDS))
        for i in range(0, len(frames), chunk):
            self.session.send_audio(b"".join(frames[i : i + chunk]))
        log.info("sent %.2f s of speech held since the wake word", len(frames) * 0.02)

    def _detected(self, model: str) -> None:
        self.detections += 1
        log.info("wake word %s heard: connecting", model)
        self._call(self._acknowledge, "the wake word acknowledgement")  # the connect earcon
        self._publish({"event": "wake", "model": model})
        if self._connect is None or self._connect.done():
            self._connect = asyncio.get_running_loop().create_task(
                self._connect_now(), name="wake-connect"
            )

    async def _connect_now(self) -> None:
        try:
            await self.session.connect()
        except VoiceDeviceError as exc:  # the session has reported it (error event, closed)
            log.warning("connect after the wake word failed: %s", exc)
            self._call(self._connect_failed, "the failed wake word connect")
        # A refusal that leaves the status as it was (``closed`` by an earlier limit) sends
        # no StatusChanged: tell the gate the status now, or it would hold for ever.
        if self.gate is not None and self._off:
            self._apply(self.gate.on_status(self.session.status.value))
            self._update_listening()

    @staticmethod
    def _call(callback: Callable[[], None] | None, what: str) -> None:
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("%s failed", what)

    def _update_listening(self) -> None:
        now = not self.session.muted and self.session.status in _IDLE
        if now != self._listening:
            self._listening = now
            self._tell(WakeListening(now))

    def _tell(self, notice: Notice) -> None:
        if self._notify is not None:
            with contextlib.suppress(Exception):
                self._notify(notice)
