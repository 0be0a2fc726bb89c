"""What waits for the socket: encoded client events, bounded however slow the network is.

Microphone frames are bounded by count (the oldest are dropped: late audio is worthless);
every other event (messages, tool outputs, truncates) by count and by bytes, so a peer that
stops reading cannot make the device queue without end.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

#: Non-audio events that may wait for a stalled socket.
MAX_PENDING_EVENTS = 256
#: Bytes of non-audio events that may wait for a stalled socket.
MAX_PENDING_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Queued:
    text: str
    audio: bool


class Outbox:
    """A FIFO of encoded events with separate bounds for audio and everything else."""

    def __init__(self, max_audio: int) -> None:
        self.max_audio = max_audio
        self._queue: collections.deque[Queued] = collections.deque()
        self.audio = 0
        self.event_bytes = 0

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def events(self) -> int:
        return len(self._queue) - self.audio

    def has_room(self, size: int = 0) -> bool:
        """True if one more non-audio event of ``size`` characters may wait."""
        return self.events < MAX_PENDING_EVENTS and self.event_bytes + size <= MAX_PENDING_BYTES

    def put_event(self, text: str) -> bool:
        """Queue a non-audio event; ``False`` (not queued) when the bound is reached."""
        if not self.has_room(len(text)):
            return False
        self._queue.append(Queued(text, False))
        self.event_bytes += len(text)
        return True

    def put_audio(self, text: str) -> bool:
        """Queue a mic frame; ``True`` if an old frame had to be dropped to make room."""
        dropped = self.audio >= self.max_audio and self._drop_oldest_audio()
        self._queue.append(Queued(text, True))
        self.audio += 1
        return dropped

    def pop(self) -> Queued | None:
        if not self._queue:
            return None
        item = self._queue.popleft()
        if item.audio:
            self.audio -= 1
        else:
            self.event_bytes -= len(item.text)
        return item

    def purge_audio(self) -> int:
        """Discard every queued mic frame; returns how many."""
        n = self.audio
        if n:
            kept = [m for m in self._queue if not m.audio]
            self._queue.clear()
            self._queue.extend(kept)
            self.audio = 0
        return n

    def clear(self) -> None:
        self._queue.clear()
        self.audio = 0
        self.event_bytes = 0

    def _drop_oldest_audio(self) -> bool:
        for i, item in enumerate(self._queue):
            if item.audio:
                del self._queue[i]
                self.audio -= 1
                return True
        return False
