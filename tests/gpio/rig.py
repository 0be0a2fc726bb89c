"""Shared parts of the GPIO tests: gpiozero's MockFactory pins, a real RealtimeSession talking to
the local simulator over loopback websockets, and a gated connector that holds a handshake open
so ``connecting`` (and ``reconnecting``) last as long as a test needs."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

from creds import token_credential
from gpiozero.pins.mock import MockFactory
from waiting import until
from websockets.asyncio.client import ClientConnection

from device.config import ButtonsSection, LedsSection
from device.devtools.simulator import Simulator
from device.gpio import Board, GpioConfig
from device.gpio.actions import FaultSource
from device.gpio.buttons import Clock
from device.realtime.credentials import Credential
from device.realtime.events import SessionConfig
from device.realtime.models import OpenAIRealtimeModel, RealtimeModel
from device.realtime.notices import Notice, StatusChanged
from device.realtime.status import TransportStatus
from device.session import RealtimeSession, ReconnectPolicy
from device.transport import open_connection

TOKEN = "fake-test-controls-0123456789"
CONNECT, MUTE, TALK, VOL_UP, VOL_DOWN = 17, 27, 24, 5, 6
STATUS_LED, MUTE_LED, ACTIVITY_LED, FAULT_LED = 22, 23, 25, 12
FRAME = bytes(960)  # 20 ms of silence, 24 kHz mono s16le
LED_KEYS = ("status", "status_rgb", "active_high", "fault")


async def provider() -> dict[str, Any]:
    return token_credential(TOKEN)


class Gate:
    """A connector that waits while the gate is shut, then opens the real websocket."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.opened.set()

    def shut(self) -> None:
        self.opened.clear()

    def open(self) -> None:
        self.opened.set()

    async def connector(self, model: RealtimeModel, cred: Credential) -> ClientConnection:
        await self.opened.wait()
        return await open_connection(model, cred)


class EarconRecorder:
    """A cue sink that keeps what it was asked to play."""

    def __init__(self) -> None:
        self.played: list[bytes] = []

    def play_cue(self, pcm: bytes) -> None:
        self.played.append(pcm)


class FakeClock:
    """A nanosecond clock that moves only when a test sets ``now``."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class CountingVolume:
    def __init__(self) -> None:
        self.ups = 0
        self.downs = 0

    def up(self) -> None:
        self.ups += 1

    def down(self) -> None:
        self.downs += 1


class Rig:
    """Builds sessions and boards for one test and closes them all at the end."""

    def __init__(self, factory: MockFactory, sim: Simulator, gate: Gate) -> None:
        self.factory = factory
        self.sim = sim
        self.gate = gate
        self.boards: list[Board] = []
        self.sessions: list[RealtimeSession] = []

    def session(
        self, *, auto_reconnect: bool = False, config: SessionConfig | None = None
    ) -> RealtimeSession:
        s = RealtimeSession(
            OpenAIRealtimeModel(url=self.sim.url),
            config=config,
            credential_provider=provider,
            auto_reconnect=auto_reconnect,
            reconnect_policy=ReconnectPolicy(first=0.05),
            connector=self.gate.connector,
        )
        self.sessions.append(s)
        return s

    def build(
        self,
        session: RealtimeSession,
        *,
        clock: Clock | None = None,
        faults: FaultSource | None = None,
        on_action: Callable[[str], None] | None = None,
        limit: str | None = None,
        **overrides: Any,
    ) -> Board:
        """A board on the mock pins: LED keys (``LED_KEYS``) go to ``[leds]``, the rest to
        ``[buttons]`` (with the talk button fitted); ``clock`` stamps and times edges, the
        fault LED follows ``faults``."""
        leds = {k: overrides.pop(k) for k in LED_KEYS if k in overrides}
        return self.add(
            Board(
                session,
                GpioConfig(
                    buttons=ButtonsSection(talk=TALK, **overrides), leds=LedsSection(**leds)
                ),
                asyncio.get_running_loop(),
                pin_factory=self.factory,
                faults=faults,
                clock=clock or time.perf_counter_ns,
                on_action=on_action,
                limit=limit,
            )
        )

    def add(self, board: Board) -> Board:
        self.boards.append(board)
        return board

    def pin(self, number: int) -> Any:
        return self.factory.pin(number)

    async def edges(self, board: Board, count: int) -> None:
        """Wait until ``board`` handled ``count`` button edges in all."""
        await until(lambda: board.stats.edges >= count, what=f"{count} edges handled")

    async def click(self, board: Board, number: int) -> None:
        """A tap: press and release at once. The release falls in the press's debounce lockout
        and is delivered when it ends. Waits out the lockout of the button's previous edge
        first (edges inside it would count as bounce), as a finger would."""
        await asyncio.sleep(board.config.buttons.bounce_ms / 1000 + 0.005)
        before = board.stats.edges
        self.pin(number).drive_low()
        self.pin(number).drive_high()
        await self.edges(board, before + 2)

    async def close(self) -> None:
        for b in self.boards:
            b.close()
        for s in self.sessions:
            self.gate.open()
            await s.disconnect()


def sent(sim: Simulator, kind: str) -> list[dict[str, Any]]:
    return [e for e in sim.received if e.get("type") == kind]


class Watch:
    """Marks where in a pin's history each status began (a listener that runs before the LEDs
    change, because it subscribes before the board)."""

    def __init__(self, session: RealtimeSession, pin: Any) -> None:
        self.pin = pin
        self.marks: dict[str, int] = {}
        session.subscribe(self._on)

    def _on(self, notice: Notice) -> None:
        if isinstance(notice, StatusChanged):
            self.marks[notice.status.value] = len(self.pin.states)

    def mark(self, name: str) -> None:
        self.marks[name] = len(self.pin.states)

    def since(self, status: str) -> list[Any]:
        if status not in self.marks:
            return []
        return list(self.pin.states[self.marks[status] :])


def durations(states: list[Any]) -> list[tuple[float, float]]:
    """(value, seconds held) for each state whose end is known."""
    return [(a.state, b.timestamp) for a, b in itertools.pairwise(states)]


def blink_period(states: list[Any]) -> tuple[float, float]:
    """Median on and off durations of a blinking pin."""
    held = durations(states)
    on = [t for v, t in held if v > 0]
    off = [t for v, t in held if v == 0]
    assert on and off, held
    return statistics.median(on), statistics.median(off)


async def drive_to(rig: Rig, session: RealtimeSession, status: TransportStatus) -> None:
    """Bring a real session (auto_reconnect) into ``status`` through the simulator."""
    match status:
        case TransportStatus.DISCONNECTED:
            await session.connect()
            await session.disconnect()
        case TransportStatus.CONNECTING:
            rig.gate.shut()
            rig.sessions.append(session)
            asyncio.get_running_loop().create_task(session.connect())
        case TransportStatus.CONNECTED:
            await session.connect()
        case TransportStatus.RECONNECTING:
            await session.connect()
            rig.gate.shut()
            await rig.sim.drop(code=1006)
        case TransportStatus.CLOSED:
            await session.connect()
            rig.sim.reject_next(401, count=10)
            await rig.sim.drop(code=1006)
    await until(lambda: session.status == status, what=status.value)
