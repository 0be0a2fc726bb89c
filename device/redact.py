"""Keep credentials out of third-party debug logs.

``websockets`` logs every handshake header (``Authorization: Bearer …``) and the request line
(a signed URL's query) at DEBUG. Importing this module installs :data:`REDACT` on its loggers;
:mod:`device.transport` registers each credential it dials with.
"""

from __future__ import annotations

import collections
import logging
from urllib.parse import urlsplit


class Redact(logging.Filter):
    """Keeps credentials out of ``websockets``' debug log (it logs every handshake header and
    the request line, which holds a signed URL's query)."""

    #: The credentials of the latest connections (a few, so a reconnect's old one is covered).
    secrets: collections.deque[str] = collections.deque(maxlen=8)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and str(args[0]).lower()
            in (
                "authorization",
                "proxy-authorization",
            )
        ):
            record.args = (args[0], "[redacted]")
        if self.secrets:
            text = record.getMessage()
            if any(secret in text for secret in self.secrets):
                for secret in sorted(self.secrets, key=len, reverse=True):
                    text = text.replace(secret, "[redacted]")
                record.msg, record.args = text, None
        return True


REDACT = Redact()
for _name in ("websockets", "websockets.client", "websockets.server"):
    logging.getLogger(_name).addFilter(REDACT)


def public_url(url: str) -> str:
    """``url`` as it may appear in logs and errors: scheme, host, port and path only (no
    ``user:password@``, query or fragment, where secrets travel)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port out of range: the request itself will say so
        port = ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"
