"""The appliance service: wiring only.

One :class:`asyncio.TaskGroup` of named tasks owns everything::

    mic        ALSA capture → session.send_audio (dropped while muted / offline)
    control    the kiosk control socket
    watchdog   sd_notify WATCHDOG=1 while the loop and the audio threads are alive
    autoconnect  optional first connect

The session owns the state (status, mute); buttons, LEDs, the control socket, sd_notify STATUS
and logs all follow its notices. SIGTERM/SIGINT: close the websocket with 1000, stop audio,
LEDs off, GPIO released, ``STOPPING=1``, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audio.capture import AlsaCapture, CaptureConfig
from .audio.playback import AlsaPlayback, PlaybackConfig
from .config import Config, load_config
from .control import ControlServer
from .controls import Controls, ControlsConfig
from .credsource import make_provider
from .notify import Notifier
from .realtime.errors import ConfigError, VoiceDeviceError
from .realtime.notices import ErrorNotice, MuteChanged, Notice, StatusChanged
from .session import RealtimeSession

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


def controls_config(config: Config) -> ControlsConfig:
    b, led = config.buttons, config.leds
    return ControlsConfig(
        connect=b.connect,
        mute=b.mute,
        talk=b.talk,
        volume_up=b.volume_up,
        volume_down=b.volume_down,
        mode=b.mode,
        pull_up=b.pull_up,
        bounce_ms=b.bounce_ms,
        long_press_s=b.long_press_s,
        double_press_s=b.double_press_s,
        connect_long=b.connect_long,
        connect_double=b.connect_double,
        mute_long=b.mute_long,
        mute_double=b.mute_double,
        status=led.status,
        mute_led=led.mute,
        activity=led.activity,
        status_rgb=tuple(led.status_rgb) if led.status_rgb else None,
        active_high=led.active_high,
        pwm=led.pwm,
        earcons=config.behaviour.earcons,
    )


@dataclass
class Parts:
    session: RealtimeSession
    playback: AlsaPlayback
    capture: AlsaCapture
    controls: Controls
    control: ControlServer


class Appliance:
    """The running service. ``await Appliance(config).run(stop)`` until ``stop`` is set."""

    def __init__(self, config: Config, *, pin_factory: Any = None) -> None:
        self.config = config
        self.pin_factory = pin_factory
        self.notifier = Notifier()
        self.parts: Parts | None = None

    def _status_text(self, session: RealtimeSession) -> str:
        return f"{session.status.value}, {'muted' if session.muted else 'mic live'}"

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        playback = AlsaPlayback(playback_config(config))
        capture = AlsaCapture(capture_config(config), on_fault=lambda f: self._audio_fault(f))
        session = RealtimeSession(
            config.realtime_model(),
            config=config.session_config(),
            sink=playback,
            credential_provider=make_provider(config),
            auto_reconnect=config.behaviour.reconnect,
        )
        if config.behaviour.start_muted:
            session.mute()
        session.subscribe(self._on_notice)
        control = ControlServer(
            session,
            config.control.socket,
            mode=config.socket_mode(),
            max_clients=config.control.max_clients,
        )
        playback.start()
        controls: Controls | None = None
        try:
            controls = Controls(
                session,
                controls_config(config),
                loop,
                pin_factory=self.pin_factory,
                earcon_sink=playback if config.behaviour.earcons else None,
            )
            await control.start()
            self.parts = Parts(session, playback, capture, controls, control)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._mic(capture, session, playback), name="mic")
                tg.create_task(
                    self.notifier.watchdog_loop(lambda: capture.alive() and playback.alive()),
                    name="watchdog",
                )
                if config.behaviour.autoconnect:
                    tg.create_task(self._autoconnect(session), name="autoconnect")
                self.notifier.ready()
                self.notifier.status(self._status_text(session))
                log.info("ready: %s", self._status_text(session))
                await stop.wait()
                self.notifier.stopping()
                raise _Stop
        except* _Stop:
            pass
        finally:
            await self._shutdown(session, capture, playback, controls, control)

    async def _shutdown(
        self,
        session: RealtimeSession,
        capture: AlsaCapture,
        playback: AlsaPlayback,
        controls: Controls | None,
        control: ControlServer,
    ) -> None:
        self.notifier.stopping()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.disconnect(), 1.0)
        await control.close()
        if controls is not None:
            controls.close()
        with contextlib.suppress(Exception):
            await capture.aclose()
        playback.close()
        log.info("stopped")

    async def _mic(
        self, capture: AlsaCapture, session: RealtimeSession, playback: AlsaPlayback
    ) -> None:
        half_duplex = self.config.audio.half_duplex
        async for frame in capture.frames():
            if half_duplex and playback.is_playing():
                continue
            session.send_audio(frame)

    async def _autoconnect(self, session: RealtimeSession) -> None:
        try:
            await session.connect()
        except VoiceDeviceError as exc:
            log.error("autoconnect failed: %s", exc)

    def _audio_fault(self, fault: Any) -> None:
        message = str(getattr(fault, "message", fault))
        log.error("audio fault: %s", message)
        if self.parts is not None:
            self.parts.session.report_error("audio", message)

    def _on_notice(self, notice: Notice) -> None:
        match notice:
            case StatusChanged() | MuteChanged():
                if self.parts is not None:
                    self.notifier.status(self._status_text(self.parts.session))
            case ErrorNotice(code, message):
                log.warning("%s: %s", code, message)
            case _:
                pass


class _Stop(Exception):
    pass


def run_service(path: Path | None) -> int:
    """Entry point of ``voice-device run``: exit 0 on SIGTERM/SIGINT, 2 on a config error."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    logging.getLogger().setLevel(config.behaviour.log_level.upper())

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Appliance(config).run(stop)

    try:
        asyncio.run(main())
    except VoiceDeviceError as exc:
        log.error("%s", exc)
        return 1
    return 0
