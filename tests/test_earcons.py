"""Earcons: format, length, no clicks, and the pitch contour each one promises."""

from __future__ import annotations

import numpy as np
import pytest

from device.earcons import (
    FADE_MS,
    LEVEL,
    MAX_MS,
    SHAPES,
    EarconPolicy,
    duration_ms,
    earcon,
    status_earcon,
    tone,
)
from device.realtime.notices import (
    LimitReached,
    MuteChanged,
    Notice,
    SpeakingChanged,
    StatusChanged,
    WakeListening,
)
from device.realtime.pcm import RATE
from device.realtime.status import TransportStatus

NAMES = ("connect", "disconnect", "mute", "unmute", "error")


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=1 << 16))
    return float(np.fft.rfftfreq(1 << 16, 1 / RATE)[int(np.argmax(spectrum))])


def test_every_shape_is_an_earcon() -> None:
    assert set(SHAPES) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_format_and_length(name: str) -> None:
    pcm = earcon(name)
    assert isinstance(pcm, bytes) and len(pcm) % 2 == 0
    assert 50 <= duration_ms(pcm) <= MAX_MS
    x = samples(pcm)
    peak = np.max(np.abs(x))
    assert 0.8 * LEVEL * 32767 <= peak <= LEVEL * 32767 + 1  # audible, far from clipping


@pytest.mark.parametrize("name", NAMES)
def test_fades_in_and_out_without_clicks(name: str) -> None:
    x = samples(earcon(name))
    assert abs(x[0]) <= 1 and abs(x[-1]) <= 400  # starts at silence, ends next to it
    fade = int(RATE * FADE_MS / 1000)
    assert np.max(np.abs(x[: fade // 4])) < 0.2 * LEVEL * 32767
    assert np.max(np.abs(x[-fade // 4 :])) < 0.2 * LEVEL * 32767
    # no sample-to-sample jump larger than the steepest sine in it can make
    top = max(f for f, _ in SHAPES[name])
    steepest = 2 * np.pi * top / RATE * LEVEL * 32767
    assert np.max(np.abs(np.diff(x))) <= 1.05 * steepest + 2


def test_connect_rises_and_disconnect_falls() -> None:
    for name, rising in (("connect", True), ("disconnect", False)):
        x = samples(earcon(name))
        first = dominant_hz(x[: len(x) * 2 // 5])
        last = dominant_hz(x[-len(x) * 2 // 5 :])
        assert (last > first * 1.2) if rising else (first > last * 1.2), (name, first, last)


def test_mute_is_low_and_unmute_is_high() -> None:
    mute = dominant_hz(samples(earcon("mute")))
    unmute = dominant_hz(samples(earcon("unmute")))
    assert mute == pytest.approx(440, abs=10)
    assert unmute == pytest.approx(880, abs=10)


def test_error_is_two_beeps_with_a_gap() -> None:
    x = np.abs(samples(earcon("error")))
    frames = x[: len(x) // 120 * 120].reshape(-1, 120).max(axis=1)  # 5 ms frames
    loud = frames > 0.5 * LEVEL * 32767
    onsets = int(np.sum(loud[1:] & ~loud[:-1])) + int(loud[0])
    assert onsets == 2
    assert np.sum(frames < 10) >= 6  # ≥ 30 ms of silence between them


def test_earcons_are_distinct_and_cached() -> None:
    assert len({earcon(n) for n in NAMES}) == len(NAMES)
    assert earcon("mute") is earcon("mute")
    with pytest.raises(KeyError):
        earcon("fanfare")


def test_tone_edge_cases() -> None:
    assert tone(0, 10).tolist() == [0.0] * 240
    assert len(tone(440, 0)) == 0
    short = tone(1000, 1)  # shorter than two fades: still starts and ends at zero
    assert short[0] == 0 and abs(short[-1]) < 0.1


# ---------------------------------------------------------------------------------- policy


def test_policy_names_the_earcon_for_each_notice() -> None:
    policy = EarconPolicy()
    D, C, R, X = (
        TransportStatus.DISCONNECTED,
        TransportStatus.CONNECTED,
        TransportStatus.RECONNECTING,
        TransportStatus.CLOSED,
    )
    notices: list[Notice] = [
        StatusChanged(TransportStatus.CONNECTING),
        StatusChanged(C),
        MuteChanged(True),
        MuteChanged(False),
        SpeakingChanged(True),
        StatusChanged(D),
        StatusChanged(TransportStatus.CONNECTING),
        StatusChanged(D),  # a connect abandoned: no disconnect earcon, nothing was connected
        StatusChanged(TransportStatus.CONNECTING),
        StatusChanged(C),
        StatusChanged(R),
        StatusChanged(D),  # given up while reconnecting: disconnect
        StatusChanged(X),
        WakeListening(True),
        LimitReached("daily_connected_minutes"),
    ]
    cues = [policy.cue(n) for n in notices]
    assert cues == [
        None,
        "connect",
        "mute",
        "unmute",
        None,
        "disconnect",
        None,
        None,
        None,
        "connect",
        None,
        "disconnect",
        "error",
        None,
        None,
    ]
    assert {c for c in cues if c is not None} == set(SHAPES)  # every earcon, each one playable


def test_disabled_policy_names_nothing_but_keeps_track() -> None:
    policy = EarconPolicy(enabled=False)
    assert policy.cue(StatusChanged(TransportStatus.CONNECTED)) is None
    assert policy.cue(MuteChanged(True)) is None
    assert policy.status is TransportStatus.CONNECTED
    policy.enabled = True
    assert policy.cue(StatusChanged(TransportStatus.DISCONNECTED)) == "disconnect"


def test_policy_starts_from_the_status_it_is_given() -> None:
    policy = EarconPolicy(status=TransportStatus.CONNECTED)
    assert policy.cue(StatusChanged(TransportStatus.DISCONNECTED)) == "disconnect"
    assert status_earcon(TransportStatus.CONNECTING, TransportStatus.DISCONNECTED) is None


def test_a_wake_word_connect_sounds_one_connect_cue_not_two() -> None:
    policy = EarconPolicy()
    C, K, X = TransportStatus.CONNECTING, TransportStatus.CONNECTED, TransportStatus.CLOSED
    # Heard: the cue at once; the connect it starts succeeds without a second one.
    assert policy.wake_heard() == "connect"
    assert [policy.cue(StatusChanged(s)) for s in (C, K)] == [None, None]
    assert policy.cue(StatusChanged(TransportStatus.DISCONNECTED)) == "disconnect"
    # Heard, and the connect fails: the error cue still sounds.
    assert policy.wake_heard() == "connect"
    assert [policy.cue(StatusChanged(s)) for s in (C, X)] == [None, "error"]
    # A later button connect has its own cue again.
    assert [policy.cue(StatusChanged(s)) for s in (C, K)] == [None, "connect"]
    assert EarconPolicy(enabled=False).wake_heard() is None


def test_a_refused_wake_word_connect_leaves_the_next_connect_its_own_cue() -> None:
    # The daily limit closed the session; a wake word's connect is then refused without any
    # status change, so no StatusChanged ends the wake word's claim on the connect cue.
    policy = EarconPolicy(status=TransportStatus.CLOSED)
    C, K = TransportStatus.CONNECTING, TransportStatus.CONNECTED
    assert policy.wake_heard() == "connect"
    policy.wake_connect_failed()
    # After midnight, a button connect: its connect cue sounds.
    assert [policy.cue(StatusChanged(s)) for s in (C, K)] == [None, "connect"]
