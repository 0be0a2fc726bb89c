"""Idle disconnect policy: fires after idle_disconnect_s with nothing happening, never while the
user speaks or the model talks."""

from __future__ import annotations

from device.usage import IdleTimer


def test_idle_after_the_configured_time_with_nothing_happening() -> None:
    idle = IdleTimer(60)
    idle.start(now=100.0)
    assert idle.deadline == 160.0
    assert not idle.expired(159.9)
    assert idle.expired(160.0)


def test_speech_model_activity_and_commands_restart_the_countdown() -> None:
    idle = IdleTimer(60)
    idle.start(now=0.0)
    idle.user_speaking(True, now=50.0)
    assert idle.deadline is None and not idle.expired(10_000.0)  # never while the user speaks
    idle.user_speaking(False, now=70.0)
    assert idle.deadline == 130.0
    idle.model_talking(True, now=80.0)
    assert idle.deadline is None and not idle.expired(10_000.0)  # never while the model talks
    idle.model_talking(False, now=200.0)  # its audio finished playing
    assert idle.deadline == 260.0
    idle.activity(now=250.0)  # a command
    assert not idle.expired(260.0) and idle.expired(310.0)


def test_speaking_and_talking_overlap() -> None:
    idle = IdleTimer(10)
    idle.start(now=0.0)
    idle.model_talking(True, now=1.0)
    idle.user_speaking(True, now=2.0)  # barge-in
    idle.model_talking(False, now=3.0)
    assert idle.deadline is None  # the user is still speaking
    idle.user_speaking(False, now=4.0)
    assert idle.deadline == 14.0


def test_off_when_zero_and_when_disconnected() -> None:
    off = IdleTimer(0)
    off.start(now=0.0)
    assert off.deadline is None and not off.expired(1e9)
    idle = IdleTimer(30)
    assert idle.deadline is None  # not connected yet
    idle.start(now=0.0)
    idle.stop()
    assert idle.deadline is None and not idle.expired(1e9)
    idle.model_talking(True, now=5.0)
    idle.start(now=100.0)  # a new connection starts with nobody talking
    assert idle.deadline == 130.0
