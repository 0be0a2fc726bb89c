from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.devtools.simulator import Simulator

from .rig import Gate, Rig


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def rig(factory: MockFactory, sim: Simulator, gate: Gate) -> AsyncIterator[Rig]:
    r = Rig(factory, sim, gate)
    try:
        yield r
    finally:
        await r.close()
