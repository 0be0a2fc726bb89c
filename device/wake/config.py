"""The ``[wake]`` config section: which wake word opens the conversation, and how audio is held.

::

    [wake]
    model = "okay_nabu"     # "" (off), okay_nabu | hey_jarvis | hey_mycroft | alexa,
                            # or the path of a microWakeWord JSON model file
    refractory_s = 2.0      # a second detection within this time is ignored
    preroll_ms = 0          # audio kept from before the end of the wake word (0: not sent)
    max_hold_s = 5.0        # speech held while the connection opens (the oldest is kept)

:func:`validate_wake` raises :class:`ConfigError` naming the key (``wake.refractory_s: ...``).
No I/O beyond reading the model's JSON file when ``model`` is a path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..realtime.errors import ConfigError

#: Models shipped inside the pymicro-wakeword wheel.
BUILTIN_MODELS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")

MAX_REFRACTORY_S = 60.0
MAX_PREROLL_MS = 2000
MAX_HOLD_S = 30.0


@dataclass(frozen=True)
class WakeSection:
    #: "" (off), a built-in model name, or the path of a microWakeWord JSON model file.
    model: str = ""
    refractory_s: float = 2.0
    preroll_ms: int = 0
    max_hold_s: float = 5.0

    @property
    def enabled(self) -> bool:
        return bool(self.model)


def model_json_path(model: str) -> Path:
    """The JSON file of ``model`` (a built-in name or a path), checked to be a usable
    microWakeWord model description. Raises :class:`ConfigError` naming ``wake.model``."""
    if model in BUILTIN_MODELS:
        import pymicro_wakeword

        return Path(pymicro_wakeword.__file__).parent / "models" / f"{model}.json"
    if "/" not in model and not model.endswith(".json"):
        names = ", ".join(BUILTIN_MODELS)
        raise ConfigError(
            f'wake.model: unknown model "{model}" (built-in: {names}; or the path of a '
            "microWakeWord .json model file)"
        )
    path = Path(model)
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"wake.model: model file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"wake.model: cannot read {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"wake.model: {path} is not a JSON model description") from None
    _check_description(description, path)
    return path


def _check_description(description: object, path: Path) -> None:
    if not isinstance(description, dict) or description.get("type", "micro") != "micro":
        raise ConfigError(f"wake.model: {path} is not a microWakeWord model description")
    micro = description.get("micro")
    tflite = description.get("model")
    if not isinstance(micro, dict) or not isinstance(tflite, str):
        raise ConfigError(f'wake.model: {path} lacks the "model" file name or the "micro" table')
    for key in ("probability_cutoff", "sliding_window_size"):
        if not isinstance(micro.get(key), int | float) or isinstance(micro.get(key), bool):
            raise ConfigError(f"wake.model: {path}: micro.{key} missing or not a number")
    model_file = path.parent / tflite
    try:
        with model_file.open("rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise ConfigError(f"wake.model: {path}: model file {model_file} not found") from None
    except OSError as exc:
        raise ConfigError(f"wake.model: cannot read {model_file}: {exc.strerror}") from None
    # The TFLite C library does not check what it loads (a bad file crashes the process):
    # a FlatBuffer with the TFLite identifier at bytes 4..8 is required.
    if head[4:8] != b"TFL3":
        raise ConfigError(f"wake.model: {model_file} is not a TensorFlow Lite model")


def validate_wake(section: WakeSection) -> None:
    """Range checks and, when set, that the model can be found. Errors name the key."""
    if not 0 <= section.refractory_s <= MAX_REFRACTORY_S:
        raise ConfigError(
            f"wake.refractory_s: expected 0..{MAX_REFRACTORY_S:g} seconds, "
            f"got {section.refractory_s:g}"
        )
    if not 0 <= section.preroll_ms <= MAX_PREROLL_MS:
        raise ConfigError(
            f"wake.preroll_ms: expected 0..{MAX_PREROLL_MS} ms, got {section.preroll_ms}"
        )
    if not 0 < section.max_hold_s <= MAX_HOLD_S:
        raise ConfigError(
            f"wake.max_hold_s: expected more than 0 and at most {MAX_HOLD_S:g} seconds, "
            f"got {section.max_hold_s:g}"
        )
    if section.model:
        model_json_path(section.model)
