"""The wake part in one process: the real fan-out, a real session and the simulator. What the
service does around the gate: which listeners exist (muted: no 16 kHz listener at all), what
the status LED is told, and that live frames reach the model only through the part."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from creds import token_credential
from waiting import until

from device.audio.fanout import MicFanout
from device.devtools.simulator import Simulator
from device.realtime.models import OpenAIRealtimeModel
from device.realtime.notices import Notice, WakeListening
from device.session import RealtimeSession
from device.wake.config import WakeSection
from device.wake.part import WakePart

from .speech import espeak, silence, voiced_end

pytestmark = pytest.mark.simulator(reply_seconds=0.5)


async def credential() -> dict[str, Any]:
    return token_credential("test", minutes=10)


def frames24(audio16: np.ndarray) -> list[bytes]:
    import soxr

    a24 = np.asarray(soxr.resample(audio16, 16000, 24000), dtype=np.int16)
    return [a24[i : i + 480].tobytes() for i in range(0, len(a24) // 480 * 480, 480)]


async def test_muted_means_no_wake_listener_and_the_led_follows(sim: Simulator) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url=sim.url), credential_provider=credential)
    mic = MicFanout("test")
    told: list[Notice] = []
    events: list[dict[str, Any]] = []
    part = WakePart(
        WakeSection(model="okay_nabu"),
        session=session,
        mic=mic,
        send=session.send_audio,
        publish=events.append,
        notify=told.append,
    )
    async with part:
        assert mic.rates() == [16000, 24000] and told == [WakeListening(True)]
        session.mute()
        assert mic.rates() == [24000], "the microphone is analysed while muted"
        assert told[-1] == WakeListening(False)
        wake = espeak("okay nabu")
        said = np.concatenate([silence(0.5), wake[: round(voiced_end(wake) * 16000)], silence(1)])
        mic.deliver(frames24(said))
        assert events == [] and sim.connections == 0
        session.unmute()
        assert mic.rates() == [16000, 24000] and told[-1] == WakeListening(True)
        mic.deliver(frames24(said))
        assert events == [{"event": "wake", "model": "okay_nabu"}]
        await until(lambda: session.status.value == "connected", 5, "connected")
        assert told[-3:] == [WakeListening(False), WakeListening(True), WakeListening(False)]
        mic.deliver(frames24(silence(0.1)))
        await sim.wait_for("input_audio_buffer.append")
        await session.disconnect()
        assert told[-1] == WakeListening(True)
    assert told[-1] == WakeListening(False) and len(mic) == 0
