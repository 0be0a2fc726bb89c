"""The app-owned parts around the session: health (faults, STATUS=, watchdog), earcons played
by the app with or without GPIO, and the credential filter on the root log handler."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import pytest
from notify_listener import NotifyListener
from waiting import until

from device.audio.playback import AlsaPlayback, PlaybackConfig
from device.commands import CommandTable
from device.cues import Earcons
from device.health import Health
from device.realtime.models import OpenAIRealtimeModel
from device.realtime.notices import ErrorNotice, FaultsChanged, Notice
from device.redact import REDACT, install_on_root
from device.sdnotify import Notifier
from device.session import RealtimeSession


@pytest.fixture
def listener() -> Iterator[NotifyListener]:
    with NotifyListener() as lst:
        yield lst


def test_faults_are_published_once_and_shown_in_the_status_line(
    listener: NotifyListener,
) -> None:
    health = Health(Notifier(listener.env()))
    seen: list[Notice] = []
    health.subscribe(seen.append)
    health.follow("connected", True)
    health.set_fault("capture", "mic gone")
    health.set_fault("capture", "mic gone")  # a repeat is not news
    assert seen == [ErrorNotice("audio", "mic gone"), FaultsChanged((("capture", "mic gone"),))]
    assert health.faults == {"capture": "mic gone"}
    assert health.status_text() == "connected, muted; mic gone"
    listener.wait_for("STATUS", "connected, muted; mic gone", timeout=10)
    health.set_fault("capture", None)
    health.set_fault("capture", None)
    assert seen[2:] == [FaultsChanged(())]
    assert health.status_text() == "connected, muted"


def test_the_command_table_takes_faults_from_health_not_the_session() -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    health = Health()
    table = CommandTable(session, health)
    events: list[Notice] = []
    table.subscribe(events.append)
    health.set_fault("gpio", "GPIO unavailable", code="gpio")
    assert table.state()["faults"] == ["GPIO unavailable"]
    assert events == [
        ErrorNotice("gpio", "GPIO unavailable"),
        FaultsChanged((("gpio", "GPIO unavailable"),)),
    ]


async def test_the_fault_led_follows_health() -> None:
    from gpiozero.pins.mock import MockFactory

    from device.config import ButtonsSection, LedsSection
    from device.gpio import Board, GpioConfig

    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    health = Health()
    factory = MockFactory()
    config = GpioConfig(buttons=ButtonsSection(), leds=LedsSection(fault=5))
    health.set_fault("capture", "mic gone")  # raised before the board came up
    controls = Board(
        session, config, asyncio.get_running_loop(), pin_factory=factory, faults=health
    )
    try:
        assert factory.pin(5).state
        health.set_fault("capture", None)
        assert not factory.pin(5).state
        health.set_fault("playback", "speaker gone")
        assert factory.pin(5).state
        health.set_fault("playback", None)
        assert not factory.pin(5).state
    finally:
        controls.close()
        factory.reset()


async def test_earcons_play_on_the_speaker_without_any_gpio() -> None:
    playback = AlsaPlayback(PlaybackConfig(device="null", rate=48000))
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    playback.start()
    try:
        with Earcons(session, playback, enabled=True):
            assert not playback.is_playing()
            session.mute()
            await until(playback.is_playing, 2, "the mute earcon sounds")
        await until(lambda: not playback.is_playing(), 2, "the earcon ended")
        session.unmute()  # out of the `with`: unsubscribed, so silent
        await asyncio.sleep(0.1)
        assert not playback.is_playing()
    finally:
        playback.close()


async def test_earcons_can_be_switched_off() -> None:
    playback = AlsaPlayback(PlaybackConfig(device="null", rate=48000))
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    playback.start()
    try:
        with Earcons(session, playback, enabled=False):
            session.mute()
            await asyncio.sleep(0.2)
            assert not playback.is_playing()
    finally:
        playback.close()


def test_the_credential_filter_sits_on_the_root_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    REDACT.secrets.append("fake-root-SECRET-42")
    try:
        install_on_root()
        assert REDACT in handler.filters
        # any logger, not only websockets'
        logging.getLogger("device.something").error("key is %s", "fake-root-SECRET-42")
        logging.getLogger("third.party").error("url https://x/?k=fake-root-SECRET-42")
    finally:
        root.removeHandler(handler)
        REDACT.secrets.remove("fake-root-SECRET-42")
    text = stream.getvalue()
    assert "SECRET" not in text
    assert text.count("[redacted]") == 2
