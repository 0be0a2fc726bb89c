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
from .events import (
    CachedTokens,
    ClientEvent,
    InputTokens,
    OutputTokens,
    ServerEvent,
    SessionConfig,
    ToolSpec,
    Usage,
)

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
    """``obj[key]`` as a string; absent or explicit ``null`` gives ``default`` (if any)."""
    value = obj.get(key)
    if value is None:
        value = default
    if not isinstance(value, str):
        if value is None:
            raise ProtocolError(f"{where}: missing field {key!r}")
        raise ProtocolError(f"{where}: field {key!r} must be a string")
    return value


#: Longest id, call id or tool name accepted from the peer (OpenAI's ids are ~30 characters).
#: The conversation remembers a few hundred of them; a longer one is a :class:`ProtocolError`,
#: so a hostile peer cannot pin megabytes per entry.
MAX_ID_CHARS = 256
#: Unknown event types are remembered and logged cut to this length.
MAX_TYPE_CHARS = 80


def get_id(obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    """:func:`get_str` for an id, call id or tool name: at most :data:`MAX_ID_CHARS` long."""
    value = get_str(obj, key, where, default)
    if len(value) > MAX_ID_CHARS:
        raise ProtocolError(
            f"{where}: field {key!r} is {len(value)} characters long "
            f"(an id or name may have at most {MAX_ID_CHARS})"
        )
    return value


def get_int(obj: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    """``obj[key]`` as an integer; absent or explicit ``null`` gives ``default`` (if any)."""
    value = obj.get(key)
    if value is None:
        value = default
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
        kind = kind[:MAX_TYPE_CHARS]  # a peer's type string may be megabytes long
        if kind not in self.seen and len(self.seen) < 256:
            self.seen.add(kind)
            log.info("%s: ignoring unknown event type %r", self.provider, kind)


# ------------------------------------------------------------------ shared by both dialects


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    """A function tool as both providers declare it in ``session.tools``."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
    }


def turn_detection_json(config: SessionConfig) -> dict[str, Any] | None:
    """``turn_detection`` for ``session.update``; ``None`` (JSON ``null``) turns it off."""
    if config.turn_detection is None:
        return None
    td: dict[str, Any] = {"type": config.turn_detection}
    if config.turn_detection == "server_vad":
        if config.vad_threshold is not None:
            td["threshold"] = config.vad_threshold
        if config.silence_duration_ms is not None:
            td["silence_duration_ms"] = config.silence_duration_ms
        if config.prefix_padding_ms is not None:
            td["prefix_padding_ms"] = config.prefix_padding_ms
    return td


def tools_from_json(session: dict[str, Any], where: str) -> tuple[ToolSpec, ...]:
    """Inverse of :func:`tool_json` over ``session.tools``."""
    tools = session.get("tools") or []
    if not isinstance(tools, list):
        raise ProtocolError(f"{where}: field 'tools' must be a list")
    return tuple(
        ToolSpec(
            get_str(t, "name", where + ".tools[]"),
            t.get("description") or "",
            t.get("parameters") or {"type": "object", "properties": {}},
        )
        for t in tools
        if isinstance(t, dict)
    )


def _count(obj: Any, key: str) -> int:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def decode_usage(response: dict[str, Any]) -> Usage | None:
    """``response.usage`` → :class:`Usage`; ``None`` when absent. Missing, ``null`` or
    malformed counts read as 0 (usage is accounting, never a reason to drop the event)."""
    usage = response.get("usage")
    if not isinstance(usage, dict):
        return None
    details_in = usage.get("input_token_details")
    cached = details_in.get("cached_tokens_details") if isinstance(details_in, dict) else None
    details_out = usage.get("output_token_details")
    return Usage(
        total_tokens=_count(usage, "total_tokens"),
        input_tokens=_count(usage, "input_tokens"),
        output_tokens=_count(usage, "output_tokens"),
        input=InputTokens(
            audio_tokens=_count(details_in, "audio_tokens"),
            text_tokens=_count(details_in, "text_tokens"),
            image_tokens=_count(details_in, "image_tokens"),
            cached_tokens=_count(details_in, "cached_tokens"),
            cached=CachedTokens(
                audio_tokens=_count(cached, "audio_tokens"),
                text_tokens=_count(cached, "text_tokens"),
                image_tokens=_count(cached, "image_tokens"),
            ),
        ),
        output=OutputTokens(
            audio_tokens=_count(details_out, "audio_tokens"),
            text_tokens=_count(details_out, "text_tokens"),
        ),
    )


def usage_json(usage: Usage) -> dict[str, Any]:
    """Inverse of :func:`decode_usage` (the GA wire shape)."""
    return {
        "total_tokens": usage.total_tokens,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "input_token_details": {
            "audio_tokens": usage.input.audio_tokens,
            "text_tokens": usage.input.text_tokens,
            "image_tokens": usage.input.image_tokens,
            "cached_tokens": usage.input.cached_tokens,
            "cached_tokens_details": {
                "audio_tokens": usage.input.cached.audio_tokens,
                "text_tokens": usage.input.cached.text_tokens,
                "image_tokens": usage.input.cached.image_tokens,
            },
        },
        "output_token_details": {
            "audio_tokens": usage.output.audio_tokens,
            "text_tokens": usage.output.text_tokens,
        },
    }


def is_ignored(kind: str, ignored: frozenset[str]) -> bool:
    """Event types the device deliberately does not act on (no log line)."""
    return kind in ignored or kind.startswith(("mcp_", "response.mcp_call"))


def is_error_like(kind: str, obj: dict[str, Any]) -> bool:
    """An unknown event that reports an error: its type ends in ``error`` or it carries an
    ``error`` object."""
    return kind.endswith("error") or isinstance(obj.get("error"), dict)


class Transcripts:
    """Assistant transcript deltas per item, so a ``.done`` without ``transcript`` can be
    completed. Bounded: at most ``max_items`` items of ``max_chars`` characters each (a peer
    that never sends ``.done`` cannot grow it)."""

    def __init__(self, max_items: int = 32, max_chars: int = 16384) -> None:
        self.max_items = max_items
        self.max_chars = max_chars
        self._parts: dict[str, list[str]] = {}
        self._sizes: dict[str, int] = {}

    def add(self, item_id: str, delta: str) -> None:
        if item_id not in self._parts:
            if len(self._parts) >= self.max_items:
                oldest = next(iter(self._parts))
                del self._parts[oldest], self._sizes[oldest]
            self._parts[item_id], self._sizes[item_id] = [], 0
        room = self.max_chars - self._sizes[item_id]
        if room > 0:
            self._parts[item_id].append(delta[:room])
            self._sizes[item_id] += min(room, len(delta))

    def finish(self, item_id: str, transcript: str) -> str:
        """The final transcript: ``transcript`` if the server gave one, else the deltas."""
        parts = self._parts.pop(item_id, None)
        self._sizes.pop(item_id, None)
        return transcript or ("".join(parts) if parts else "")
