"""Speaker volume through an ALSA mixer control (the volume buttons use it)."""

from __future__ import annotations

from typing import Any

from ..realtime.errors import VoiceDeviceError


class MixerError(VoiceDeviceError, LookupError):
    """The mixer control does not exist on the device (or the device has no mixer)."""


class Volume:
    """Percent volume of mixer ``control`` on ALSA ``device``; the mixer opens lazily.

    ::

        Volume("Speaker", device="hw:CARD=Headphones").up()   # → new volume, e.g. 55
    """

    def __init__(self, control: str = "PCM", device: str = "default") -> None:
        self.control = control
        self.device = device
        self._mixer: Any = None

    def _open(self) -> Any:
        if self._mixer is None:
            import alsaaudio

            try:
                self._mixer = alsaaudio.Mixer(control=self.control, device=self.device)
            except alsaaudio.ALSAAudioError as exc:
                raise MixerError(
                    f'mixer control "{self.control}" not found on device "{self.device}": {exc}'
                    " (list controls with `amixer -D " + self.device + " scontrols`)"
                ) from exc
        return self._mixer

    def get(self) -> int:
        """The current volume in percent (the mean of all channels)."""
        values = [int(v) for v in self._open().getvolume()]
        return round(sum(values) / len(values)) if values else 0

    def set(self, percent: int) -> int:
        """Set the volume (clamped to 0-100) and return it."""
        value = max(0, min(100, int(percent)))
        self._open().setvolume(value)
        return value

    def up(self, step: int = 5) -> int:
        """Raise the volume by ``step`` percent; returns the new volume."""
        return self.set(self.get() + step)

    def down(self, step: int = 5) -> int:
        """Lower the volume by ``step`` percent; returns the new volume."""
        return self.set(self.get() - step)

    def close(self) -> None:
        if self._mixer is not None:
            self._mixer.close()
            self._mixer = None
