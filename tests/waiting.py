"""Waiting for a condition in async tests: poll, and fail saying what never happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Return once ``predicate()`` is true; after ``timeout`` seconds fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:g} s: {what or 'condition'}")
        await asyncio.sleep(0.01)
