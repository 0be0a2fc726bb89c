"""The transport status, exactly as the web ``useRealtime`` hook reports it."""

from __future__ import annotations

import enum


class TransportStatus(enum.StrEnum):
    """Where the connection to the realtime model stands.

    A ``str`` enum, so ``status == "connected"`` holds and it serialises as its value.

    * ``disconnected`` — never connected, or the user disconnected.
    * ``connecting`` — a connect was asked for and the handshake is running.
    * ``connected`` — the session is configured and audio flows.
    * ``reconnecting`` — the connection broke and the service is retrying on its own.
    * ``closed`` — the connection ended and will not come back without a new connect
      (server close, auth failure): shown as an error on the status LED.
    """

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"

    @property
    def active(self) -> bool:
        """True while a connection exists or is being made (a press would disconnect)."""
        return self in (
            TransportStatus.CONNECTING,
            TransportStatus.CONNECTED,
            TransportStatus.RECONNECTING,
        )
