"""``voice-device devices`` and ``voice-device doctor`` on real alsa-lib: what a person setting
up a Pi runs first, so their output must name what is there and what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).parent / "voice-device"
SYSTEM_ALSA = "/usr/share/alsa/alsa.conf"


def alsa_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    conf = tmp_path / "asound.conf"
    conf.write_text(
        f'pcm.vd_test_mic {{ type file; slave.pcm "null"; file "/dev/null"; '
        f'infile "{tmp_path / "in.raw"}"; format "raw"; '
        'hint { show on; description "voice-device test microphone" } }\n'
    )
    (tmp_path / "in.raw").write_bytes(bytes(96000))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "XAI"))}
    env.update(ALSA_CONFIG_PATH=f"{SYSTEM_ALSA}:{conf}", **extra)
    return env


def test_devices_lists_the_pcms_alsa_knows(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(CLI), "devices"], env=alsa_env(tmp_path), capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    capture = proc.stdout.split("Capture PCMs")[1].split("Playback PCMs")[0]
    assert "vd_test_mic" in capture
    assert "null" in proc.stdout.split("Playback PCMs")[1]


def test_doctor_names_each_problem_and_its_fix_without_showing_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[audio]\ncapture = "no_such_mic"\nplayback = "null"\n'
        '[credential]\nenv = "VD_DOCTOR_KEY"\n'
        f'[control]\nsocket = "{tmp_path / "control.sock"}"\n'
    )
    run = [str(CLI), "doctor", "--config", str(config)]
    env = alsa_env(tmp_path, GPIOZERO_PIN_FACTORY="mock")
    bad = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    capture = next(i for i, line in enumerate(lines) if "no_such_mic" in line)
    assert lines[capture].startswith("FAIL") and "fix:" in lines[capture + 1]
    assert any(line.startswith("ok") and "'null'" in line for line in lines)
    assert any(line.startswith("ok") and "MockFactory" in line for line in lines)
    assert any(line.startswith("FAIL") and "VD_DOCTOR_KEY" in line for line in lines)

    config.write_text(config.read_text().replace("no_such_mic", "vd_test_mic"))
    env["VD_DOCTOR_KEY"] = "fake-doctor-SECRET-1234"
    good = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stdout
    assert "SECRET" not in good.stdout + good.stderr
    assert "not shown" in good.stdout


def test_fleet_is_a_command_and_without_a_broker_says_how_to_name_one(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[mqtt]\n")
    proc = subprocess.run(
        [str(CLI), "fleet", "list", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2, proc.stderr
    assert "no broker" in proc.stderr and "--host" in proc.stderr
    helptext = subprocess.run([str(CLI), "--help"], capture_output=True, text=True, timeout=30)
    assert "fleet" in helptext.stdout


def test_wake_test_prints_where_the_wake_word_ends_and_doctor_loads_the_model(
    tmp_path: Path,
) -> None:
    import wave

    import numpy as np
    from wake.speech import espeak, silence, voiced_end

    said = espeak("okay nabu")
    said = said[: round(voiced_end(said) * 16000)]
    path = tmp_path / "mic.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.concatenate([silence(1.0), said, silence(1.0)]).tobytes())
    heard = subprocess.run(
        [str(CLI), "wake-test", str(path)], capture_output=True, text=True, timeout=60
    )
    assert heard.returncode == 0, heard.stderr
    (line,) = heard.stdout.splitlines()
    seconds = float(line.split()[0])
    assert abs(seconds - (1.0 + len(said) / 16000)) <= 0.1, line
    assert "okay_nabu" in line
    quiet = tmp_path / "quiet.wav"
    with wave.open(str(quiet), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(silence(2.0).tobytes())
    none = subprocess.run([str(CLI), "wake-test", str(quiet)], capture_output=True, text=True)
    assert none.returncode == 1 and "no wake word" in none.stderr
    missing = subprocess.run([str(CLI), "wake-test", str(tmp_path / "x.wav")], capture_output=True)
    assert missing.returncode == 2

    config = tmp_path / "config.toml"
    config.write_text('[audio]\ncapture = "null"\nplayback = "null"\n[wake]\nmodel = "hey_jarvis"')
    env = alsa_env(tmp_path, GPIOZERO_PIN_FACTORY="mock")
    doctor = subprocess.run(
        [str(CLI), "doctor", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert any(
        line.startswith("ok") and 'wake word model hey_jarvis ("Hey Jarvis") loaded' in line
        for line in doctor.stdout.splitlines()
    ), doctor.stdout
