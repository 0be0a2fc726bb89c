"""The service's health: device faults, the systemd watchdog and the ``STATUS=`` line.

The app owns one :class:`Health`. Parts that find a hardware problem (capture, playback, GPIO)
call :meth:`Health.set_fault`; the session knows nothing about hardware. Health publishes on
its own small notice bus (:meth:`Health.subscribe`): raising a fault sends an
:class:`ErrorNotice` then a :class:`FaultsChanged`; clearing the last one sends an empty
``FaultsChanged``. The command table merges this bus with the session's notices, so control
subscribers (and later MQTT) see one stream.

``STATUS=`` text is ``"<status>[, muted]; <fault>; <fault>"``, pushed whenever the session's
status or mute changes or a fault comes or goes. The watchdog pings only while every check
passed to :meth:`watchdog_loop` holds (capture and playback threads alive).

The GPIO board follows it for the fault LED (``Board(..., faults=health)``); the session has
no fault registry.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from types import TracebackType

from .realtime.notices import ErrorNotice, FaultsChanged, Notice
from .sdnotify import Notifier, status_text

log = logging.getLogger("device.health")

Listener = Callable[[Notice], None]


class NoticeBus:
    """Listeners called in order, on the event loop thread; a failing listener is logged."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, notice: Notice) -> None:
        for listener in list(self._listeners):
            try:
                listener(notice)
            except Exception:
                log.exception("a notice listener failed")


class Health:
    """Fault registry, watchdog and ``STATUS=`` text. ``async with Health(notifier)``: on exit
    ``STOPPING=1`` is sent and the notify socket closed."""

    def __init__(self, notifier: Notifier | None = None) -> None:
        self.notifier = notifier or Notifier()
        self._faults: dict[str, str] = {}
        self._bus = NoticeBus()
        self._status = "disconnected"
        self._muted = False

    # ------------------------------------------------------------ faults

    @property
    def faults(self) -> dict[str, str]:
        """Current faults by source (``capture``, ``playback``, ``gpio``)."""
        return dict(self._faults)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._bus.subscribe(listener)

    def set_fault(self, source: str, message: str | None, code: str = "audio") -> None:
        """Raise (``message``) or clear (``None``) the fault of ``source``; repeats are quiet."""
        if message is None:
            if self._faults.pop(source, None) is None:
                return
        elif self._faults.get(source) == message:
            return
        else:
            self._faults[source] = message
            self._bus.emit(ErrorNotice(code, message))
        self._bus.emit(FaultsChanged(tuple(self._faults.items())))
        self.notifier.status(self.status_text())

    # ------------------------------------------------------------ systemd

    def follow(self, status: str, muted: bool) -> None:
        """The session's status or mute changed: update ``STATUS=``."""
        self._status, self._muted = status, muted
        self.notifier.status(self.status_text())

    def status_text(self) -> str:
        return "; ".join([status_text(self._status, self._muted), *self._faults.values()])

    def ready(self) -> None:
        self.notifier.ready(self.status_text())

    def reloading(self) -> None:
        self.notifier.reloading()

    def reloaded(self) -> None:
        self.notifier.ready(self.status_text())

    def stopping(self) -> None:
        self.notifier.stopping()

    async def watchdog_loop(self, *checks: Callable[[], bool]) -> None:
        await self.notifier.watchdog_loop(lambda: all(check() for check in checks))

    async def __aenter__(self) -> Health:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.notifier.stopping()
        self.notifier.close()
