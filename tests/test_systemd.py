"""The systemd unit: systemd's own verifier, its security score, and the sandbox in action.

* ``systemd-analyze verify`` must print nothing on stderr (the ExecStart path is pointed at an
  existing executable, as it would exist on an installed Pi).
* ``systemd-analyze security --offline=yes`` must rate the unit's exposure ≤ 2.5, and
  hardware.md must state the figure this systemd version computes.
* The seccomp part of the sandbox (system call filter, address families, W^X memory) is applied
  to a real Python process by tests/sandbox.py, which then runs numpy/soxr, ALSA through
  pyalsaaudio, gpiozero, websockets over TLS, the control socket and sd_notify.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from notify_listener import NotifyListener
from sandbox import allowed_syscalls, read_service_settings, syscall_groups

from device.config import Config, parse_config

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "voice-device.service"
EXEC = "/opt/voice-device/venv/bin/voice-device"
MAX_EXPOSURE = 2.5

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def service() -> dict[str, list[str]]:
    return read_service_settings(UNIT)


def unit_section(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == f"[{name}]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def installed_copy(tmp_path: Path, text: str | None = None) -> Path:
    """The unit as it would be on a Pi: ExecStart pointing at an executable that exists."""
    exe = tmp_path / "venv" / "bin" / "voice-device"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    body = (text if text is not None else UNIT.read_text()).replace(EXEC, str(exe))
    out = tmp_path / "voice-device.service"
    out.write_text(body)
    return out


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# ---------------------------------------------------------------- verify


@needs_analyze
def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    result = verify(installed_copy(tmp_path))
    assert result.stderr == ""
    assert result.returncode == 0


@needs_analyze
def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt setting and a missing binary are reported."""
    broken = UNIT.read_text().replace("WatchdogSec=", "WatchdogSecs=")
    result = verify(installed_copy(tmp_path, broken))
    assert "WatchdogSecs" in result.stderr
    result = verify(UNIT)  # ExecStart does not exist on this machine
    assert "is not executable" in result.stderr


# ---------------------------------------------------------------- security score


def exposure(path: Path) -> float:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


def systemd_version() -> int:
    out = subprocess.run(
        ["systemd-analyze", "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.match(r"systemd (\d+)", out)
    assert match, out
    return int(match.group(1))


@needs_analyze
def test_exposure_is_at_most_2_5_and_recorded_in_hardware_md(tmp_path: Path) -> None:
    score = exposure(installed_copy(tmp_path))
    assert score <= MAX_EXPOSURE
    doc = (REPO / "hardware.md").read_text()
    recorded = re.findall(r"exposure\s+(\d+\.\d+)\s+\(systemd\s+(\d+)\)", doc)
    assert recorded, "hardware.md must record the exposure as 'exposure X.Y (systemd N)'"
    by_version = {int(v): float(s) for s, v in recorded}
    version = systemd_version()
    if version in by_version:
        assert by_version[version] == score, f"hardware.md is stale: systemd {version} says {score}"


@needs_analyze
def test_the_score_reacts_to_the_hardening(tmp_path: Path) -> None:
    """Sanity check of the measurement: without the sandbox the unit scores far worse."""
    lines = [
        line
        for line in UNIT.read_text().splitlines()
        if not line.startswith(
            (
                "NoNewPrivileges",
                "ProtectSystem",
                "SystemCallFilter",
                "CapabilityBoundingSet",
                "RestrictAddressFamilies",
                "PrivateTmp",
            )
        )
    ]
    assert exposure(installed_copy(tmp_path, "\n".join(lines) + "\n")) > MAX_EXPOSURE + 1


# ---------------------------------------------------------------- contract with the app


def test_unit_matches_what_the_service_and_installer_expect() -> None:
    s = service()
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["ExecStart"] == [f"{EXEC} run --config /etc/voice-device/config.toml"]
    # `systemctl reload` (README) is the SIGHUP that re-reads the config (tests/e2e: SIGHUP).
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert float(s["WatchdogSec"][0]) >= 10  # pings every WatchdogSec/2 from the event loop
    assert s["Restart"] == ["on-failure"]
    assert s["User"] == ["voice-device"]
    assert set(s["SupplementaryGroups"][0].split()) == {"audio", "gpio"}
    assert {v.split()[0] for v in s["DeviceAllow"]} == {"char-alsa", "char-gpiochip"}
    unit = unit_section("Unit")
    assert "network-online.target" in unit["Wants"][0].split()
    assert {"network-online.target", "sound.target"} <= set(unit["After"][0].split())
    assert "StartLimitBurst" in unit and "StartLimitIntervalSec" in unit


def test_control_socket_lives_in_the_runtime_directory() -> None:
    s = service()
    runtime = "/run/" + s["RuntimeDirectory"][0]
    assert Path(Config().control.socket).parent == Path(runtime)
    # lgpio writes its notification FIFOs to LG_WD (else the working directory).
    assert f"LG_WD={runtime}" in " ".join(s["Environment"])
    assert s["WorkingDirectory"] == [runtime]


def test_usage_state_lives_in_the_state_directory() -> None:
    """systemd creates /var/lib/<StateDirectory> (writable despite ProtectSystem=strict) and
    sets $STATE_DIRECTORY; without it the store falls back to the same place."""
    from device.usage import state_dir

    s = service()
    (name,) = s["StateDirectory"]
    assert state_dir({}) == Path("/var/lib") / name
    assert state_dir({"STATE_DIRECTORY": f"/var/lib/{name}"}) == Path("/var/lib") / name


def test_the_credential_the_unit_loads_is_the_one_the_template_reads() -> None:
    s = service()
    name, path = s["LoadCredential"][0].split(":", 1)
    assert path == "/etc/voice-device/api-key"
    template = parse_config((REPO / "config" / "config.toml").read_text())
    assert template.credential.source == "file"
    assert template.credential.file == name  # resolved in $CREDENTIALS_DIRECTORY


def test_config_errors_are_not_restarted_in_a_loop() -> None:
    """`voice-device run` exits 2 on a bad config; restarting cannot fix that."""
    assert service()["RestartPreventExitStatus"] == ["2"]


def test_sysusers_entry_creates_the_user_in_audio_and_gpio(tmp_path: Path) -> None:
    if shutil.which("systemd-sysusers") is None:
        pytest.skip("systemd-sysusers not installed")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\naudio:x:29:\n")
    (etc / "shadow").write_text("")
    (etc / "gshadow").write_text("")
    conf = REPO / "systemd" / "voice-device.sysusers.conf"
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(conf)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    passwd = {ln.split(":")[0]: ln.split(":") for ln in (etc / "passwd").read_text().splitlines()}
    groups = {ln.split(":")[0]: ln.split(":") for ln in (etc / "group").read_text().splitlines()}
    user = passwd["voice-device"]
    assert user[6] == "/usr/sbin/nologin"
    assert int(user[2]) < 1000  # a system user
    assert "voice-device" in groups["audio"][3].split(",")
    assert "voice-device" in groups["gpio"][3].split(",")  # gpio created when missing
    assert groups["audio"][2] == "29"  # an existing group is left as it was


# ---------------------------------------------------------------- the sandbox at work

ALSA_CONF = """
pcm.fplay {{ type file; slave.pcm "null"; file "{out}"; format "raw" }}
pcm.fcap {{ type file; slave.pcm "null"; file "/dev/null"; infile "{inp}"; format "raw" }}
"""

WORKLOAD = r"""
import asyncio, json, mmap, os, socket, ssl, sys, threading, time

import numpy as np
import soxr
import alsaaudio
from gpiozero import Button, Device, PWMLED
from gpiozero.pins.mock import MockFactory, MockPWMPin
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from device.commands import CommandTable
from device.control import ControlServer, request
from device.realtime.models import OpenAIRealtimeModel
from device.sdnotify import Notifier
from device.session import RealtimeSession

cert, key, sock_dir = sys.argv[1:4]
out = {}

# numpy + soxr, as the audio path uses them
tone = (np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000) * 8000).astype(np.int16)
stream = soxr.ResampleStream(48000, 24000, 1, dtype="int16")
down = np.concatenate([stream.resample_chunk(tone[i:i + 960]) for i in range(0, 48000, 960)])
out["soxr_frames"] = int(len(down))

# ALSA through pyalsaaudio (file-backed PCMs from ALSA_CONFIG_PATH)
kw = dict(channels=1, rate=48000, format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=960)
play = alsaaudio.PCM(alsaaudio.PCM_PLAYBACK, device="fplay", **kw)
for i in range(0, 48000, 960):
    play.write(tone[i:i + 960].tobytes())
play.close()
cap = alsaaudio.PCM(alsaaudio.PCM_CAPTURE, device="fcap", **kw)
n, data = cap.read()
cap.close()
out["alsa_read_frames"] = n
out["alsa_first_sample"] = int(np.frombuffer(data, dtype=np.int16)[1])

# gpiozero: a PWM LED blinking on its background thread, a button press
Device.pin_factory = MockFactory(pin_class=MockPWMPin)
led = PWMLED(22)
led.blink(on_time=0.01, off_time=0.01)
time.sleep(0.1)
out["led_changes"] = len(Device.pin_factory.pin(22).states)
led.close()
presses = []
button = Button(17)
button.when_pressed = lambda: presses.append(1)
Device.pin_factory.pin(17).drive_low()
out["presses"] = len(presses)
button.close()

async def network():
    # websockets over TLS on loopback (AF_INET), as the model connection does
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"wss://localhost:{port}", ssl=client_ctx) as ws:
            await ws.send("hello")
            out["wss_echo"] = await ws.recv()

    # the kiosk control socket (AF_UNIX) with a real session
    session = RealtimeSession(OpenAIRealtimeModel(url="ws://127.0.0.1:9/v1/realtime"))
    path = os.path.join(sock_dir, "run", "control.sock")
    control = ControlServer(CommandTable(session), path, mode=0o660)
    await control.start()
    out["control_status"] = await asyncio.to_thread(request, path, {"cmd": "status"})
    await control.close()

    # sd_notify (AF_UNIX datagram)
    notifier = Notifier()
    out["notified"] = notifier.ready("sandboxed, mic live")

asyncio.run(network())

# what the sandbox must refuse
def refused(fn):
    try:
        fn()
    except OSError as exc:
        return exc.errno
    return 0

out["netlink_errno"] = refused(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
out["packet_errno"] = refused(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))
out["wx_mmap_errno"] = refused(lambda: mmap.mmap(-1, 4096, prot=7))
out["setpriority_errno"] = refused(lambda: os.setpriority(os.PRIO_PROCESS, 0, 19))

# the wake word: TFLite's interpreter loads and runs under MemoryDenyWriteExecute=
from device.wake.detector import WakeDetector
detector = WakeDetector("okay_nabu")
detector.feed(b"\x00\x00" * 16000)  # one second of silence at 16 kHz
out["wake_samples"] = detector.samples

# ctypes callbacks need executable trampolines: libffi must manage without W+X memory
import ctypes
callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda v: v + 1)
out["ctypes_callback"] = callback(41)
print(json.dumps(out))
"""


def seccomp_usable() -> bool:
    probe = subprocess.run(
        [sys.executable, str(REPO / "tests" / "sandbox.py"), str(UNIT), "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@needs_analyze
def test_the_service_stack_runs_inside_the_units_seccomp_sandbox(
    tmp_path: Path, tls_cert: tuple[Path, Path]
) -> None:
    if not seccomp_usable():
        pytest.skip("seccomp filters cannot be installed here")
    cert, key = tls_cert
    raw_in = tmp_path / "in.raw"
    raw_in.write_bytes(b"\x00\x00" + (1234).to_bytes(2, "little", signed=True) * 2000)
    raw_out = tmp_path / "out.raw"
    conf = tmp_path / "test.conf"
    conf.write_text(ALSA_CONF.format(out=raw_out, inp=raw_in))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GPIOZERO_", "NOTIFY_", "ALSA"))
    }
    env["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{conf}"
    env["PYTHONPATH"] = str(REPO)
    with NotifyListener() as listener:
        env.update(listener.env())
        result = subprocess.run(
            [
                sys.executable, str(REPO / "tests" / "sandbox.py"), str(UNIT), "--",
                sys.executable, "-c", WORKLOAD, str(cert), str(key), str(tmp_path),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        listener.wait_for("READY", "1")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # everything the appliance does still works ...
    assert out["soxr_frames"] > 23000
    assert out["alsa_read_frames"] > 0
    assert out["alsa_first_sample"] == 1234
    assert raw_out.stat().st_size == 48000 * 2
    assert out["led_changes"] > 3
    assert out["presses"] == 1
    assert out["wss_echo"] == "hello"
    assert out["control_status"] == {"ok": True, "status": "disconnected", "muted": False}
    assert out["notified"] is True
    assert out["ctypes_callback"] == 42
    assert out["wake_samples"] == 16000
    # ... and the sandbox was really in force
    assert out["netlink_errno"] == 97  # EAFNOSUPPORT: RestrictAddressFamilies=
    assert out["packet_errno"] == 97
    assert out["wx_mmap_errno"] == 1  # EPERM: MemoryDenyWriteExecute=
    assert out["setpriority_errno"] == 1  # EPERM: SystemCallFilter=~@resources


@needs_analyze
def test_the_filter_keeps_the_calls_alsa_dmix_and_lgpio_need() -> None:
    """dmix/dsnoop share a SysV shm ring and semaphores; lgpio makes FIFOs with mknod."""
    allow = allowed_syscalls(service()["SystemCallFilter"], syscall_groups())
    assert allow is not None
    needed = {"shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semctl"}
    needed |= {"mknodat", "ioctl", "poll", "ppoll", "eventfd2", "sendmsg", "recvmsg"}
    assert needed <= allow, needed - allow
    assert not {"setpriority", "sched_setscheduler", "mount", "ptrace", "bpf"} & allow


def test_the_optional_mqtt_password_cannot_keep_the_service_from_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LoadCredential= of a missing file fails the start, unless SetCredential= gives the same
    id a fallback (systemd.exec). The fallback reads as an empty password file: the bridge
    reports that and the service runs on locally."""
    from device.mqtt import MqttConfig
    from device.realtime.errors import CredentialError

    s = service()
    loaded = dict(v.split(":", 1) for v in s["LoadCredential"])
    fallback = dict(v.split(":", 1) for v in s["SetCredential"])
    assert loaded["mqtt-password"] == "/etc/voice-device/mqtt-password"
    assert fallback["mqtt-password"] == "\\n"  # C-style escape: one newline, no secret
    (tmp_path / "mqtt-password").write_text("\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    config = MqttConfig.from_table(
        {"host": "b", "username": "kiosk01", "password_file": "mqtt-password", "device_id": "k"}
    )
    with pytest.raises(CredentialError, match=r"mqtt\.password_file: .* is empty"):
        config.password()
