"""One table from action names to the session surface.

Buttons emit action names (:data:`ACTION_NAMES`); :class:`ActionTable` runs them on the event
loop against the session's public surface (``connect``/``disconnect``/``forget``/``mute``/
``unmute``/``begin_turn``/``end_turn``) and the volume control. Async calls run as tasks,
ordered where order matters: a disconnect abandons a pending connect, a connect waits for a
running disconnect, a talk release never overtakes its press.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from ..realtime.errors import VoiceDeviceError
from ..realtime.events import SessionConfig
from ..realtime.notices import Notice
from ..realtime.status import TransportStatus

log = logging.getLogger("device.gpio")

#: Every action a button can emit: the config's gesture actions plus the fixed ones.
ACTION_NAMES = (
    "none",
    "toggle_connection",
    "toggle_mute",
    "connect",
    "disconnect",
    "forget",
    "mute",
    "unmute",
    "begin_turn",
    "end_turn",
    "volume_up",
    "volume_down",
)


class Session(Protocol):
    """What the buttons drive (:class:`device.session.RealtimeSession`'s public surface)."""

    @property
    def status(self) -> TransportStatus: ...

    @property
    def muted(self) -> bool: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def forget(self) -> None: ...

    def mute(self) -> None: ...

    def unmute(self) -> None: ...

    async def begin_turn(self) -> None: ...

    async def end_turn(self) -> None: ...


class BoardSession(Session, Protocol):
    """What a :class:`device.gpio.Board` needs besides the action surface: the starting state
    of its LEDs, the session's turn detection (push-to-talk) and a notice subscription."""

    @property
    def config(self) -> SessionConfig: ...

    def subscribe(self, listener: Callable[[Notice], None]) -> Callable[[], None]: ...


class FaultSource(Protocol):
    """Where device faults live (:class:`device.health.Health`): the fault LED follows it."""

    @property
    def faults(self) -> Mapping[str, str]: ...

    def subscribe(self, listener: Callable[[Notice], None]) -> Callable[[], None]: ...


class VolumeControl(Protocol):
    """What the volume buttons drive (e.g. :class:`device.audio.mixer.Volume`)."""

    def up(self) -> object: ...

    def down(self) -> object: ...


def push_to_talk_config(config: SessionConfig) -> SessionConfig:
    """``config`` with turn detection off, as push-to-talk needs (the button ends the turn)."""
    return dataclasses.replace(config, turn_detection=None)


class ActionTable:
    """Runs action names against ``session`` (and ``volume``) on ``loop``."""

    def __init__(
        self,
        session: Session,
        loop: asyncio.AbstractEventLoop,
        volume: VolumeControl | None = None,
        on_action: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        self.loop = loop
        self.volume = volume
        #: Told every action before it runs (the usage part: a press is activity, a held talk
        #: button is the user speaking, so idle never disconnects mid-question).
        self.on_action = on_action
        self._tasks: set[asyncio.Task[None]] = set()
        self._connect_task: asyncio.Task[None] | None = None
        self._disconnect_task: asyncio.Task[None] | None = None
        self._turn_task: asyncio.Task[None] | None = None
        self._table: dict[str, Callable[[], None]] = {
            "none": lambda: None,
            "toggle_connection": self._toggle_connection,
            "toggle_mute": self._toggle_mute,
            "connect": self._connect,
            "disconnect": lambda: self._disconnect(forget=False),
            "forget": lambda: self._disconnect(forget=True),
            "mute": session.mute,
            "unmute": session.unmute,
            "begin_turn": lambda: self._turn(begin=True),
            "end_turn": lambda: self._turn(begin=False),
            "volume_up": lambda: self._step(up=True),
            "volume_down": lambda: self._step(up=False),
        }

    @property
    def names(self) -> tuple[str, ...]:
        """Every action this table runs."""
        return tuple(self._table)

    def run(self, action: str) -> None:
        """Run ``action`` now (on the loop thread); raises ``KeyError`` for an unknown name."""
        call = self._table[action]
        log.debug("button action: %s", action)
        if self.on_action is not None and action != "none":
            try:
                self.on_action(action)
            except Exception:  # an observer never stops a button
                log.exception("button action observer failed")
        call()

    def close(self) -> None:
        """Abandon a handshake a button started (the session reports ``disconnected``)."""
        if self._connect_task is not None:
            self._connect_task.cancel()

    def _toggle_connection(self) -> None:
        self._table["disconnect" if self.session.status.active else "connect"]()

    def _toggle_mute(self) -> None:
        self._table["unmute" if self.session.muted else "mute"]()

    def _connect(self) -> None:
        previous = self._disconnect_task

        async def connect() -> None:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            try:
                await self.session.connect()
            except VoiceDeviceError as exc:  # the session has reported it (ErrorNotice, closed)
                log.warning("connect failed: %s", exc)

        self._connect_task = self._spawn(connect())

    def _disconnect(self, *, forget: bool) -> None:
        pending = self._connect_task
        if pending is not None and not pending.done():
            pending.cancel()
        self._connect_task = None

        async def disconnect() -> None:
            if pending is not None:
                await asyncio.wait([pending])
            await (self.session.forget() if forget else self.session.disconnect())

        self._disconnect_task = self._spawn(disconnect())

    def _turn(self, *, begin: bool) -> None:
        previous = self._turn_task

        async def turn() -> None:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])  # a release never overtakes its press
            await (self.session.begin_turn() if begin else self.session.end_turn())

        self._turn_task = self._spawn(turn())

    def _step(self, *, up: bool) -> None:
        if self.volume is None:
            return
        try:
            self.volume.up() if up else self.volume.down()
        except Exception:
            log.exception("volume %s failed", "up" if up else "down")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("button action failed", exc_info=task.exception())
