"""Token counts of one response, or of a day, in openai-python's ``RealtimeResponseUsage`` shape.

``response.done`` carries ``response.usage``::

    {"total_tokens": 1801, "input_tokens": 1234, "output_tokens": 567,
     "input_token_details": {"audio_tokens": 1000, "text_tokens": 200, "image_tokens": 0,
                             "cached_tokens": 34,
                             "cached_tokens_details": {"audio_tokens": 30, "text_tokens": 4,
                                                       "image_tokens": 0}},
     "output_token_details": {"audio_tokens": 500, "text_tokens": 67}}

Every field is optional there (``None`` or absent counts as 0), so an xAI ``response.done``
with fewer details, or none, still parses. Cached tokens are a subset of the input tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

#: (field name, path in the JSON shape) for every count.
_PATHS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("input_tokens", ("input_tokens",)),
    ("output_tokens", ("output_tokens",)),
    ("total_tokens", ("total_tokens",)),
    ("input_audio_tokens", ("input_token_details", "audio_tokens")),
    ("input_text_tokens", ("input_token_details", "text_tokens")),
    ("input_image_tokens", ("input_token_details", "image_tokens")),
    ("cached_tokens", ("input_token_details", "cached_tokens")),
    ("cached_audio_tokens", ("input_token_details", "cached_tokens_details", "audio_tokens")),
    ("cached_text_tokens", ("input_token_details", "cached_tokens_details", "text_tokens")),
    ("cached_image_tokens", ("input_token_details", "cached_tokens_details", "image_tokens")),
    ("output_audio_tokens", ("output_token_details", "audio_tokens")),
    ("output_text_tokens", ("output_token_details", "text_tokens")),
)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts; ``a + b`` adds them field by field."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_audio_tokens: int = 0
    input_text_tokens: int = 0
    input_image_tokens: int = 0
    cached_tokens: int = 0
    cached_audio_tokens: int = 0
    cached_text_tokens: int = 0
    cached_image_tokens: int = 0
    output_audio_tokens: int = 0
    output_text_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str = "usage") -> TokenUsage:
        """Parse the JSON shape above. ``None`` is no usage (all zero).

        Raises :class:`ValueError` naming the field (``usage.input_token_details.audio_tokens:
        expected a whole number >= 0, got "x"``) for a count that is not a non-negative integer
        or a details member that is not an object. Unknown keys are ignored.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
        counts: dict[str, int] = {}
        for name, path in _PATHS:
            counts[name] = _count(data, path, where)
        if counts["total_tokens"] == 0:
            counts["total_tokens"] = counts["input_tokens"] + counts["output_tokens"]
        return cls(**counts)

    @classmethod
    def from_object(cls, obj: object) -> TokenUsage:
        """Read the same fields as attributes: openai-python's ``RealtimeResponseUsage`` model,
        or any object typed like it (``None`` attributes count as 0)."""
        if obj is None:
            return cls()
        return cls.from_mapping(_attrs_to_mapping(obj))

    def to_mapping(self) -> dict[str, Any]:
        """The JSON shape above (every count present)."""
        out: dict[str, Any] = {}
        for name, path in _PATHS:
            node = out
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = getattr(self, name)
        return out


def _count(data: Mapping[str, Any], path: tuple[str, ...], where: str) -> int:
    node: Any = data
    for depth, key in enumerate(path):
        if node is None:
            return 0
        if not isinstance(node, Mapping):
            shown = ".".join((where, *path[:depth]))
            raise ValueError(f"{shown}: expected an object, got {type(node).__name__}")
        node = node.get(key)
    if node is None:
        return 0
    if isinstance(node, bool) or not isinstance(node, int) or node < 0:
        shown = ".".join((where, *path))
        raise ValueError(f"{shown}: expected a whole number >= 0, got {node!r}")
    return node


def _attrs_to_mapping(obj: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _name, path in _PATHS:
        node: Any = obj
        for key in path:
            node = getattr(node, key, None)
            if node is None:
                break
        if node is None:
            continue
        target = out
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = node
    return out
