"""The appliance on an MQTT broker: retained availability and state, events, commands.

The bridge never holds up its caller: :meth:`MqttBridge.publish_event` and
:meth:`MqttBridge.state_changed` only queue (bounded; the oldest event is dropped, counted and
logged), and one background loop owns the broker connection, reconnecting with jittered,
capped exponential backoff. A broker that is down, lost or refusing us costs one log line per
outage, never a local feature.

Topics under ``prefix`` (``voice-device/<device_id>``):

``availability``  retained ``online``/``offline`` (``offline`` is the last will)
``state``         retained JSON from the ``state`` callable, republished on every change
``event``         the control socket's events (transcripts and text only if enabled)
``command``       ``{"cmd": …, "id": …}`` (also ``voice-device/all/command``), QoS 1
``reply``         the command table's reply plus ``id``, QoS 1
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiomqtt

from ..realtime.errors import VoiceDeviceError
from .config import FLEET_ROOT, MqttConfig
from .discovery import clearing_messages, discovery_messages

log = logging.getLogger("device.mqtt")

Dispatch = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
StateFn = Callable[[], Mapping[str, Any]]

#: Small messages go out at once (Nagle + delayed ACK cost ~40 ms per hop otherwise).
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
MAX_PAYLOAD = 64 * 1024
MAX_ID = 128
ALL_COMMANDS = f"{FLEET_ROOT}/all/command"
#: Events that are personal data: published only with ``publish_transcripts = true``.
PRIVATE_EVENTS = frozenset({"transcript", "text"})
#: Events that change the retained state: the bridge republishes it on its own.
STATE_EVENTS = frozenset({"status", "muted", "speaking", "faults", "usage"})


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt ``n``: ``first·2ⁿ`` capped at ``cap``, then a random
    half to whole of that, so a fleet that lost its broker together does not return together."""

    first: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.cap, self.first * 2.0 ** min(attempt, 32))
        return base * rng.uniform(0.5, 1.0)


def parse_command(payload: bytes, prefix: str) -> tuple[dict[str, Any] | None, Any, str | None]:
    """``(request, id, error)``: the request to dispatch (without ``id``), or the error."""
    if len(payload) > MAX_PAYLOAD:
        return None, None, f"payload larger than {MAX_PAYLOAD} bytes"
    try:
        request = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None, 'malformed JSON: send one object like {"cmd": "status", "id": "1"}'
    if not isinstance(request, dict):
        return None, None, 'expected a JSON object like {"cmd": "status", "id": "1"}'
    ident = request.pop("id", None)
    if ident is not None and (
        isinstance(ident, bool)
        or not isinstance(ident, str | int)
        or (isinstance(ident, str) and len(ident) > MAX_ID)
    ):
        return None, None, f"'id' must be a string (up to {MAX_ID} characters) or an integer"
    if request.get("cmd") == "subscribe":
        return None, ident, f"subscribe: not over MQTT; events are published on {prefix}/event"
    return request, ident, None


def _encode(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class MqttBridge:
    """Publish the appliance on ``config``'s broker and answer its commands with ``dispatch``.

    ``async with MqttBridge(config, dispatch, state, version=…) as bridge:`` — entering starts
    the background loop (it returns at once, connected or not); leaving publishes ``offline``
    if connected and disconnects cleanly.
    """

    def __init__(
        self,
        config: MqttConfig,
        dispatch: Dispatch,
        state: StateFn,
        *,
        version: str = "",
        queue_size: int = 256,
        max_commands: int = 8,
        backoff: Backoff = Backoff(),
        rng: random.Random | None = None,
    ) -> None:
        if not config.enabled or not config.device_id:
            raise VoiceDeviceError("mqtt: the bridge needs mqtt.host and a device id")
        self.config = config
        self._dispatch = dispatch
        self._state = state
        self.version = version
        self.backoff = backoff
        self._rng = rng or random.Random()
        self._max_commands = max_commands
        self._events: collections.deque[bytes] = collections.deque(maxlen=queue_size)
        self._replies: collections.deque[bytes] = collections.deque(maxlen=queue_size)
        self._wake = asyncio.Event()
        self._state_dirty = True
        self._client: aiomqtt.Client | None = None
        self._group: asyncio.TaskGroup | None = None
        self._commands: set[asyncio.Task[None]] = set()
        self._last_kind: str | None = None
        #: Connected to the broker right now.
        self.connected = False
        #: Connection attempts and successful connections so far.
        self.attempts = 0
        self.connects = 0
        #: Events and replies dropped because the queue was full.
        self.dropped = 0
        p = config.prefix
        self.topics = {
            k: f"{p}/{k}" for k in ("availability", "state", "event", "command", "reply")
        }

    # ------------------------------------------------------------------ caller side

    def publish_event(self, event: Mapping[str, Any]) -> None:
        """Queue one control-socket event; never blocks. Transcripts only if enabled."""
        kind = event.get("event")
        if kind in PRIVATE_EVENTS and not self.config.publish_transcripts:
            return
        self._push(self._events, _encode(event))
        if kind in STATE_EVENTS:
            self._state_dirty = True

    def state_changed(self) -> None:
        """Republish the retained state (coalesced: the latest state is sent once)."""
        self._state_dirty = True
        self._wake.set()

    def _push(self, queue: collections.deque[bytes], payload: bytes) -> None:
        if len(queue) == queue.maxlen:
            self.dropped += 1
            if self.dropped in (1, 10, 100, 1000) or self.dropped % 10000 == 0:
                log.warning(
                    "mqtt: outgoing queue full (broker slow or away): dropped the oldest "
                    "message, %d dropped so far",
                    self.dropped,
                )
        queue.append(payload)
        self._wake.set()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> MqttBridge:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._runner = self._group.create_task(self._run(), name="mqtt-bridge")
        return self

    async def __aexit__(self, *exc: object) -> None:
        client = self._client
        if client is not None and self.connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    client.publish(self.topics["availability"], b"offline", qos=1, retain=True),
                    2.0,
                )
        self._runner.cancel()
        for task in list(self._commands):
            task.cancel()
        assert self._group is not None
        await self._group.__aexit__(None, None, None)
        self.connected = False

    async def _run(self) -> None:
        attempt = 0
        while True:
            connects = self.connects
            self.attempts += 1
            network = False
            try:
                await self._connection()
                reason, network = "the broker closed the connection", True
            except aiomqtt.MqttError as exc:
                reason, network = str(exc) or type(exc).__name__, True
            except VoiceDeviceError as exc:  # password file missing, unreadable CA file
                reason = str(exc)
            except Exception as exc:  # a bug must not take the appliance down
                log.exception("mqtt: bridge failed")
                reason = type(exc).__name__
            self.connected = False
            self._client = None
            if self.connects > connects:
                attempt = 0
            delay = self.backoff.delay(attempt, self._rng)
            attempt += 1
            self._report(reason, network=network, lost=self.connects > connects, delay=delay)
            await asyncio.sleep(delay)

    def _report(self, reason: str, *, network: bool, lost: bool, delay: float) -> None:
        """One clear line per outage, and another only if the kind of failure changes (the
        broker now refuses the credentials, say). Never the password."""
        password = None
        with contextlib.suppress(VoiceDeviceError):
            password = self.config.password()
        if password:
            reason = reason.replace(password, "[redacted]")
        kind = "unreachable" if network else reason
        if any(f"code:{rc}]" in reason for rc in (4, 5, 134, 135)):
            who = f"user {self.config.username!r}" if self.config.username else "anonymous"
            reason = f"{reason} (the broker refused the credentials of {who})"
            kind = "credentials"
        if lost or kind != self._last_kind:
            verb = "lost the broker" if lost else "cannot connect to the broker"
            log.warning(
                "mqtt: %s at %s: %s; the device carries on locally and retries in the "
                "background (backoff up to %g s)",
                verb,
                self.config.where,
                reason,
                self.backoff.cap,
            )
        else:
            log.debug("mqtt: still cannot connect (%s); next try in %.1f s", reason, delay)
        self._last_kind = kind

    # ------------------------------------------------------------------ connected

    def _client_for(self) -> aiomqtt.Client:
        c = self.config
        return aiomqtt.Client(
            c.host,
            c.broker_port,
            username=c.username or None,
            password=c.password(),
            identifier=f"voice-device-{c.device_id}",
            will=aiomqtt.Will(self.topics["availability"], b"offline", qos=1, retain=True),
            keepalive=c.keepalive,
            tls_context=c.tls_context(),
            timeout=10.0,
            logger=logging.getLogger("device.mqtt.client"),
            socket_options=NODELAY,
        )

    async def _connection(self) -> None:
        client = self._client_for()
        async with client:
            self._client = client
            self.connected = True
            self.connects += 1
            log.info(
                "mqtt: connected to %s as %s (topics %s/…)",
                self.config.where,
                self.config.device_id,
                self.config.prefix,
            )
            self._last_kind = None
            await client.subscribe([(self.topics["command"], 1), (ALL_COMMANDS, 1)])
            await client.publish(self.topics["availability"], b"online", qos=1, retain=True)
            await self._announce(client)
            self.state_changed()
            tasks = {
                asyncio.create_task(self._receive(client)),
                asyncio.create_task(self._send(client)),
            }
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                task.result()  # raise the reason the connection ended

    async def _announce(self, client: aiomqtt.Client) -> None:
        if self.config.discovery:
            messages = discovery_messages(self.config, self.version)
        else:
            messages = clearing_messages(self.config)
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1, retain=True)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while True:
                if self._state_dirty:
                    self._state_dirty = False
                    try:
                        await self._publish_state(client)
                    except BaseException:
                        self._state_dirty = True
                        raise
                elif self._replies:
                    await self._publish_head(client, self._replies, self.topics["reply"], 1)
                elif self._events:
                    await self._publish_head(client, self._events, self.topics["event"], 0)
                else:
                    break

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        try:
            # Every key the discovery templates read is there (the table leaves out no faults).
            state = {"faults": [], "usage": {}, "version": self.version, **self._state()}
        except Exception:
            log.exception("mqtt: the state callable failed; state not published")
            return
        await client.publish(self.topics["state"], _encode(state), qos=1, retain=True)

    @staticmethod
    async def _publish_head(
        client: aiomqtt.Client, queue: collections.deque[bytes], topic: str, qos: int
    ) -> None:
        payload = queue[0]
        await client.publish(topic, payload, qos=qos)
        if queue and queue[0] is payload:
            queue.popleft()

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if message.retain:
                log.warning("mqtt: ignoring a retained command on %s", message.topic.value)
                continue
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            if len(self._commands) >= self._max_commands:
                reply = {"ok": False, "error": "busy: too many commands in progress"}
                self._answer(reply, parse_command(data, self.config.prefix)[1])
                continue
            assert self._group is not None
            task = self._group.create_task(self._command(data))
            self._commands.add(task)
            task.add_done_callback(self._commands.discard)

    async def _command(self, payload: bytes) -> None:
        request, ident, error = parse_command(payload, self.config.prefix)
        if request is None:
            reply: dict[str, Any] = {"ok": False, "error": error}
        else:
            cmd = str(request.get("cmd"))[:40]
            try:
                reply = dict(await self._dispatch(request))
            except Exception as exc:  # never leave a command without a reply
                log.exception("mqtt: command %r failed", cmd)
                reply = {"ok": False, "error": f"{cmd} failed: {type(exc).__name__}"}
            # A command may have changed the state: republish it (ahead of the reply, so who
            # gets the reply finds the retained state already current).
            self._state_dirty = True
        self._answer(reply, ident)

    def _answer(self, reply: dict[str, Any], ident: Any) -> None:
        self._push(self._replies, _encode({**reply, "id": ident}))
