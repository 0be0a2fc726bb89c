"""The control socket: JSON lines over a real Unix socket, driving a real RealtimeSession."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from waiting import until

from device.cli import main as cli_main
from device.commands import Command, CommandTable
from device.control import IDLE_TIMEOUT_S, ControlServer, request
from device.devtools.simulator import Simulator
from device.health import Health
from device.realtime.credentials import Credential
from device.realtime.errors import VoiceDeviceError
from device.realtime.models import OpenAIRealtimeModel
from device.session import RealtimeSession, ReconnectPolicy


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[RealtimeSession, Path, ControlServer]]:
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    path = tmp_path / "run" / "control.sock"
    server = ControlServer(CommandTable(session, Health()), path, mode=0o660)
    await server.start()
    try:
        yield session, path, server
    finally:
        await server.close()


async def open_client(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(str(path), limit=1 << 20)


async def ask(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes
) -> dict[str, Any]:
    writer.write(line)
    await writer.drain()
    reply = json.loads(await asyncio.wait_for(reader.readline(), 5))
    assert isinstance(reply, dict)
    return reply


async def test_socket_mode_and_status(served: tuple[RealtimeSession, Path, ControlServer]) -> None:
    session, path, _ = served
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    reader, writer = await open_client(path)
    assert await ask(reader, writer, b'{"cmd":"status"}\n') == {
        "ok": True,
        "status": "disconnected",
        "muted": False,
    }
    assert await ask(reader, writer, b'{"cmd":"mute"}\n') == {"ok": True, "muted": True}
    assert session.muted
    assert (await ask(reader, writer, b'{"cmd":"status"}\n'))["muted"] is True
    assert await ask(reader, writer, b'{"cmd":"unmute"}\n') == {"ok": True, "muted": False}
    writer.close()


async def test_malformed_lines_get_errors_and_the_connection_survives(
    served: tuple[RealtimeSession, Path, ControlServer],
) -> None:
    _, path, _ = served
    reader, writer = await open_client(path)
    for line, needle in [
        (b"this is not json\n", "malformed JSON"),
        (b"[1,2,3]\n", "JSON object"),
        (b'{"nocmd": 1}\n', "missing 'cmd'"),
        (b'{"cmd": "reboot"}\n', "unknown cmd"),
        (b'{"cmd": "send_message"}\n', "'text'"),
        (b'{"cmd": "send_message", "text": "hi"}\n', "not connected"),
        (b'{"cmd": "connect", "credential": "abc"}\n', "credential"),
        (b'{"cmd": "connect", "credential": {"kind": "magic"}}\n', "credential.kind"),
        (b"\xff\xfe\n", "malformed JSON"),
    ]:
        reply = await ask(reader, writer, line)
        assert reply["ok"] is False and needle in reply["error"], (line, reply)
    assert (await ask(reader, writer, b'{"cmd":"status"}\n'))["ok"] is True
    writer.close()


async def test_huge_line_is_rejected_once_and_the_next_line_works(
    served: tuple[RealtimeSession, Path, ControlServer],
) -> None:
    _, path, _ = served
    reader, writer = await open_client(path)
    writer.write(b'{"cmd":"status","pad":"' + b"x" * 1_000_000 + b'"}\n')
    await writer.drain()
    reply = json.loads(await asyncio.wait_for(reader.readline(), 5))
    assert reply["ok"] is False and "longer than" in reply["error"]
    assert (await ask(reader, writer, b'{"cmd":"status"}\n'))["ok"] is True
    writer.close()


async def test_hundred_subscribers_all_see_events_and_leaving_midstream_is_harmless(
    served: tuple[RealtimeSession, Path, ControlServer],
) -> None:
    session, path, server = served
    clients = [await open_client(path) for _ in range(100)]
    for reader, writer in clients:
        reply = await ask(reader, writer, b'{"cmd":"subscribe"}\n')
        assert reply == {"ok": True, "status": "disconnected", "muted": False}
    # ten clients vanish without a word, mid-stream
    for _, writer in clients[:10]:
        writer.transport.abort()
    session.mute()
    session.unmute()
    for reader, _ in clients[10:]:
        first = json.loads(await asyncio.wait_for(reader.readline(), 5))
        second = json.loads(await asyncio.wait_for(reader.readline(), 5))
        assert (first, second) == (
            {"event": "muted", "muted": True},
            {"event": "muted", "muted": False},
        )
    for _, writer in clients[10:]:
        writer.close()
    await asyncio.sleep(0.2)
    assert server.clients == 0
    assert session._listeners == []  # every subscriber unsubscribed


async def test_blocking_client_helper(served: tuple[RealtimeSession, Path, ControlServer]) -> None:
    _, path, _ = served
    reply = await asyncio.to_thread(request, path, {"cmd": "status"})
    assert reply["status"] == "disconnected"


async def test_refuses_to_replace_a_live_socket(
    served: tuple[RealtimeSession, Path, ControlServer],
) -> None:
    session, path, _ = served
    with pytest.raises(Exception, match="in use"):
        await ControlServer(CommandTable(session), path).start()


async def test_a_subscriber_that_stops_reading_cannot_hold_up_shutdown(tmp_path: Path) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    path = tmp_path / "control.sock"
    server = ControlServer(CommandTable(session), path)
    await server.start()
    # A frozen kiosk: subscribes, then never reads while events pile up.
    frozen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    frozen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    frozen.connect(str(path))
    frozen.sendall(b'{"cmd":"subscribe"}\n')
    await asyncio.sleep(0.1)
    for i in range(20000):
        session.mute() if i % 2 else session.unmute()
        if i % 500 == 0:
            await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(server.close(), 5)
    assert asyncio.get_running_loop().time() - started < 2.5
    assert not path.exists()
    frozen.close()


async def test_a_second_instance_that_fails_leaves_the_live_socket_alone(
    served: tuple[RealtimeSession, Path, ControlServer],
) -> None:
    session, path, _ = served
    second = ControlServer(CommandTable(session), path)
    with pytest.raises(VoiceDeviceError, match="in use"):
        await second.start()
    await second.close()  # its cleanup, as the service's finally block runs it
    assert path.exists()
    assert (await asyncio.to_thread(request, path, {"cmd": "status"}, 5))["ok"]


async def test_subscribers_learn_when_a_device_fault_starts_and_ends(
    served: tuple[RealtimeSession, Path, ControlServer],
) -> None:
    _, path, server = served
    health = server.table.health
    assert isinstance(health, Health)
    reader, writer = await open_client(path)
    await ask(reader, writer, b'{"cmd":"subscribe"}\n')
    message = 'capture device "plughw:CARD=usbmic" not available: No such device'
    health.set_fault("capture", message)

    async def event() -> dict[str, Any]:
        line = json.loads(await asyncio.wait_for(reader.readline(), 5))
        assert isinstance(line, dict)
        return line

    assert await event() == {"event": "error", "code": "audio", "message": message}
    assert await event() == {"event": "faults", "faults": [message]}
    # The same fault again is not news; its end is.
    health.set_fault("capture", message)
    health.set_fault("capture", None)
    assert await event() == {"event": "faults", "faults": []}
    writer.close()


async def test_connect_answers_ok_only_once_connected(tmp_path: Path) -> None:
    async def provider() -> Credential:
        return Credential("token", "fake-control-key", datetime.now(UTC) + timedelta(hours=1))

    # Nothing listens on port 9: the connect fails and the session keeps retrying.
    session = RealtimeSession(
        OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"),
        credential_provider=provider,
        auto_reconnect=True,
        reconnect_policy=ReconnectPolicy(first=0.5),
    )
    path = tmp_path / "control.sock"
    server = ControlServer(CommandTable(session), path)
    await server.start()
    try:
        reader, writer = await open_client(path)
        reply = await ask(reader, writer, b'{"cmd":"connect"}\n')
        assert reply["ok"] is False
        assert reply["status"] == "reconnecting"
        assert "retrying in the background" in reply["error"]
        assert "127.0.0.1:9" in reply["error"]  # the reason, not just "failed"
        writer.close()
    finally:
        await session.disconnect()
        await server.close()


async def test_cli_reads_a_credential_from_a_file_or_stdin_not_only_the_command_line(
    served: tuple[RealtimeSession, Path, ControlServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, path, _ = served
    # A credential of an unknown kind: the service's answer proves what the CLI sent.
    wrong = '{"kind": "magic", "token": "fake-cli-key", "expiresAt": "2099-01-01T00:00:00Z"}'
    cred_file = tmp_path / "credential.json"
    cred_file.write_text(wrong)
    argv = ["connect", "--socket", str(path), "--credential", f"@{cred_file}"]
    assert await asyncio.to_thread(cli_main, argv) == 1
    assert "credential.kind" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(wrong))
    argv = ["connect", "--socket", str(path), "--credential", "-"]
    assert await asyncio.to_thread(cli_main, argv) == 1
    assert "credential.kind" in capsys.readouterr().err
    argv = ["connect", "--socket", str(path), "--credential", f"@{tmp_path / 'missing.json'}"]
    assert await asyncio.to_thread(cli_main, argv) == 2
    assert "missing.json" in capsys.readouterr().err


async def test_connect_with_a_credential_while_a_connect_is_under_way_says_it_was_not_used(
    tmp_path: Path,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accepts the TCP connection, never answers the handshake

    tcp = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    session = RealtimeSession(OpenAIRealtimeModel(url=f"ws://127.0.0.1:{port}/v1/realtime"))
    path = tmp_path / "control.sock"
    server = ControlServer(CommandTable(session), path)
    await server.start()
    cred = {"kind": "token", "token": "fake-control-key", "expiresAt": "2099-01-01T00:00:00Z"}
    pending = asyncio.create_task(session.connect(cred))  # e.g. the connect button
    try:
        await asyncio.sleep(0.2)
        assert session.status == "connecting"
        reader, writer = await open_client(path)
        line = json.dumps({"cmd": "connect", "credential": cred}).encode() + b"\n"
        reply = await ask(reader, writer, line)
        assert reply["ok"] is False and "credential was not used" in reply["error"]
        writer.close()
    finally:
        await session.disconnect()
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await server.close()
        tcp.close()


# ---------------------------------------------------------------- hostile local clients


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def raw_client(path: Path, rcvbuf: int = 4096) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(str(path))
    return sock


def dropped(sock: socket.socket) -> bool:
    """The server closed or aborted this connection (after whatever it had sent)."""
    sock.setblocking(False)
    try:
        while chunk := sock.recv(1 << 20):
            del chunk
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    return True


async def test_a_subscriber_that_never_reads_is_dropped_and_memory_stays_bounded(
    tmp_path: Path,
) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    health = Health()
    path = tmp_path / "control.sock"
    async with ControlServer(CommandTable(session, health), path) as server:
        frozen = raw_client(path)
        frozen.sendall(b'{"cmd":"subscribe"}\n')
        await until(lambda: server.clients == 1 and bool(server._clients), 5, "subscribed")
        await until(lambda: any(c.subscribed for c in server._clients.values()), 5, "streaming")
        before = rss_mb()
        # 400 errors of 1 MB each (as a hostile model server's error events would arrive).
        for i in range(400):
            health.set_fault("capture", f"{i:04d}" + "x" * (1 << 20))
            if i % 20 == 0:
                await asyncio.sleep(0)
        grown = rss_mb() - before
        await until(lambda: server.clients == 0, 5, "the frozen subscriber dropped")
        assert grown < 40, f"RSS grew {grown:.0f} MB for one frozen subscriber"
        assert await asyncio.to_thread(dropped, frozen)
        frozen.close()
        # The service is fine: a fresh client is answered.
        assert (await asyncio.to_thread(request, path, {"cmd": "status"}, 5))["ok"]


async def test_a_subscriber_that_stalls_with_a_small_backlog_is_dropped_at_the_deadline(
    tmp_path: Path,
) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    health = Health()
    path = tmp_path / "control.sock"
    server = ControlServer(CommandTable(session, health), path, write_deadline=0.5)
    async with server:
        frozen = raw_client(path)
        frozen.sendall(b'{"cmd":"subscribe"}\n')
        await until(lambda: any(c.subscribed for c in server._clients.values()), 5, "streaming")
        for i in range(8):  # ~ 800 KB: under the byte bound, more than the socket buffers
            health.set_fault("capture", f"{i}" + "y" * 50_000)
        assert server.clients == 1  # not over the byte bound ...
        await until(lambda: server.clients == 0, 5, "dropped after the write deadline")
        frozen.close()


async def test_a_silent_connection_is_closed_after_the_idle_timeout(tmp_path: Path) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    path = tmp_path / "control.sock"
    async with ControlServer(CommandTable(session), path, idle_timeout=0.5) as server:
        reader, writer = await open_client(path)
        assert (await ask(reader, writer, b'{"cmd":"status"}\n'))["ok"]  # a live client ...
        assert await asyncio.wait_for(reader.read(), 5) == b""  # ... then silent: closed
        sub_reader, sub_writer = await open_client(path)
        await ask(sub_reader, sub_writer, b'{"cmd":"subscribe"}\n')
        await asyncio.sleep(1.0)  # a subscriber only listens: never timed out
        assert server.clients == 1
        session.mute()
        assert json.loads(await asyncio.wait_for(sub_reader.readline(), 5))["event"] == "muted"
        writer.close()
        sub_writer.close()


async def test_a_fresh_status_is_answered_while_200_idle_clients_are_connected(
    tmp_path: Path,
) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    path = tmp_path / "control.sock"
    async with ControlServer(CommandTable(session), path) as server:
        idle = [await asyncio.to_thread(raw_client, path) for _ in range(200)]
        await until(lambda: server.clients >= 128, 10, "idle clients accepted")
        started = time.monotonic()
        reply = await asyncio.to_thread(request, path, {"cmd": "status"}, 15)
        assert reply["ok"], reply
        assert time.monotonic() - started < IDLE_TIMEOUT_S + 2
        for sock in idle:
            sock.close()


SYSTEM_PYTHON = "/usr/bin/python3"
NOBODY_STATUS = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"status"}\n')
print(s.makefile().readline().strip())
"""


async def test_one_user_at_the_cap_cannot_lock_out_another(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs root and setpriv to connect as a second user")
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    # tmp_path's parents are private to root: the socket goes where the other user can reach.
    run_dir = Path(tempfile.mkdtemp(prefix="vd-control-"))
    run_dir.chmod(0o755)
    path = run_dir / "control.sock"
    async with ControlServer(CommandTable(session), path, mode=0o666, max_clients=8) as server:
        # root fills its share with subscribers (which are never displaced)
        hogs = []
        for _ in range(8):
            reader, writer = await open_client(path)
            await ask(reader, writer, b'{"cmd":"subscribe"}\n')
            hogs.append(writer)
        reader, writer = await open_client(path)
        assert await ask(reader, writer, b'{"cmd":"status"}\n') == {
            "ok": False,
            "error": "too many control clients",
        }
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        proc = await asyncio.to_thread(
            subprocess.run,
            [*cmd, SYSTEM_PYTHON, "-c", NOBODY_STATUS, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["ok"] is True  # another user still gets in
        assert server.clients >= 8
        for w in hogs:
            w.close()
    shutil.rmtree(run_dir, ignore_errors=True)


async def test_connect_with_a_credential_while_connected_is_refused_not_ignored(
    tmp_path: Path,
) -> None:
    async with Simulator(token="fake-control-key") as sim:
        session = RealtimeSession(OpenAIRealtimeModel(url=sim.url))
        cred = {"kind": "token", "token": "fake-control-key", "expiresAt": "2099-01-01T00:00:00Z"}
        path = tmp_path / "control.sock"
        async with ControlServer(CommandTable(session), path):
            try:
                reader, writer = await open_client(path)
                line = json.dumps({"cmd": "connect", "credential": cred}).encode() + b"\n"
                assert (await ask(reader, writer, line))["ok"] is True
                other = {**cred, "token": "fake-other-key"}
                line = json.dumps({"cmd": "connect", "credential": other}).encode() + b"\n"
                reply = await ask(reader, writer, line)
                assert reply["ok"] is False
                assert "already connected" in reply["error"]
                assert "credential was not used" in reply["error"]
                assert "fake-other-key" not in reply["error"]
                assert session.status == "connected"
                # without a credential, connect while connected stays a harmless "ok"
                assert (await ask(reader, writer, b'{"cmd":"connect"}\n'))["ok"] is True
                writer.close()
            finally:
                await session.disconnect()


async def test_every_command_is_in_the_table_with_one_reply_shape(tmp_path: Path) -> None:
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    table = CommandTable(session, Health())
    assert set(table.commands) >= {
        "status", "connect", "disconnect", "mute", "unmute", "send_message", "subscribe", "forget"
    }  # fmt: skip
    assert await table.dispatch({"cmd": "mute"}) == {"ok": True, "muted": True}
    assert await table.dispatch({"cmd": "forget"}) == {"ok": True, "status": "disconnected"}
    bad = await table.dispatch({"cmd": "send_message", "text": 3})
    assert bad == {"ok": False, "error": "send_message: 'text' must be a non-empty string"}
    assert "unknown cmd 'nope'" in (await table.dispatch({"cmd": "nope"}))["error"]
    assert (await table.dispatch(["status"]))["ok"] is False
    reply = await table.dispatch({"cmd": "send_message", "text": "hi"})
    assert reply["ok"] is False and "connected" in reply["error"]


async def test_parts_can_add_commands_and_publish_events_to_subscribers(
    served: tuple[RealtimeSession, Path, ControlServer],
) -> None:
    _, path, server = served

    async def ping(_: CommandTable, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"ok": True, "pong": request.get("n")}

    server.table.register(Command("ping", "answers pong", ping))
    reader, writer = await open_client(path)
    assert await ask(reader, writer, b'{"cmd":"ping","n":3}\n') == {"ok": True, "pong": 3}
    sub_reader, sub_writer = await open_client(path)
    await ask(sub_reader, sub_writer, b'{"cmd":"subscribe"}\n')
    server.table.publish({"event": "wake", "model": "okay_nabu"})
    line = await asyncio.wait_for(sub_reader.readline(), 5)
    assert json.loads(line) == {"event": "wake", "model": "okay_nabu"}
    writer.close()
    sub_writer.close()
