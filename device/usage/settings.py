"""Config for issue 15: the ``[limits]`` section and two ``[behaviour]`` keys.

::

    [limits]                      # each 0 = unlimited
    daily_connected_minutes = 0   # minutes connected per local day
    daily_output_audio_tokens = 0 # model speech, as the model bills it
    daily_input_audio_tokens = 0  # microphone audio (and audio context), as billed
    max_session_minutes = 0       # one conversation (reconnects included)

    [behaviour]
    idle_disconnect_s = 0         # disconnect after this long idle; 0 = never
    forget_on_idle = false        # next connection starts a fresh conversation

Note on ``forget_on_idle``: every connection is a new websocket and therefore a new model
session, so by default nothing of an earlier conversation is kept anyway; the key only matters
if conversation carry-over across reconnects is ever added (it then forces a fresh start after
an idle disconnect).

``config.py`` parses the dataclasses as sections (their fields are the plain int / float / bool
its coercion knows) and ``config_rules.py`` calls :func:`validate_limits` / :func:`validate_idle`
for the ranges. Every error is a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..realtime.errors import ConfigError

#: More than a day per conversation or per day is a typo, not a budget.
MAX_MINUTES = 24 * 60
#: An idle timeout longer than a day is a typo too.
MAX_IDLE_S = 24 * 3600.0


@dataclass(frozen=True)
class LimitsSection:
    daily_connected_minutes: float = 0.0
    daily_output_audio_tokens: int = 0
    daily_input_audio_tokens: int = 0
    max_session_minutes: float = 0.0

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in dataclasses.fields(self))


@dataclass(frozen=True)
class IdleSettings:
    """The two ``[behaviour]`` keys this feature adds."""

    idle_disconnect_s: float = 0.0
    forget_on_idle: bool = False


def validate_limits(limits: LimitsSection) -> None:
    for key in ("daily_connected_minutes", "max_session_minutes"):
        value = getattr(limits, key)
        if not (math.isfinite(value) and 0 <= value <= MAX_MINUTES):
            raise ConfigError(
                f"limits.{key}: expected minutes from 0 (unlimited) to {MAX_MINUTES}, got {value}"
            )
    for key in ("daily_output_audio_tokens", "daily_input_audio_tokens"):
        value = getattr(limits, key)
        if value < 0:
            raise ConfigError(f"limits.{key}: expected tokens >= 0 (0 = unlimited), got {value}")


def validate_idle(idle: IdleSettings) -> None:
    value = idle.idle_disconnect_s
    if not (math.isfinite(value) and 0 <= value <= MAX_IDLE_S):
        raise ConfigError(
            f"behaviour.idle_disconnect_s: expected seconds from 0 (off) to {MAX_IDLE_S:.0f}, "
            f"got {value}"
        )
