"""The speaker's bookkeeping as plain calls: jitter buffer, item segments, played position.

No ALSA and no asyncio here: :class:`~device.audio.playback.AlsaPlayback` is a thin writer on
top, and the tests drive this class with a fake clock and made-up ``avail()`` figures.

Two sides:

* **input** (24 kHz mono s16le, from the event loop): :meth:`PlayQueue.push` queues a delta of a
  model item, :meth:`PlayQueue.push_cue` a cue (earcon). Deltas of the same item are coalesced
  into entries of up to ``COALESCE_BYTES``, so a peer sending one-sample deltas costs bytes, not
  Python objects; the queue is bounded by bytes (``max_buffer_ms``) *and* entries
  (``max_entries``), and what does not fit is dropped and counted. :meth:`PlayQueue.startable`
  is the jitter-buffer rule: an idle stream starts an item only once ``start_threshold_ms`` of
  it are queued, another item follows it, it is a cue, or nothing arrived for the start timeout.
* **stream** (device frames, from the writer): :meth:`PlayQueue.wrote` records frames handed to
  ALSA as a segment of their item; :meth:`PlayQueue.observe` records how many frames ALSA still
  held (``buffer_size - avail``) at a moment. The played position is frames written minus frames
  still queued, extrapolated on the clock between observations and never past what was written.

A cue is not an item: its segments count toward nothing, and :meth:`PlayQueue.interrupt` never
reports one.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np

from ..realtime.pcm import BYTES_PER_S, byte_count

#: The label of cue audio: never a model item id (those are non-empty).
CUE = ""
#: Deltas of one item are merged into entries up to this size (200 ms of 24 kHz audio).
COALESCE_BYTES = 9600
#: Entries at most (a new item or a cue starts an entry).
MAX_ENTRIES = 1024
#: Played positions remembered for this many finished items.
REMEMBER_ITEMS = 64


class _Entry:
    __slots__ = ("data", "item", "t_ns")

    def __init__(self, item: str, data: bytes, t_ns: int) -> None:
        self.item = item
        self.data = bytearray(data)
        self.t_ns = t_ns


class _Segment:
    """Device frames ``[start, end)`` of the write stream that belong to ``item``."""

    __slots__ = ("end", "item", "start")

    def __init__(self, item: str, start: int, end: int) -> None:
        self.item = item
        self.start = start
        self.end = end


class PlayQueue:
    """Jitter buffer and played-position accounting of one speaker (see the module doc)."""

    def __init__(
        self,
        *,
        device_rate: int,
        period_ms: int = 20,
        start_threshold_ms: int = 60,
        max_buffer_ms: int = 30000,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = device_rate
        self.clock = clock
        self.max_bytes = byte_count(max_buffer_ms)
        self.max_entries = max_entries
        self.threshold_bytes = byte_count(start_threshold_ms)
        #: Seconds without a push after which a short item starts (or ends) anyway.
        self.start_timeout_s = max(start_threshold_ms, 2 * period_ms) / 1000
        self._pending: deque[_Entry] = deque()
        self._pending_bytes = 0
        self.last_push = -1e9
        # ---- stream side
        self._written = 0  # device frames handed to ALSA that still count
        self._queued = 0  # frames in ALSA at the last observation
        self._snap_t = 0.0
        self._segments: deque[_Segment] = deque()
        self._played: OrderedDict[str, int] = OrderedDict()  # frames of retired segments
        #: Item of the last frames written (None after a drop or run-dry).
        self.last_item: str | None = None

    # ================================================================ input side

    def push(self, item: str, pcm: bytes, t_ns: int = 0) -> int:
        """Queue 24 kHz mono s16le ``pcm`` of ``item`` (``CUE`` for a cue); returns the bytes
        dropped for want of room."""
        n = len(pcm) & ~1
        if n == 0:
            return 0
        room = self.max_bytes - self._pending_bytes
        pending = self._pending
        last = pending[-1] if pending else None
        merge = last is not None and last.item == item and len(last.data) < COALESCE_BYTES
        if not merge and len(pending) >= self.max_entries:
            room = 0
        take = max(0, min(n, room))
        if take:
            if merge:
                assert last is not None
                last.data += pcm[:take]
            else:
                pending.append(_Entry(item, pcm[:take], t_ns))
            self._pending_bytes += take
        self.last_push = self.clock()
        return n - take

    def push_cue(self, pcm: bytes) -> int:
        """Queue a cue (earcon); returns the bytes dropped for want of room."""
        return self.push(CUE, pcm)

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    @property
    def entries(self) -> int:
        return len(self._pending)

    def has_pending(self) -> bool:
        return bool(self._pending)

    def startable(self, idle: bool) -> bool:
        """May the head of the queue be written now? ``idle``: nothing is queued in ALSA."""
        if not self._pending:
            return False
        head = self._pending[0].item
        if not idle or head == CUE:
            return True
        if self.clock() - self.last_push >= self.start_timeout_s:
            return True
        total = 0
        for entry in self._pending:
            if entry.item != head:
                return True  # another item follows: the head one is complete
            total += len(entry.data)
            if total >= self.threshold_bytes:
                return True
        return False

    def take(self, max_samples: int) -> tuple[str, np.ndarray[Any, Any], int] | None:
        """Up to ``max_samples`` samples of the item at the head (across its entries):
        ``(item, int16 samples, t_ns)``; ``t_ns`` is the head entry's push time the first time
        any of it is taken, then 0."""
        pending = self._pending
        if not pending or max_samples <= 0:
            return None
        head = pending[0]
        item, t_ns = head.item, head.t_ns
        head.t_ns = 0
        want = max_samples * 2
        parts: list[bytes] = []
        got = 0
        while pending and pending[0].item == item and got < want:
            entry = pending[0]
            n = min(len(entry.data), want - got)
            if n == len(entry.data):
                pending.popleft()
                parts.append(bytes(entry.data))
            else:
                parts.append(bytes(entry.data[:n]))
                del entry.data[:n]
            got += n
        self._pending_bytes -= got
        chunk = parts[0] if len(parts) == 1 else b"".join(parts)
        return item, np.frombuffer(chunk, dtype="<i2"), t_ns

    def discard_pending(self) -> int:
        """Forget everything not yet written; returns the milliseconds discarded."""
        dropped = self._pending_bytes
        self._pending.clear()
        self._pending_bytes = 0
        return dropped * 1000 // BYTES_PER_S

    # ================================================================ stream side

    def wrote(self, item: str, frames: int) -> None:
        """``frames`` device frames of ``item`` were accepted by ALSA just now."""
        start = self._written
        self._written = start + frames
        self._queued += frames
        self._snap_t = self.clock()
        segs = self._segments
        if segs and segs[-1].item == item and segs[-1].end == start:
            segs[-1].end = start + frames
        else:
            segs.append(_Segment(item, start, start + frames))
        self.last_item = item

    def observe(self, queued: int) -> None:
        """ALSA holds ``queued`` frames not yet played (``buffer_size - avail``), now."""
        self._queued = max(0, min(queued, self._written))
        self._snap_t = self.clock()
        pos = self._written - self._queued
        segs = self._segments
        while segs and segs[0].end <= pos:
            seg = segs.popleft()
            self._retire(seg.item, seg.end - seg.start)

    def position(self) -> int:
        """Device frames of the write stream played so far (an estimate)."""
        queued = self._queued
        base = self._written - queued
        if queued > 0:
            base += min(queued, round((self.clock() - self._snap_t) * self.rate))
        return base

    def queued_estimate(self) -> int:
        """Frames still in ALSA by the clock estimate."""
        return self._written - self.position()

    def played_ms(self, item: str) -> int:
        """Milliseconds of ``item`` that have left the speaker (0 if unknown or a cue)."""
        if item == CUE:
            return 0
        return self._item_frames(item, self.position()) * 1000 // self.rate

    def is_playing(self) -> bool:
        """True while audio is queued here or still sounding."""
        return bool(self._pending) or self.position() < self._written

    def interrupt(self) -> tuple[str, int] | None:
        """Everything queued is discarded and the stream is to be dropped now: returns
        ``(item, played_ms)`` of the model item sounding (or next to sound), never a cue."""
        pos = self.position()
        sounding: str | None = None
        for seg in self._segments:
            if seg.end > pos and seg.item != CUE:
                sounding = seg.item
                break
        if sounding is None:
            sounding = next((e.item for e in self._pending if e.item != CUE), None)
        self.forget_stream(pos)
        self._pending.clear()
        self._pending_bytes = 0
        if sounding is None:
            return None
        return sounding, self._played.get(sounding, 0) * 1000 // self.rate

    def forget_stream(self, pos: int | None = None) -> None:
        """ALSA's buffer is gone (dropped, run dry, device lost): what it held counts as heard
        up to ``pos`` (default: the estimate now), no further."""
        if pos is None:
            pos = self.position()
        while self._segments:
            seg = self._segments.popleft()
            if seg.start < pos:
                self._retire(seg.item, min(seg.end, pos) - seg.start)
        self._written = pos
        self._queued = 0
        self._snap_t = self.clock()
        self.last_item = None

    def _item_frames(self, item: str, pos: int) -> int:
        frames = self._played.get(item, 0)
        for seg in self._segments:
            if seg.item == item and seg.start < pos:
                frames += min(seg.end, pos) - seg.start
        return frames

    def _retire(self, item: str, frames: int) -> None:
        if item == CUE:
            return
        played = self._played
        played[item] = played.get(item, 0) + frames
        played.move_to_end(item)
        while len(played) > REMEMBER_ITEMS:
            played.popitem(last=False)
