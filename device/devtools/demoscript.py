"""The script ``voice-device demo`` follows, against a running appliance.

Connect by button, ask a question, mute and speak (nothing may leave), ask from the "kiosk"
over the control socket, talk over the reply (barge-in), disconnect by button. Each step says
what happened on the demo's timeline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import (
    AudioSection,
    BehaviourSection,
    Config,
    ControlSection,
    CredentialSection,
    ModelSection,
)
from ..control import request
from ..realtime.notices import (
    ErrorNotice,
    MuteChanged,
    Notice,
    SpeakingChanged,
    StatusChanged,
    TranscriptNotice,
)
from .simulator import Simulator

if TYPE_CHECKING:
    from ..app import Appliance
    from .demo import LedWatch
    from .pulse import PrivatePulse

KEY_ENV = "VOICE_DEVICE_DEMO_KEY"
#: The private PulseAudio's rate (the virtual mic and speaker).
PULSE_RATE = 48000
KIOSK_TEXT = "Tell me about this exhibit, please."


async def until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` every 20 ms; False if it is still false after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def demo_config(sim: Simulator, socket: Path, capture: str | None, playback: str | None) -> Config:
    """The service's configuration: the simulator, a key from the environment, the audio."""
    os.environ[KEY_ENV] = "demo-key"  # the simulator accepts any key
    return dataclasses.replace(
        Config(),
        model=ModelSection(url=sim.url),
        credential=CredentialSection(source="env", env=KEY_ENV),
        audio=AudioSection(
            capture=capture or "pulse_capture", playback=playback or "pulse_playback", rate=48000
        ),
        control=ControlSection(socket=str(socket)),
        behaviour=BehaviourSection(earcons=True),
    )


def describe(notice: Notice) -> tuple[str, str] | None:
    """A timeline line for a session notice (None: not shown)."""
    match notice:
        case StatusChanged(status):
            return "status", status.value
        case MuteChanged(muted):
            return "mute", "muted" if muted else "mic live"
        case TranscriptNotice(role, text):
            return role, repr(text)
        case SpeakingChanged(speaking):
            return "speaker", "model speaking" if speaking else "model quiet"
        case ErrorNotice(code, message):
            return "error", f"{code}: {message}"
    return None


@dataclasses.dataclass
class Script:
    """Drives ``appliance`` through the demo; speech is played into the virtual microphone,
    or asked of the person in front of real devices."""

    appliance: Appliance
    sim: Simulator
    factory: Any
    leds: LedWatch
    say: Callable[[str, str], None]
    socket: Path
    pulse: PrivatePulse | None  # None: real devices, a person speaks
    speech: Path  # raw 48 kHz mono for the virtual microphone
    speech_name: str = "speech"

    def __post_init__(self) -> None:
        self.config = self.appliance.config
        self.session = self.appliance.session
        self.playback = self.appliance.playback
        self.mark = 0  # sim.sent index where the current step began
        self.session.subscribe(self._on_notice)
        self.sim.on_receive = self._on_wire

    async def run(self) -> int:
        await asyncio.wait_for(self.appliance.ready.wait(), 20)
        self.say("service", "ready (audio, GPIO and control socket up)")
        await self.look(0.3)
        await self.connect_and_ask()
        await self.speak_while_muted()
        await self.kiosk_and_barge_in()
        await self.press("connect", self.config.buttons.connect)
        await self._until(lambda: self.session.status == "disconnected", 10)
        await self.look()
        failures = [
            e for e in self.sim.errors_sent if e.get("code") != "response_cancel_not_active"
        ]
        if failures:
            self.say("error", f"the simulator refused {len(failures)} event(s): {failures}")
            return 1
        return 0

    async def connect_and_ask(self) -> None:
        self.mark = len(self.sim.sent)
        await self.press("connect", self.config.buttons.connect)
        await self._until(lambda: self.session.status == "connected", 10)
        await self.look()
        done = self.replies_done()
        self.mark = len(self.sim.sent)
        await self.speak("ask a question")
        await self._until(lambda: self.replies_done() > done, 20)
        await self._until(lambda: not self.playback.is_playing(), 15)
        await self.look(0.2)

    async def speak_while_muted(self) -> None:
        await self.press("mute", self.config.buttons.mute)
        appends = self.appends()
        self.mark = len(self.sim.sent)
        await self.speak("speak while muted")
        await asyncio.sleep(1.0)
        self.say("check", f"audio frames sent while muted: {self.appends() - appends}")
        await self.look(0.1)
        await self.press("mute", self.config.buttons.mute)
        await self.look(0.3)

    async def kiosk_and_barge_in(self) -> None:
        self.say("kiosk", f"control socket: send_message {KIOSK_TEXT!r}")
        message = {"cmd": "send_message", "text": KIOSK_TEXT}
        reply = await asyncio.to_thread(request, self.socket, message, 5.0)
        self.say("kiosk", f"reply {reply}")
        await self._until(self.playback.is_playing, 10)
        await asyncio.sleep(1.5)
        self.mark = len(self.sim.sent)
        done = self.replies_done()
        await self.speak("talk over the reply")
        await self._until(lambda: self.replies_done() > done + 1, 20)
        await self._until(lambda: not self.playback.is_playing(), 15)

    # ------------------------------------------------------------------ helpers

    def heard_speech(self) -> bool:
        """The model's VAD heard speech since the current step began."""
        sent = self.sim.sent[self.mark :]
        return any(e["type"] == "input_audio_buffer.speech_started" for e in sent)

    def replies_done(self) -> int:
        return sum(1 for e in self.sim.sent if e["type"] == "response.done")

    def appends(self) -> int:
        return sum(1 for e in self.sim.received if e["type"] == "input_audio_buffer.append")

    async def look(self, settle: float = 1.2) -> None:
        await asyncio.sleep(settle)
        self.say("leds", self.leds.look())

    async def press(self, name: str, pin: int | None) -> None:
        assert pin is not None
        self.say("button", f"press {name} (GPIO{pin})")
        self.factory.pin(pin).drive_low()
        await asyncio.sleep(0.08)
        self.factory.pin(pin).drive_high()

    async def speak(self, what: str) -> None:
        if self.pulse is None:
            self.say("you", f"please {what} now (10 s)")
            await self._until(self.heard_speech, 10)
            return
        self.say("mic", f"{what}: {self.speech_name} played into the virtual microphone")
        proc = await asyncio.create_subprocess_exec(
            "pacat",
            "--playback",
            "--device=cap",
            "--raw",
            "--format=s16le",
            f"--rate={PULSE_RATE}",
            "--channels=1",
            str(self.speech),
            env=self.pulse.pa_env(),
        )
        await asyncio.wait_for(proc.wait(), 30)

    @staticmethod
    async def _until(predicate: Callable[[], bool], timeout: float) -> bool:
        return await until(predicate, timeout)

    def _on_notice(self, notice: Notice) -> None:
        line = describe(notice)
        if line is not None:
            self.say(*line)

    def _on_wire(self, event: dict[str, Any]) -> None:
        if event.get("type") == "conversation.item.truncate":
            sent_ms = self.sim.audio_sent_ms.get(str(event.get("item_id")), 0)
            self.say(
                "barge-in",
                f"speaker cut; truncate tells the model {event.get('audio_end_ms')} ms of "
                f"its {sent_ms} ms sent so far were heard",
            )
