"""Keep credentials out of logs.

``websockets`` logs every handshake header (``Authorization: Bearer …``) and the request line
(a signed URL's path and query) at DEBUG. Importing this module installs :data:`REDACT` on its
loggers; :mod:`device.transport` registers each credential it dials with. The app calls
:func:`install_on_root` once logging is configured, so every logger's records pass the filter
(a logger's own filters do not see records propagated from its children; a handler's do).

URLs appear as :func:`public_url` shows them: ``scheme://host:port`` only.
"""

from __future__ import annotations

import collections
import logging
from urllib.parse import urlsplit

from .realtime.credentials import public_url

__all__ = ["REDACT", "Redact", "install_on_root", "public_url", "register_url"]


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


def register_url(url: str) -> None:
    """Register a signed URL's secret parts (user info, path, query) with :data:`REDACT`."""
    REDACT.secrets.append(url)
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    for piece in (parts.query, target if parts.path not in ("", "/") else "", parts.password):
        if piece:
            REDACT.secrets.append(piece)


def install_on_root(handler: logging.Handler | None = None) -> None:
    """Put :data:`REDACT` on ``handler`` or, by default, on every handler of the root logger,
    so records of every logger are redacted before they are written. Idempotent."""
    handlers = [handler] if handler is not None else logging.getLogger().handlers
    for each in handlers:
        if REDACT not in each.filters:
            each.addFilter(REDACT)
