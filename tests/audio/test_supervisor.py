"""The fault policy shared by capture and playback, as plain calls."""

from __future__ import annotations

import asyncio

import pytest

from device.audio.supervisor import AudioFault, FaultSupervisor


def make() -> tuple[FaultSupervisor, list[AudioFault]]:
    faults: list[AudioFault] = []
    return FaultSupervisor("capture", "hw:CARD=Mic", faults.append, start_s=0.5, cap_s=5.0), faults


def test_an_outage_is_reported_once_and_retried_ever_more_slowly_up_to_the_cap() -> None:
    sup, faults = make()
    assert sup.failed("missing", "No such file or directory") is True
    delays = [sup.next_delay()]
    for _ in range(6):
        assert sup.failed("missing", "No such file or directory") is False  # same outage
        delays.append(sup.next_delay())
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert [(f.kind, f.device) for f in faults] == [("missing", "hw:CARD=Mic")]
    message = 'capture device "hw:CARD=Mic" not available: No such file or directory'
    assert faults[0].message == message
    assert sup.faulted


def test_recovered_only_once_audio_moved_and_then_the_backoff_starts_over() -> None:
    sup, faults = make()
    sup.failed("lost", "No such device")
    sup.next_delay()
    sup.next_delay()
    # Reopened, but the first read fails at once: still the same outage, no recovered/lost pair.
    sup.failed("lost", "No such device")
    assert [f.kind for f in faults] == ["lost"]
    assert sup.next_delay() == 2.0
    sup.moved()  # a read returned frames
    assert [f.kind for f in faults] == ["lost", "recovered"]
    assert faults[1].message == 'capture device "hw:CARD=Mic" recovered'
    assert not sup.faulted
    assert sup.next_delay() == 0.5
    sup.moved()  # audio moving on a healthy device reports nothing
    assert len(faults) == 2
    sup.failed("lost", "Input/output error")  # a new outage is reported again
    assert [f.kind for f in faults] == ["lost", "recovered", "lost"]
    assert sup.faults == 3


def test_a_crash_is_reported_once() -> None:
    sup, faults = make()
    sup.crashed("capture from 'hw:CARD=Mic' stopped: RuntimeError('bug')")
    sup.crashed("again")
    assert [f.kind for f in faults] == ["crashed"]
    assert sup.crashed_for_good


async def test_a_device_loop_that_raises_is_reported_as_crashed_and_a_cancel_is_not() -> None:
    sup, faults = make()

    async def bug() -> None:
        raise RuntimeError("bug")

    await sup.watch(bug())  # the error does not escape: it is the fault
    assert [(f.kind, f.message) for f in faults] == [
        ("crashed", "capture on \"hw:CARD=Mic\" crashed: RuntimeError('bug')")
    ]
    calm, none = make()
    task = asyncio.ensure_future(calm.watch(asyncio.sleep(60)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # stopping the device is not a crash
    assert none == [] and not calm.crashed_for_good


def test_without_a_receiver_faults_are_only_logged_and_counted() -> None:
    sup = FaultSupervisor("playback", "default")
    assert sup.failed("missing", "x")
    assert sup.faults == 1
