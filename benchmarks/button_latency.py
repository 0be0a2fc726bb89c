"""Button latency: pin edge → action done on the event loop, over many presses.

A thread plays gpiozero's role: it drives the mock mute button's pin low (the edge; gpiozero
runs ``when_pressed`` in that thread, as it does in its own threads on a Pi), lets the contact
bounce (``BOUNCES`` quick flips back and forth right after the edge, ending low) and waits
until the session, owned by the event loop, reports ``muted`` changed. The time from just
before the first edge to the ``MuteChanged`` notice is one sample; ``Board.stats`` also
reports the edge → loop part alone. The board runs with the shipped ``bounce_ms`` (the first edge
acts, the bounce is ignored), so the thread presses like a finger: it holds the button past
the lockout, releases (bouncing too) and waits out that lockout before the next press. Every
press must toggle mute exactly once.

    python -m benchmarks.button_latency [--presses 1000] [--stream] [--bounce-ms 30]

``--stream`` connects the session to the local simulator and streams 20 ms microphone frames
from the loop while the button is pressed, so the loop has the work it has on the device.

Target: p99 ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import struct
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from benchmarks import Row
from device.config import ButtonsSection
from device.devtools.simulator import Simulator
from device.gpio import Board, GpioConfig
from device.realtime.models import OpenAIRealtimeModel
from device.realtime.notices import MuteChanged, Notice
from device.session import RealtimeSession

MUTE_PIN = 27
TARGET_MS = 5.0
#: Contact bounce after each edge: this many extra flips back and forth.
BOUNCES = 3
#: Debounce lockout of the controls under test (the shipped default).
BOUNCE_MS = ButtonsSection().bounce_ms


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def measure(
    presses: int, stream: bool = False, bounce_ms: int = BOUNCE_MS
) -> tuple[list[float], Board, Privacy | None]:
    """Edge → ``session.muted`` changed, in ms, for ``presses`` presses; with ``stream``, also
    what reached the wire while muted."""
    if not stream:
        url = "ws://127.0.0.1:9/v1/realtime"
        samples, controls, _ = await _measure(presses, url, False, bounce_ms)
        return samples, controls, None
    async with Simulator() as sim:
        samples, controls, times = await _measure(presses, sim.url, True, bounce_ms)
        await asyncio.sleep(0.2)  # let the last frames arrive
        return samples, controls, _privacy(sim, times)


async def _stream(session: RealtimeSession) -> None:
    """A 20 ms frame every 20 ms; its first 8 bytes are the time it was offered (captured)."""
    rest = bytes(960 - 8)  # 20 ms, 24 kHz mono s16le
    while True:
        session.send_audio(struct.pack("<q", time.perf_counter_ns()) + rest)
        await asyncio.sleep(0.02)


@dataclass
class Privacy:
    """Mic frames the simulator received, sorted by when they were offered: while muted
    (after the mute took effect, before the unmute edge) there must be none."""

    offered_while_muted_on_wire: int = 0
    in_flight: int = 0  # offered between a mute edge and the mute taking effect
    muted_intervals: int = 0
    frames_on_wire: int = 0


def _privacy(sim: Simulator, presses: list[tuple[int, int]]) -> Privacy:
    # presses: (edge_ns, effective_ns); odd ones (0, 2, ...) mute, even ones unmute.
    result = Privacy()
    muted = [(presses[i][1], presses[i + 1][0]) for i in range(0, len(presses) - 1, 2)]
    edges = [(presses[i][0], presses[i][1]) for i in range(0, len(presses), 2)]
    result.muted_intervals = len(muted)
    for event in sim.received:
        if event["type"] != "input_audio_buffer.append":
            continue
        (offered,) = struct.unpack_from("<q", base64.b64decode(event["audio"]))
        result.frames_on_wire += 1
        if any(a <= offered < b for a, b in muted):
            result.offered_while_muted_on_wire += 1
        elif any(a <= offered < b for a, b in edges):
            result.in_flight += 1
    return result


def _bounce(pin: MockPin, low: bool) -> None:
    """Contact bounce right after an edge: the pin flips back and forth, ending ``low`` or not."""
    for _ in range(BOUNCES):
        if low:
            pin.drive_high()
            pin.drive_low()
        else:
            pin.drive_low()
            pin.drive_high()


async def _measure(
    presses: int, url: str, stream: bool, bounce_ms: int
) -> tuple[list[float], Board, list[tuple[int, int]]]:
    loop = asyncio.get_running_loop()
    factory = MockFactory(pin_class=MockPWMPin)
    session = RealtimeSession(OpenAIRealtimeModel(url=url))
    streamer: asyncio.Task[None] | None = None
    if stream:
        expires = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
        await session.connect({"kind": "token", "token": "bench", "expiresAt": expires})
        streamer = asyncio.create_task(_stream(session))
    controls = Board(
        session,
        GpioConfig(
            buttons=ButtonsSection(mute_long="none", mute_double="none", bounce_ms=bounce_ms)
        ),
        loop,
        pin_factory=factory,
    )
    changed = threading.Event()
    done_ns = [0]
    toggles = [0]

    def on_notice(notice: Notice) -> None:
        if isinstance(notice, MuteChanged):
            toggles[0] += 1
            done_ns[0] = time.perf_counter_ns()
            changed.set()

    session.subscribe(on_notice)
    pin = factory.pin(MUTE_PIN)
    samples: list[float] = []
    times: list[tuple[int, int]] = []

    # Past the lockout after each edge (a finger is slower still); when streaming, also let a
    # few frames be offered in each muted and unmuted stretch.
    settle = bounce_ms / 1000 + 0.005

    def presser() -> None:
        for i in range(presses):
            changed.clear()
            edge = time.perf_counter_ns()
            pin.drive_low()
            _bounce(pin, low=True)
            if not changed.wait(1.0):
                raise RuntimeError(f"press {i} was not handled within 1 s")
            samples.append((done_ns[0] - edge) / 1e6)
            times.append((edge, done_ns[0]))
            time.sleep(max(0.0, settle - (time.perf_counter_ns() - edge) / 1e9))
            pin.drive_high()
            _bounce(pin, low=False)
            time.sleep(max(settle, 0.05 if stream else 0.0))

    try:
        await asyncio.to_thread(presser)
        await asyncio.sleep(settle)  # the last release's lockout
        if toggles[0] != presses:
            raise RuntimeError(f"{presses} bouncing presses toggled mute {toggles[0]} times")
    finally:
        controls.close()
        factory.reset()
        if streamer is not None:
            streamer.cancel()
        await session.disconnect()
    return samples, controls, times


def rows(presses: int = 400) -> list[Row]:
    out = []
    for stream in (False, True):
        samples, _, privacy = asyncio.run(measure(presses, stream))
        p99 = percentile(samples, 99)
        what = "mic streaming" if stream else "idle loop"
        out.append(
            Row(
                f"mute button edge → muted ({what})",
                statistics.median(samples),
                p99,
                "ms",
                f"≤ {TARGET_MS:g} ms",
                p99 <= TARGET_MS,
                f"{len(samples)} presses, each bouncing ({BOUNCE_MS} ms debounce)",
            )
        )
        if privacy is not None:
            out.append(
                Row(
                    "mic frames offered while muted that reached the wire",
                    privacy.offered_while_muted_on_wire,
                    None,
                    "frames",
                    "0",
                    privacy.offered_while_muted_on_wire == 0,
                    f"{privacy.muted_intervals} mutes, {privacy.frames_on_wire} frames sent, "
                    f"{privacy.in_flight} offered in the edge→effect window",
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=1000)
    parser.add_argument(
        "--stream", action="store_true", help="stream mic frames to the simulator meanwhile"
    )
    parser.add_argument(
        "--bounce-ms", type=int, default=BOUNCE_MS, help="buttons.bounce_ms of the controls"
    )
    args = parser.parse_args(argv)
    if args.presses < 1:
        parser.error("--presses must be at least 1")
    if args.bounce_ms < 0:
        parser.error("--bounce-ms must be at least 0")
    samples, controls, privacy = asyncio.run(measure(args.presses, args.stream, args.bounce_ms))
    loop_ms = [ns / 1e6 for ns in controls.stats.latencies_ns]
    median, p99 = statistics.median(samples), percentile(samples, 99)
    what = " (mic streaming to the simulator)" if args.stream else ""
    print(f"button → mute effective over {len(samples)} presses{what}:")
    print(f"  median {median:.3f} ms   p99 {p99:.3f} ms   max {max(samples):.3f} ms")
    print(
        f"  edge → loop (Board.stats, {len(loop_ms)} edges): median "
        f"{statistics.median(loop_ms):.3f} ms   p99 {percentile(loop_ms, 99):.3f} ms"
    )
    stats = controls.stats
    print(
        f"  debounce ({args.bounce_ms} ms): {stats.ignored} bounce edges ignored, "
        f"{stats.deferred} edges delivered late"
    )
    if privacy is not None:
        print(f"  privacy: {privacy}")
    ok = p99 <= TARGET_MS and (privacy is None or privacy.offered_while_muted_on_wire == 0)
    print(f"  target p99 ≤ {TARGET_MS:g} ms, nothing sent while muted: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
