"""Compare what the server confirmed (``session.updated``) with the configuration asked for."""

from __future__ import annotations

from .events import SessionConfig, SessionEcho

#: The audio format every session asks for (24 kHz mono PCM16 at ``config.sample_rate``).
PCM_FORMAT = "audio/pcm"


def check_echo(
    config: SessionConfig, echo: SessionEcho | None, session_type: str | None
) -> tuple[str, list[str]]:
    """``(problem, warnings)``: a problem makes the session unusable (the mic would stream into
    a buffer nobody answers, or audio would be garbled); a warning is worth telling. Fields the
    server did not report are not judged."""
    if echo is None:
        return "", []
    problems: list[str] = []
    if session_type is not None and echo.session_type not in (None, session_type):
        problems.append(f"session type {echo.session_type!r} instead of {session_type!r}")
    asked_td = config.turn_detection or "none"
    if echo.turn_detection is not None and echo.turn_detection != asked_td:
        problems.append(f"turn detection {echo.turn_detection!r} instead of {asked_td!r}")
    for which, got in (("input", echo.input_format), ("output", echo.output_format)):
        if got is not None and got != PCM_FORMAT:
            problems.append(f"{which} audio format {got!r} instead of {PCM_FORMAT!r}")
    if echo.sample_rate is not None and echo.sample_rate != config.sample_rate:
        problems.append(f"sample rate {echo.sample_rate} instead of {config.sample_rate}")
    warnings: list[str] = []
    if echo.voice is not None and echo.voice != config.voice:
        warnings.append(f"the model speaks with voice {echo.voice!r}, not {config.voice!r}")
    return "; ".join(problems), warnings
