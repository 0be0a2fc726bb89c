"""Earcons, wired by the app: session notices → short cues on the speaker.

They sound with or without GPIO (the board plays nothing). Which earcon a notice calls for is
:class:`device.earcons.EarconPolicy`; the PCM goes to the sink's ``play_cue``, so a cue never
counts toward a model item and is never reported by ``interrupt()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from .earcons import EarconPolicy, earcon
from .realtime.notices import Notice
from .realtime.status import TransportStatus

log = logging.getLogger("device.cues")


class CueSink(Protocol):
    """Where cues are played (:meth:`device.audio.playback.AlsaPlayback.play_cue` fits)."""

    def play_cue(self, pcm: bytes) -> None: ...


class NoticeSource(Protocol):
    """What earcons follow: the session's status and its notices."""

    @property
    def status(self) -> TransportStatus: ...

    def subscribe(self, listener: Callable[[Notice], None]) -> Callable[[], None]: ...


class Earcons:
    """Plays cues on the speaker as session notices arrive (``with Earcons(...)``)."""

    def __init__(self, session: NoticeSource, sink: CueSink, enabled: bool) -> None:
        self._session, self._sink, self._enabled = session, sink, enabled
        self._policy = EarconPolicy(enabled, session.status)
        self._off: Callable[[], None] | None = None

    def on_notice(self, notice: Notice) -> None:
        self._play(self._policy.cue(notice))

    def wake_heard(self) -> None:
        """The wake word was heard: the connect cue now, and not again once connected."""
        self._play(self._policy.wake_heard())

    def wake_connect_failed(self) -> None:
        """That wake word's connect failed: a later connect sounds its own cue."""
        self._policy.wake_connect_failed()

    def _play(self, name: str | None) -> None:
        if name is None:
            return
        try:
            self._sink.play_cue(earcon(name))
        except Exception:
            log.exception("could not play the %s earcon", name)

    def __enter__(self) -> Earcons:
        if self._enabled:
            self._policy.status = self._session.status
            self._off = self._session.subscribe(self.on_notice)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._off is not None:
            self._off()
            self._off = None
