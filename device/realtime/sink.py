"""The contract between the session and whatever plays the model's audio.

The session hands every audio delta to an :class:`AudioSink` and, on barge-in, asks it to stop
and say how much of the current item the listener actually heard. That number goes into
``conversation.item.truncate`` so the model's memory of what it said matches what was heard.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .pcm import duration_ms


@runtime_checkable
class AudioSink(Protocol):
    """Plays 24 kHz mono PCM16 (s16le) audio of the model's response items.

    Every method is called from the event loop thread and must return quickly (no blocking I/O).
    """

    def play(self, item_id: str, pcm: bytes) -> None:
        """Queue ``pcm`` (24 kHz mono s16le) belonging to response item ``item_id``."""

    def play_cue(self, pcm: bytes) -> None:
        """Queue a cue (an earcon: 24 kHz mono s16le) after what is queued. A cue belongs to
        no item: it never counts in :meth:`played_ms` and :meth:`interrupt` never reports it
        (an interrupt does silence it and discard it)."""

    def interrupt(self) -> tuple[str, int] | None:
        """Silence the speaker now and discard everything queued.

        Returns ``(item_id, played_ms)`` for the item that was sounding — ``played_ms`` being
        the milliseconds of that item that really left the speaker — or ``None`` when nothing
        was playing. Never a cue's.
        """

    def played_ms(self, item_id: str) -> int:
        """Milliseconds of ``item_id`` that have left the speaker so far (0 if unknown)."""

    def is_playing(self) -> bool:
        """True while audio is queued or still sounding."""


class NullSink:
    """A sink that discards audio but keeps honest accounting as if played instantly.

    Useful for text-only sessions and tests that do not care about audio timing.
    """

    def __init__(self) -> None:
        self._item: str | None = None
        self._ms: dict[str, int] = {}

    def play(self, item_id: str, pcm: bytes) -> None:
        self._item = item_id
        self._ms[item_id] = self._ms.get(item_id, 0) + duration_ms(len(pcm))

    def play_cue(self, pcm: bytes) -> None:
        """Cues are discarded; they touch no item's accounting."""

    def interrupt(self) -> tuple[str, int] | None:
        return None

    def played_ms(self, item_id: str) -> int:
        return self._ms.get(item_id, 0)

    def is_playing(self) -> bool:
        return False
