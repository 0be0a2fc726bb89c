from __future__ import annotations

from collections.abc import Iterator

import pytest

from device.devtools.pulse import PrivatePulse


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePulse]:
    """One private PulseAudio (virtual mic ``cap``, speaker ``spk``) for service tests."""
    monitor = tmp_path_factory.mktemp("pulse") / "speaker.raw"
    with PrivatePulse(monitor_file=monitor, rate=48000, channels=1) as p:
        yield p
