"""Judge what ``session.updated`` confirmed against the configuration that was asked for.

The policy: a different session type, turn detection, audio format or rate makes the session
unusable (the mic would stream into a buffer nobody answers, or audio would be garbled), so
setup fails; a different voice, or a provider that should name its session type and did not,
is worth a warning. Fields the server did not echo are not judged.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import SessionConfig, SessionUpdated
from .providers import ProviderInfo

#: The audio format every session asks for (mono PCM16 at ``config.sample_rate``).
PCM_FORMAT = "audio/pcm"


@dataclass(frozen=True, slots=True)
class Differences:
    """What the server confirmed differently, one readable line per difference."""

    #: The session cannot work as asked: setup fails.
    problems: tuple[str, ...] = ()
    #: It works, but the user should know.
    warnings: tuple[str, ...] = ()


def confirmation_differences(
    info: ProviderInfo, asked: SessionConfig, confirmed: SessionUpdated
) -> Differences:
    """Compare ``confirmed`` with ``asked`` as ``info``'s codec sent it (its default voice
    fills an empty one)."""
    problems: list[str] = []
    warnings: list[str] = []
    if info.session_type is not None:
        if confirmed.session_type is None:
            warnings.append(
                f"the server did not confirm session type {info.session_type!r} "
                "(a beta-protocol server?)"
            )
        elif confirmed.session_type != info.session_type:
            problems.append(
                f"session type {confirmed.session_type!r} instead of {info.session_type!r}"
            )
    wanted_td = asked.turn_detection or "none"
    if confirmed.turn_detection is not None and confirmed.turn_detection != wanted_td:
        problems.append(f"turn detection {confirmed.turn_detection!r} instead of {wanted_td!r}")
    for side, fmt, rate in (
        ("input", confirmed.input_format, confirmed.input_rate),
        ("output", confirmed.output_format, confirmed.output_rate),
    ):
        if fmt is not None and fmt != PCM_FORMAT:
            problems.append(f"{side} audio format {fmt!r} instead of {PCM_FORMAT!r}")
        if rate is not None and rate != asked.sample_rate:
            problems.append(f"{side} audio rate {rate} instead of {asked.sample_rate}")
    voice = info.voice_for(asked)
    if confirmed.voice is not None and confirmed.voice != voice:
        warnings.append(f"voice {confirmed.voice!r} instead of {voice!r}")
    return Differences(tuple(problems), tuple(warnings))
