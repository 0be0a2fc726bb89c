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
import itertools
import logging
import os
import tempfile
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data import QUESTION
from ..realtime.pcm import RATE as MODEL_RATE
from .demoscript import PULSE_RATE as RATE
from .demoscript import Script, demo_config
from .pulse import PrivatePulse
from .simulator import Simulator

if TYPE_CHECKING:
    from ..app import Appliance


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

        from .pulse import PrivatePulse

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
                    self._write_wav(bytes(self.model_audio), MODEL_RATE)

    def _write_wav(self, pcm: bytes, rate: int) -> None:
        with wave.open(str(self.out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)
        seconds = len(pcm) / 2 / rate
        self.say("speaker", f"wrote {self.out} ({seconds:.1f} s at {rate} Hz)")

    async def _script(
        self, sim: Simulator, factory: Any, pulse: PrivatePulse | None, directory: Path
    ) -> int:
        from ..app import Appliance

        socket = directory / "control.sock"
        config = demo_config(sim, socket, self.capture, self.playback)
        os.environ["STATE_DIRECTORY"] = str(directory)  # the demo's usage is not the device's
        appliance = Appliance(config, pin_factory=factory)
        stop = asyncio.Event()
        runner = asyncio.create_task(appliance.run(stop))
        pins = {"status": config.leds.status, "mute": config.leds.mute}
        leds = LedWatch(factory, {**pins, "activity": config.leds.activity})
        watcher = asyncio.create_task(leds.run())
        if self.playback is not None:
            self._record_model_audio(appliance)
        speech = _speech_raw(self.speech, directory) if pulse is not None else directory
        script = Script(
            appliance, sim, factory, leds, self.say, socket, pulse, speech, self.speech.name
        )
        try:
            return await script.run()
        finally:
            stop.set()
            await asyncio.wait_for(runner, 10)
            watcher.cancel()
            self.say("service", "stopped: websocket closed, LEDs off, GPIO released")

    def _record_model_audio(self, appliance: Appliance) -> None:
        """With a real speaker, ``reply.wav`` is the model's audio as the service plays it."""
        original = appliance.playback.play

        def tee(item_id: str, pcm: bytes) -> None:
            self.model_audio.extend(pcm)  # cues go through play_cue, not here
            original(item_id, pcm)

        appliance.playback.play = tee  # type: ignore[method-assign]


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
