"""systemd readiness, status and watchdog notifications (``sd_notify``), standard library only.

systemd starts a ``Type=notify`` service with ``NOTIFY_SOCKET`` set to an ``AF_UNIX`` datagram
socket: a filesystem path (``/run/systemd/notify``) or, with a leading ``@``, a name in the
abstract namespace. Each datagram is newline-separated ``KEY=VALUE`` assignments::

    READY=1                      start-up finished: audio, GPIO and the control socket are up
    STATUS=connected, mic live   free text shown by ``systemctl status voice-device``
    WATCHDOG=1                   "still alive"; due at least every WatchdogSec=
    STOPPING=1                   shutdown has begun
    RELOADING=1                  a reload has begun (with MONOTONIC_USEC=, for Type=notify-reload)

Without ``NOTIFY_SOCKET`` (a shell, a test, the demo) every method is a no-op, so the service
code calls them unconditionally::

    notifier = Notifier()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(notifier.watchdog_loop(lambda: capture.alive() and playback.alive()))
        ...                                  # open audio, GPIO, control socket
        notifier.ready(status_text(session.status, session.muted))

The watchdog is the service's dead-man switch. :meth:`Notifier.watchdog_loop` pings from the
event loop at half of ``WATCHDOG_USEC``, and only while ``health()`` is true: a stalled event
loop cannot run it, and a dead audio thread makes ``health()`` false, so in both cases the pings
stop and systemd kills and restarts the service after ``WatchdogSec=``.

Sending never raises: a missing or full socket is logged once (as a warning; later failures at
debug level) and the notification dropped — systemd then acts on the missing message
(start timeout, watchdog), which is the correct outcome for a service that cannot talk to it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

__all__ = ["Notifier", "notify_address", "status_text", "watchdog_interval"]

log = logging.getLogger("device.sdnotify")


def notify_address(environ: Mapping[str, str] | None = None) -> str | bytes | None:
    """The socket address from ``NOTIFY_SOCKET``, ready for :meth:`socket.socket.sendto`.

    A path is returned as ``str``; ``@name`` becomes the abstract address ``b"\\0name"``.
    Returns ``None`` when the variable is unset, empty, or names a transport this module does
    not speak (``vsock:``, which systemd uses for virtual machines) — the caller then stays
    silent, as ``sd_notify`` does without a socket.
    """
    env = os.environ if environ is None else environ
    value = env.get("NOTIFY_SOCKET", "")
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET=%r: unsupported address, systemd notifications disabled", value)
    return None


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds within which systemd expects ``WATCHDOG=1``, or ``None`` when not watched.

    Read from ``WATCHDOG_USEC`` (set by ``WatchdogSec=``). When ``WATCHDOG_PID`` is set and is
    not this process, the watchdog belongs to someone else (a parent that spawned us) and the
    answer is ``None``. Malformed or non-positive values also give ``None``.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not an integer; watchdog disabled", usec)
        return None
    return value / 1_000_000 if value > 0 else None


def status_text(status: str, muted: bool) -> str:
    """The ``STATUS=`` line: transport status and microphone state.

    >>> status_text("connected", True)
    'connected, muted'
    >>> status_text("disconnected", False)
    'disconnected, mic live'
    """
    return f"{status}, {'muted' if muted else 'mic live'}"


class Notifier:
    """Talks to systemd's notification socket; a silent no-op when there is none.

    :param environ: where to read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``
        (default: :data:`os.environ`, read once, at construction).

    :attr:`enabled` tells whether a socket was configured. :meth:`status` skips a text equal to
    the last one sent, so it can be called on every state change. :meth:`stopping` sends once,
    however often it is called (the service calls it on both the signal and the cleanup path).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._address = notify_address(environ)
        self._interval = watchdog_interval(environ) if self._address is not None else None
        self._sock: socket.socket | None = None
        self._warned = False
        self._last_status: str | None = None
        self._stopping = False

    @property
    def enabled(self) -> bool:
        """True when ``NOTIFY_SOCKET`` names a socket we can send to."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """``WatchdogSec=`` in seconds for this process, or ``None``: :func:`watchdog_interval`."""
        return self._interval

    # ------------------------------------------------------------------ messages

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` lines (``notify(READY=1, STATUS="x")``); True if it went out.

        Values must not contain a newline: it would start a new assignment, so newlines are
        replaced by spaces.
        """
        if self._address is None:
            return False
        lines = [f"{key}={str(value).replace(chr(10), ' ')}" for key, value in fields.items()]
        return self._send("\n".join(lines).encode())

    def ready(self, status: str | None = None) -> bool:
        """``READY=1`` (optionally with a first ``STATUS=``): start-up has finished."""
        if status is None:
            return self.notify(READY=1)
        self._last_status = status
        return self.notify(READY=1, STATUS=status)

    def status(self, text: str) -> bool:
        """``STATUS=text``, e.g. ``"connected, muted"``; unchanged text is not re-sent."""
        if text == self._last_status:
            return False
        self._last_status = text
        return self.notify(STATUS=text)

    def stopping(self) -> bool:
        """``STOPPING=1``: shutdown has begun. Sent at most once."""
        if self._stopping:
            return False
        self._stopping = True
        return self.notify(STOPPING=1)

    def reloading(self) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC=`` (what ``Type=notify-reload`` expects).

        Follow with :meth:`ready` once the new configuration is in force.
        """
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(RELOADING=1, MONOTONIC_USEC=now_usec)

    def watchdog(self) -> bool:
        """One ``WATCHDOG=1`` keep-alive ping."""
        return self.notify(WATCHDOG=1)

    async def watchdog_loop(self, health: Callable[[], bool]) -> None:
        """Ping ``WATCHDOG=1`` every half ``WatchdogSec=`` while ``health()`` is true.

        Runs until cancelled. Returns at once when the service is not watched (no socket or no
        ``WATCHDOG_USEC``). ``health`` runs on the event loop and must be quick (e.g. "is the
        microphone delivering and the playback thread alive"); an exception from it counts as
        unhealthy. The first failure is logged as an error; pings resume if health comes back
        before systemd acts. A blocked event loop sends nothing, which is the point.
        """
        if self._interval is None:
            return
        period = self._interval / 2
        healthy = True
        while True:
            try:
                ok = bool(health())
            except Exception:
                log.exception("watchdog health check raised; withholding watchdog pings")
                ok = False
            if ok:
                if not healthy:
                    log.warning("health restored; watchdog pings resume")
                self.watchdog()
            elif healthy:
                log.error(
                    "health check failed: withholding watchdog pings, systemd will restart "
                    "the service within %.1f s",
                    self._interval,
                )
            healthy = ok
            await asyncio.sleep(period)

    # ------------------------------------------------------------------ transport

    def _send(self, payload: bytes) -> bool:
        assert self._address is not None
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(level, "cannot notify systemd at %s: %s", self._shown_address(), exc)
            return False
        return True

    def _shown_address(self) -> str:
        address = self._address
        if isinstance(address, bytes):
            return "@" + address[1:].decode(errors="replace")
        return str(address)

    def close(self) -> None:
        """Close the socket (further messages reopen it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
