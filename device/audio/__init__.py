"""ALSA audio: microphone capture, speaker playback, devices, volume.

Everything here speaks the model's format at the edges: 24 kHz mono s16le in 20 ms frames.
"""

from .capture import AlsaCapture, CaptureConfig, CaptureDSP, CaptureStats
from .devices import format_devices, list_devices
from .fanout import FrameQueue, MicFanout
from .mixer import MixerError, Volume
from .playback import AlsaPlayback, PlaybackConfig, PlaybackStats
from .playqueue import PlayQueue
from .supervisor import AudioFault, FaultSupervisor

__all__ = [
    "AlsaCapture",
    "AlsaPlayback",
    "AudioFault",
    "CaptureConfig",
    "CaptureDSP",
    "CaptureStats",
    "FaultSupervisor",
    "FrameQueue",
    "MicFanout",
    "MixerError",
    "PlayQueue",
    "PlaybackConfig",
    "PlaybackStats",
    "Volume",
    "format_devices",
    "list_devices",
]
