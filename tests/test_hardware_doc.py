"""hardware.md tells the truth: its pin table, picture and examples match the code and the Pi.

The pin table is checked against the program's defaults (``device.config.Config``), against
the commented defaults in the installed template (config/config.toml) and against gpiozero's
own header data for the physical pin numbers; the wiring picture's captions against the table;
the ``asound.conf`` example against the real alsa-lib; every ``section.key`` the document
mentions against the config schema.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import typing
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from device.config import Config
from device.gpio.lights import PATTERNS
from device.realtime.status import TransportStatus

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "hardware.md").read_text()
SVG = REPO / "docs" / "wiring.svg"
TEMPLATE = REPO / "config" / "config.toml"


@dataclasses.dataclass(frozen=True)
class Row:
    part: str
    key: str  # "buttons.connect"
    bcm: int
    physical: int
    gnd: int | None


def pin_table() -> list[Row]:
    rows = []
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 5:
            continue
        key = re.fullmatch(r"`((?:buttons|leds)\.\w+)`", cells[1])
        bcm = re.fullmatch(r"GPIO(\d+)", cells[2])
        if not (key and bcm):
            continue
        gnd = re.search(r"GND \(pin (\d+)\)", cells[4])
        rows.append(
            Row(cells[0], key.group(1), int(bcm.group(1)), int(cells[3]), gnd and int(gnd.group(1)))
        )
    return rows


def default_pins() -> dict[str, int]:
    """Every button and LED pin the program uses by default, as ``section.key`` → BCM."""
    config = Config()
    out: dict[str, int] = {}
    for section in ("buttons", "leds"):
        obj = getattr(config, section)
        hints = typing.get_type_hints(type(obj))
        for field in dataclasses.fields(obj):
            value = getattr(obj, field.name)
            if hints[field.name] == int | None and isinstance(value, int):
                out[f"{section}.{field.name}"] = value
    return out


def template_defaults() -> dict[str, int]:
    """``#key = N`` lines of [buttons] and [leds] in config/config.toml: the shown defaults."""
    out: dict[str, int] = {}
    section = ""
    for line in TEMPLATE.read_text().splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line.strip()):
            section = m.group(1)
        elif (m := re.fullmatch(r"#(\w+) = (\d+)", line.strip())) and section in (
            "buttons",
            "leds",
        ):
            out[f"{section}.{m.group(1)}"] = int(m.group(2))
    return out


@pytest.fixture(scope="module")
def header() -> Iterator[MockFactory]:
    factory = MockFactory()  # gpiozero's data for a 40-pin Raspberry Pi header
    yield factory
    factory.close()


def test_pin_table_lists_every_default_pin_with_the_programs_numbers() -> None:
    table = {row.key: row.bcm for row in pin_table()}
    assert table == default_pins()
    assert set(table) == {
        "buttons.connect",
        "buttons.mute",
        "buttons.talk",
        "leds.status",
        "leds.mute",
        "leds.activity",
    }


def test_pin_table_matches_the_installed_config_template() -> None:
    table = {row.key: row.bcm for row in pin_table()}
    documented = {k: v for k, v in template_defaults().items() if k in default_pins()}
    assert documented == table


def test_physical_pins_and_grounds_are_right_for_the_40_pin_header(header: MockFactory) -> None:
    board = header.board_info
    for row in pin_table():
        found = [(h.name, pin.number) for h, pin in board.find_pin(f"GPIO{row.bcm}")]
        assert found == [("J8", row.physical)], row
        if row.gnd is not None:
            assert board.headers["J8"].pins[row.gnd].name == "GND", row
    grounds = sorted(n for n, p in board.headers["J8"].pins.items() if p.name == "GND")
    assert "any ground pin (" + ", ".join(map(str, grounds)) + ")" in " ".join(DOC.split())


def test_default_pins_leave_the_audio_buses_free(header: MockFactory) -> None:
    pins = header.board_info.headers["J8"].pins.values()
    i2s = {int(p.name[4:]) for p in pins if "pcm" in p.interfaces}  # gpiozero: PCM = I2S
    i2c = {2, 3}  # the I2C bus audio codecs are configured over
    assert i2s == {18, 19, 20, 21}
    assert not set(default_pins().values()) & (i2s | i2c)
    assert "GPIO18, 19, 20, 21" in DOC and "GPIO2, 3" in DOC


def test_wiring_picture_is_shown_and_its_captions_match_the_table(header: MockFactory) -> None:
    assert "](docs/wiring.svg)" in DOC
    root = ET.parse(SVG).getroot()  # well-formed XML
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    captions = {
        int(m.group(1)): int(m.group(2))
        for t in texts
        if (m := re.fullmatch(r"GPIO(\d+) · pin (\d+)", t))
    }
    assert captions == {row.bcm: row.physical for row in pin_table()}
    # the header drawn in the picture numbers all 40 pins
    assert {str(n) for n in range(1, 41)} <= set(texts)


def test_led_pattern_table_covers_every_transport_status() -> None:
    section = DOC.split("### LED patterns", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)`", section, re.M))
    assert listed >= {s.value for s in TransportStatus}
    # ... and every other pattern the status LED shows: the wake word, a daily limit
    assert listed == set(PATTERNS)
    assert set(PATTERNS) - {s.value for s in TransportStatus} == {"listening", "limit"}


def test_every_config_key_the_document_names_exists() -> None:
    config = Config()
    sections = {f.name for f in dataclasses.fields(config)}
    named = set(re.findall(r"`(\w+)\.(\w+)", DOC)) | set(
        re.findall(
            r"(?<![\w/.-])(audio|buttons|leds|behaviour|credential|control|model)\.(\w+)", DOC
        )
    )
    named = {(s, k) for s, k in named if s in sections}
    assert named, "no config keys found"
    for section, key in named:
        fields = {f.name for f in dataclasses.fields(getattr(config, section))}
        assert key in fields, f"hardware.md names {section}.{key}, which the config does not have"


def asound_example(tmp_path: Path) -> Path:
    match = re.search(r"```\n(# /etc/asound\.conf.*?)```", DOC, re.S)
    assert match, "hardware.md has no /etc/asound.conf example"
    path = tmp_path / "asound.conf"
    path.write_text(match.group(1))
    return path


def alsa_env(conf: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALSA", "PULSE"))}
    env["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{conf}"
    return env


def test_asound_conf_example_is_valid_for_alsa_lib(tmp_path: Path) -> None:
    if shutil.which("aplay") is None or shutil.which("arecord") is None:
        pytest.skip("alsa-utils not installed")
    env = alsa_env(asound_example(tmp_path))
    listing = subprocess.run(["aplay", "-L"], capture_output=True, text=True, env=env, timeout=30)
    assert "ALSA lib" not in listing.stderr, listing.stderr
    names = listing.stdout.split()
    assert "voice_mic" in names and "voice_spk" in names
    assert "Shared microphone (dsnoop)" in listing.stdout
    # Opening them resolves plug → dsnoop/dmix → the card: here only the card is missing.
    for tool, pcm in (("arecord", "voice_mic"), ("aplay", "voice_spk")):
        opened = subprocess.run(
            [tool, "-D", pcm, "-d", "1", "-f", "S16_LE", "-r", "24000", "/dev/null"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert opened.returncode != 0
        assert "Cannot get card index for seeed2micvoicec" in opened.stderr, opened.stderr
        assert "Unexpected" not in opened.stderr


def test_asound_conf_check_would_catch_a_broken_example(tmp_path: Path) -> None:
    if shutil.which("aplay") is None:
        pytest.skip("alsa-utils not installed")
    conf = asound_example(tmp_path)
    conf.write_text(conf.read_text().replace("ipc_key 7340221", "ipc_key"))
    listing = subprocess.run(
        ["aplay", "-L"], capture_output=True, text=True, env=alsa_env(conf), timeout=30
    )
    assert "ALSA lib" in listing.stderr
