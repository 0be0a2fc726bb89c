"""Buttons and LEDs (gpiozero) in front of a :class:`~device.session.RealtimeSession`.

::

    controls = Controls(session, ControlsConfig(), asyncio.get_running_loop(), earcon_sink=speaker)
    ...
    controls.close()          # LEDs off, GPIO released, unsubscribed

Threads. gpiozero calls button callbacks in its own threads (the caller's thread for mock
pins). A callback only records the edge time (``time.perf_counter_ns``) and hands the edge to
the event loop with ``loop.call_soon_threadsafe``; debouncing, gestures and actions all run on
the loop, so the session keeps one owner. LED patterns are set from session notices, on the
loop, synchronously — an LED is never behind the state it shows.

Debounce. Buttons are created without gpiozero's ``bounce_time``: with lgpio that is a
stable-level filter, which reports every edge only after ``bounce_ms`` of quiet — every press
would act that much late. Instead, on the loop, the **first** edge of a button acts at once,
and further edges of that button within ``bounce_ms`` of an accepted edge are ignored
(lockout). An ignored edge may have been the real last one (a tap shorter than ``bounce_ms``:
the press is accepted, its release falls in the lockout), so when a lockout in which edges were
ignored ends, the button is read again; if it differs from the last accepted state, the missed
edge is delivered then, with the time of the ignored edge it stands for (a tap stays a short
press for the gesture logic). ``bounce_ms = 0``: no lockout, every change acts.

Buttons (BCM numbers, pull-up/active-low by default, ``bounce_ms`` debounce as above):

* **connect** — single press toggles: ``connect`` when disconnected/closed, ``disconnect`` when
  connecting/connected/reconnecting. Long press (held ≥ ``long_press_s``) runs
  ``connect_long`` (default ``forget``); a double press (second press within
  ``double_press_s`` of the first release) runs ``connect_double`` (default ``none``).
* **mute** — single press toggles mute; ``mute_long`` / ``mute_double`` as above.
* **talk** (``mode = "push_to_talk"`` only) — press: :meth:`RealtimeSession.begin_turn`
  (``response.cancel`` if a response runs, ``input_audio_buffer.clear``); release:
  :meth:`RealtimeSession.end_turn` (``input_audio_buffer.commit`` + ``response.create``).
  The session must run with turn detection off: :meth:`device.config.Config.session_config`
  does that in this mode (see also :func:`push_to_talk_config`); :class:`Controls` refuses a
  session that still has it on.
* **volume up/down** — ``volume.up()`` / ``volume.down()``; repeats while held.

When a single press acts. Latency matters, so it acts **on press** unless a gesture must be
told apart first:

* no long and no double action: on press;
* a long action, no double action: on release, if released before ``long_press_s``; the long
  action fires once ``long_press_s`` is reached while still held (the release then does nothing);
* a double action: ``double_press_s`` after the release, if no second press came; a second
  press within that window runs the double action at once (its release does nothing).

Status LED patterns (single LED; RGB in brackets):

=============== ===================================================== ==============
disconnected    off                                                   off
connecting      blink 2 Hz (0.25 s on / 0.25 s off)                   blue blink
connected       on                                                    green
reconnecting    blink 5 Hz (0.1 s on / 0.1 s off)                     amber blink
closed          double blink (0.1 on, 0.1 off, 0.1 on, 0.7 off)       red
=============== ===================================================== ==============

The mute LED is on exactly while ``session.muted``. The activity LED pulses (PWM) or blinks
while the model speaks. The optional fault LED is on exactly while ``session.faults`` is not
empty (a microphone or speaker missing or lost). Earcons (``earcons=True`` and an
``earcon_sink``): ``connect`` on connected, ``disconnect`` on disconnected after
connected/reconnecting, ``error`` on closed, ``mute``/``unmute`` on mute changes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import logging
import re
import statistics
import time
import typing
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from .config import Action, ButtonsSection, LedsSection
from .earcons import earcon
from .realtime.errors import ConfigError, VoiceDeviceError
from .realtime.events import SessionConfig
from .realtime.notices import FaultsChanged, MuteChanged, Notice, SpeakingChanged, StatusChanged
from .realtime.status import TransportStatus
from .session import RealtimeSession

log = logging.getLogger("device.controls")

#: Every action a gesture can be bound to (the config's ``Action`` values).
ACTIONS: tuple[str, ...] = typing.get_args(Action)
MODES = ("toggle", "push_to_talk")

#: Status LED timings in seconds.
CONNECTING_BLINK = (0.25, 0.25)
RECONNECTING_BLINK = (0.1, 0.1)
#: Closed: the LED value for each ``DOUBLE_BLINK_STEP`` (two flashes, then a pause; 1 s period).
DOUBLE_BLINK = (1, 0, 1, 0, 0, 0, 0, 0, 0, 0)
DOUBLE_BLINK_STEP = 0.1
#: Activity LED: pulse fade times (PWM) or blink times (plain LED).
ACTIVITY_PULSE = (0.4, 0.4)
ACTIVITY_BLINK = (0.2, 0.2)
#: Volume buttons repeat after being held this long, at this interval.
VOLUME_REPEAT_DELAY = 0.5
VOLUME_REPEAT_INTERVAL = 0.2

Color = tuple[float, float, float]
RGB_OFF: Color = (0.0, 0.0, 0.0)
RGB_CONNECTING: Color = (0.0, 0.0, 1.0)
RGB_CONNECTED: Color = (0.0, 1.0, 0.0)
RGB_RECONNECTING: Color = (1.0, 0.5, 0.0)  # amber; yellow without PWM
RGB_CLOSED: Color = (1.0, 0.0, 0.0)


class ControlsError(ConfigError):
    """A button or LED could not be set up (pin in use, invalid pin, bad action)."""


class VolumeControl(Protocol):
    """What the volume buttons drive (e.g. :class:`device.audio.mixer.Volume`)."""

    def up(self) -> object: ...

    def down(self) -> object: ...


class EarconSink(Protocol):
    """Where earcons are played (the playback path's ``play``)."""

    def play(self, item_id: str, pcm: bytes) -> None: ...


@dataclass(frozen=True)
class ControlsConfig:
    """The ``[buttons]`` and ``[leds]`` sections of the config (BCM pins, ``None`` = not
    fitted), plus whether earcons play and which ALSA mixer control the volume buttons drive."""

    buttons: ButtonsSection = field(default_factory=ButtonsSection)
    leds: LedsSection = field(default_factory=LedsSection)
    earcons: bool = True
    mixer: str = "PCM"

    def validate(self) -> None:
        """Raise :class:`ControlsError` for an unknown mode/action, bad timing or a pin clash."""
        b, led = self.buttons, self.leds
        if b.mode not in MODES:
            raise ControlsError(f"buttons.mode: expected one of {MODES}, got {b.mode!r}")
        if b.mode == "push_to_talk" and b.talk is None:
            raise ControlsError(
                "buttons.talk: push_to_talk mode needs a talk button pin, got None "
                "(without one the microphone could never stream)"
            )
        for key in ("connect_long", "connect_double", "mute_long", "mute_double"):
            value = getattr(b, key)
            if value not in ACTIONS:
                raise ControlsError(f"buttons.{key}: expected one of {ACTIONS}, got {value!r}")
        for key, value, ok, expected in (
            ("long_press_s", b.long_press_s, b.long_press_s > 0, "> 0"),
            ("double_press_s", b.double_press_s, b.double_press_s > 0, "> 0"),
            ("bounce_ms", b.bounce_ms, b.bounce_ms >= 0, ">= 0"),
        ):
            if not ok:
                raise ControlsError(f"buttons.{key}: expected {expected}, got {value!r}")
        if led.status_rgb is not None and len(led.status_rgb) != 3:
            raise ControlsError(f"leds.status_rgb: expected [r, g, b] pins, got {led.status_rgb!r}")
        seen: dict[int, tuple[str, str]] = {}
        for key, role, pin in self._pin_keys():
            if pin in seen:
                other_key, other_role = seen[pin]
                raise ControlsError(
                    f"GPIO{pin} is assigned to both the {other_role} and the {role} "
                    f"({other_key} = {pin}, {key} = {pin})"
                )
            seen[pin] = (key, role)

    def _pin_keys(self) -> list[tuple[str, str, int]]:
        """``(config key, role, pin)`` for every pin this configuration claims."""
        b, led = self.buttons, self.leds
        roles: list[tuple[str, str, int | None]] = [
            ("buttons.connect", "connect button", b.connect),
            ("buttons.mute", "mute button", b.mute),
            ("buttons.talk", "talk button", b.talk if b.mode == "push_to_talk" else None),
            ("buttons.volume_up", "volume up button", b.volume_up),
            ("buttons.volume_down", "volume down button", b.volume_down),
            ("leds.mute", "mute LED", led.mute),
            ("leds.activity", "activity LED", led.activity),
            ("leds.fault", "fault LED", led.fault),
        ]
        if led.status_rgb is not None:
            r, g, b_ = led.status_rgb
            roles += [
                ("leds.status_rgb[0]", "status LED, red", r),
                ("leds.status_rgb[1]", "status LED, green", g),
                ("leds.status_rgb[2]", "status LED, blue", b_),
            ]
        else:
            roles.append(("leds.status", "status LED", led.status))
        return [(key, role, pin) for key, role, pin in roles if pin is not None]


def push_to_talk_config(config: SessionConfig) -> SessionConfig:
    """``config`` with turn detection off, as push-to-talk needs (the button ends the turn)."""
    return dataclasses.replace(config, turn_detection=None)


@dataclass
class PressStats:
    """Edge → loop latency of button edges (nanoseconds), for benchmarks and ``status``.

    ``edges`` counts the edges acted on. An edge's time is when gpiozero reported the pin
    change; an edge delivered when a lockout ends (``deferred``) keeps the time of the ignored
    edge it stands for, so its latency includes that wait. ``ignored``: bounce edges dropped
    during a lockout.
    """

    edges: int = 0
    last_edge_ns: int = 0
    last_latency_ns: int = 0
    ignored: int = 0
    deferred: int = 0
    latencies_ns: collections.deque[int] = field(
        default_factory=lambda: collections.deque(maxlen=10000)
    )

    def record(self, edge_ns: int) -> None:
        latency = time.perf_counter_ns() - edge_ns
        self.edges += 1
        self.last_edge_ns = edge_ns
        self.last_latency_ns = latency
        self.latencies_ns.append(latency)

    def median_ms(self) -> float:
        return statistics.median(self.latencies_ns) / 1e6 if self.latencies_ns else 0.0

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile (0 to 100) in milliseconds (nearest rank)."""
        if not self.latencies_ns:
            return 0.0
        ordered = sorted(self.latencies_ns)
        rank = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] / 1e6


@dataclass(eq=False)
class _Debounce:
    """Lockout debounce state of one button; owned by the event loop (see the module docstring)."""

    device: Any  # the gpiozero Button, read again when a lockout ends
    pressed: bool  # the last accepted state
    until_ns: int = 0  # edges stamped before this fall in the lockout
    #: state → time of the latest edge into it ignored since the last accepted edge
    ignored: dict[bool, int] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None  # the end of the lockout, once an edge was ignored


class _Gesture:
    """Tells single, long and double presses of one button apart, on the event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        run: Callable[[str], None],
        single: str,
        long: str,
        double: str,
        long_s: float,
        double_s: float,
    ) -> None:
        self._loop = loop
        self._run = run
        self.single, self.long, self.double = single, long, double
        self._long_s, self._double_s = long_s, double_s
        self._pressed = False
        self._press_ns = 0
        self._done = False  # this press already ran its action (long or double)
        self._long_timer: asyncio.TimerHandle | None = None
        self._single_timer: asyncio.TimerHandle | None = None

    @property
    def immediate(self) -> bool:
        return self.long == "none" and self.double == "none"

    def press(self, edge_ns: int) -> None:
        if self._pressed:
            return
        self._pressed, self._press_ns, self._done = True, edge_ns, False
        if self._single_timer is not None:  # second press of a double press
            self._single_timer.cancel()
            self._single_timer = None
            self._done = True
            self._run(self.double)
            return
        if self.immediate:
            self._done = True
            self._run(self.single)
            return
        if self.long != "none":
            held_s = (time.perf_counter_ns() - edge_ns) / 1e9
            self._long_timer = self._loop.call_later(max(0.0, self._long_s - held_s), self._held)

    def release(self, edge_ns: int) -> None:
        if not self._pressed:
            return
        self._pressed = False
        self._cancel_long()
        if self._done:
            return
        if self.long != "none" and (edge_ns - self._press_ns) / 1e9 >= self._long_s:
            self._run(self.long)  # the loop was too busy to see the hold in time
        elif self.double != "none":
            self._single_timer = self._loop.call_later(self._double_s, self._single)
        else:
            self._run(self.single)

    def cancel(self) -> None:
        self._cancel_long()
        if self._single_timer is not None:
            self._single_timer.cancel()
            self._single_timer = None

    def _cancel_long(self) -> None:
        if self._long_timer is not None:
            self._long_timer.cancel()
            self._long_timer = None

    def _held(self) -> None:
        self._long_timer = None
        if self._pressed and not self._done:
            self._done = True
            self._run(self.long)

    def _single(self) -> None:
        self._single_timer = None
        self._run(self.single)


class Controls:
    """Buttons and LEDs wired to ``session``; see the module docstring for the behaviour.

    Construct it on the event loop thread (``loop`` is that loop). ``pin_factory`` defaults to
    gpiozero's (``GPIOZERO_PIN_FACTORY``); ``earcon_sink`` plays earcons; ``volume`` is driven
    by the volume buttons (their pins are claimed only when ``volume`` is given).
    Raises :class:`ControlsError` naming the pin and its role when a pin cannot be claimed.
    """

    def __init__(
        self,
        session: RealtimeSession,
        config: ControlsConfig,
        loop: asyncio.AbstractEventLoop,
        *,
        pin_factory: Any = None,
        earcon_sink: EarconSink | None = None,
        volume: VolumeControl | None = None,
    ) -> None:
        config.validate()
        if config.buttons.mode == "push_to_talk" and session.config.turn_detection is not None:
            raise ControlsError(
                "buttons.mode = push_to_talk needs the session without turn detection "
                "(use push_to_talk_config(); Config.session_config() does this)"
            )
        self.session = session
        self.config = config
        self.loop = loop
        self.stats = PressStats()
        self._factory = pin_factory
        self._earcons = earcon_sink if config.earcons else None
        self._volume = volume
        self._devices: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._connect_task: asyncio.Task[None] | None = None
        self._disconnect_task: asyncio.Task[None] | None = None
        self._ptt_task: asyncio.Task[None] | None = None
        self._repeat: dict[str, asyncio.TimerHandle] = {}
        self._closed = False
        self._status = session.status
        self._gestures: dict[str, _Gesture] = {}
        self._debounce: dict[str, _Debounce] = {}
        self._bounce_ns = config.buttons.bounce_ms * 1_000_000
        self.status_led: Any = None
        self.mute_led: Any = None
        self.activity_led: Any = None
        self.fault_led: Any = None
        self._rgb = config.leds.status_rgb is not None
        self._pwm_status = config.leds.pwm
        self._pwm_activity = config.leds.pwm
        try:
            self._setup_leds()
            self._setup_buttons()
        except BaseException:
            self._release_devices()
            raise
        self._unsubscribe = session.subscribe(self.on_notice)
        self._show_status(session.status)
        self._show_mute(session.muted)
        self._show_fault(bool(session.faults))

    # ------------------------------------------------------------------ public surface

    @property
    def last_press_latency_ns(self) -> int:
        """Edge → handled-on-the-loop latency of the latest button edge."""
        return self.stats.last_latency_ns

    def on_notice(self, notice: Notice) -> None:
        """Session listener: LEDs follow at once, earcons play."""
        if self._closed:
            return
        match notice:
            case StatusChanged(status):
                previous, self._status = self._status, status
                self._show_status(status)
                if status is not TransportStatus.CONNECTED:
                    self._show_activity(False)
                self._status_earcon(previous, status)
            case MuteChanged(muted):
                self._show_mute(muted)
                self._play("mute" if muted else "unmute")
            case SpeakingChanged(speaking):
                self._show_activity(speaking)
            case FaultsChanged(faults):
                self._show_fault(bool(faults))
            case _:
                pass

    def close(self) -> None:
        """All LEDs off, gesture timers and a button's pending connect cancelled, GPIO released.

        Call it on the loop thread. gpiozero releases the pins as inputs (undriven).
        """
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._unsubscribe()
        for gesture in self._gestures.values():
            gesture.cancel()
        for debounce in self._debounce.values():
            if debounce.timer is not None:
                debounce.timer.cancel()
                debounce.timer = None
        for handle in self._repeat.values():
            handle.cancel()
        self._repeat.clear()
        if self._connect_task is not None:  # a handshake a button started: abandon it
            self._connect_task.cancel()
        self._release_devices()

    # ------------------------------------------------------------------ setup

    def _claim(
        self,
        role: str,
        pin: int,
        make: Callable[[], Any],
        parts: dict[int, str] | None = None,
        *,
        keep: bool = True,
    ) -> Any:
        """``make()`` a gpiozero device; failures become :class:`ControlsError` naming the pin.

        ``parts`` (pin → role) names the culprit when one device claims several pins and the
        error names it (lgpio's ``GPIO busy`` does not: claim such pins one by one first, see
        :meth:`_probe`). ``keep=False``: the caller closes the device itself.
        """
        from gpiozero.exc import GPIOPinInUse, PinInvalidPin

        try:
            device = make()
        except Exception as exc:
            text = str(exc)
            if parts:
                found = re.search(r"GPIO(\d+)|^(\d+) is not a valid", text)
                number = int(next(g for g in found.groups() if g)) if found else -1
                if number in parts:
                    pin, role = number, parts[number]
            where = f"GPIO{pin} ({role})"
            if isinstance(exc, GPIOPinInUse):
                raise ControlsError(f"{where} is already in use: {text}") from exc
            if isinstance(exc, PinInvalidPin):
                raise ControlsError(f"{where} is not a valid pin: {text}") from exc
            if "busy" in text.lower():  # lgpio: another process holds the line
                raise ControlsError(
                    f"{where} is already in use by another program: {text}"
                ) from exc
            raise ControlsError(f"{where} could not be set up: {exc!r}") from exc
        if keep:
            self._devices.append(device)
        return device

    def _probe(self, role: str, pin: int) -> None:
        """Claim ``pin`` alone and release it again: a :class:`ControlsError` naming this pin if
        it is invalid or in use (here, or by another program under lgpio).

        A bare ``GPIODevice`` only reserves the pin and claims the line (as the input it
        already is), so the LED does not flicker.
        """
        from gpiozero import GPIODevice

        probe = self._claim(
            role, pin, lambda: GPIODevice(pin, pin_factory=self._factory), keep=False
        )
        probe.close()

    def _led(self, role: str, pin: int, pwm: bool) -> tuple[Any, bool]:
        """An LED (PWMLED if ``pwm`` and the pin supports it); returns (device, is_pwm)."""
        from gpiozero import LED, PWMLED
        from gpiozero.exc import PinPWMUnsupported

        kw = {"active_high": self.config.leds.active_high, "pin_factory": self._factory}
        if pwm:
            try:
                return self._claim(role, pin, lambda: PWMLED(pin, **kw)), True
            except ControlsError as exc:
                if not isinstance(exc.__cause__, PinPWMUnsupported):
                    raise
                log.info("GPIO%d (%s): no PWM on this pin factory; plain on/off", pin, role)
        return self._claim(role, pin, lambda: LED(pin, **kw)), False

    def _setup_leds(self) -> None:
        from gpiozero import RGBLED
        from gpiozero.exc import PinPWMUnsupported

        c = self.config.leds
        if c.status_rgb is not None:
            r, g, b = c.status_rgb

            def rgb(pwm: bool) -> Any:
                return RGBLED(
                    r, g, b, active_high=c.active_high, pwm=pwm, pin_factory=self._factory
                )

            parts = {r: "status LED, red", g: "status LED, green", b: "status LED, blue"}
            # One pin at a time first: RGBLED claims all three, and lgpio's "GPIO busy" does
            # not say which one another program holds.
            for pin, role in parts.items():
                self._probe(role, pin)
            try:
                self.status_led = self._claim(parts[r], r, lambda: rgb(c.pwm), parts)
            except ControlsError as exc:
                if not (c.pwm and isinstance(exc.__cause__, PinPWMUnsupported)):
                    raise
                log.info("status LED: no PWM on this pin factory; plain colours")
                self.status_led = self._claim(parts[r], r, lambda: rgb(False), parts)
                self._pwm_status = False
        elif c.status is not None:
            self.status_led, self._pwm_status = self._led("status LED", c.status, c.pwm)
        if c.mute is not None:
            self.mute_led, _ = self._led("mute LED", c.mute, False)
        if c.activity is not None:
            self.activity_led, self._pwm_activity = self._led("activity LED", c.activity, c.pwm)
        if c.fault is not None:
            self.fault_led, _ = self._led("fault LED", c.fault, False)

    def _button(self, role: str, pin: int, name: str) -> None:
        from gpiozero import Button

        c = self.config.buttons
        # No gpiozero/lgpio debounce (it delays every edge by bounce_ms): see _on_edge.
        button = self._claim(
            role,
            pin,
            lambda: Button(pin, pull_up=c.pull_up, bounce_time=None, pin_factory=self._factory),
        )
        self._debounce[name] = _Debounce(button, bool(button.is_pressed))
        button.when_pressed = lambda: self._post(name, True)
        button.when_released = lambda: self._post(name, False)

    def _setup_buttons(self) -> None:
        c = self.config.buttons
        for name, pin, single, long, double in (
            ("connect", c.connect, "toggle_connection", c.connect_long, c.connect_double),
            ("mute", c.mute, "toggle_mute", c.mute_long, c.mute_double),
        ):
            if pin is None:
                continue
            self._gestures[name] = _Gesture(
                self.loop, self._act, single, long, double, c.long_press_s, c.double_press_s
            )
            self._button(f"{name} button", pin, name)
        if c.mode == "push_to_talk" and c.talk is not None:
            self._button("talk button", c.talk, "talk")
        if self._volume is not None:
            if c.volume_up is not None:
                self._button("volume up button", c.volume_up, "volume_up")
            if c.volume_down is not None:
                self._button("volume down button", c.volume_down, "volume_down")
        elif c.volume_up is not None or c.volume_down is not None:
            log.warning("volume buttons configured but no mixer to drive: ignored")

    def _release_devices(self) -> None:
        for device in reversed(self._devices):
            with contextlib.suppress(Exception):
                if getattr(device, "source", None) is not None:
                    device.source = None
                device.off()
            with contextlib.suppress(Exception):
                device.close()
        self._devices.clear()

    # ------------------------------------------------------------------ edges → loop

    def _post(self, button: str, pressed: bool) -> None:
        """gpiozero thread: stamp the edge and hand it to the loop."""
        edge_ns = time.perf_counter_ns()
        if self._closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop is already closed (shutdown)
            self.loop.call_soon_threadsafe(self._on_edge, button, pressed, edge_ns)

    def _on_edge(self, button: str, pressed: bool, edge_ns: int) -> None:
        """Loop: debounce an edge stamped ``edge_ns``; the first edge after a lockout acts now."""
        if self._closed:
            return
        d = self._debounce.get(button)
        if d is None:
            return
        if edge_ns < d.until_ns:  # bounce (or a very short tap): look again when it ends
            d.ignored[pressed] = edge_ns
            self.stats.ignored += 1
            if d.timer is None:
                d.timer = self.loop.call_later(self._wait_s(d.until_ns), self._lockout_over, button)
            return
        if pressed != d.pressed:
            self._accept(button, d, pressed, edge_ns)

    def _lockout_over(self, button: str) -> None:
        """Loop: a lockout in which edges were ignored ended; deliver the edge it swallowed."""
        d = self._debounce[button]
        d.timer = None
        if self._closed:
            return
        now = time.perf_counter_ns()
        if now < d.until_ns:  # a later accepted edge started a new lockout
            d.timer = self.loop.call_later(self._wait_s(d.until_ns), self._lockout_over, button)
            return
        try:
            pressed = bool(d.device.is_pressed)
        except Exception:
            log.exception("could not read the %s button", button)
            return
        if pressed != d.pressed:
            self.stats.deferred += 1
            self._accept(button, d, pressed, d.ignored.get(pressed, now))

    @staticmethod
    def _wait_s(until_ns: int) -> float:
        return max(0.0, (until_ns - time.perf_counter_ns()) / 1e9)

    def _accept(self, button: str, d: _Debounce, pressed: bool, edge_ns: int) -> None:
        """Loop: act on an edge and start its lockout (measured from the edge)."""
        d.pressed = pressed
        d.until_ns = edge_ns + self._bounce_ns
        d.ignored.clear()
        gesture = self._gestures.get(button)
        if gesture is not None:
            if pressed:
                gesture.press(edge_ns)
            else:
                gesture.release(edge_ns)
        elif button == "talk":
            self._talk(pressed)
        elif button in ("volume_up", "volume_down"):
            self._volume_edge(button, pressed)
        self.stats.record(edge_ns)

    # ------------------------------------------------------------------ actions (loop)

    def _act(self, action: str) -> None:
        """Run a gesture action on the loop (async ones as tasks)."""
        s = self.session
        if action == "toggle_connection":
            action = "disconnect" if s.status.active else "connect"
        elif action == "toggle_mute":
            action = "unmute" if s.muted else "mute"
        log.debug("button action: %s", action)
        match action:
            case "mute":
                s.mute()
            case "unmute":
                s.unmute()
            case "connect":
                self._connect_task = self._spawn(self._connect())
            case "disconnect" | "forget":
                pending = self._connect_task
                if pending is not None and not pending.done():
                    pending.cancel()
                self._connect_task = None
                self._disconnect_task = self._spawn(self._disconnect(action == "forget", pending))
            case _:
                pass

    async def _connect(self) -> None:
        previous = self._disconnect_task
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        try:
            await self.session.connect()
        except VoiceDeviceError as exc:  # the session has reported it (ErrorNotice, closed)
            log.warning("connect failed: %s", exc)

    async def _disconnect(self, forget: bool, pending: asyncio.Task[None] | None) -> None:
        if pending is not None:
            await asyncio.wait([pending])
        await (self.session.forget() if forget else self.session.disconnect())

    def _talk(self, pressed: bool) -> None:
        previous = self._ptt_task

        async def turn() -> None:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])  # release never overtakes its press
            await (self.session.begin_turn() if pressed else self.session.end_turn())

        self._ptt_task = self._spawn(turn())

    def _volume_edge(self, button: str, pressed: bool) -> None:
        handle = self._repeat.pop(button, None)
        if handle is not None:
            handle.cancel()
        if not pressed or self._volume is None:
            return
        volume = self._volume
        step = volume.up if button == "volume_up" else volume.down

        def tick(delay: float) -> None:
            try:
                step()
            except Exception:
                log.exception("volume %s failed", button)
                return
            self._repeat[button] = self.loop.call_later(delay, tick, VOLUME_REPEAT_INTERVAL)

        tick(VOLUME_REPEAT_DELAY)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("button action failed", exc_info=task.exception())

    # ------------------------------------------------------------------ LEDs

    def _show_status(self, status: TransportStatus) -> None:
        led = self.status_led
        if led is None:
            return
        if led.source is not None:
            led.source = None
        if self._rgb:
            match status:
                case TransportStatus.CONNECTING:
                    on, off = CONNECTING_BLINK
                    led.blink(on_time=on, off_time=off, on_color=RGB_CONNECTING)
                case TransportStatus.CONNECTED:
                    led.color = RGB_CONNECTED
                case TransportStatus.RECONNECTING:
                    on, off = RECONNECTING_BLINK
                    color = RGB_RECONNECTING if self._pwm_status else (1.0, 1.0, 0.0)
                    led.blink(on_time=on, off_time=off, on_color=color)
                case TransportStatus.CLOSED:
                    led.color = RGB_CLOSED
                case _:
                    led.off()
            return
        match status:
            case TransportStatus.CONNECTING:
                led.blink(on_time=CONNECTING_BLINK[0], off_time=CONNECTING_BLINK[1])
            case TransportStatus.CONNECTED:
                led.on()
            case TransportStatus.RECONNECTING:
                led.blink(on_time=RECONNECTING_BLINK[0], off_time=RECONNECTING_BLINK[1])
            case TransportStatus.CLOSED:
                led.off()
                led.source_delay = DOUBLE_BLINK_STEP
                led.source = itertools.cycle(DOUBLE_BLINK)
            case _:
                led.off()

    def _show_fault(self, faulted: bool) -> None:
        if self.fault_led is not None:
            self.fault_led.value = 1 if faulted else 0

    def _show_mute(self, muted: bool) -> None:
        if self.mute_led is not None:
            if muted:
                self.mute_led.on()
            else:
                self.mute_led.off()

    def _show_activity(self, speaking: bool) -> None:
        led = self.activity_led
        if led is None:
            return
        if not speaking:
            led.off()
        elif self._pwm_activity:
            led.pulse(fade_in_time=ACTIVITY_PULSE[0], fade_out_time=ACTIVITY_PULSE[1])
        else:
            led.blink(on_time=ACTIVITY_BLINK[0], off_time=ACTIVITY_BLINK[1])

    # ------------------------------------------------------------------ earcons

    def _status_earcon(self, previous: TransportStatus, status: TransportStatus) -> None:
        if status is TransportStatus.CONNECTED:
            self._play("connect")
        elif status is TransportStatus.DISCONNECTED and previous in (
            TransportStatus.CONNECTED,
            TransportStatus.RECONNECTING,
        ):
            self._play("disconnect")
        elif status is TransportStatus.CLOSED:
            self._play("error")

    def _play(self, name: str) -> None:
        if self._earcons is None:
            return
        try:
            self._earcons.play("earcon", earcon(name))
        except Exception:
            log.exception("could not play the %s earcon", name)
