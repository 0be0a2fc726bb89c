"""The usage state file: ``usage.json`` in the state directory, written atomically.

``$STATE_DIRECTORY`` (systemd sets it from ``StateDirectory=voice-device``), else
``/var/lib/voice-device``. The file holds only numbers and dates (:meth:`UsageLedger.to_mapping`),
never a credential.

Writes go to a temporary file in the same directory, which is fsynced, renamed over the old
file, and the directory fsynced: a crash or ``kill -9`` leaves either the old or the new file,
never a torn one. :meth:`UsageStore.maybe_save` writes at most every ``interval_s`` seconds
(call it as often as you like); :meth:`UsageStore.save` writes now (shutdown).

A corrupt or unreadable file is reported (a warning naming the path and what was wrong), moved
aside to ``usage.json.corrupt`` when possible and replaced on the next save; it is never fatal.
A failing save is a warning too (once per distinct error) and is retried on the next call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .ledger import Clock, Monotonic, UsageLedger, local_clock

log = logging.getLogger("device.usage")

DEFAULT_STATE_DIR = "/var/lib/voice-device"
FILE_NAME = "usage.json"
#: Default spacing of :meth:`UsageStore.maybe_save` writes: the most a kill -9 can lose.
SAVE_INTERVAL_S = 5.0


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$STATE_DIRECTORY`` (its first entry if systemd lists several), else the default."""
    env = os.environ if environ is None else environ
    value = env.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(value or DEFAULT_STATE_DIR)


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    return state_dir(environ) / FILE_NAME


def encode(state: Mapping[str, Any]) -> str:
    """Compact JSON with one line per day (about 400 bytes a day), so that the file is small
    on an SD card and still readable with ``cat``."""
    days = state["days"]
    lines = ",\n".join(f"{json.dumps(d)}:{_compact(days[d])}" for d in sorted(days))
    head = {k: v for k, v in state.items() if k != "days"}
    return _compact(head)[:-1] + ',"days":{\n' + lines + "\n}}\n"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class UsageStore:
    """Loads and saves one :class:`UsageLedger` to ``path``."""

    def __init__(self, path: Path | None = None, interval_s: float = SAVE_INTERVAL_S) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.interval_s = interval_s
        self._last_save: float | None = None
        self._saved_revision: int | None = None
        self._last_error: str | None = None
        self._repair = True

    def load(
        self,
        clock: Clock = local_clock,
        monotonic: Monotonic | None = None,
        *,
        repair: bool = True,
    ) -> UsageLedger:
        """A ledger with the file's totals; an empty one (and a warning) when the file is
        corrupt or unreadable, and an empty one silently when there is no file yet.
        ``repair=False`` (a read-only reader such as the CLI) leaves a bad file where it is."""
        self._repair = repair
        if repair:
            self._remove_stale_temporaries()
        ledger = UsageLedger(clock) if monotonic is None else UsageLedger(clock, monotonic)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ledger
        except OSError as exc:
            self._report(f"cannot read it ({exc.strerror or exc})")
            return ledger
        except UnicodeDecodeError:
            self._report("it is not UTF-8 text")
            return ledger
        try:
            ledger.load_mapping(json.loads(text))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            self._report(f"not a valid usage file: {exc}")
            return ledger
        self._saved_revision = ledger.revision
        return ledger

    def maybe_save(self, ledger: UsageLedger, now: float) -> bool:
        """Save if something changed and ``interval_s`` has passed since the last save.

        ``now`` is monotonic seconds (``time.monotonic()``). Connected time is accrued first, so
        an open connection counts as a change. Returns whether the file was written.
        """
        if self._last_save is not None and now - self._last_save < self.interval_s:
            return False
        ledger.accrue()
        if ledger.revision == self._saved_revision:
            return False
        self._last_save = now
        return self.save(ledger)

    def save(self, ledger: UsageLedger) -> bool:
        """Write now (shutdown, or after a limit was reached). Returns whether it worked."""
        ledger.accrue()
        revision = ledger.revision
        try:
            self._write(encode(ledger.to_mapping()).encode())
        except OSError as exc:
            message = f"cannot save usage to {self.path}: {exc.strerror or exc}"
            if message != self._last_error:
                log.warning("%s (will retry)", message)
            self._last_error = message
            return False
        self._last_error = None
        self._saved_revision = revision
        return True

    def _write(self, data: bytes) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{self.path.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of a process killed while saving (they carry its pid)."""
        with contextlib.suppress(OSError):
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                with contextlib.suppress(OSError):
                    stale.unlink()

    def _report(self, problem: str) -> None:
        aside = self.path.with_name(self.path.name + ".corrupt")
        outcome = "ignoring it"
        if self._repair:
            outcome = "starting from zero and replacing it"
            try:
                os.replace(self.path, aside)
                outcome += f" (the old file is kept as {aside})"
            except OSError:
                pass
        log.warning("usage state file %s: %s; %s", self.path, problem, outcome)
        # The next maybe_save writes a fresh file even if nothing was used yet.
        self._saved_revision = None
