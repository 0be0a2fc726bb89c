"""A local stand-in for the OpenAI Realtime GA server and xAI's dialect, on loopback.

The simulator itself is in ``simserver``, ``simreplies``, ``simbase`` and ``simaudio``; this
module gathers its public names and runs ``voice-device simulate``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from ..realtime.pcm import BYTES_PER_MS, RATE
from .simaudio import (
    CHUNK_MS,
    INPUT_AUDIO_TOKENS_PER_S,
    OPENAI_VOICES,
    OUTPUT_AUDIO_TOKENS_PER_S,
    VAD_ONSET_MS,
    VAD_RMS,
    XAI_VOICES,
    tone,
)
from .simbase import Conn
from .simserver import Simulator

_Conn = Conn

__all__ = [
    "BYTES_PER_MS",
    "CHUNK_MS",
    "INPUT_AUDIO_TOKENS_PER_S",
    "OPENAI_VOICES",
    "OUTPUT_AUDIO_TOKENS_PER_S",
    "RATE",
    "VAD_ONSET_MS",
    "VAD_RMS",
    "XAI_VOICES",
    "Simulator",
    "main",
    "tone",
]


def main(argv: list[str] | None = None) -> int:
    """``voice-device simulate``: serve a simulator until interrupted."""
    parser = argparse.ArgumentParser(prog="voice-device simulate", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--pace", type=float, default=1.0, help="reply speed (1 = real time)")
    parser.add_argument(
        "--lead-ms", type=int, default=0, help="paced audio runs this far ahead of real time"
    )
    parser.add_argument("--reply", choices=("tone", "echo"), default="tone")
    parser.add_argument("--token", default=None, help="accept only this bearer (default: any)")
    parser.add_argument("--greet", action="store_true", help="speak first on every session")
    parser.add_argument("--dialect", choices=("openai", "xai"), default="openai")
    parser.add_argument("--reply-seconds", type=float, default=None, help="length of replies")
    parser.add_argument(
        "--strict", action="store_true", help="refuse response.create before every tool output"
    )
    args = parser.parse_args(argv)

    async def serve_forever() -> None:
        sim = Simulator(
            token=args.token,
            host=args.host,
            port=args.port,
            reply=args.reply,
            pace=args.pace,
            lead_ms=args.lead_ms,
            greet=args.greet,
            reply_seconds=args.reply_seconds,
            dialect=args.dialect,
            strict=args.strict,
        )
        async with sim:
            print(f"simulator listening on {sim.url}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever())
    return 0
