"""``voice-device run``: the process around :class:`~device.app.Appliance`.

Loads the config (a bad file exits with :data:`EXIT_CONFIG` before anything starts), puts the
credential filter on the root log handlers, turns SIGTERM/SIGINT into the stop event and SIGHUP
into the reload event, and runs the appliance on uvloop when it is installed. After cleanup a
daemon timer makes sure a call stuck in a thread (a DNS lookup) cannot keep the process alive.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from .app import Appliance
from .config import load_config
from .realtime.errors import ConfigError
from .redact import install_on_root

log = logging.getLogger("device.service")

#: Exit status for a config error; the unit's ``RestartPreventExitStatus=`` matches it.
EXIT_CONFIG = 2
#: After cleanup, how long the process waits for stray threads (a blocked DNS lookup).
EXIT_GRACE_S = 2.0


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (a leaner event loop: less CPU per audio frame on a Pi),
    else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _exit_after(code: int, grace: float = EXIT_GRACE_S) -> None:
    """Cleanup is done: whatever still runs (a ``getaddrinfo`` stuck on a dead resolver, in
    the executor or libuv's pool) must not keep the process past systemd's stop timeout. A
    daemon timer ends the process with ``code`` if normal exit has not happened by then."""

    def force() -> None:
        log.warning("exiting although a blocked call (a DNS lookup?) is still running")
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(grace, force)
    timer.daemon = True
    timer.start()


def _run(coro: Coroutine[Any, Any, None]) -> int:
    """Run the service; 0, or :data:`EXIT_CONFIG` for a config error found while starting."""
    loop, code = _new_loop(), 1  # 1 unless it ends well: a crash is not a clean exit
    try:
        loop.run_until_complete(coro)
        code = 0
    except (ConfigError, BaseExceptionGroup) as exc:  # e.g. a GPIO pin taken by another program
        if isinstance(exc, BaseExceptionGroup):
            match, rest = exc.split(ConfigError)
            if match is None or rest is not None:
                raise
            exc = match.exceptions[0]
        log.error("%s", exc)
        code = EXIT_CONFIG
    finally:
        _exit_after(code)
        try:
            loop.run_until_complete(_cancel_leftovers())
        finally:
            loop.close()
    return code


async def _cancel_leftovers() -> None:
    """What :func:`asyncio.run` does at the end, except waiting for the default executor."""
    left = asyncio.all_tasks() - {asyncio.current_task()}
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


def run_service(path: Path | None) -> int:
    """``voice-device run``: 0 after SIGTERM/SIGINT, 2 on a config error, 1 on a crash."""
    install_on_root()
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    logging.getLogger().setLevel(config.behaviour.log_level.upper())
    for warning in config.warnings():
        log.warning("%s", warning)

    async def main() -> None:
        stop, reload = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        await Appliance(config, config_path=path).run(stop, reload)

    return _run(main())
