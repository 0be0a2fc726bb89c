"""A stand-in for systemd's notification socket, for tests.

Binds an ``AF_UNIX``/``SOCK_DGRAM`` socket (a path in a private temporary directory, or an
abstract ``@name``), receives datagrams on a background thread and records each one with its
arrival time (:func:`time.monotonic`) and the sender's PID (``SO_PASSCRED``, as systemd uses to
enforce ``NotifyAccess=main``)::

    with NotifyListener() as listener:
        proc = subprocess.Popen([...], env={**os.environ, **listener.env(watchdog_usec=2_000_000)})
        ready = listener.wait_for("READY", timeout=20)
        assert ready.pid == proc.pid
        proc.send_signal(signal.SIGTERM)
        listener.wait_for("STOPPING", timeout=5)

Reusable by any test that runs the service (``voice-device run``) under a fake systemd.
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

_UCRED = struct.Struct("3i")  # struct ucred { pid_t pid; uid_t uid; gid_t gid; }


@dataclass(frozen=True)
class Notification:
    """One received datagram: its ``KEY=VALUE`` fields, arrival time and sender PID."""

    fields: dict[str, str]
    at: float
    pid: int | None
    raw: bytes = field(repr=False, default=b"")

    def get(self, key: str) -> str | None:
        return self.fields.get(key)


def parse(payload: bytes) -> dict[str, str]:
    """``b"READY=1\\nSTATUS=x"`` → ``{"READY": "1", "STATUS": "x"}`` (as systemd splits it)."""
    out: dict[str, str] = {}
    for line in payload.decode("utf-8", errors="replace").split("\n"):
        if "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


class NotifyListener:
    """Receive sd_notify datagrams. ``abstract=True`` binds ``@voice-device-test-<random>``."""

    def __init__(self, *, abstract: bool = False) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._dir: str | None = None
        if abstract:
            name = f"voice-device-test-{os.getpid()}-{os.urandom(6).hex()}"
            self._sock.bind(b"\0" + name.encode())
            self.address = "@" + name
        else:
            self._dir = tempfile.mkdtemp(prefix="vd-notify-")
            path = os.path.join(self._dir, "notify.sock")
            self._sock.bind(path)
            self.address = path
        self._sock.settimeout(0.05)
        self._lock = threading.Condition()
        self._messages: list[Notification] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="notify-listener", daemon=True)
        self._thread.start()

    def env(
        self, *, watchdog_usec: int | None = None, watchdog_pid: int | None = None
    ) -> dict[str, str]:
        """Environment variables that point a service at this listener."""
        out = {"NOTIFY_SOCKET": self.address}
        if watchdog_usec is not None:
            out["WATCHDOG_USEC"] = str(watchdog_usec)
        if watchdog_pid is not None:
            out["WATCHDOG_PID"] = str(watchdog_pid)
        return out

    def _run(self) -> None:
        space = socket.CMSG_SPACE(_UCRED.size)
        while not self._closed:
            try:
                data, ancdata, _flags, _addr = self._sock.recvmsg(65536, space)
            except TimeoutError:
                continue
            except OSError:
                if self._closed:
                    return
                raise
            at = time.monotonic()
            pid = None
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _UCRED.unpack_from(cdata)[0]
            with self._lock:
                self._messages.append(Notification(parse(data), at, pid, data))
                self._lock.notify_all()

    @property
    def messages(self) -> list[Notification]:
        """Everything received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._messages)

    def values(self, key: str) -> list[str]:
        """Every value received for ``key``, in order (e.g. all ``STATUS`` texts)."""
        return [m.fields[key] for m in self.messages if key in m.fields]

    def times(self, key: str) -> list[float]:
        """Arrival times of the datagrams carrying ``key`` (e.g. every ``WATCHDOG`` ping)."""
        return [m.at for m in self.messages if key in m.fields]

    def wait_for(
        self,
        key: str,
        value: str | None = None,
        *,
        timeout: float = 10.0,
        since: int = 0,
    ) -> Notification:
        """The first datagram (from index ``since``) with ``key`` (= ``value`` if given).

        Raises :class:`TimeoutError` listing what did arrive, so a failing test says why.
        """
        return self.wait_until(
            lambda m: key in m.fields and (value is None or m.fields[key] == value),
            timeout=timeout,
            since=since,
            what=f"{key}={value}" if value is not None else key,
        )

    def wait_until(
        self,
        predicate: Callable[[Notification], bool],
        *,
        timeout: float = 10.0,
        since: int = 0,
        what: str = "matching notification",
    ) -> Notification:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for m in self._messages[since:]:
                    if predicate(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [m.fields for m in self._messages]
                    raise TimeoutError(f"no {what} within {timeout} s; received {got}")
                self._lock.wait(left)

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        self._sock.close()
        if self._dir is not None:
            Path(self.address).unlink(missing_ok=True)
            os.rmdir(self._dir)

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
