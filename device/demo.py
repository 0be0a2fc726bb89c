"""``voice-device demo``: the whole appliance on this machine, following a script.

What runs is the real service (:class:`device.app.Appliance`: session, ALSA capture and
playback, buttons and LEDs, control socket) against the simulator on loopback. Only the world
around it is stood in for:

* the buttons and LEDs are gpiozero mock pins: the script presses buttons by driving pins, and
  the LED lines report what the LED pins really did;
* without ``--capture``/``--playback``, the microphone and speaker are a private PulseAudio
  with null sinks behind ALSA's ``pulse`` plugin (real-time paced), the script "speaks" a
  recorded question into the microphone, and ``reply.wav`` is what reached the speaker.

With real devices, the script asks you to speak, and ``reply.wav`` holds the model's audio.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import os
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .config import (
    AudioSection,
    BehaviourSection,
    Config,
    ControlSection,
    CredentialSection,
    ModelSection,
)
from .control import request
from .data import QUESTION
from .realtime.notices import (
    ErrorNotice,
    MuteChanged,
    Notice,
    SpeakingChanged,
    StatusChanged,
    TranscriptNotice,
)
from .simulator import Simulator

KEY_ENV = "VOICE_DEVICE_DEMO_KEY"
RATE = 48000


class Timeline:
    """Prints one line per thing that happened, with the time since the start."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, who: str, what: str) -> None:
        print(f"{time.monotonic() - self.t0:7.2f} s  {who:<9} {what}", flush=True)


def describe_samples(timed: list[tuple[float, float]]) -> str:
    """What an LED did, from ``(time, value)`` samples taken every few ms: off, on, pulsing,
    blinking N Hz or double blink."""
    samples = [v for _, v in timed]
    period = (timed[-1][0] - timed[0][0]) / max(1, len(timed) - 1) if timed else 0.0
    if not samples:
        return "unknown"
    if max(samples) - min(samples) < 0.05:
        value = samples[-1]
        return "on" if value >= 0.95 else ("off" if value <= 0.05 else f"dim ({value:.1f})")
    levels = {round(v, 2) for v in samples}
    if len(levels) > 4:
        return "pulsing"
    lit = [v >= 0.5 for v in samples]
    rises = sum(1 for a, b in itertools.pairwise(lit) if b and not a)
    runs: list[int] = []  # lengths of the dark stretches between flashes
    count = 0
    for on in lit:
        if on:
            if count:
                runs.append(count)
            count = 0
        else:
            count += 1
    inner = runs[1:] if len(runs) > 2 else runs
    if inner and max(inner) >= 3 * min(inner) and max(inner) * period >= 0.4:
        return "double blink"
    if rises == 0:
        return "on" if lit[-1] else "off"
    return f"blinking {rises / (timed[-1][0] - timed[0][0]):.0f} Hz"


class LedWatch:
    """Samples the mock LED pins every 10 ms, like a logic analyser on the header."""

    PERIOD = 0.01

    def __init__(self, factory: Any, pins: dict[str, int | None]) -> None:
        self.pins = {name: factory.pin(n) for name, n in pins.items() if n is not None}
        self.samples: dict[str, collections.deque[tuple[float, float]]] = {
            name: collections.deque(maxlen=1000) for name in self.pins
        }

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            for name, pin in self.pins.items():
                self.samples[name].append((now, float(pin.state)))
            await asyncio.sleep(self.PERIOD)

    def look(self, window: float = 1.0) -> str:
        start = time.monotonic() - window
        return ", ".join(
            f"{name} {describe_samples([s for s in samples if s[0] >= start])}"
            for name, samples in self.samples.items()
        )


async def _until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _speech_raw(speech: Path, directory: Path) -> Path:
    """The WAV as 48 kHz mono raw for ``pacat``, followed by a second of silence."""
    import soxr

    with wave.open(str(speech)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{speech}: expected 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
        rate, channels = w.getframerate(), w.getnchannels()
    mono = pcm.reshape(-1, channels).mean(axis=1) / 32768
    up = soxr.resample(mono, rate, RATE)
    raw = directory / "speech.raw"
    out = np.clip(up * 32768, -32768, 32767).astype("<i2").tobytes() + bytes(RATE * 2)
    raw.write_bytes(out)
    return raw


class Demo:
    def __init__(self, out: Path, capture: str | None, playback: str | None, speech: Path):
        self.out = out
        self.capture = capture
        self.playback = playback
        self.speech = speech
        self.say = Timeline()
        self.model_audio = bytearray()

    async def run(self) -> int:
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        from .audio.pulse import PrivatePulse

        with tempfile.TemporaryDirectory(prefix="voice-device-demo-") as tmp:
            directory = Path(tmp)
            pulse: PrivatePulse | None = None
            if self.capture is None or self.playback is None:
                self.say(
                    "audio", "starting a private PulseAudio with null sinks (virtual mic/speaker)"
                )
                pulse = PrivatePulse(monitor_file=directory / "speaker.raw", rate=RATE, channels=1)
                pulse.start()
                # alsa-lib reads its configuration at the first PCM this process opens.
                os.environ["ALSA_CONFIG_PATH"] = pulse.alsa_config_path
            try:
                async with Simulator(pace=1.0, lead_ms=400) as sim:
                    self.say("model", f"simulator listening on {sim.url}")
                    factory = MockFactory(pin_class=MockPWMPin)
                    return await self._script(sim, factory, pulse, directory)
            finally:
                if pulse is not None:
                    if pulse.monitor_file is not None and pulse.monitor_file.exists():
                        self._write_wav(pulse.monitor_file.read_bytes(), RATE)
                    pulse.stop()
                elif self.model_audio:
                    self._write_wav(bytes(self.model_audio), 24000)

    def _write_wav(self, pcm: bytes, rate: int) -> None:
        with wave.open(str(self.out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)
        seconds = len(pcm) / 2 / rate
        self.say("speaker", f"wrote {self.out} ({seconds:.1f} s at {rate} Hz)")

    async def _script(self, sim: Simulator, factory: Any, pulse: Any, directory: Path) -> int:
        from .app import Appliance

        socket = directory / "control.sock"
        os.environ[KEY_ENV] = "demo-key"  # the simulator accepts any key
        os.environ["STATE_DIRECTORY"] = str(directory)  # the demo's usage is not the device's
        base = Config()
        config = dataclasses.replace(
            base,
            model=ModelSection(url=sim.url),
            credential=CredentialSection(source="env", env=KEY_ENV),
            audio=AudioSection(
                capture=self.capture or "pulse_capture",
                playback=self.playback or "pulse_playback",
                rate=48000,
            ),
            control=ControlSection(socket=str(socket)),
            behaviour=BehaviourSection(earcons=True),
        )
        appliance = Appliance(config, pin_factory=factory)
        session = appliance.session
        stop = asyncio.Event()
        runner = asyncio.create_task(appliance.run(stop))
        say = self.say
        leds = LedWatch(
            factory,
            {
                "status": config.leds.status,
                "mute": config.leds.mute,
                "activity": config.leds.activity,
            },
        )

        def on_notice(notice: Notice) -> None:
            match notice:
                case StatusChanged(status):
                    say("status", status.value)
                case MuteChanged(muted):
                    say("mute", "muted" if muted else "mic live")
                case TranscriptNotice(role, text):
                    say(role, repr(text))
                case SpeakingChanged(speaking):
                    say("speaker", "model speaking" if speaking else "model quiet")
                case ErrorNotice(code, message):
                    say("error", f"{code}: {message}")
                case _:
                    pass

        session.subscribe(on_notice)

        def on_wire(event: dict[str, Any]) -> None:
            if event.get("type") == "conversation.item.truncate":
                sent_ms = sim.audio_sent_ms.get(str(event.get("item_id")), 0)
                say(
                    "barge-in",
                    f"speaker cut; truncate tells the model {event.get('audio_end_ms')} ms of "
                    f"its {sent_ms} ms sent so far were heard",
                )

        sim.on_receive = on_wire
        watcher = asyncio.create_task(leds.run())
        if self.playback is not None:
            original = appliance.playback.play

            def tee(item_id: str, pcm: bytes) -> None:
                if item_id != "earcon":
                    self.model_audio.extend(pcm)
                original(item_id, pcm)

            appliance.playback.play = tee  # type: ignore[method-assign]

        async def look(settle: float = 1.2) -> None:
            await asyncio.sleep(settle)
            say("leds", leds.look())

        async def press(name: str, pin: int | None) -> None:
            assert pin is not None
            say("button", f"press {name} (GPIO{pin})")
            factory.pin(pin).drive_low()
            await asyncio.sleep(0.08)
            factory.pin(pin).drive_high()

        async def speak(what: str) -> None:
            if pulse is None:
                say("you", f"please {what} now (10 s)")
                await _until(
                    lambda: any(
                        e["type"] == "input_audio_buffer.speech_started" for e in sim.sent[mark:]
                    ),
                    10,
                )
                return
            say("mic", f"{what}: {self.speech.name} played into the virtual microphone")
            proc = await asyncio.create_subprocess_exec(
                "pacat",
                "--playback",
                "--device=cap",
                "--raw",
                "--format=s16le",
                f"--rate={RATE}",
                "--channels=1",
                str(raw),
                env=pulse.pa_env(),
            )
            await asyncio.wait_for(proc.wait(), 30)

        def replies_done() -> int:
            return sum(1 for e in sim.sent if e["type"] == "response.done")

        raw = _speech_raw(self.speech, directory) if pulse is not None else directory
        try:
            await asyncio.wait_for(appliance.ready.wait(), 20)
            say("service", "ready (audio, GPIO and control socket up)")
            await look(0.3)

            mark = len(sim.sent)
            await press("connect", config.buttons.connect)
            await _until(lambda: session.status == "connected", 10)
            await look()

            done = replies_done()
            mark = len(sim.sent)
            await speak("ask a question")
            await _until(lambda: replies_done() > done, 20)
            await _until(lambda: not appliance.playback.is_playing(), 15)
            await look(0.2)

            await press("mute", config.buttons.mute)
            appends = len([e for e in sim.received if e["type"] == "input_audio_buffer.append"])
            mark = len(sim.sent)
            await speak("speak while muted")
            await asyncio.sleep(1.0)
            after = len([e for e in sim.received if e["type"] == "input_audio_buffer.append"])
            say("check", f"audio frames sent while muted: {after - appends}")
            await look(0.1)
            await press("mute", config.buttons.mute)
            await look(0.3)

            say("kiosk", "control socket: send_message 'Tell me about this exhibit, please.'")
            reply = await asyncio.to_thread(
                request,
                socket,
                {"cmd": "send_message", "text": "Tell me about this exhibit, please."},
                5.0,
            )
            say("kiosk", f"reply {reply}")
            await _until(appliance.playback.is_playing, 10)
            await asyncio.sleep(1.5)
            mark = len(sim.sent)
            done = replies_done()
            await speak("talk over the reply")
            await _until(lambda: replies_done() > done + 1, 20)
            await _until(lambda: not appliance.playback.is_playing(), 15)

            await press("connect", config.buttons.connect)
            await _until(lambda: session.status == "disconnected", 10)
            await look()
            failures = [e for e in sim.errors_sent if e.get("code") != "response_cancel_not_active"]
            if failures:
                say("error", f"the simulator refused {len(failures)} event(s): {failures}")
                return 1
            return 0
        finally:
            stop.set()
            await asyncio.wait_for(runner, 10)
            watcher.cancel()
            say("service", "stopped: websocket closed, LEDs off, GPIO released")


def run_demo(
    out: Path,
    capture: str | None = None,
    playback: str | None = None,
    speech: Path | None = None,
) -> int:
    """Entry point of ``voice-device demo``; returns the exit status."""
    # The timeline is the demo's output; the service's own log only shows problems.
    logging.getLogger().setLevel(logging.WARNING)
    demo = Demo(out, capture, playback, speech or QUESTION)
    return asyncio.run(demo.run())
