"""The appliance service: wiring only.

Capture reads the mic on the event loop and hands each frame straight to
``session.send_audio`` (dropped while muted / offline); one :class:`asyncio.TaskGroup` of named
tasks owns the rest::

    watchdog      sd_notify WATCHDOG=1 while the loop, capture and the playback thread are alive
    autoconnect   the optional first connect

The session owns the state (status, mute); buttons, LEDs, the control socket, sd_notify
``STATUS=`` and the logs all follow its notices. Missing hardware does not stop the service:
a capture or playback device that is absent is retried in the background (and reported), and
without usable GPIO the service runs on, driven through the control socket. SIGTERM/SIGINT:
close the websocket with 1000, stop audio, LEDs off, GPIO released, ``STOPPING=1``, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

from .audio.capture import AlsaCapture, AudioFault, CaptureConfig
from .audio.playback import AlsaPlayback, PlaybackConfig
from .config import Config, load_config
from .control import ControlServer
from .credsource import make_provider
from .notify import Notifier, status_text
from .realtime.errors import ConfigError, VoiceDeviceError
from .realtime.notices import ErrorNotice, MuteChanged, Notice, StatusChanged
from .session import RealtimeSession

log = logging.getLogger("device.app")

#: Exit status for a config error; the unit's ``RestartPreventExitStatus=`` matches it.
EXIT_CONFIG = 2


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


def controls_config(config: Config) -> Any:
    from .controls import ControlsConfig

    return ControlsConfig(
        buttons=config.buttons,
        leds=config.leds,
        earcons=config.behaviour.earcons,
        mixer=config.audio.mixer,
    )


class Appliance:
    """The running service: ``await Appliance(config).run(stop)`` until ``stop`` is set.

    ``pin_factory`` is handed to gpiozero (None: its default, ``GPIOZERO_PIN_FACTORY``).
    After :attr:`ready` is set, :attr:`session`, :attr:`capture`, :attr:`playback` and
    :attr:`controls` (None without GPIO) are the live parts.
    """

    def __init__(self, config: Config, *, pin_factory: Any = None) -> None:
        self.config = config
        self.pin_factory = pin_factory
        self.notifier = Notifier()
        self.ready = asyncio.Event()
        self.session = RealtimeSession(
            config.realtime_model(),
            config=config.session_config(),
            credential_provider=make_provider(config),
            auto_reconnect=config.behaviour.reconnect,
        )
        self.playback = AlsaPlayback(
            playback_config(config), on_fault=lambda f: self._audio_fault("playback", f)
        )
        self.capture = AlsaCapture(
            capture_config(config),
            on_fault=lambda f: self._audio_fault("capture", f),
            on_frame=self._on_frame,
        )
        self._half_duplex = config.audio.half_duplex
        self.session.sink = self.playback
        self.controls: Any = None
        self.volume: Any = None

    async def run(self, stop: asyncio.Event) -> None:
        config, session = self.config, self.session
        loop = asyncio.get_running_loop()
        if config.behaviour.start_muted:
            session.mute()
        session.subscribe(self._on_notice)
        control = ControlServer(
            session,
            config.control.socket,
            mode=config.socket_mode(),
            max_clients=config.control.max_clients,
        )
        self.playback.start()
        try:
            self.controls = self._start_controls(loop)
            await control.start()
            self.capture.start()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.notifier.watchdog_loop(self._healthy), name="watchdog")
                if config.behaviour.autoconnect:
                    tg.create_task(self._autoconnect(), name="autoconnect")
                self.notifier.ready(self._status_text())
                self.ready.set()
                log.info("ready: %s", self._status_text())
                await stop.wait()
                self.notifier.stopping()
                raise _Stop
        except* _Stop:
            pass
        finally:
            await self._shutdown(control)

    def _start_controls(self, loop: asyncio.AbstractEventLoop) -> Any:
        """Buttons and LEDs; without usable GPIO the service runs on, said loudly."""
        b = self.config.buttons
        try:
            from .controls import Controls

            if b.volume_up is not None or b.volume_down is not None:
                self.volume = self._open_volume()
            return Controls(
                self.session,
                controls_config(self.config),
                loop,
                pin_factory=self.pin_factory,
                earcon_sink=self.playback if self.config.behaviour.earcons else None,
                volume=self.volume,
            )
        except ConfigError:
            raise
        except Exception as exc:  # no GPIO chip, no pin factory, permission denied, ...
            message = f"GPIO unavailable, buttons and LEDs are off: {type(exc).__name__}: {exc}"
            log.error("%s (use the control socket, or fix GPIO and restart)", message)
            self.session.set_fault("gpio", message, code="gpio")
            return None

    def _open_volume(self) -> Any:
        from .audio.mixer import Volume

        try:
            return Volume(self.config.audio.mixer)
        except VoiceDeviceError as exc:
            log.error("volume buttons disabled: %s", exc)
            return None

    async def _shutdown(self, control: ControlServer) -> None:
        self.notifier.stopping()
        if self.controls is not None:  # LEDs off and GPIO released first, whatever follows
            with contextlib.suppress(Exception):
                self.controls.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.session.disconnect(), 1.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(control.close(), 1.5)
        if self.volume is not None:
            with contextlib.suppress(Exception):
                self.volume.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.capture.aclose(), 1.0)
        with contextlib.suppress(Exception):
            self.playback.close()
        self.notifier.close()
        log.info("stopped")

    def _on_frame(self, frame: bytes) -> None:
        """Each 20 ms mic frame, on the event loop (dropped while muted or offline)."""
        if self._half_duplex and self.playback.is_playing():
            return  # no echo cancellation: do not let the model hear itself
        self.session.send_audio(frame)

    async def _autoconnect(self) -> None:
        try:
            await self.session.connect()
        except VoiceDeviceError as exc:
            log.error("autoconnect failed: %s", exc)

    def _healthy(self) -> bool:
        return self.capture.alive() and self.playback.alive()

    def _status_text(self) -> str:
        text = status_text(self.session.status.value, self.session.muted)
        return "; ".join([text, *self.session.faults.values()])

    def _audio_fault(self, role: str, fault: AudioFault) -> None:
        # Keyed by role: capture and playback may both be "default" and fail apart.
        if fault.kind == "recovered":
            self.session.set_fault(role, None)
            log.info("%s device %s is back", role, fault.device)
        else:
            log.error("audio: %s", fault.message)
            self.session.set_fault(role, fault.message)
        self.notifier.status(self._status_text())

    def _on_notice(self, notice: Notice) -> None:
        match notice:
            case StatusChanged() | MuteChanged():
                self.notifier.status(self._status_text())
            case ErrorNotice(code, message):
                log.warning("%s: %s", code, message)
            case _:
                pass


class _Stop(Exception):
    pass


def _run(coro: Any) -> None:
    """Run on uvloop when it is installed (a leaner event loop: less CPU per audio frame on a
    Pi), else on asyncio's own."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)


def run_service(path: Path | None) -> int:
    """``voice-device run``: 0 after SIGTERM/SIGINT, 2 on a config error, 1 on a crash."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    logging.getLogger().setLevel(config.behaviour.log_level.upper())
    for warning in config.warnings():
        log.warning("%s", warning)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Appliance(config).run(stop)

    try:
        _run(main())
    except ConfigError as exc:  # e.g. a GPIO pin taken by another program
        log.error("%s", exc)
        return EXIT_CONFIG
    return 0
