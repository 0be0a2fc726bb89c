"""LEDs that follow notices: status, mute, activity and fault.

:class:`Lights` is a notice listener. It keeps what it has been told (transport status, wake
word listening, a daily limit) and sets the LEDs synchronously, so an LED is never behind the
state it shows. Which pattern the status LED shows is :func:`status_pattern`:

=============== ========================================================= ==============
pattern          single LED                                                RGB LED
=============== ========================================================= ==============
disconnected    off                                                       off
connecting      blink 2 Hz (0.25 s on / 0.25 s off)                       blue blink
connected       on                                                        green
reconnecting    blink 5 Hz (0.1 s on / 0.1 s off)                         amber blink
closed          double blink (0.1 on, 0.1 off, 0.1 on, 0.7 off)           red
listening       a short flash every 2 s (0.1 s on / 1.9 s off)            cyan flash
limit           slow blink (1 s on / 1 s off)                             magenta
=============== ========================================================= ==============

``listening``: a wake word model is set and the session is disconnected (``WakeListening``).
``limit``: a daily limit was reached (``LimitReached``) and the session is not active; it wins
over ``closed`` and ``disconnected``. The mute LED is on exactly while muted; the activity LED
pulses (PWM) or blinks while the model speaks; the fault LED is on while any fault lasts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from ..realtime.notices import (
    FaultsChanged,
    LimitReached,
    MuteChanged,
    Notice,
    SpeakingChanged,
    StatusChanged,
    WakeListening,
)
from ..realtime.status import TransportStatus

#: Status LED timings in seconds.
CONNECTING_BLINK = (0.25, 0.25)
RECONNECTING_BLINK = (0.1, 0.1)
LISTENING_FLASH = (0.1, 1.9)
LIMIT_BLINK = (1.0, 1.0)
#: Closed: the LED value for each ``DOUBLE_BLINK_STEP`` (two flashes, then a pause; 1 s period).
DOUBLE_BLINK = (1, 0, 1, 0, 0, 0, 0, 0, 0, 0)
DOUBLE_BLINK_STEP = 0.1
#: Activity LED: pulse fade times (PWM) or blink times (plain LED).
ACTIVITY_PULSE = (0.4, 0.4)
ACTIVITY_BLINK = (0.2, 0.2)

Color = tuple[float, float, float]
RGB_OFF: Color = (0.0, 0.0, 0.0)
RGB_CONNECTING: Color = (0.0, 0.0, 1.0)
RGB_CONNECTED: Color = (0.0, 1.0, 0.0)
RGB_RECONNECTING: Color = (1.0, 0.5, 0.0)  # amber; yellow without PWM
RGB_CLOSED: Color = (1.0, 0.0, 0.0)
RGB_LISTENING: Color = (0.0, 1.0, 1.0)
RGB_LIMIT: Color = (1.0, 0.0, 1.0)

LISTENING = "listening"
LIMIT = "limit"
#: Every pattern the status LED can show (hardware.md documents each one).
PATTERNS: tuple[str, ...] = (*(s.value for s in TransportStatus), LISTENING, LIMIT)


def status_pattern(status: TransportStatus, listening: bool, limit: str | None) -> str:
    """The status LED's pattern for this state (one of :data:`PATTERNS`)."""
    if limit is not None and not status.active:
        return LIMIT
    if listening and status is TransportStatus.DISCONNECTED:
        return LISTENING
    return status.value


@dataclass
class Leds:
    """The LED devices of a board (``None``: not fitted) and what they can do."""

    status: Any = None
    mute: Any = None
    activity: Any = None
    fault: Any = None
    rgb: bool = False  # status is an RGBLED
    status_pwm: bool = False
    activity_pwm: bool = False


class Lights:
    """Sets ``leds`` from notices; starts from the given state."""

    def __init__(
        self,
        leds: Leds,
        *,
        status: TransportStatus = TransportStatus.DISCONNECTED,
        muted: bool = False,
        faulted: bool = False,
        limit: str | None = None,
    ) -> None:
        self.leds = leds
        self.status = status
        self.listening = False
        self.limit = limit
        self.pattern = ""
        self._show_status()
        self._show_mute(muted)
        self._show_fault(faulted)

    def on_notice(self, notice: Notice) -> None:
        """Session listener: the LEDs follow at once."""
        match notice:
            case StatusChanged(status):
                self.status = status
                self._show_status()
                if status is not TransportStatus.CONNECTED:
                    self._show_activity(False)
            case WakeListening(listening):
                self.listening = listening
                self._show_status()
            case LimitReached(limit):
                self.limit = limit
                self._show_status()
            case MuteChanged(muted):
                self._show_mute(muted)
            case SpeakingChanged(speaking):
                self._show_activity(speaking)
            case FaultsChanged(faults):
                self._show_fault(bool(faults))
            case _:
                pass

    def _show_status(self) -> None:
        pattern = status_pattern(self.status, self.listening, self.limit)
        led = self.leds.status
        if led is None or pattern == self.pattern:
            return
        self.pattern = pattern
        if led.source is not None:
            led.source = None
        if self.leds.rgb:
            self._show_rgb(led, pattern)
        else:
            self._show_single(led, pattern)

    def _show_rgb(self, led: Any, pattern: str) -> None:
        match pattern:
            case "connecting":
                on, off = CONNECTING_BLINK
                led.blink(on_time=on, off_time=off, on_color=RGB_CONNECTING)
            case "connected":
                led.color = RGB_CONNECTED
            case "reconnecting":
                on, off = RECONNECTING_BLINK
                color = RGB_RECONNECTING if self.leds.status_pwm else (1.0, 1.0, 0.0)
                led.blink(on_time=on, off_time=off, on_color=color)
            case "closed":
                led.color = RGB_CLOSED
            case "listening":
                on, off = LISTENING_FLASH
                led.blink(on_time=on, off_time=off, on_color=RGB_LISTENING)
            case "limit":
                led.color = RGB_LIMIT
            case _:
                led.off()

    @staticmethod
    def _show_single(led: Any, pattern: str) -> None:
        blinks = {
            "connecting": CONNECTING_BLINK,
            "reconnecting": RECONNECTING_BLINK,
            "listening": LISTENING_FLASH,
            "limit": LIMIT_BLINK,
        }
        if pattern in blinks:
            on, off = blinks[pattern]
            led.blink(on_time=on, off_time=off)
        elif pattern == "connected":
            led.on()
        elif pattern == "closed":
            led.off()
            led.source_delay = DOUBLE_BLINK_STEP
            led.source = itertools.cycle(DOUBLE_BLINK)
        else:
            led.off()

    def _show_fault(self, faulted: bool) -> None:
        if self.leds.fault is not None:
            self.leds.fault.value = 1 if faulted else 0

    def _show_mute(self, muted: bool) -> None:
        led = self.leds.mute
        if led is not None:
            if muted:
                led.on()
            else:
                led.off()

    def _show_activity(self, speaking: bool) -> None:
        led = self.leds.activity
        if led is None:
            return
        if not speaking:
            led.off()
        elif self.leds.activity_pwm:
            led.pulse(fade_in_time=ACTIVITY_PULSE[0], fade_out_time=ACTIVITY_PULSE[1])
        else:
            led.blink(on_time=ACTIVITY_BLINK[0], off_time=ACTIVITY_BLINK[1])
