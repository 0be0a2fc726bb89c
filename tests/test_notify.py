"""sd_notify against a real bound NOTIFY_SOCKET: readiness, status, watchdog, stopping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from notify_listener import NotifyListener

from device.realtime.models import OpenAIRealtimeModel
from device.realtime.notices import MuteChanged, Notice, StatusChanged
from device.sdnotify import Notifier, notify_address, status_text, watchdog_interval
from device.session import RealtimeSession

# WatchdogSec=0.4s → a ping is due every 0.2 s.
WATCHDOG_USEC = 400_000
PERIOD = WATCHDOG_USEC / 1e6 / 2
# A ping sent just before an instant may be read by the listener thread just after it: at most
# one such late arrival is allowed in a window where no ping may be sent.
LATE = 1


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest) -> Iterator[NotifyListener]:
    with NotifyListener(abstract=request.param == "abstract") as lst:
        yield lst


@pytest.fixture
def plain_listener() -> Iterator[NotifyListener]:
    with NotifyListener() as lst:
        yield lst


@contextlib.asynccontextmanager
async def running(coro_task: asyncio.Task[None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        coro_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await coro_task


def test_without_notify_socket_everything_is_a_silent_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert n.watchdog_interval() is None
    assert not n.ready("disconnected, mic live")
    assert not n.status("connected, muted")
    assert not n.watchdog()
    assert not n.stopping()
    # The watchdog loop has nothing to do and must not hold the TaskGroup open.
    asyncio.run(asyncio.wait_for(n.watchdog_loop(lambda: True), 1.0))


def test_ready_status_and_stopping_reach_the_socket_from_this_process(
    listener: NotifyListener,
) -> None:
    n = Notifier(listener.env())
    assert n.enabled
    assert n.ready(status_text("disconnected", False))
    ready = listener.wait_for("READY", "1")
    assert ready.get("STATUS") == "disconnected, mic live"
    # systemd's NotifyAccess=main checks the sender's PID: it must be the service's own.
    assert ready.pid == os.getpid()
    assert n.stopping()
    listener.wait_for("STOPPING", "1")
    n.close()


def test_status_follows_changes_and_skips_repeats(listener: NotifyListener) -> None:
    n = Notifier(listener.env())
    for text in [
        "disconnected, mic live",
        "connecting, mic live",
        "connecting, mic live",  # unchanged: not re-sent
        "connected, mic live",
        "connected, muted",
        "reconnecting, muted",
    ]:
        n.status(text)
    listener.wait_for("STATUS", "reconnecting, muted")
    assert listener.values("STATUS") == [
        "disconnected, mic live",
        "connecting, mic live",
        "connected, mic live",
        "connected, muted",
        "reconnecting, muted",
    ]


def test_status_follows_a_real_sessions_mute_button(listener: NotifyListener) -> None:
    """Wired as the service wires it: every status/mute notice updates STATUS=."""
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    n = Notifier(listener.env())

    def on_notice(notice: Notice) -> None:
        if isinstance(notice, StatusChanged | MuteChanged):
            n.status(status_text(session.status, session.muted))

    session.subscribe(on_notice)
    n.ready(status_text(session.status, session.muted))
    session.mute()
    listener.wait_for("STATUS", "disconnected, muted")
    session.unmute()
    listener.wait_for("STATUS", "disconnected, mic live", since=2)
    assert listener.values("STATUS") == [
        "disconnected, mic live",
        "disconnected, muted",
        "disconnected, mic live",
    ]


def test_stopping_is_sent_once_however_often_shutdown_calls_it(listener: NotifyListener) -> None:
    n = Notifier(listener.env())
    assert n.stopping()
    assert not n.stopping()
    n.status("closing")  # a later message proves the second STOPPING had its chance to arrive
    listener.wait_for("STATUS", "closing")
    assert len(listener.values("STOPPING")) == 1


def test_a_newline_in_status_cannot_inject_another_assignment(listener: NotifyListener) -> None:
    n = Notifier(listener.env())
    n.status("closed\nREADY=1")
    msg = listener.wait_for("STATUS")
    assert msg.fields == {"STATUS": "closed READY=1"}


def test_reloading_carries_a_current_monotonic_timestamp(listener: NotifyListener) -> None:
    n = Notifier(listener.env())
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    n.reloading()
    msg = listener.wait_for("RELOADING", "1")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert before <= int(msg.fields["MONOTONIC_USEC"]) <= after


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 20.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 20.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_only_ours_when_the_pid_matches(
    env: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval(env) == expected


def test_notify_address_forms() -> None:
    assert notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert notify_address({"NOTIFY_SOCKET": "@sd-notify"}) == b"\0sd-notify"
    assert notify_address({"NOTIFY_SOCKET": "vsock:2:1234"}) is None
    assert notify_address({"NOTIFY_SOCKET": ""}) is None
    assert notify_address({}) is None


def test_an_unreachable_socket_never_raises_and_warns_once(
    tmp_path: os.PathLike[str], caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier({"NOTIFY_SOCKET": os.path.join(tmp_path, "gone.sock")})
    with caplog.at_level(logging.DEBUG, logger="device.sdnotify"):
        assert not n.ready()
        assert not n.status("connected, mic live")
        assert not n.watchdog()
        assert not n.stopping()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "gone.sock" in warnings[0].getMessage()


async def test_watchdog_pings_at_half_the_interval_while_healthy(
    plain_listener: NotifyListener,
) -> None:
    n = Notifier(plain_listener.env(watchdog_usec=WATCHDOG_USEC))
    assert n.watchdog_interval() == pytest.approx(2 * PERIOD)
    async with running(asyncio.create_task(n.watchdog_loop(lambda: True))):
        await asyncio.sleep(10 * PERIOD)
    n.status("probe")  # sent after the last ping: once it is here, every ping is
    plain_listener.wait_for("STATUS", "probe")
    pings = plain_listener.times("WATCHDOG")
    # One ping at start and one per PERIOD: 11 at most in 10 periods. A loaded CI box may
    # delay the sleeps (fewer pings), never add pings.
    assert 3 <= len(pings) <= 11, pings


async def test_watchdog_stops_while_health_is_false_and_resumes_after(
    plain_listener: NotifyListener,
) -> None:
    n = Notifier(plain_listener.env(watchdog_usec=WATCHDOG_USEC))
    healthy = True
    async with running(asyncio.create_task(n.watchdog_loop(lambda: healthy))):
        await asyncio.sleep(3 * PERIOD)
        healthy = False  # e.g. the capture thread died
        dead_from = time.monotonic()
        await asyncio.sleep(6 * PERIOD)
        dead_until = time.monotonic()
        healthy = True
        await asyncio.sleep(4 * PERIOD)
    pings = plain_listener.times("WATCHDOG")
    assert [t for t in pings if t < dead_from], "no pings before the failure"
    assert len([t for t in pings if dead_from < t < dead_until]) <= LATE, pings
    assert [t for t in pings if t > dead_until], "pings did not resume"


async def test_watchdog_stops_while_the_event_loop_is_blocked(
    plain_listener: NotifyListener,
) -> None:
    n = Notifier(plain_listener.env(watchdog_usec=WATCHDOG_USEC))
    async with running(asyncio.create_task(n.watchdog_loop(lambda: True))):
        await asyncio.sleep(3 * PERIOD)
        blocked_from = time.monotonic()
        time.sleep(6 * PERIOD)  # noqa: ASYNC251 - a stalled loop, on purpose
        blocked_until = time.monotonic()
        await asyncio.sleep(4 * PERIOD)
    pings = plain_listener.times("WATCHDOG")
    assert [t for t in pings if t < blocked_from]
    assert len([t for t in pings if blocked_from < t < blocked_until]) <= LATE, pings
    assert [t for t in pings if t > blocked_until], "pings did not resume after the stall"


async def test_a_health_check_that_raises_counts_as_unhealthy(
    plain_listener: NotifyListener, caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier(plain_listener.env(watchdog_usec=WATCHDOG_USEC))

    def broken() -> bool:
        raise RuntimeError("thread registry gone")

    with caplog.at_level(logging.ERROR, logger="device.sdnotify"):
        async with running(asyncio.create_task(n.watchdog_loop(broken))):
            await asyncio.sleep(4 * PERIOD)
    n.status("probe")
    plain_listener.wait_for("STATUS", "probe")
    assert plain_listener.times("WATCHDOG") == []
    assert any("health check raised" in r.getMessage() for r in caplog.records)


async def test_watchdog_of_another_pid_is_not_pinged(plain_listener: NotifyListener) -> None:
    n = Notifier(plain_listener.env(watchdog_usec=WATCHDOG_USEC, watchdog_pid=os.getpid() + 1))
    await asyncio.wait_for(n.watchdog_loop(lambda: True), 1.0)
    n.status("probe")
    plain_listener.wait_for("STATUS", "probe")
    assert plain_listener.times("WATCHDOG") == []
