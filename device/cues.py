"""Earcons, wired by the app: session notices → short cues on the speaker.

They sound with or without GPIO (the GPIO part no longer plays them). Two seams, for the lead
to close when the other branches land: gpio's pure earcon policy in :mod:`device.earcons`
replaces :func:`earcon_for`, and audio's ``sink.play_cue(pcm)`` replaces ``play_earcon``
(used automatically once the playback has it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .audio.playback import AlsaPlayback
from .earcons import earcon
from .realtime.notices import MuteChanged, Notice, StatusChanged
from .realtime.status import TransportStatus
from .session import RealtimeSession

log = logging.getLogger("device.cues")


def earcon_for(notice: Notice, previous: TransportStatus) -> str | None:
    """Which cue a notice calls for. Seam: gpio's pure policy in device/earcons.py replaces
    this once merged."""
    match notice:
        case StatusChanged(TransportStatus.CONNECTED):
            return "connect"
        case StatusChanged(TransportStatus.DISCONNECTED) if previous in (
            TransportStatus.CONNECTED,
            TransportStatus.RECONNECTING,
        ):
            return "disconnect"
        case StatusChanged(TransportStatus.CLOSED):
            return "error"
        case MuteChanged(muted):
            return "mute" if muted else "unmute"
    return None


class Earcons:
    """Plays cues on the speaker as session notices arrive (``with Earcons(...)``)."""

    def __init__(self, session: RealtimeSession, playback: AlsaPlayback, enabled: bool) -> None:
        self._session, self._playback, self._enabled = session, playback, enabled
        self._previous = session.status
        self._off: Callable[[], None] | None = None

    def on_notice(self, notice: Notice) -> None:
        name = earcon_for(notice, self._previous)
        if isinstance(notice, StatusChanged):
            self._previous = notice.status
        if name is None:
            return
        try:
            # Seam: audio's sink.play_cue(pcm) once merged; until then play_earcon.
            play_cue = getattr(self._playback, "play_cue", self._playback.play_earcon)
            play_cue(earcon(name))
        except Exception:
            log.exception("could not play the %s earcon", name)

    def __enter__(self) -> Earcons:
        if self._enabled:
            self._off = self._session.subscribe(self.on_notice)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._off is not None:
            self._off()
