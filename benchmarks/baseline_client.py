"""The baseline: a realtime voice client written the way a Python user would, without us.

openai-python's ``AsyncOpenAI(...).realtime.connect()`` streams the mic (pyalsaaudio at
24 kHz, read in a thread) and plays the deltas, with pydantic event models on every message.
Run beside ``voice-device run`` against the same simulator and paced ALSA PCMs; it prints its
CPU seconds and peak RSS as JSON on exit.

    python -m benchmarks.baseline_client --base-url http://127.0.0.1:8765/v1 \
        --capture vd_mic --playback vd_spk --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import resource
import time

import alsaaudio
from openai import AsyncOpenAI


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--capture", default="default")
    p.add_argument("--playback", default="default")
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args()

    mic = alsaaudio.PCM(
        alsaaudio.PCM_CAPTURE,
        device=args.capture,
        channels=1,
        rate=24000,
        format=alsaaudio.PCM_FORMAT_S16_LE,
        periodsize=480,
    )
    speaker = alsaaudio.PCM(
        alsaaudio.PCM_PLAYBACK,
        device=args.playback,
        channels=1,
        rate=24000,
        format=alsaaudio.PCM_FORMAT_S16_LE,
        periodsize=480,
    )
    client = AsyncOpenAI(api_key="fake-baseline", base_url=args.base_url)
    deadline = time.monotonic() + args.seconds
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(
            session={
                "type": "realtime",
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "turn_detection": {"type": "server_vad"},
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
                },
            }
        )

        async def send_mic() -> None:
            while time.monotonic() < deadline:
                length, data = await asyncio.to_thread(mic.read)
                if length > 0:
                    await conn.input_audio_buffer.append(audio=base64.b64encode(data).decode())

        async def play() -> None:
            async for event in conn:
                if event.type == "response.output_audio.delta":
                    await asyncio.to_thread(speaker.write, base64.b64decode(event.delta))

        player = asyncio.create_task(play())
        await send_mic()
        player.cancel()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_kb": usage.ru_maxrss}))


if __name__ == "__main__":
    asyncio.run(main())
