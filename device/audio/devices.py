"""ALSA device listing for ``voice-device devices``."""

from __future__ import annotations

from typing import Any


def list_devices() -> dict[str, Any]:
    """``{"capture": [pcm names], "playback": [pcm names], "cards": [{"index", "name"}]}``."""
    import alsaaudio

    cards: list[dict[str, Any]] = []
    for index in alsaaudio.card_indexes():
        try:
            short, long = alsaaudio.card_name(index)
        except alsaaudio.ALSAAudioError:
            short, long = str(index), ""
        cards.append({"index": int(index), "name": str(short), "description": str(long)})
    return {
        "capture": [str(p) for p in alsaaudio.pcms(alsaaudio.PCM_CAPTURE)],
        "playback": [str(p) for p in alsaaudio.pcms(alsaaudio.PCM_PLAYBACK)],
        "cards": cards,
    }


def format_devices() -> str:
    """A human-readable listing with hints for the config file."""
    devices = list_devices()
    lines = ["Sound cards:"]
    if devices["cards"]:
        for card in devices["cards"]:
            desc = f" — {card['description']}" if card["description"] else ""
            lines.append(f"  {card['index']}: {card['name']}{desc}")
            lines.append(f'      e.g. capture = "plughw:CARD={card["name"]}"')
    else:
        lines.append("  (none found)")
    for kind in ("capture", "playback"):
        lines.append(f"{kind.capitalize()} PCMs (audio.{kind} in the config):")
        names = devices[kind]
        lines.extend(f"  {name}" for name in names) if names else lines.append("  (none)")
    return "\n".join(lines)
