"""What a :class:`~device.realtime.conversation.Conversation` asks its driver to do.

Besides client events (send them, in order) and notices (publish them), the conversation
yields these effects; the driver (the session) performs each and reports back where noted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .events import ClientEvent
from .notices import Notice


@dataclass(frozen=True, slots=True)
class Play:
    """Queue model audio on the speaker."""

    item_id: str
    pcm: bytes


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """The user talks over the model: if the speaker is playing, silence it now and report
    what was heard with :meth:`Conversation.interrupted`."""


@dataclass(frozen=True, slots=True)
class WatchPlayback:
    """The response is done but the speaker may still be playing it: call
    :meth:`Conversation.playback_finished` once it is silent."""


@dataclass(frozen=True, slots=True)
class PurgeAudio:
    """Discard microphone frames still waiting to be sent (mute)."""


@dataclass(frozen=True, slots=True)
class RunTool:
    """Run a tool call (off the event path) and report it with
    :meth:`Conversation.tool_result`."""

    call_id: str
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class Configured:
    """The server confirmed the session configuration: the connection is usable."""


@dataclass(frozen=True, slots=True)
class SetupFailed:
    """The server refused the setup. ``rejected``: retrying the same configuration cannot help
    (a bad voice, a peer speaking another protocol); otherwise a failed attempt."""

    message: str
    rejected: bool


@dataclass(frozen=True, slots=True)
class SessionExpired:
    """The server ended the session (time limit): renew it by reconnecting."""


Effect = (
    Play
    | StopPlayback
    | WatchPlayback
    | PurgeAudio
    | RunTool
    | Configured
    | SetupFailed
    | SessionExpired
)
Output = ClientEvent | Notice | Effect

#: Longest server-supplied text passed on in an error notice.
MAX_ERROR_TEXT = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def clean_text(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """A peer's text made safe for one log line: control characters escaped (a newline cannot
    forge a journal line) and cut to ``limit`` characters."""
    escaped = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return escaped if len(escaped) <= limit else escaped[:limit] + "…"


class Throttle:
    """Counts repeats of the same text: the 1st, 10th, 100th and every 1000th are shown."""

    def __init__(self) -> None:
        self._last = ""
        self._count = 0

    def admit(self, text: str) -> str | None:
        """The text to show now (with a repeat count), or ``None`` to stay quiet."""
        if text != self._last:
            self._last, self._count = text, 0
        self._count += 1
        n = self._count
        if n == 1:
            return text
        if n in (10, 100) or n % 1000 == 0:
            return f"{text} (repeated {n} times)"
        return None
