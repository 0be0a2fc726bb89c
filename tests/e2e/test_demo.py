"""``voice-device demo`` (what ``make demo`` runs) works on a machine with no sound card and no
GPIO, and its timeline tells the truth about what happened."""

from __future__ import annotations

import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

CLI = Path(sys.executable).parent / "voice-device"


def test_demo_runs_the_whole_appliance_and_records_the_speaker(tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    proc = subprocess.run(
        [str(CLI), "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    lines = proc.stdout.splitlines()

    def after(marker: str) -> list[str]:
        index = next(i for i, line in enumerate(lines) if marker in line)
        return lines[index + 1 :]

    # Button presses drive the session, and the LED pins follow.
    connected = after("press connect")
    assert any(re.search(r"status\s+connected", line) for line in connected[:4])
    assert "status on" in next(line for line in connected if " leds " in line)
    muted = after("speak while muted")
    assert "audio frames sent while muted: 0" in "\n".join(muted[:3])
    assert "mute on" in next(line for line in muted if " leds " in line)
    # The spoken question is heard and answered; talking over the answer cuts it.
    assert any(re.search(r"user\s+'\(\d\.\d s of speech\)'", line) for line in lines)
    barge = next(line for line in lines if "barge-in" in line)
    heard, sent = map(int, re.findall(r"(\d+) ms", barge)[:2])
    assert 0 < heard <= sent
    assert "status off" in lines[-3] + lines[-4] + lines[-5]
    # Nothing went wrong. A playback underrun is the one warning a busy shared machine may
    # cause (the demo runs the model and the appliance on one loop); it is logged, recovered
    # from, and the answer is still checked in the recording below.
    problems = [
        line
        for line in proc.stderr.splitlines()
        if ("WARNING" in line or "ERROR" in line) and "playback underrun" not in line
    ]
    assert not problems, proc.stderr[-2000:]

    with wave.open(str(out)) as w:
        assert w.getframerate() == 48000 and w.getnchannels() == 1
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    loud = np.abs(pcm.astype(np.int32)) > 2000
    assert loud.sum() / 48000 > 2.0, "the model's answers are not in reply.wav"
