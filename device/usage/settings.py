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

``config.py`` can adopt the dataclasses as sections (their field types are the plain int / float /
bool its coercion knows) and call :func:`validate_limits` / :func:`validate_idle` for the ranges;
:func:`parse_limits` / :func:`parse_idle` parse a TOML table on their own. Every error is a
:class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

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


def parse_limits(table: Mapping[str, Any]) -> LimitsSection:
    limits = _parse(LimitsSection, "limits", table, ignore=())
    validate_limits(limits)
    return limits


def parse_idle(behaviour: Mapping[str, Any]) -> IdleSettings:
    """Pick the two keys out of a whole ``[behaviour]`` table (other keys are config.py's)."""
    idle = _parse(IdleSettings, "behaviour", behaviour, ignore=None)
    validate_idle(idle)
    return idle


_T = TypeVar("_T")


def _parse(
    cls: type[_T], section: str, table: Mapping[str, Any], ignore: tuple[str, ...] | None
) -> _T:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{section}: expected a table ([{section}])")
    kinds = {f.name: f.type for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in kinds:
            if ignore is None:
                continue
            known = ", ".join(sorted(kinds))
            raise ConfigError(f"{section}.{key}: unknown key (known keys: {known})")
        values[key] = _coerce(value, str(kinds[key]), f"{section}.{key}")
    return cls(**values)


def _coerce(value: Any, kind: str, key: str) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {_show(value)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: expected a number, got {_show(value)}")
    if kind == "int":
        if isinstance(value, float):
            raise ConfigError(f"{key}: expected a whole number, got {value}")
        return value
    return float(value)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)
