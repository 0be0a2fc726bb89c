"""Shared machinery of the wire codecs: strict field access and the codec interface.

A codec is a pure translator: :meth:`Codec.encode` turns a neutral client event into the wire
text to send, :meth:`Codec.decode` turns received wire text into a neutral server event, or
``None`` for events the device does not act on (unknown types are logged once per type).
Anything malformed raises exactly one exception type, :class:`~.errors.ProtocolError`.
"""

from __future__ import annotations

import binascii
import json
import logging
from typing import Any, Protocol

from .errors import ProtocolError
from .events import ClientEvent, ServerEvent

log = logging.getLogger("device.realtime")


class Codec(Protocol):
    """Translate between neutral events and one provider's wire JSON."""

    provider: str

    def encode(self, event: ClientEvent) -> str: ...

    def decode(self, data: str | bytes) -> ServerEvent | None: ...


def load_object(data: str | bytes) -> dict[str, Any]:
    """Parse one wire message into a JSON object with a string ``type``."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(f"malformed JSON from peer: {exc.__class__.__name__}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object from peer, got {type(obj).__name__}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("event without a string 'type' field")
    return obj


def get_str(obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        if value is None:
            raise ProtocolError(f"{where}: missing field {key!r}")
        raise ProtocolError(f"{where}: field {key!r} must be a string")
    return value


def get_int(obj: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        if value is None:
            raise ProtocolError(f"{where}: missing field {key!r}")
        raise ProtocolError(f"{where}: field {key!r} must be an integer")
    return value


def get_obj(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        if value is None:
            raise ProtocolError(f"{where}: missing field {key!r}")
        raise ProtocolError(f"{where}: field {key!r} must be an object")
    return value


def decode_pcm(b64: str, where: str) -> bytes:
    """Base64 → PCM16 bytes; bad base64 or an odd byte count is a :class:`ProtocolError`."""
    try:
        pcm = binascii.a2b_base64(b64, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{where}: audio is not valid base64") from None
    if len(pcm) & 1:
        raise ProtocolError(f"{where}: audio has an odd byte count ({len(pcm)}), not PCM16")
    return pcm


def encode_pcm(pcm: bytes) -> str:
    return binascii.b2a_base64(pcm, newline=False).decode("ascii")


class UnknownTypes:
    """Remembers which unknown event types were already logged, so each is logged once."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.seen: set[str] = set()

    def note(self, kind: str) -> None:
        if kind not in self.seen and len(self.seen) < 256:
            self.seen.add(kind)
            log.info("%s: ignoring unknown event type %r", self.provider, kind[:80])
