"""Claiming gpiozero devices, with errors that name the pin and its role.

:class:`Pins` makes every device of a board through one pin factory, turns gpiozero's and
lgpio's errors into :class:`~device.gpio.config.GpioError` (``GPIO17 (connect button) is
already in use``) and releases everything it made, newest first, on :meth:`Pins.release`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

from .config import GpioError

log = logging.getLogger("device.gpio")

RGB_COLOURS = ("red", "green", "blue")


class Pins:
    """The devices one board claimed through ``pin_factory`` (None: gpiozero's default)."""

    def __init__(self, pin_factory: Any = None) -> None:
        self.factory = pin_factory
        self._devices: list[Any] = []

    def claim(
        self,
        role: str,
        pin: int,
        make: Callable[[], Any],
        parts: dict[int, str] | None = None,
        *,
        keep: bool = True,
    ) -> Any:
        """``make()`` a gpiozero device; failures become :class:`GpioError` naming the pin.

        ``parts`` (pin → role) names the culprit when one device claims several pins and the
        error names it (lgpio's ``GPIO busy`` does not: :meth:`probe` such pins one by one
        first). ``keep=False``: the caller closes the device itself.
        """
        try:
            device = make()
        except Exception as exc:
            raise _error(exc, role, pin, parts) from exc
        if keep:
            self._devices.append(device)
        return device

    def probe(self, role: str, pin: int) -> None:
        """Claim ``pin`` alone and release it again: a :class:`GpioError` naming this pin if it
        is invalid or in use (here, or by another program under lgpio). A bare ``GPIODevice``
        only reserves the pin (as the input it already is), so an LED does not flicker."""
        from gpiozero import GPIODevice

        probe = self.claim(role, pin, lambda: GPIODevice(pin, pin_factory=self.factory), keep=False)
        probe.close()

    def button(self, role: str, pin: int, pull_up: bool) -> Any:
        """A gpiozero ``Button`` without gpiozero's debounce (it delays every edge)."""
        from gpiozero import Button

        return self.claim(
            role,
            pin,
            lambda: Button(pin, pull_up=pull_up, bounce_time=None, pin_factory=self.factory),
        )

    def led(self, role: str, pin: int, *, pwm: bool, active_high: bool) -> tuple[Any, bool]:
        """An LED (a PWMLED if ``pwm`` and the pin supports it); returns (device, is_pwm)."""
        from gpiozero import LED, PWMLED
        from gpiozero.exc import PinPWMUnsupported

        kw = {"active_high": active_high, "pin_factory": self.factory}
        if pwm:
            try:
                return self.claim(role, pin, lambda: PWMLED(pin, **kw)), True
            except GpioError as exc:
                if not isinstance(exc.__cause__, PinPWMUnsupported):
                    raise
                log.info("GPIO%d (%s): no PWM on this pin factory; plain on/off", pin, role)
        return self.claim(role, pin, lambda: LED(pin, **kw)), False

    def rgb_led(self, pins: list[int], *, pwm: bool, active_high: bool) -> tuple[Any, bool]:
        """An RGB LED on ``[r, g, b]``; returns (device, is_pwm). Each pin is probed alone
        first: RGBLED claims all three, and lgpio's "GPIO busy" does not say which one."""
        from gpiozero import RGBLED
        from gpiozero.exc import PinPWMUnsupported

        r, g, b = pins
        parts = {p: f"status LED, {c}" for p, c in zip(pins, RGB_COLOURS, strict=True)}
        for pin, role in parts.items():
            self.probe(role, pin)

        def make(with_pwm: bool) -> Any:
            return RGBLED(r, g, b, active_high=active_high, pwm=with_pwm, pin_factory=self.factory)

        try:
            return self.claim(parts[r], r, lambda: make(pwm), parts), pwm
        except GpioError as exc:
            if not (pwm and isinstance(exc.__cause__, PinPWMUnsupported)):
                raise
            log.info("status LED: no PWM on this pin factory; plain colours")
            return self.claim(parts[r], r, lambda: make(False), parts), False

    def release(self) -> None:
        """Every device off (patterns stopped) and closed, newest first: pins become inputs."""
        for device in reversed(self._devices):
            with contextlib.suppress(Exception):
                if getattr(device, "source", None) is not None:
                    device.source = None
                device.off()
            with contextlib.suppress(Exception):
                device.close()
        self._devices.clear()


def _error(exc: Exception, role: str, pin: int, parts: dict[int, str] | None) -> GpioError:
    from gpiozero.exc import GPIOPinInUse, PinInvalidPin

    text = str(exc)
    if parts:
        found = re.search(r"GPIO(\d+)|^(\d+) is not a valid", text)
        number = int(next(g for g in found.groups() if g)) if found else -1
        if number in parts:
            pin, role = number, parts[number]
    where = f"GPIO{pin} ({role})"
    if isinstance(exc, GPIOPinInUse):
        return GpioError(f"{where} is already in use: {text}")
    if isinstance(exc, PinInvalidPin):
        return GpioError(f"{where} is not a valid pin: {text}")
    if "busy" in text.lower():  # lgpio: another process holds the line
        return GpioError(f"{where} is already in use by another program: {text}")
    return GpioError(f"{where} could not be set up: {exc!r}")
