"""A board: the buttons, lights and action table of one device, composed.

::

    board = Board(session, GpioConfig(buttons, leds), asyncio.get_running_loop(),
                  volume=volume, faults=health)
    ...
    board.close()             # LEDs off, GPIO released, unsubscribed

Buttons (BCM numbers, pull-up/active-low by default, ``bounce_ms`` debounce):

* **connect** — single press ``toggle_connection``; ``connect_long`` (default ``forget``) and
  ``connect_double`` (default ``none``) as gestures (see :mod:`device.gpio.gestures`).
* **mute** — single press ``toggle_mute``; ``mute_long`` / ``mute_double``.
* **talk** (``mode = "push_to_talk"`` only) — press ``begin_turn``, release ``end_turn``. The
  session must run with turn detection off (:func:`push_to_talk_config`; the board refuses a
  session that still has it on).
* **volume up/down** — ``volume_up`` / ``volume_down``, repeating while held; their pins are
  claimed only when a ``volume`` control is given.

The board plays no sound: earcons follow notices in the app (:class:`device.earcons.EarconPolicy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from ..realtime.notices import Notice
from .actions import ActionTable, BoardSession, FaultSource, VolumeControl
from .buttons import Buttons, Clock, PressStats
from .config import GpioConfig, GpioError
from .gestures import Gesture
from .lights import Leds, Lights
from .pins import Pins

log = logging.getLogger("device.gpio")


class Board:
    """Buttons and LEDs wired to ``session``; construct it on the loop thread (``loop``).

    ``pin_factory`` defaults to gpiozero's (``GPIOZERO_PIN_FACTORY``); ``clock`` (ns) stamps
    and times button edges; the fault LED follows ``faults`` (the app's health); ``on_action``
    hears every button action; ``limit`` is a daily limit that already holds (the status LED
    shows it from the start, e.g. after a restart). Raises
    :class:`GpioError` naming the key, or the pin and its role when a pin cannot be claimed;
    nothing stays claimed then.
    """

    def __init__(
        self,
        session: BoardSession,
        config: GpioConfig,
        loop: asyncio.AbstractEventLoop,
        *,
        pin_factory: Any = None,
        volume: VolumeControl | None = None,
        faults: FaultSource | None = None,
        clock: Clock = time.perf_counter_ns,
        on_action: Callable[[str], None] | None = None,
        limit: str | None = None,
    ) -> None:
        config.validate()
        if config.buttons.mode == "push_to_talk" and session.config.turn_detection is not None:
            raise GpioError(
                "buttons.mode = push_to_talk needs the session without turn detection "
                "(use push_to_talk_config(); Config.session_config() does this)"
            )
        self.session = session
        self.config = config
        self.loop = loop
        self.actions = ActionTable(session, loop, volume, on_action)
        self.buttons = Buttons(
            loop, self.actions.run, bounce_ms=config.buttons.bounce_ms, clock=clock
        )
        self._pins = Pins(pin_factory)
        self._closed = False
        try:
            self.leds = self._setup_leds()
            self._setup_buttons(volume is not None)
        except BaseException:
            self._pins.release()
            raise
        faulted = faults is not None and bool(faults.faults)
        self.lights = Lights(
            self.leds, status=session.status, muted=session.muted, faulted=faulted, limit=limit
        )
        self._unsubscribe = [session.subscribe(self.on_notice)]
        if faults is not None:
            self._unsubscribe.append(faults.subscribe(self.on_notice))

    @property
    def stats(self) -> PressStats:
        return self.buttons.stats

    @property
    def last_press_latency_ns(self) -> int:
        """Edge → handled-on-the-loop latency of the latest button edge."""
        return self.buttons.stats.last_latency_ns

    def on_notice(self, notice: Notice) -> None:
        """Session listener (also for notices from other parts: wake word, limits)."""
        if not self._closed:
            self.lights.on_notice(notice)

    def close(self) -> None:
        """All LEDs off, gesture timers and a button's pending connect cancelled, GPIO released.

        Call it on the loop thread. gpiozero releases the pins as inputs (undriven).
        """
        if self._closed:
            return
        self._closed = True
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(Exception):
                unsubscribe()
        self.buttons.close()
        self.actions.close()
        self._pins.release()

    def _setup_leds(self) -> Leds:
        c = self.config.leds
        leds = Leds(rgb=c.status_rgb is not None)
        if c.status_rgb is not None:
            leds.status, leds.status_pwm = self._pins.rgb_led(
                list(c.status_rgb), pwm=c.pwm, active_high=c.active_high
            )
        elif c.status is not None:
            leds.status, leds.status_pwm = self._led("status LED", c.status, c.pwm)
        if c.mute is not None:
            leds.mute, _ = self._led("mute LED", c.mute, False)
        if c.activity is not None:
            leds.activity, leds.activity_pwm = self._led("activity LED", c.activity, c.pwm)
        if c.fault is not None:
            leds.fault, _ = self._led("fault LED", c.fault, False)
        return leds

    def _led(self, role: str, pin: int, pwm: bool) -> tuple[Any, bool]:
        return self._pins.led(role, pin, pwm=pwm, active_high=self.config.leds.active_high)

    def _setup_buttons(self, has_volume: bool) -> None:
        c = self.config.buttons
        for name, pin, single, long, double in (
            ("connect", c.connect, "toggle_connection", c.connect_long, c.connect_double),
            ("mute", c.mute, "toggle_mute", c.mute_long, c.mute_double),
        ):
            if pin is not None:
                gesture = Gesture(
                    single,
                    long,
                    double,
                    round(c.long_press_s * 1e9),
                    round(c.double_press_s * 1e9),
                )
                self.buttons.add(name, self._button(f"{name} button", pin), gesture=gesture)
        if c.mode == "push_to_talk" and c.talk is not None:
            device = self._button("talk button", c.talk)
            self.buttons.add("talk", device, on_press="begin_turn", on_release="end_turn")
        if not has_volume:
            if c.volume_up is not None or c.volume_down is not None:
                log.warning("volume buttons configured but no mixer to drive: ignored")
            return
        for name, pin in (("volume_up", c.volume_up), ("volume_down", c.volume_down)):
            if pin is not None:
                role = name.replace("_", " ") + " button"
                self.buttons.add(name, self._button(role, pin), repeat=name)

    def _button(self, role: str, pin: int) -> Any:
        return self._pins.button(role, pin, self.config.buttons.pull_up)
