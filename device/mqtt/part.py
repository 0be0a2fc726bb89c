"""The MQTT bridge as one part of the appliance: what :mod:`device.app` enters.

``mqtt_part(config.mqtt, table, state)`` is an async context manager: with ``[mqtt] host``
empty it does nothing (yields None); otherwise it starts an :class:`MqttBridge` answering with
the command table's ``dispatch`` (the control socket's commands, validation and replies),
publishing every event of ``table.subscribe_events`` and, as the retained state,
:class:`DeviceState`. Entering never waits for the broker: broker down, lost or refusing us,
the appliance works locally and the bridge retries in the background.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from .. import __version__
from .bridge import MqttBridge
from .config import MqttConfig

StateSource = Callable[[], Mapping[str, Any]]


class Table(Protocol):
    """What the part needs of :class:`device.commands.CommandTable`."""

    async def dispatch(self, request: object) -> dict[str, Any]: ...

    def state(self) -> dict[str, Any]: ...

    def subscribe_events(
        self, listener: Callable[[dict[str, Any]], None]
    ) -> Callable[[], None]: ...


class DeviceState:
    """The retained ``<prefix>/state``: the command table's ``status``/``muted``/``faults``,
    ``speaking`` (followed from the events), ``version`` and whatever other parts
    :meth:`add` (the usage part: ``lambda: {"usage": today}``; then a ``{"event": "usage"}``
    or :meth:`MqttBridge.state_changed` republishes it)."""

    def __init__(self, table: Table, version: str = __version__) -> None:
        self.table = table
        self.version = version
        self.speaking = False
        self._sources: list[StateSource] = []

    def add(self, source: StateSource) -> None:
        self._sources.append(source)

    def follow(self, event: Mapping[str, Any]) -> None:
        if event.get("event") == "speaking":
            self.speaking = bool(event.get("speaking"))

    def __call__(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            **self.table.state(),
            "speaking": self.speaking,
            "version": self.version,
        }
        for source in self._sources:
            state.update(source())
        return state


@contextlib.asynccontextmanager
async def mqtt_part(
    config: MqttConfig, table: Table, state: DeviceState | None = None, **options: Any
) -> AsyncIterator[MqttBridge | None]:
    """The bridge for ``config`` (None when MQTT is off), wired to ``table``; ``options``
    (``backoff``, ``queue_size``…) go to :class:`MqttBridge`."""
    if not config.enabled:
        yield None
        return
    view = state if state is not None else DeviceState(table)
    bridge = MqttBridge(config, table.dispatch, view, version=view.version, **options)

    def on_event(event: dict[str, Any]) -> None:
        view.follow(event)  # before the bridge reads the state for this event
        bridge.publish_event(event)

    async with bridge:
        off = table.subscribe_events(on_event)
        try:
            yield bridge
        finally:
            off()
