"""The fault policy both audio directions share, as plain calls (no ALSA, no asyncio).

A device that is missing at start or lost mid-stream is reported once per outage (``"missing"``
or ``"lost"``) and retried with exponential backoff (``BACKOFF_START_S`` doubling to
``BACKOFF_CAP_S``). Reopening is not recovering: only when audio has really moved on the
reopened device (a read returned frames, a write was accepted) does :meth:`moved` report
``"recovered"`` and restart the backoff. A device that opens and fails at once therefore stays
faulted, without recovered/lost pairs, and is retried ever more slowly. ``"crashed"`` means an
unexpected error stopped the device's handling for good.

::

    sup = FaultSupervisor("capture", "hw:CARD=Mic", report=print)
    sup.failed("lost", "capture device ... failed: ...")   # → reported (first of the outage)
    await asyncio.sleep(sup.next_delay())                    # 0.5, 1, 2, 4, 5, 5 ... s
    sup.moved()                                              # → "recovered", backoff reset
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("device.audio")

#: Retry backoff after a device error: first wait and cap, in seconds.
BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 5.0


@dataclass(frozen=True)
class AudioFault:
    """Something went wrong (or right again) with an audio device.

    ``kind`` is ``"missing"`` (could not open), ``"lost"`` (failed mid-session),
    ``"recovered"`` (open again after a fault) or ``"crashed"`` (an unexpected error stopped
    the device's handling for good).
    """

    device: str
    message: str
    kind: str

    def __str__(self) -> str:
        return self.message


class FaultSupervisor:
    """Outage state, backoff and fault reporting of one audio device (see the module doc).

    ``report`` receives each :class:`AudioFault`; the owner decides how it reaches the
    application (capture and playback hand it to the event loop with ``call_soon``).
    """

    def __init__(
        self,
        role: str,
        device: str,
        report: Callable[[AudioFault], None] | None = None,
        *,
        start_s: float = BACKOFF_START_S,
        cap_s: float = BACKOFF_CAP_S,
    ) -> None:
        self.role = role
        self.device = device
        self.report = report
        self.start_s = start_s
        self.cap_s = cap_s
        #: True from the first failure of an outage until audio moves again.
        self.faulted = False
        #: True once :meth:`crashed` was called.
        self.crashed_for_good = False
        #: Faults reported so far (every kind).
        self.faults = 0
        self._backoff = start_s

    @property
    def backoff(self) -> float:
        """The wait :meth:`next_delay` will return next."""
        return self._backoff

    def failed(self, kind: str, detail: str) -> bool:
        """The device could not be opened (``kind="missing"``) or failed (``"lost"``).

        Reports the first failure of an outage and returns True; later failures of the same
        outage are only logged at debug level (False).
        """
        if self.faulted:
            log.debug("%s device %r still failing: %s", self.role, self.device, detail)
            return False
        self.faulted = True
        what = "not available" if kind == "missing" else "failed"
        self._emit(kind, f'{self.role} device "{self.device}" {what}: {detail}')
        return True

    def next_delay(self) -> float:
        """Seconds to wait before the next open attempt; each call doubles the next one."""
        delay = self._backoff
        self._backoff = min(delay * 2, self.cap_s)
        return delay

    def moved(self) -> None:
        """Audio moved on the open device: it works (again). Cheap enough to call per period."""
        self._backoff = self.start_s
        if self.faulted:
            self.faulted = False
            self._emit("recovered", f'{self.role} device "{self.device}" recovered')

    def crashed(self, message: str) -> None:
        """An unexpected error ended the device's handling; reported once."""
        if not self.crashed_for_good:
            self.crashed_for_good = True
            self._emit("crashed", message)

    async def watch(self, body: Awaitable[None]) -> None:
        """Await the device's loop ``body``; an unexpected error ends it as :meth:`crashed`
        (reported once, with the exception) rather than vanishing with the task."""
        try:
            await body
        except Exception as exc:
            log.exception("%s crashed", self.role)
            self.crashed(f'{self.role} on "{self.device}" crashed: {exc!r}')

    def _emit(self, kind: str, message: str) -> None:
        self.faults += 1
        if kind == "recovered":
            log.info("%s", message)
        else:
            log.error("%s", message)
        if self.report is not None:
            self.report(AudioFault(self.device, message, kind))
