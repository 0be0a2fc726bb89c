"""ALSA audio: microphone capture, speaker playback, devices, volume, a private PulseAudio.

Everything here speaks the model's format at the edges: 24 kHz mono s16le in 20 ms frames.
"""

from .capture import AlsaCapture, AudioFault, CaptureConfig, CaptureDSP, CaptureStats
from .devices import format_devices, list_devices
from .mixer import MixerError, Volume
from .playback import EARCON, AlsaPlayback, PlaybackConfig, PlaybackStats
from .pulse import PrivatePulse, PulseUnavailable

__all__ = [
    "EARCON",
    "AlsaCapture",
    "AlsaPlayback",
    "AudioFault",
    "CaptureConfig",
    "CaptureDSP",
    "CaptureStats",
    "MixerError",
    "PlaybackConfig",
    "PlaybackStats",
    "PrivatePulse",
    "PulseUnavailable",
    "Volume",
    "format_devices",
    "list_devices",
]
