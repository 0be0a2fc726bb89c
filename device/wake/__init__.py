"""Local wake word: detector (pymicro-wakeword), the audio gate around it, ``[wake]`` config.

See :mod:`device.wake.gate` for how the app wires it to the microphone and the session.
"""

from __future__ import annotations

from .config import BUILTIN_MODELS, WakeSection, model_json_path, validate_wake
from .detector import Detection, WakeDetector
from .gate import (
    Action,
    Forward,
    HeldDropped,
    Interrupt,
    Release,
    WakeDetected,
    WakeGate,
)

__all__ = [
    "BUILTIN_MODELS",
    "Action",
    "Detection",
    "Forward",
    "HeldDropped",
    "Interrupt",
    "Release",
    "WakeDetected",
    "WakeDetector",
    "WakeGate",
    "WakeSection",
    "model_json_path",
    "validate_wake",
]
