from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from device.devtools.pulse import PrivatePulse
from device.devtools.simulator import Simulator


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePulse]:
    """One private PulseAudio (virtual mic ``cap``, speaker ``spk``) for service tests."""
    monitor = tmp_path_factory.mktemp("pulse") / "speaker.raw"
    with PrivatePulse(monitor_file=monitor, rate=48000, channels=1) as p:
        yield p


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
    """The local realtime model on loopback. Its options come from the closest ``simulator``
    mark, e.g. ``pytestmark = pytest.mark.simulator(token=TOKEN, reply_seconds=2.0)``."""
    mark = request.node.get_closest_marker("simulator")
    async with Simulator(**(mark.kwargs if mark is not None else {})) as s:
        yield s
