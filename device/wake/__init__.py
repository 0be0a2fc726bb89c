"""Local wake word: detector (pymicro-wakeword), the audio gate around it, ``[wake]`` config.

The service enters :class:`device.wake.part.WakePart` (``Appliance.wake``, built when
``[wake] model`` is set), which does the wiring below; what it does, step by step::

Wiring in the app (all on the event loop; see :mod:`device.wake.gate` for the behaviour)::

    detector = WakeDetector(cfg.wake.model, cfg.wake.refractory_s) if cfg.wake.enabled else None
    gate = WakeGate(detector, preroll_ms=cfg.wake.preroll_ms, max_hold_s=cfg.wake.max_hold_s,
                    status=session.status, muted=session.muted)
    capture.listen(16000, lambda pcm: apply(gate.on_frame_16k(pcm)))  # only with a detector
    capture.listen(24000, lambda pcm: apply(gate.on_frame_24k(pcm)))  # the session's mic path
    on every status change:  apply(gate.on_status(status))  # "connected" = session configured
    on every mute change:    apply(gate.on_muted(muted))

    def apply(actions):
        for a in actions:
            match a:
                case WakeDetected(model=m):  connect earcon; event {"event": "wake", "model": m};
                                             connect() with the configured credential
                case Interrupt():            as a barge-in, if a reply is playing
                case Release(frames=fs):     send each frame to the session, in order, now
                case Forward(frame=f):       send it to the session
                case HeldDropped():          log it (the connect failed / muted)
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
