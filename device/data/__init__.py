"""Bundled speech samples (see NOTICE.md beside them): the demo's and the tests' voice."""

from __future__ import annotations

from pathlib import Path

DIR = Path(__file__).resolve().parent
#: "What's the weather like today?" style question, 1.87 s, 24 kHz mono s16le WAV.
QUESTION = DIR / "weather_question.wav"
#: "Hello world", 1.03 s, 24 kHz mono s16le WAV.
HELLO = DIR / "hello_world.wav"
