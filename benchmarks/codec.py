"""Codec cost per 20 ms audio frame, each way, against the floor of base64 + json.

    python -m benchmarks.codec

Encode: one ``input_audio_buffer.append`` (960 bytes of PCM → wire text).
Decode: one ``response.output_audio.delta`` (wire text → PCM bytes in a neutral event).
The floor is what any client must do at least: ``json.dumps``/``json.loads`` + base64.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks import Row
from device.realtime.events import AppendAudio, AudioDelta
from device.realtime.openai import OpenAICodec

FRAME = os.urandom(960)  # 20 ms of 24 kHz mono PCM16


def _time(fn: Callable[[], Any], rounds: int = 30, per_round: int = 2000) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(per_round):
            fn()
        samples.append((time.perf_counter_ns() - start) / per_round / 1000)
    samples.sort()
    return statistics.median(samples), samples[
        int(len(samples) * 0.99) - 1 if len(samples) > 1 else 0
    ]


def run() -> dict[str, dict[str, float]]:
    codec = OpenAICodec()
    event = AppendAudio(FRAME)
    delta_wire = json.dumps(codec.encode_server(AudioDelta("resp_1", "item_1", FRAME)))

    def floor_encode() -> str:
        return json.dumps(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(FRAME).decode()}
        )

    def floor_decode() -> bytes:
        return base64.b64decode(json.loads(delta_wire)["delta"])

    results = {}
    for name, fn in (
        ("encode append (ours)", lambda: codec.encode(event)),
        ("encode append (json+base64 floor)", floor_encode),
        ("decode delta (ours)", lambda: codec.decode(delta_wire)),
        ("decode delta (json+base64 floor)", floor_decode),
    ):
        median, p99 = _time(fn)
        results[name] = {"median_us": median, "p99_us": p99}
    return results


def rows() -> list[Row]:
    results = run()
    out = []
    for way, ours, floor in (
        ("encode append", "encode append (ours)", "encode append (json+base64 floor)"),
        ("decode delta", "decode delta (ours)", "decode delta (json+base64 floor)"),
    ):
        r, f = results[ours], results[floor]
        ratio = r["median_us"] / f["median_us"]
        out.append(
            Row(
                f"codec: {way} per 20 ms frame",
                r["median_us"],
                r["p99_us"],
                "µs",
                "near json+base64",
                ratio <= 1.5,
                f"{ratio:.2f}x the floor ({f['median_us']:.1f} µs)",
            )
        )
    return out


def main() -> None:
    results = run()
    print(f"{'codec, per 20 ms frame':40} {'median µs':>10} {'p99 µs':>10}")
    for name, r in results.items():
        print(f"{name:40} {r['median_us']:10.2f} {r['p99_us']:10.2f}")


if __name__ == "__main__":
    main()
