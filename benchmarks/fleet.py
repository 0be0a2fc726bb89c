"""A fleet on one broker: N real MQTT bridges and one Mosquitto. Each bridge serves the real
command table and state of a session that never connects (only the model link is left out).

* command → reply: an operator client sends ``status`` to one device after another (round
  robin, one at a time) and times publish → reply received;
* fleet-wide command: ``voice-device/all/command`` → every device's reply received;
* broker restart: Mosquitto stopped, every bridge notices, Mosquitto started again (empty: no
  persistence) → time until each bridge is connected and republished, and the reconnect
  spread (the most reconnects in any 100 ms window: jittered backoff, no thundering herd);
* memory: the process's RSS growth per bridge, connected.

Bridges and operator share one event loop (uvloop, as in the service), so the latency includes
200 bridges' keepalives on the same loop.

    python -m benchmarks.fleet [--devices 200] [--commands 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import uvloop

from benchmarks import Row, median, percentile, table
from device.commands import CommandTable
from device.mqtt import MqttBridge, MqttConfig
from device.mqtt.bridge import NODELAY
from device.mqtt.part import DeviceState, mqtt_part
from device.realtime.models import OpenAIRealtimeModel
from device.session import RealtimeSession


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Broker:
    def __init__(self, directory: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.conf = directory / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            "allow_anonymous true",
            "log_type error",
            f"log_dest file {directory / 'mosquitto.log'}",
            "max_keepalive 65535",
            "set_tcp_nodelay true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)])
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.005)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def device_table() -> tuple[CommandTable, DeviceState]:
    """One appliance's command surface as the service builds it: the real command table and
    state over a real (never connected) session; only the model connection is left out."""
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    table = CommandTable(session)
    return table, DeviceState(table, version="bench")


async def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not reached in {timeout} s: {what}")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def _operator(port: int, topic: str) -> AsyncIterator[tuple[aiomqtt.Client, list[Any]]]:
    got: list[tuple[float, str, bytes]] = []
    client = aiomqtt.Client(
        "127.0.0.1", port, identifier=f"op-{secrets.token_hex(4)}", socket_options=NODELAY
    )
    async with client as c:
        await c.subscribe(topic, qos=1)

        async def pump() -> None:
            async for m in c.messages:
                got.append((time.perf_counter(), m.topic.value, bytes(m.payload or b"")))

        task = asyncio.create_task(pump())
        try:
            yield c, got
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def _latency(port: int, ids: list[str], commands: int) -> tuple[list[float], float]:
    samples: list[float] = []
    async with _operator(port, "voice-device/+/reply") as (client, got):
        for n in range(commands):
            device = ids[n % len(ids)]
            before = len(got)
            t0 = time.perf_counter()
            await client.publish(
                f"voice-device/{device}/command", json.dumps({"cmd": "status", "id": n}), qos=1
            )
            await _wait(lambda b=before: len(got) > b, 10, "a reply")
            samples.append((got[before][0] - t0) * 1000)
        before = len(got)
        t0 = time.perf_counter()
        await client.publish("voice-device/all/command", b'{"cmd":"status","id":"all"}', qos=1)
        await _wait(lambda: len(got) - before >= len(ids), 30, "every reply")
        fleet_ms = (got[-1][0] - t0) * 1000
    return samples, fleet_ms


async def _ticker(lags: list[float]) -> None:
    """What a 5 ms audio timer on the same loop would see: how late each tick wakes."""
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append((time.perf_counter() - t0) * 1000 - 5)


async def _restart(broker: Broker, bridges: list[MqttBridge]) -> dict[str, float]:
    lags: list[float] = []
    ticker = asyncio.create_task(_ticker(lags))
    try:
        result = await _restart_timed(broker, bridges)
    finally:
        ticker.cancel()
    return {
        **result,
        "lag_median_ms": median(lags),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": max(lags),
    }


async def _restart_timed(broker: Broker, bridges: list[MqttBridge]) -> dict[str, float]:
    await asyncio.to_thread(broker.stop)
    await _wait(lambda: not any(b.connected for b in bridges), 30, "every bridge disconnected")
    await asyncio.to_thread(broker.start)
    t0 = time.perf_counter()
    back: dict[int, float] = {}
    while len(back) < len(bridges):
        now = (time.perf_counter() - t0) * 1000
        for i, b in enumerate(bridges):
            if i not in back and b.connected:
                back[i] = now
        if time.perf_counter() - t0 > 120:
            raise RuntimeError("bridges did not all come back in 120 s")
        await asyncio.sleep(0.002)
    times = sorted(back.values())
    per_window = max(sum(1 for u in times if t <= u < t + 100) for t in times)
    async with _operator(broker.port, "voice-device/+/availability") as (_, got):
        await _wait(
            lambda: sum(p == b"online" for _, _, p in got) >= len(bridges),
            30,
            "every availability retained online again",
        )
    return {
        "all_ms": times[-1],
        "first_ms": times[0],
        "median_ms": median(times),
        "p99_ms": percentile(times, 99),
        "per_100ms": per_window,
    }


async def _run(devices: int, commands: int) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    broker = Broker(work)
    broker.start()
    try:
        ids = [f"bench{n:04d}" for n in range(devices)]
        tables = [device_table() for _ in ids]
        gc.collect()
        rss0 = _rss_kib()
        async with contextlib.AsyncExitStack() as stack:
            bridges = []
            for device_id, (table, state) in zip(ids, tables, strict=True):
                config = MqttConfig.from_table(
                    {"host": "127.0.0.1", "port": broker.port, "device_id": device_id}
                )
                bridge = await stack.enter_async_context(mqtt_part(config, table, state))
                assert bridge is not None
                bridges.append(bridge)
            await _wait(lambda: all(b.connected for b in bridges), 120, "all connected")
            await asyncio.sleep(1.0)  # discovery and state published
            gc.collect()
            per_bridge_kib = (_rss_kib() - rss0) / devices
            samples, fleet_ms = await _latency(broker.port, ids, commands)
            restart = await _restart(broker, bridges)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    n = f"{devices} bridges"
    return [
        Row(
            "fleet: command → reply (one device)",
            median(samples),
            percentile(samples, 99),
            "ms",
            note=f"{len(samples)} sequential commands, {n} on one loop",
        ),
        Row("fleet: voice-device/all/command → every reply", fleet_ms, None, "ms", note=n),
        Row(
            "fleet: broker restart → all back online",
            restart["all_ms"],
            None,
            "ms",
            note=f"first {restart['first_ms']:.0f} ms; backoff 1 s first, jittered 0.5-1x",
        ),
        Row(
            "fleet: broker restart → each bridge back",
            restart["median_ms"],
            restart["p99_ms"],
            "ms",
            note=f"at most {restart['per_100ms']:.0f} of {devices} reconnects in any 100 ms window",
        ),
        Row(
            "fleet: event-loop lag while all reconnect",
            restart["lag_median_ms"],
            restart["lag_p99_ms"],
            "ms",
            note=f"a 5 ms timer on the bridges' loop; max "
            f"{restart['lag_max_ms']:.1f} ms with {n} (a device runs one)",
        ),
        Row(
            "fleet: memory per bridge (RSS growth, connected)", per_bridge_kib, None, "KiB", note=n
        ),
    ]


def rows(devices: int = 200, commands: int = 1000) -> list[Row]:
    logging.getLogger("device.mqtt").setLevel(logging.ERROR)  # 200 "lost the broker" lines
    return uvloop.run(_run(devices, commands))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--commands", type=int, default=1000)
    args = p.parse_args(argv)
    print(table(rows(args.devices, args.commands)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
