"""The websocket edge: open an authenticated realtime connection with ``websockets``.

Everything protocol-shaped lives in :mod:`device.realtime`; this module only opens the socket
with the right headers and limits and turns handshake failures into our exceptions:

* 401/403 → :class:`~device.realtime.errors.AuthError` (``status`` set);
* a 3xx redirect → :class:`ConnectError` naming the status and the (redacted) location: the
  configured endpoint is the endpoint, a redirect is never followed (it would carry the key
  and the microphone elsewhere);
* any other HTTP status, DNS/TCP/TLS failure or timeout → :class:`ConnectError`;
* a ``url`` credential for a provider without signed URLs (xAI), or whose URL is not
  ``wss://`` (``ws://`` only to a loopback host) → :class:`CredentialError`.

Messages name the host and the failure, never the credential or a signed URL's query string.
"""

from __future__ import annotations

import logging

import websockets
from websockets.asyncio.client import ClientConnection, connect

from .realtime.credentials import Credential
from .realtime.errors import AuthError, ConfigError, ConnectError, CredentialError
from .realtime.models import RealtimeModel, check_endpoint
from .redact import REDACT, public_url, register_url

log = logging.getLogger("device.transport")

#: The open connection type, and the exception its ``send``/iteration raise once it is closed:
#: the session names these, never ``websockets`` itself.
Connection = ClientConnection
ConnectionClosed = websockets.exceptions.ConnectionClosed

#: Largest message accepted from the model; a bigger one closes the connection (1009) and the
#: session reconnects. Audio deltas are a few hundred ms (1 MiB of base64 is ~16 s of 24 kHz
#: PCM16) and session echoes are bounded by the model's context, so 1 MiB leaves ample room
#: while a hostile peer cannot make the device hold 16 MiB per message.
MAX_MESSAGE = 1024 * 1024
PING_INTERVAL = 10.0
PING_TIMEOUT = 10.0
OPEN_TIMEOUT = 10.0


class _NoRedirects(connect):
    """``websockets.connect`` that treats every 3xx answer as final (the library follows up to
    ``WEBSOCKETS_MAX_REDIRECTS`` by default and has no switch for it)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def _redirect_error(where: str, status: int, headers: object) -> ConnectError:
    location = getattr(headers, "get", lambda _k, _d=None: None)("Location", None)
    target = public_url(location) if isinstance(location, str) and location else "nowhere"
    return ConnectError(
        f"{where} answered HTTP {status} redirecting to {target}; redirects are not followed "
        f"(set model.url to the real endpoint)"
    )


def _check_credential_url(url: str) -> None:
    """:func:`check_endpoint` for a ``url`` credential: its error is the credential's, naming
    the URL as ``scheme://host:port`` (the path and query of a signed URL are secret)."""
    shown = public_url(url)
    try:
        check_endpoint(url, what="credential.url" + ("" if shown[0] == "(" else f" ({shown})"))
    except ConfigError as exc:
        raise CredentialError(str(exc)) from None


async def open_connection(
    model: RealtimeModel,
    credential: Credential,
    *,
    ping_interval: float | None = PING_INTERVAL,
    ping_timeout: float | None = PING_TIMEOUT,
    open_timeout: float = OPEN_TIMEOUT,
) -> ClientConnection:
    """Open the realtime websocket for ``model`` with ``credential``.

    A ``token`` credential goes in ``Authorization: Bearer``; a ``url`` credential is a
    pre-authorised endpoint and is dialled as given. No ``OpenAI-Beta`` header (GA rejects it);
    permessage-deflate is off (base64 audio does not compress, and it costs CPU on a Pi).
    """
    model.provider_info.check_credential_kind(credential.kind)
    if credential.kind == "url":
        url = credential.secret
        _check_credential_url(url)
        headers: dict[str, str] = {}
    else:
        url = model.endpoint()
        headers = {"Authorization": f"Bearer {credential.secret}"}
    where = public_url(url)
    if credential.kind == "url":
        register_url(url)
    else:
        REDACT.secrets.append(credential.secret)
    try:
        return await _NoRedirects(
            url,
            additional_headers=headers,
            max_size=MAX_MESSAGE,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            open_timeout=open_timeout,
            close_timeout=2.0,
            compression=None,
            user_agent_header="voice-device",
        )
    except websockets.exceptions.InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            what = "unauthorized" if status == 401 else "forbidden"
            raise AuthError(
                f"{where} refused the credential: HTTP {status} {what} "
                f"(check the API key or the credential backend)",
                status,
            ) from None
        if 300 <= status < 400:
            raise _redirect_error(where, status, exc.response.headers) from None
        raise ConnectError(f"{where} answered HTTP {status} to the websocket handshake") from None
    except TimeoutError:
        raise ConnectError(f"{where}: no answer within {open_timeout:g} s") from None
    except OSError as exc:
        raise ConnectError(f"{where}: {exc.strerror or exc.__class__.__name__}") from None
    except websockets.exceptions.InvalidURI:
        raise ConnectError(f"{where}: not a valid websocket URL") from None
    except websockets.exceptions.WebSocketException as exc:
        raise ConnectError(f"{where}: handshake failed ({exc.__class__.__name__})") from None
