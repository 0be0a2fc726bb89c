"""An independent MQTT client for tests: what an operator or Home Assistant would see."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
from waiting import until


class Watcher:
    """Every message on ``topics``, and the latest payload per topic."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[tuple[str, bytes, bool]] = []
        self.latest: dict[str, bytes] = {}

    def json(self, topic: str) -> Any:
        return json.loads(self.latest[topic])

    def on(self, topic: str) -> list[bytes]:
        return [p for t, p, _ in self.messages if t == topic]

    async def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 15) -> None:
        await until(predicate, timeout, what)

    async def ask(self, prefix: str, request: dict[str, Any], timeout: float = 15) -> Any:
        """Publish a command, return the reply carrying its id."""
        return await self.ask_raw(prefix, json.dumps(request).encode(), timeout)

    async def ask_raw(self, prefix: str, payload: bytes, timeout: float = 15) -> Any:
        """Publish ``payload`` on the command topic, return the next reply."""
        before = len(self.on(f"{prefix}/reply"))
        await self.client.publish(f"{prefix}/command", payload, qos=1)
        await self.wait(lambda: len(self.on(f"{prefix}/reply")) > before, "a reply", timeout)
        return json.loads(self.on(f"{prefix}/reply")[before])


@contextlib.asynccontextmanager
async def watch(
    port: int,
    *topics: str,
    username: str | None = None,
    password: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[Watcher]:
    client = aiomqtt.Client(
        "localhost" if tls else "127.0.0.1",
        port,
        username=username,
        password=password,
        tls_context=tls,
    )
    async with client:
        watcher = Watcher(client)
        for topic in topics:
            await client.subscribe(topic, qos=1)

        async def pump() -> None:
            async for m in client.messages:
                payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                watcher.messages.append((m.topic.value, payload, m.retain))
                watcher.latest[m.topic.value] = payload

        task = asyncio.create_task(pump())
        try:
            yield watcher
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
