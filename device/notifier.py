"""The status and the listeners of a session: who hears about what, in order."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from .realtime.notices import ErrorNotice, Notice, StatusChanged
from .realtime.status import TransportStatus

log = logging.getLogger("device.session")

Listener = Callable[[Notice], None]


class Notifier:
    """Holds the transport status and calls every listener for every notice; a listener that
    raises is logged and the others still hear."""

    def __init__(self) -> None:
        self._status = TransportStatus.DISCONNECTED
        self._listeners: list[Listener] = []

    @property
    def status(self) -> TransportStatus:
        return self._status

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(notice)`` for every notice; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def announce(self, notice: Notice) -> None:
        """A notice from another part of the device (the usage part's ``LimitReached``) to
        every listener, in order with the session's own."""
        self._emit(notice)

    def _set_status(self, status: TransportStatus) -> None:
        if status is self._status:
            return
        self._status = status
        log.info("status: %s", status.value)
        self._emit(StatusChanged(status))

    def _error(self, code: str, message: str) -> None:
        self._emit(ErrorNotice(code, message))

    def _emit(self, notice: Notice) -> None:
        for listener in list(self._listeners):
            try:
                listener(notice)
            except Exception:
                log.exception("a session listener failed on %r", notice)
