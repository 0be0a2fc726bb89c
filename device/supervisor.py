"""The connection supervisor under :class:`~device.session.RealtimeSession`.

It owns the socket and nothing protocol-shaped: the credential, dialing, one error → status
mapping (:func:`device.dialing.verdict`) for ``connect`` and the reconnect loop alike,
reconnecting with backoff. The byte pumps (socket and bounded outbox) are in
:mod:`device.pumps`. Every background task it starts is kept in one set, owned here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .dialing import CredentialInput, CredentialProvider, Verdict, usable_credential, verdict
from .outbox import Outbox
from .pumps import BytePumps
from .realtime.codec import Codec
from .realtime.credentials import Credential, parse_credential
from .realtime.effects import clean_text
from .realtime.errors import (
    AuthError,
    ConnectError,
    CredentialError,
    LimitError,
    SessionRejected,
)
from .realtime.events import ClientEvent, ServerEvent
from .realtime.models import RealtimeModel
from .realtime.status import TransportStatus
from .reconnect import ReconnectPolicy, SessionStats
from .transport import Connection, ConnectionClosed, open_connection

log = logging.getLogger("device.session")

Connector = Callable[[RealtimeModel, Credential], Awaitable[Connection]]
#: Asked before every connect and reconnect: ``None`` allows it, a message refuses it (a daily
#: usage limit is reached; the message names it).
ConnectGuard = Callable[[], str | None]


class _Superseded(Exception):
    """A disconnect() came while a connect was under way: the connect gives up quietly."""


class _Closed(Exception):
    """Internal: the connection ended during setup."""


class ConnectionSupervisor(BytePumps):
    """Status, credential, dial, reconnect and the byte pumps; subclasses add the protocol
    through the ``_on_*`` hooks."""

    def __init__(
        self,
        model: RealtimeModel,
        *,
        credential_provider: CredentialProvider | None,
        auto_reconnect: bool,
        reconnect_policy: ReconnectPolicy | None,
        max_backlog_frames: int,
        connect_timeout: float,
        connector: Connector | None,
        connect_guard: ConnectGuard | None = None,
    ) -> None:
        super().__init__()
        #: See :data:`ConnectGuard`; every path to a connection passes it.
        self.connect_guard = connect_guard
        self.model = model
        self.credential_provider = credential_provider
        self.auto_reconnect = auto_reconnect
        self.reconnect_policy = reconnect_policy or ReconnectPolicy()
        self.connect_timeout = connect_timeout
        self.stats = SessionStats()
        self._connector: Connector = connector or open_connection
        self._credential: Credential | None = None
        self._ws: Connection | None = None
        self._codec: Codec = model.codec()
        self._outbox = Outbox(max_backlog_frames)
        self._wake = asyncio.Event()
        #: Every background task (reader, writer, reconnect, speaker watch, tool calls).
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._configured: asyncio.Future[None] | None = None
        self._user_closing = False
        #: Bumped by disconnect(): a connect that started before it must not finish.
        self._epoch = 0
        self._expired = False

    # ---------------------------------------------------------------- hooks for the protocol

    def _on_start(self) -> ClientEvent:
        """A new connection is open: reset the conversation; returns the session.update."""
        raise NotImplementedError

    def _on_event(self, event: ServerEvent) -> None:
        raise NotImplementedError

    def _on_gone(self, *, report: bool) -> None:
        """The connection is gone (``report``: tell about unconfirmed messages)."""
        raise NotImplementedError

    def _silence(self) -> None:
        """Stop playback and speaking at once (connection lost, disconnect)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- status and listeners

    @property
    def max_backlog_frames(self) -> int:
        return self._outbox.max_audio

    def _fail(self, judged: Verdict) -> None:
        self._error(judged.code, str(judged.error))
        self._set_status(TransportStatus.CLOSED)

    # ---------------------------------------------------------------- connect / disconnect

    async def connect(self, credential: CredentialInput | None = None) -> None:
        """Open the connection and configure the session; returns once ``connected``.

        Without ``credential`` the session uses its ``credential_provider``. Raises
        :class:`CredentialError` (bad or expired credential), :class:`AuthError` (401/403) or
        :class:`ConnectError`; status is then ``closed`` and an :class:`ErrorNotice` is sent.
        With ``auto_reconnect`` a network failure instead starts background retries
        (``reconnecting``) and this returns without raising.
        """
        if self._status in (TransportStatus.CONNECTED, TransportStatus.CONNECTING):
            return
        await self._stop_reconnector()
        if (refusal := self._refused()) is not None:
            raise LimitError(refusal)
        self._user_closing = False
        self._set_status(TransportStatus.CONNECTING)
        try:
            if credential is not None:
                cred = parse_credential(credential)
                if cred.expired():
                    raise CredentialError(
                        f"credential expired at {cred.expires_at.isoformat()}; "
                        "connect with a fresh one"
                    )
                self._credential = cred
            await self._dial(renew=credential is None)
        except _Superseded:
            return  # disconnect() came first; it has set the status
        except asyncio.CancelledError:
            await self._teardown(1000)
            if self.status is TransportStatus.CONNECTING:
                self._set_status(TransportStatus.DISCONNECTED)
            raise
        except Exception as exc:
            await self._connect_failed(exc)

    async def _connect_failed(self, exc: Exception) -> None:
        await self._teardown(1000)
        if self._user_closing and isinstance(exc, ConnectError):
            self._set_status(TransportStatus.DISCONNECTED)  # disconnect() during the handshake
            return
        judged = verdict(exc, self.model.provider)
        if judged.retry and self.auto_reconnect and not self._user_closing:
            self._error(judged.code, str(judged.error))  # keep trying with backoff
            self._start_reconnector()
            return
        self._fail(judged)
        if judged.error is exc:
            raise exc
        raise judged.error from None

    def _refused(self) -> str | None:
        """Ask the connect guard; a refusal is reported (``limit`` error, status ``closed``)."""
        refusal = self.connect_guard() if self.connect_guard is not None else None
        if refusal is not None:
            self._error("limit", refusal)
            self._set_status(TransportStatus.CLOSED)
        return refusal

    async def disconnect(self) -> None:
        """Close the connection on purpose (code 1000), stop playback; status ``disconnected``.

        A connect or reconnect still under way is abandoned: it cannot bring the session back.
        """
        await self._shut()
        self._set_status(TransportStatus.DISCONNECTED)

    async def close_with_error(self, code: str, message: str) -> None:
        """End the conversation for a reason of the device's own (a usage limit): closed with
        1000 like :meth:`disconnect`, then an :class:`ErrorNotice` and status ``closed``."""
        await self._shut()
        self._error(code, message)
        self._set_status(TransportStatus.CLOSED)

    async def _shut(self) -> None:
        self._epoch += 1
        self._user_closing = True
        self._setup_failed(_Closed(1000))
        await self._stop_reconnector()
        await self._teardown(1000)
        self._silence()

    async def _dial(self, renew: bool) -> None:
        """Open; a refused credential is renewed from the source once, if ``renew``."""
        try:
            await self._open()
        except AuthError:
            if not renew or self.credential_provider is None:
                raise
            # The stored credential may have been revoked: fetch a new one, once.
            await self._teardown(1000)
            await self._open(force_credential=True)

    async def _open(self, force_credential: bool = False) -> None:
        """Dial, configure, and go ``connected``; on any failure nothing is left open.

        A :meth:`disconnect` while this runs wins: the new socket is closed (1000) and
        :class:`_Superseded` raised, so a finished handshake cannot revive the session.
        """
        epoch = self._epoch
        cred = await usable_credential(
            self._credential, self.credential_provider, force=force_credential
        )
        self._credential = cred
        if epoch != self._epoch:
            raise _Superseded
        self._codec = self.model.codec()
        ws = await self._connector(self.model, cred)
        if epoch != self._epoch:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000), 2.0)
            raise _Superseded
        self._ws = ws
        self._expired = False
        self._outbox.clear()
        update = self._on_start()
        self._configured = asyncio.get_running_loop().create_future()
        self._reader = self._spawn(self._read_loop(ws), "session-reader")
        self._writer = self._spawn(self._write_loop(ws), "session-writer")
        try:
            await ws.send(self._codec.encode(update))
            async with asyncio.timeout(self.connect_timeout):
                await asyncio.shield(self._configured)
        except BaseException as exc:  # cancelled, refused, timed out: leave nothing running
            await self._teardown(1000)
            provider = self.model.provider
            if isinstance(exc, TimeoutError):
                raise ConnectError(
                    f"{provider}: no session.updated within {self.connect_timeout:g} s"
                ) from None
            if isinstance(exc, _Closed | ConnectionClosed):
                raise ConnectError(f"{provider}: connection closed during setup") from exc
            raise
        if epoch != self._epoch:
            await self._teardown(1000)
            raise _Superseded
        self._set_status(TransportStatus.CONNECTED)

    def _configured_now(self) -> None:
        if self._configured is not None and not self._configured.done():
            self._configured.set_result(None)

    def _setup_refused(self, message: str, rejected: bool) -> None:
        self._setup_failed(SessionRejected(message) if rejected else ConnectError(message))

    def _setup_failed(self, exc: Exception) -> bool:
        """Fail a setup still waiting for ``session.updated``; False if none is waiting."""
        if self._configured is None or self._configured.done():
            return False
        self._configured.set_exception(exc)
        self._configured.exception()  # mark retrieved
        return True

    async def _teardown(self, code: int) -> None:
        ws, self._ws = self._ws, None
        current = asyncio.current_task()
        tasks = [t for t in (self._reader, self._writer) if t is not None and t is not current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._reader = self._writer = None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code), 2.0)
        self._on_gone(report=not self._user_closing)
        self._outbox.clear()

    # ---------------------------------------------------------------- reconnect

    def _start_reconnector(self) -> None:
        if self._reconnector is None or self._reconnector.done():
            self._reconnector = self._spawn(self._reconnect_loop(), "reconnect")

    async def _stop_reconnector(self) -> None:
        task, self._reconnector = self._reconnector, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _reconnect_loop(self) -> None:
        self._set_status(TransportStatus.RECONNECTING)
        self._silence()
        # The old reader and writer must be gone before a new connection shares the outbox.
        await self._teardown(1000)
        attempt = 0
        while not self._user_closing:
            await asyncio.sleep(self.reconnect_policy.delay(attempt))
            attempt += 1
            if self._refused() is not None:
                return
            try:
                await self._dial(renew=True)
                log.info("reconnected after %d attempt(s)", attempt)
                return
            except _Superseded:
                return  # disconnect() came first
            except Exception as exc:
                await self._teardown(1000)
                judged = verdict(exc, self.model.provider)
                if not judged.retry:
                    self._fail(judged)
                    return
                self._error(judged.code, str(judged.error))
                self._set_status(TransportStatus.RECONNECTING)

    def _connection_lost(self, code: int | None, reason: str) -> None:
        """Called by the reader when the socket ends without us closing it."""
        if self._user_closing:
            return
        self._ws = None
        self._silence()
        abnormal = code != 1000 or self._expired
        if self._setup_failed(_Closed(code)):
            return
        reason = clean_text(reason, 200)
        desc = f"connection closed by the server (code {code}{': ' + reason if reason else ''})"
        if self.auto_reconnect and abnormal:
            log.warning("%s; reconnecting", desc)
            # At once, not when the reconnect task first runs: send_message() in between must
            # fail loudly instead of queueing for a socket that is gone.
            self._set_status(TransportStatus.RECONNECTING)
            self._start_reconnector()
        else:
            self._error("closed", desc)
            self._on_gone(report=True)
            self._set_status(TransportStatus.CLOSED)
            if self._writer is not None:
                self._writer.cancel()

    def _renew_expired(self) -> None:
        """The server ended the session (time limit): close so the reconnect renews it."""
        self._expired = True
        if self.auto_reconnect and self._ws is not None:
            self._spawn(self._ws.close(1001), "close")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
