"""Issue 13 rows 1, 7 and 8 at the edges proto owns: no handshake redirects, one deadline on a
credential fetch (service and doctor), URLs shown as scheme://host:port only, and a redaction
filter that covers every logger once it sits on the root handler."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from creds import fresh_credential

from device.config import parse_config
from device.credsource import make_provider
from device.devtools.simulator import Simulator
from device.doctor import _check_credential
from device.realtime.credentials import Credential, parse_credential
from device.realtime.errors import ConnectError, CredentialError, CredentialSourceError
from device.realtime.models import OpenAIRealtimeModel
from device.redact import REDACT, install_on_root, public_url, register_url
from device.transport import open_connection

TOKEN = "edge-test-SECRET-55"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_handshake_redirect_is_a_connect_error_and_is_not_followed(status: int) -> None:
    async with Simulator(token=TOKEN) as target, Simulator(token=TOKEN) as endpoint:
        secret_path = "/leak/PATH-SECRET?sig=QUERY-SECRET"
        endpoint.redirect_next(f"ws://127.0.0.1:{target.port}{secret_path}", status)
        with pytest.raises(ConnectError) as info:
            cred = fresh_credential(TOKEN, minutes=5)
            await open_connection(OpenAIRealtimeModel(url=endpoint.url), cred)
        message = str(info.value)
        assert f"HTTP {status}" in message and f"ws://127.0.0.1:{target.port}" in message
        assert "SECRET" not in message
        assert target.connections == 0 and target.auth_headers == []  # the key went nowhere


@contextlib.contextmanager
def trickling_backend(seconds: float) -> Iterator[str]:
    """A credential backend that answers 200 and then one byte per 0.25 s for ``seconds``."""
    stop = threading.Event()

    class Trickle(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            end = time.monotonic() + seconds
            with contextlib.suppress(OSError):
                while time.monotonic() < end and not stop.is_set():
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    stop.wait(0.25)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/credential/PATH-SECRET"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


async def test_a_trickling_backend_hits_one_overall_deadline() -> None:
    with trickling_backend(30.0) as url:
        config = parse_config(f'[credential]\nsource = "url"\nurl = "{url}"\ntimeout_s = 1.0')
        started = time.monotonic()
        with pytest.raises(CredentialSourceError, match="within 1 s") as info:
            await make_provider(config)()
        assert time.monotonic() - started < 3.0
    assert "SECRET" not in str(info.value) and "/credential" not in str(info.value)


def test_doctor_gives_up_on_a_trickling_backend_within_its_deadline() -> None:
    with trickling_backend(30.0) as url:
        config = parse_config(f'[credential]\nsource = "url"\nurl = "{url}"\ntimeout_s = 1.0')
        started = time.monotonic()
        ok, text = _check_credential(config)
        assert time.monotonic() - started < 3.0
    assert not ok and "1 s" in text and "SECRET" not in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("wss://user:pw@relay.example:8443/v1/PATH-SECRET?key=Q#frag", "wss://relay.example:8443"),
        ("wss://relay.example/signed/PATH-SECRET", "wss://relay.example"),
        ("ws://[::1]:9000/x/PATH-SECRET", "ws://[::1]:9000"),
        ("https://backend.example/cred/PATH-SECRET", "https://backend.example"),
        ("wss://relay.example:99999/x", "wss://relay.example"),
    ],
)
def test_a_url_is_shown_as_scheme_host_port_only(url: str, shown: str) -> None:
    assert public_url(url) == shown
    expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    if url.startswith("wss://") and "99999" not in url:
        cred = parse_credential({"kind": "url", "url": url, "expiresAt": expires})
        assert "SECRET" not in repr(cred) and shown in repr(cred)


def test_the_root_handler_filter_redacts_every_logger() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_on_root()
        install_on_root()  # idempotent
        assert handler.filters.count(REDACT) == 1
        register_url("wss://relay.example/signed/PATH-SECRET-9?sig=QUERY-SECRET-9")
        logger = logging.getLogger("some.library.nobody.configured")
        logger.setLevel(logging.INFO)
        logger.info("GET %s HTTP/1.1", "/signed/PATH-SECRET-9?sig=QUERY-SECRET-9")
        logger.info("dialling wss://relay.example/signed/PATH-SECRET-9?sig=QUERY-SECRET-9")
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "GET [redacted] HTTP/1.1" in text and "dialling" in text
    assert "SECRET" not in text


async def test_a_refused_connection_names_only_scheme_host_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"ws://127.0.0.1:{port}/signed/PATH-SECRET?sig=Q-SECRET"
    expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    cred = parse_credential({"kind": "url", "url": url, "expiresAt": expires})
    with pytest.raises(ConnectError) as info:
        await asyncio.wait_for(open_connection(OpenAIRealtimeModel(), cred), 10)
    assert f"ws://127.0.0.1:{port}" in str(info.value) and "SECRET" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "shown", "why"),
    [
        ("ws://relay.example:8080/signed/PATH-SECRET?sig=Q-SECRET",
         "credential.url (ws://relay.example:8080)", "only allowed to a loopback host"),
        ("https://relay.example/signed/PATH-SECRET?sig=Q-SECRET",
         "credential.url (https://relay.example)", "expected a wss:// URL"),
        ("ws://[relay/PATH-SECRET?sig=Q-SECRET", "credential.url: ",
         "not a valid URL"),
    ],
)  # fmt: skip
async def test_a_bad_url_credential_is_a_credential_error_naming_its_host_only(
    url: str, shown: str, why: str
) -> None:
    """A ``url`` credential built without :func:`parse_credential` (a custom provider) is
    still checked before dialling; the error is the credential's, not ``model.url``'s."""
    cred = Credential("url", url, datetime.now(UTC) + timedelta(minutes=5))
    with pytest.raises(CredentialError) as info:
        await open_connection(OpenAIRealtimeModel(url="wss://api.example/v1/realtime"), cred)
    message = str(info.value)
    assert message.startswith(shown) and why in message
    assert "model.url" not in message and "SECRET" not in message
