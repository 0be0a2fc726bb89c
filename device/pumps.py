"""The byte pumps between a model connection and the bounded outbox.

:class:`BytePumps` is the part of :class:`~device.supervisor.ConnectionSupervisor` that moves
bytes: events are encoded into the outbox (counted and reported when the socket stops reading),
the writer drains the outbox into the socket, and the reader decodes what arrives, counts audio,
reports bad events without giving up on the connection, and hands the rest to ``_on_event``.
When the socket ends without the supervisor having let go of it, ``_connection_lost`` decides
what happens next (reconnect or close).
"""

from __future__ import annotations

import asyncio
import logging

from .notifier import Notifier
from .outbox import Outbox
from .realtime.codec import Codec
from .realtime.effects import clean_text
from .realtime.errors import ProtocolError
from .realtime.events import AudioDelta, ClientEvent, ServerEvent
from .reconnect import SessionStats
from .transport import Connection, ConnectionClosed

log = logging.getLogger("device.session")


class BytePumps(Notifier):
    """Send, write loop, read loop; the supervisor owns the state they share."""

    stats: SessionStats
    _outbox: Outbox
    _codec: Codec
    _wake: asyncio.Event
    _ws: Connection | None
    _configured: asyncio.Future[None] | None

    def _on_event(self, event: ServerEvent) -> None:
        raise NotImplementedError

    def _connection_lost(self, code: int | None, reason: str) -> None:
        """The socket ended without the supervisor closing it."""
        raise NotImplementedError

    def _send(self, event: ClientEvent) -> None:
        if self._outbox.put_event(self._codec.encode(event)):
            self._wake.set()
            return
        self.stats.events_dropped += 1
        n = self.stats.events_dropped
        if n in (1, 10, 100) or n % 1000 == 0:
            log.warning("the model connection is not reading: dropped %d event(s) so far", n)

    async def _write_loop(self, ws: Connection) -> None:
        outbox = self._outbox
        try:
            while True:
                while (item := outbox.pop()) is not None:
                    if item.audio:
                        self.stats.frames_sent += 1
                    await ws.send(item.text)
                self._wake.clear()
                await self._wake.wait()
        except ConnectionClosed:
            return  # the reader reports the close

    async def _read_loop(self, ws: Connection) -> None:
        try:
            async for message in ws:
                try:
                    event = self._codec.decode(message)
                except ProtocolError as exc:
                    self._bad_event(exc)
                    continue
                if isinstance(event, AudioDelta):
                    self.stats.deltas_received += 1
                    self.stats.audio_bytes_received += len(event.pcm)
                if event is not None:
                    self._on_event(event)
        except ConnectionClosed:
            pass
        pending = self._configured is not None and not self._configured.done()
        if self._ws is ws or pending:
            self._connection_lost(ws.close_code, ws.close_reason or "")

    def _bad_event(self, exc: ProtocolError) -> None:
        self.stats.protocol_errors += 1
        if self.stats.protocol_errors <= 3 or self.stats.protocol_errors % 100 == 0:
            text = clean_text(str(exc))
            log.warning("ignored a bad event from the model: %s", text)
            self._error("protocol", text)
