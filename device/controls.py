"""Compatibility names for :mod:`device.gpio` (the buttons and LEDs now live there).

``Controls(session, ControlsConfig(...), loop, pin_factory=..., earcon_sink=..., volume=...)``
is a :class:`device.gpio.Board`. Transitional: while a caller still passes ``earcon_sink``,
the earcons chosen by :class:`device.earcons.EarconPolicy` are played into it; once the app
plays earcons from notices itself, drop ``earcon_sink`` (and this module).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from .earcons import EarconPolicy, earcon
from .gpio import Board, GpioConfig, GpioError, PressStats, VolumeControl, push_to_talk_config
from .gpio.actions import BoardSession
from .gpio.buttons import Clock
from .realtime.notices import Notice

log = logging.getLogger("device.controls")

ControlsError = GpioError

__all__ = [
    "Controls",
    "ControlsConfig",
    "ControlsError",
    "EarconSink",
    "PressStats",
    "push_to_talk_config",
]


class EarconSink(Protocol):
    """Where earcons are played (the playback path's ``play``)."""

    def play(self, item_id: str, pcm: bytes) -> None: ...


@dataclass(frozen=True)
class ControlsConfig(GpioConfig):
    """:class:`GpioConfig` plus the legacy ``earcons`` switch (for ``earcon_sink``) and
    ``mixer``, which nothing reads (the volume control is passed in already opened)."""

    earcons: bool = True
    mixer: str = "PCM"


class Controls(Board):
    """A :class:`Board` that may also play earcons into a legacy ``earcon_sink``."""

    def __init__(
        self,
        session: BoardSession,
        config: GpioConfig,
        loop: asyncio.AbstractEventLoop,
        *,
        pin_factory: Any = None,
        earcon_sink: EarconSink | None = None,
        volume: VolumeControl | None = None,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        enabled = getattr(config, "earcons", True) and earcon_sink is not None
        self._earcon_sink = earcon_sink
        self._policy = EarconPolicy(enabled, session.status)
        super().__init__(session, config, loop, pin_factory=pin_factory, volume=volume, clock=clock)

    def on_notice(self, notice: Notice) -> None:
        super().on_notice(notice)
        if self._closed:
            return
        name = self._policy.cue(notice)
        if name is None or self._earcon_sink is None:
            return
        try:
            self._earcon_sink.play("earcon", earcon(name))
        except Exception:
            log.exception("could not play the %s earcon", name)
