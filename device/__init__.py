"""voice-device: a headless realtime voice appliance for Raspberry Pi."""

__version__ = "0.1.0"
