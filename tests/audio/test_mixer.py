"""Volume buttons' mixer: real alsa-lib, through ALSA's ``pulse`` control plugin, changes the
volume of a real (private) PulseAudio sink."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
from device.audio.mixer import MixerError, Volume
volume = Volume("Master", device="vdmixer")
steps = [volume.get(), volume.set(40), volume.up(), volume.up(10), volume.down(), volume.set(250)]
try:
    Volume("Nonesuch", device="vdmixer").get()
    missing = ""
except MixerError as exc:
    missing = str(exc)
print(json.dumps({"steps": steps, "missing": missing}))
"""


def test_volume_steps_change_the_sink_volume_and_a_missing_control_is_named(
    pulse_factory: Any,
) -> None:
    pulse = pulse_factory()
    conf = pulse.dir / "mixer.conf"
    conf.write_text(f'ctl.vdmixer {{ type pulse; server "unix:{pulse.socket}"; device "spk" }}\n')
    env = pulse.env()
    env["ALSA_CONFIG_PATH"] = f"{pulse.alsa_config_path}:{conf}"
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    # set 40, up 5, up 10, down 5, and a request above 100 is clamped.
    assert result["steps"][1:] == [40, 45, 55, 50, 100]
    assert 'mixer control "Nonesuch" not found on device "vdmixer"' in result["missing"]
    assert "amixer -D vdmixer scontrols" in result["missing"]
    # PulseAudio itself reports the volume the buttons set.
    sink = subprocess.run(
        ["pactl", "get-sink-volume", "spk"], env=pulse.pa_env(), capture_output=True, text=True
    )
    assert "100%" in sink.stdout, sink.stdout
