"""The appliance service: wiring only.

Every part is built in :class:`Appliance`'s constructor with its dependencies passed in (the
playback path is the session's sink; the command table gets the session and the health
object; the control socket gets the table). :meth:`Appliance.run` enters them in one
:class:`contextlib.AsyncExitStack`, so they stop in reverse order whatever happens::

    health         STOPPING=1 and the notify socket closed        (exited last)
    playback       the speaker, written on the loop from the PCM's poll descriptors
    earcons        session notices → cues on the speaker (with or without GPIO)
    control        the control socket (file removed on exit)
    usage          usage accounting, daily limits, idle disconnect (state file saved on exit)
    mqtt           the MQTT bridge when [mqtt] host is set (``offline`` published on exit)
    capture        the mic reader; each frame goes to session.send_audio
    session        closed with 1000 on exit
    gpio           buttons and LEDs; LEDs off and pins released first on exit
    wake           with [wake] model set: the wake word part, then the only mic path

and one :class:`asyncio.TaskGroup` holds the background loops: ``watchdog`` (WATCHDOG=1 while
capture and playback are alive), ``autoconnect`` and ``reload`` (SIGHUP: the config file is
read again and what is safe to change, the log level, is applied; a bad file is reported and
the running config kept). Missing hardware does not stop the service: an absent capture or
playback device is retried in the background and reported through :class:`Health`; without
usable GPIO the service runs on, driven through the control socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .audio.capture import AlsaCapture, AudioFault, CaptureConfig
from .audio.playback import AlsaPlayback, PlaybackConfig
from .commands import CommandTable
from .config import Config, load_config
from .control import ControlServer
from .credsource import make_provider
from .cues import Earcons
from .health import Health
from .mqtt.part import DeviceState, mqtt_part
from .realtime.errors import ConfigError, VoiceDeviceError
from .realtime.notices import ErrorNotice, MuteChanged, Notice, StatusChanged
from .sdnotify import Notifier
from .session import RealtimeSession
from .usage.part import UsagePart

if TYPE_CHECKING:
    from .audio.mixer import Volume
    from .gpio import Board
    from .wake.part import WakePart

log = logging.getLogger("device.app")


def capture_config(config: Config) -> CaptureConfig:
    a = config.audio
    return CaptureConfig(
        device=a.capture,
        rate=a.capture_rate or a.rate,
        fmt=a.format,
        channels=a.channels,
        period_ms=a.period_ms,
    )


def playback_config(config: Config) -> PlaybackConfig:
    a = config.audio
    return PlaybackConfig(
        device=a.playback,
        rate=a.playback_rate or a.rate,
        channels=a.playback_channels,
        period_ms=a.period_ms,
        start_threshold_ms=a.start_threshold_ms,
        max_buffer_ms=a.max_buffer_ms,
    )


class Appliance:
    """The running service: ``await Appliance(config).run(stop)`` until ``stop`` is set.

    ``pin_factory`` is handed to gpiozero (None: its default, ``GPIOZERO_PIN_FACTORY``).
    After :attr:`ready` is set, :attr:`controls` is the live GPIO part (None without GPIO).
    """

    def __init__(
        self,
        config: Config,
        *,
        pin_factory: Any = None,
        notifier: Notifier | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.pin_factory = pin_factory
        self.ready = asyncio.Event()
        self.playback = AlsaPlayback(
            playback_config(config), on_fault=lambda f: self._audio_fault("playback", f)
        )
        self.session = RealtimeSession(
            config.realtime_model(),
            config=config.session_config(),
            sink=self.playback,
            credential_provider=make_provider(config),
            auto_reconnect=config.behaviour.reconnect,
        )
        self.health = Health(notifier)
        self.capture = AlsaCapture(
            capture_config(config),
            on_fault=lambda f: self._audio_fault("capture", f),
            # With a wake word, the wake part is the only way from the mic to the session.
            on_frame=None if config.wake.enabled else self._on_frame,
        )
        self.commands = CommandTable(self.session, self.health)
        self.control = ControlServer(
            self.commands,
            config.control.socket,
            mode=config.socket_mode(),
            max_clients=config.control.max_clients,
        )
        # MQTT's retained state: the table's, plus what parts add (usage: mqtt_state.add(...)).
        self.mqtt_state = DeviceState(self.commands)
        self.earcons = Earcons(self.session, self.playback, config.behaviour.earcons)
        self.controls: Board | None = None
        self.volume: Volume | None = None
        self.wake = self._wake_part() if config.wake.enabled else None
        #: Idle disconnect, usage accounting and [limits] (issue 15); set while running.
        self.usage: UsagePart | None = None

    async def run(self, stop: asyncio.Event, reload: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` is set; each time ``reload`` is set, re-read the config."""
        config = self.config
        if config.behaviour.start_muted:
            self.session.mute()
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.health)
            self.playback.start()
            stack.callback(_quietly, "playback", self.playback.close)
            stack.callback(self.session.subscribe(self._on_notice))
            stack.enter_context(self.earcons)
            await stack.enter_async_context(self.control)
            self.usage = await stack.enter_async_context(self._usage_part())
            # MQTT (off without [mqtt] host): never waits for the broker.
            await stack.enter_async_context(mqtt_part(config.mqtt, self.commands, self.mqtt_state))
            self.capture.start()
            stack.push_async_callback(_within, "capture", self.capture.aclose(), 1.0)
            stack.push_async_callback(self._disconnect)
            stack.enter_context(self._gpio())
            if self.wake is not None:  # after gpio: the status LED hears WakeListening
                await stack.enter_async_context(self.wake)
            async with asyncio.TaskGroup() as tg:
                loops = [
                    tg.create_task(
                        self.health.watchdog_loop(self.capture.alive, self.playback.alive),
                        name="watchdog",
                    )
                ]
                if config.behaviour.autoconnect:
                    loops.append(tg.create_task(self._autoconnect(), name="autoconnect"))
                if reload is not None:
                    loops.append(tg.create_task(self._reload_loop(reload), name="reload"))
                self.health.ready()
                self.ready.set()
                log.info("ready: %s", self.health.status_text())
                await stop.wait()
                self.health.stopping()
                for task in loops:
                    task.cancel()
        log.info("stopped")

    def _usage_part(self) -> UsagePart:
        c = self.config
        return UsagePart(
            self.session, self.commands, c.limits, c.behaviour.idle(), state=self.mqtt_state
        )

    async def _disconnect(self) -> None:
        # Disconnect calls below would wait for a connect in flight; never past the deadline.
        await _within("session", self.session.disconnect(), 1.0)

    @contextlib.contextmanager
    def _gpio(self) -> Iterator[None]:
        """Buttons and LEDs; without usable GPIO the service runs on, said loudly."""
        try:
            self.controls = self._start_controls()
        except ConfigError:
            raise
        except Exception as exc:  # no GPIO chip, no pin factory, permission denied, ...
            message = f"GPIO unavailable, buttons and LEDs are off: {type(exc).__name__}: {exc}"
            log.error("%s (use the control socket, or fix GPIO and restart)", message)
            self.health.set_fault("gpio", message, code="gpio")
        try:
            yield
        finally:
            if self.controls is not None:  # LEDs off and GPIO released first
                _quietly("gpio", self.controls.close)
            if self.volume is not None:
                _quietly("volume", self.volume.close)

    def _start_controls(self) -> Board:
        from .gpio import Board, GpioConfig

        b = self.config.buttons
        if b.volume_up is not None or b.volume_down is not None:
            self.volume = self._open_volume()
        return Board(
            self.session,
            GpioConfig(buttons=self.config.buttons, leds=self.config.leds),
            asyncio.get_running_loop(),
            pin_factory=self.pin_factory,
            volume=self.volume,
            faults=self.health,  # the fault LED follows health
            on_action=self.usage.on_button if self.usage is not None else None,
            limit=self.usage.limit_shown if self.usage is not None else None,
        )

    def _open_volume(self) -> Volume | None:
        from .audio.mixer import Volume

        try:
            return Volume(self.config.audio.mixer)
        except VoiceDeviceError as exc:
            log.error("volume buttons disabled: %s", exc)
            return None

    def _wake_part(self) -> WakePart:
        from .wake.part import WakePart

        def notify(notice: Notice) -> None:
            if self.controls is not None:
                self.controls.on_notice(notice)

        return WakePart(
            self.config.wake,
            session=self.session,
            mic=self.capture,
            send=self._on_frame,
            publish=self.commands.publish,
            acknowledge=self.earcons.wake_heard,
            connect_failed=self.earcons.wake_connect_failed,
            notify=notify,
        )

    def _on_frame(self, frame: bytes) -> None:
        """Each 20 ms mic frame, on the event loop (dropped while muted or offline)."""
        if self.config.audio.half_duplex and self.playback.is_playing():
            return  # no echo cancellation: do not let the model hear itself
        self.session.send_audio(frame)

    async def _autoconnect(self) -> None:
        try:
            await self.session.connect()
        except VoiceDeviceError as exc:
            log.error("autoconnect failed: %s", exc)

    async def _reload_loop(self, reload: asyncio.Event) -> None:
        while True:
            await reload.wait()
            reload.clear()
            self.health.reloading()
            try:
                self.reload_config()
            except Exception:  # never let a reload kill the service
                log.exception("reload failed; keeping the running configuration")
            self.health.reloaded()

    def reload_config(self) -> None:
        """SIGHUP: re-read the config file; apply what is safe without a restart."""
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload: %s; keeping the running configuration", exc)
            return
        logging.getLogger().setLevel(new.behaviour.log_level.upper())
        if self.usage is not None:  # [limits] and the idle keys apply at once
            self.usage.reconfigure(new.limits, new.behaviour.idle())
        restart = [
            name
            for name in (
                *("model", "credential", "audio", "buttons", "leds", "control", "mqtt"),
                "wake",
            )
            if getattr(new, name) != getattr(self.config, name)
        ]
        if restart:
            log.warning("reload: [%s] changed; restart the service to apply", "], [".join(restart))
        # Said at warning level: an operator action, shown whatever the new log level is.
        log.warning("reload: configuration read again (log level %s)", new.behaviour.log_level)

    def _audio_fault(self, role: str, fault: AudioFault) -> None:
        # Keyed by role: capture and playback may both be "default" and fail apart.
        if fault.kind == "recovered":
            self.health.set_fault(role, None)
            log.info("%s device %s is back", role, fault.device)
        else:
            log.error("audio: %s", fault.message)
            self.health.set_fault(role, fault.message)

    def _on_notice(self, notice: Notice) -> None:
        match notice:
            case StatusChanged() | MuteChanged():
                self.health.follow(self.session.status.value, self.session.muted)
            case ErrorNotice(code, message):
                log.warning("%s: %s", code, message)
            case _:
                pass


def _quietly(name: str, close: Callable[[], object]) -> None:
    try:
        close()
    except Exception:
        log.exception("stopping %s failed", name)


async def _within(name: str, step: Awaitable[object], timeout: float) -> None:
    try:
        await asyncio.wait_for(step, timeout)
    except TimeoutError:
        log.warning("stopping %s took over %g s; going on", name, timeout)
    except Exception:
        log.exception("stopping %s failed", name)
