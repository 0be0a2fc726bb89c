"""What a :class:`device.session.RealtimeSession` tells its subscribers.

Subscribers (LEDs, the control socket, the CLI, logs) receive these small frozen values, always
on the event loop thread, in the order things happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .events import Usage
from .status import TransportStatus


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """The transport status changed (never emitted twice in a row with the same value)."""

    status: TransportStatus


@dataclass(frozen=True, slots=True)
class MuteChanged:
    """The microphone mute state changed."""

    muted: bool


@dataclass(frozen=True, slots=True)
class TranscriptNotice:
    """A finished transcript line: what the user said, or what the assistant said."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class TextNotice:
    """A finished text reply (text-modality responses)."""

    text: str


@dataclass(frozen=True, slots=True)
class SpeakingChanged:
    """The model started (``True``) or stopped (``False``) producing audio for a response."""

    speaking: bool


@dataclass(frozen=True, slots=True)
class ErrorNotice:
    """Something went wrong that the user or operator should see.

    ``code`` is a short machine-readable tag (``auth``, ``protocol``, ``server``, ``network``,
    ``tool``, ``audio``...); ``message`` never contains a secret.
    """

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class FaultsChanged:
    """A device fault was raised or cleared; ``faults`` holds every current one as
    ``(source, message)`` pairs (empty: nothing is wrong any more)."""

    faults: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class WakeListening:
    """The device is (``True``) or is no longer (``False``) listening for the wake word: a wake
    model is set, the session is disconnected and the microphone is not muted. Audio is
    analysed on the device only; the status LED shows its ``listening`` pattern."""

    listening: bool


@dataclass(frozen=True, slots=True)
class LimitReached:
    """A daily usage limit was reached (``limit`` names it, e.g. ``daily_connected_minutes``);
    ``None``: the limit is cleared (a new day, or the limit raised) and connecting works again.
    While set and the session is not active, the status LED shows its ``limit`` pattern."""

    limit: str | None


@dataclass(frozen=True, slots=True)
class UserSpeech:
    """The server heard the user start (``True``, ``speech_started``) or stop (``False``,
    ``speech_stopped``) speaking. Internal: the idle countdown follows it; not a wire event."""

    speaking: bool


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    """The model started a response (``response.created``). Internal, like :class:`UserSpeech`."""

    response_id: str


@dataclass(frozen=True, slots=True)
class ResponseUsage:
    """A response ended (``response.done``, whatever its status) with the token counts the
    server reported (``None``: it reported none). The usage part counts them; the wire event
    is its ``{"event": "usage", ...}`` with the day's totals."""

    response_id: str
    usage: Usage | None


Notice = (
    StatusChanged
    | MuteChanged
    | TranscriptNotice
    | TextNotice
    | SpeakingChanged
    | ErrorNotice
    | FaultsChanged
    | WakeListening
    | LimitReached
    | UserSpeech
    | ResponseStarted
    | ResponseUsage
)
