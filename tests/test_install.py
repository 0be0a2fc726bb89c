"""scripts/install.sh and scripts/uninstall.sh, run for real in a throwaway root.

``--root DIR`` stages everything under DIR: the service user is created by the real
``systemd-sysusers --root``, the venv by the real ``python3 -m venv`` with this checkout
pip-installed, the unit enabled by the real ``systemctl --root`` (which only writes symlinks
under DIR). apt is never run: ``--dry-run`` cases check the plan with stub ``apt-get`` /
``apt-cache`` / ``systemctl`` first on PATH, which record any call.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.config import Config, parse_config

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "scripts" / "install.sh"
UNINSTALL = REPO / "scripts" / "uninstall.sh"
HOST_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "python3"
STUBS = ("apt-get", "apt-cache", "systemctl", "systemd-sysusers", "udevadm", "userdel", "groupdel")


def host_python_can_build() -> bool:
    """Debian's python3 with venv, setuptools and wheel builds this package offline."""
    probe = subprocess.run(
        [HOST_PYTHON, "-c", "import venv, ensurepip, setuptools, wheel"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def make_root(tmp: Path) -> Path:
    """A minimal target tree: passwd/group as Debian's base-passwd has them (audio = 29)."""
    root = tmp / "root"
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\naudio:x:29:\n")
    (etc / "shadow").write_text("")
    (etc / "gshadow").write_text("")
    (etc / "os-release").write_text("ID=debian\nVERSION_CODENAME=bookworm\n")
    return root


def stub_path(tmp: Path, *, lgpio_in_apt: bool) -> tuple[dict[str, str], Path]:
    """PATH with recording stubs for the commands that must not touch this machine."""
    bin_dir = tmp / "stubs"
    bin_dir.mkdir()
    log = tmp / "calls.log"
    for name in STUBS:
        rc = 0 if (name != "apt-cache" or lgpio_in_apt) else 100
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit {rc}\n')
        script.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env, log


def run(
    script: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def table(path: Path) -> dict[str, list[str]]:
    return {ln.split(":")[0]: ln.split(":") for ln in path.read_text().splitlines() if ln}


# ---------------------------------------------------------------- static checks


@pytest.mark.parametrize("script", [INSTALL, UNINSTALL], ids=["install", "uninstall"])
def test_scripts_are_shellcheck_clean(script: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    result = subprocess.run(
        ["shellcheck", "--severity=style", str(script)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", [INSTALL, UNINSTALL], ids=["install", "uninstall"])
def test_unknown_option_is_named_and_exits_2(script: Path) -> None:
    result = run(script, "--frobnicate")
    assert result.returncode == 2
    assert "unknown option: --frobnicate" in result.stderr
    assert "usage:" in result.stderr


# ---------------------------------------------------------------- dry runs on "/"


@pytest.fixture
def host_untouched() -> Iterator[None]:
    paths = [Path("/opt/voice-device"), Path("/etc/voice-device"),
             Path("/etc/systemd/system/voice-device.service")]  # fmt: skip
    if any(p.exists() for p in paths):
        pytest.skip("voice-device is installed on this machine")
    yield
    assert not any(p.exists() for p in paths), "a dry run changed this machine"


@pytest.mark.parametrize("lgpio_in_apt", [True, False], ids=["pi-os", "plain-debian"])
def test_dry_run_prints_the_plan_and_runs_nothing(
    tmp_path: Path, host_untouched: None, lgpio_in_apt: bool
) -> None:
    env, log = stub_path(tmp_path, lgpio_in_apt=lgpio_in_apt)
    result = run(INSTALL, "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    plan = result.stdout
    # only the read-only package query ran
    calls = log.read_text().splitlines() if log.exists() else []
    assert calls == ["apt-cache show python3-lgpio"]
    apt_line = next(ln for ln in plan.splitlines() if " install -y " in ln)
    for package in ("python3-venv", "python3-dev", "gcc", "libasound2-dev"):
        assert package in apt_line.split()
    venv_line = next(ln for ln in plan.splitlines() if " -m venv " in ln)
    if lgpio_in_apt:  # Raspberry Pi OS: Debian's lgpio, seen through the venv
        assert "python3-lgpio" in apt_line.split()
        assert "--system-site-packages" in venv_line
        assert "pip install --no-input lgpio" not in plan
    else:  # plain Debian: lgpio from PyPI
        assert "python3-lgpio" not in apt_line.split()
        assert "--system-site-packages" not in venv_line
        assert "pip install --no-input lgpio" in plan
    assert f"pip install --upgrade --no-input {REPO}" in plan
    assert "systemd-sysusers " in plan
    assert "/etc/voice-device/config.toml" in plan
    assert "install -m 0600 -o root -g root /dev/null /etc/voice-device/api-key" in plan
    assert "/etc/systemd/system/voice-device.service" in plan
    assert "systemctl enable voice-device.service" in plan
    assert "dry run: nothing was changed" in plan


def test_uninstall_dry_run_runs_nothing(tmp_path: Path, host_untouched: None) -> None:
    env, log = stub_path(tmp_path, lgpio_in_apt=False)
    result = run(UNINSTALL, "--dry-run", "--purge", env=env)
    assert result.returncode == 0, result.stderr
    assert "rm -rf /opt/voice-device" in result.stdout
    assert "rm -rf /etc/voice-device" in result.stdout
    assert "rm -rf /var/lib/voice-device" in result.stdout
    assert not log.exists()


def test_install_without_root_privileges_refuses(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to drop to an ordinary user")
    result = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(INSTALL)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert result.returncode == 1
    assert "run as root" in result.stderr


# ---------------------------------------------------------------- real install in a throwaway root


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("staging sets root/voice-device ownership: needs root")
    if shutil.which("systemd-sysusers") is None or shutil.which("systemctl") is None:
        pytest.skip("systemd tools not installed")
    if not host_python_can_build():
        pytest.skip("python3 lacks venv/setuptools/wheel to build offline")
    return make_root(tmp_path)


def install_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHON"] = HOST_PYTHON
    # Offline: the dependencies are not needed to check the layout.
    env["PIP_INSTALL_ARGS"] = "--no-deps --no-index --no-build-isolation -q"
    env["LGPIO_PIP"] = ""
    return env


def test_install_then_uninstall_in_a_throwaway_root(staged: Path) -> None:
    root = staged
    # Pretend Debian's python3-lgpio is there, as on Raspberry Pi OS.
    (root / "usr/lib/python3/dist-packages").mkdir(parents=True)
    (root / "usr/lib/python3/dist-packages/lgpio.py").write_text("")
    host_unit = Path("/etc/systemd/system/voice-device.service")
    assert not host_unit.exists()

    result = run(INSTALL, "--root", str(root), env=install_env(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not host_unit.exists(), "--root leaked onto this machine"

    # the service user, in audio and gpio (gpio created), nologin
    passwd, group = table(root / "etc/passwd"), table(root / "etc/group")
    assert passwd["voice-device"][6] == "/usr/sbin/nologin"
    assert "voice-device" in group["audio"][3].split(",")
    assert "voice-device" in group["gpio"][3].split(",")
    gid = int(group["voice-device"][2])

    # the venv, with the entry point the unit starts and Debian's lgpio visible
    venv = root / "opt/voice-device/venv"
    assert os.access(venv / "bin/voice-device", os.X_OK)
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    probe = subprocess.run(
        [str(venv / "bin/python"), "-c", "import device, sys; print(device.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(str(venv)), "the venv must use its own installed copy"

    # config: the template, readable by the service group only, and valid
    etc = root / "etc/voice-device"
    config = etc / "config.toml"
    assert config.read_text() == (REPO / "config/config.toml").read_text()
    st = config.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, gid)
    st = etc.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 0, gid)
    assert isinstance(parse_config(config.read_text()), Config)
    key = etc / "api-key"
    st = key.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_size) == (0o600, 0, 0)

    # unit installed and enabled; udev rule and sysusers entry in place
    unit = root / "etc/systemd/system/voice-device.service"
    assert unit.read_text() == (REPO / "systemd/voice-device.service").read_text()
    wants = root / "etc/systemd/system/multi-user.target.wants/voice-device.service"
    assert wants.is_symlink()
    assert os.readlink(wants) == "/etc/systemd/system/voice-device.service"
    assert (root / "etc/udev/rules.d/60-voice-device-gpio.rules").exists()
    assert (root / "etc/sysusers.d/voice-device.conf").exists()
    assert (root / "opt/voice-device/hardware.md").exists()
    cli = root / "usr/local/bin/voice-device"
    assert os.readlink(cli) == "/opt/voice-device/venv/bin/voice-device"

    # a second run upgrades in place and keeps what the user changed
    config.write_text('[audio]\ncapture = "plughw:CARD=seeed2micvoicec,DEV=0"\n')
    key.write_text("fake-test-not-a-real-key\n")
    again = run(INSTALL, "--root", str(root), env=install_env(root))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "keeping /etc/voice-device/config.toml" in again.stdout
    assert "seeed2micvoicec" in config.read_text()
    assert key.read_text() == "fake-test-not-a-real-key\n"
    assert "fake-test" not in again.stdout + again.stderr

    # (what systemd's StateDirectory= holds once the service ran: the usage history)
    state = root / "var/lib/voice-device"
    state.mkdir(parents=True)
    (state / "usage.json").write_text('{"version": 1, "days": {}}\n')

    # uninstall keeps config, key, usage history and user ...
    result = run(UNINSTALL, "--root", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (root / "opt/voice-device").exists()
    assert not cli.is_symlink()
    assert not unit.exists() and not wants.is_symlink()
    assert not (root / "etc/udev/rules.d/60-voice-device-gpio.rules").exists()
    assert config.exists() and key.exists() and (state / "usage.json").exists()
    assert "voice-device" in table(root / "etc/passwd")

    # ... and --purge removes them too
    result = run(UNINSTALL, "--root", str(root), "--purge")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not etc.exists() and not state.exists()
    assert "voice-device" not in table(root / "etc/passwd")
    group = table(root / "etc/group")
    assert "voice-device" not in group
    assert "voice-device" not in group["audio"][3].split(",")
    assert "gpio" in group  # shared with other programs: kept


# ---------------------------------------------------------------- the installed config template

TEMPLATE = REPO / "config" / "config.toml"


@dataclasses.dataclass(frozen=True)
class TemplateLine:
    section: str
    key: str
    toml: str  # the line without its leading "#"
    example: bool
    active: bool


def template_lines() -> list[TemplateLine]:
    out: list[TemplateLine] = []
    section = ""
    for line in TEMPLATE.read_text().splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line):
            section = m.group(1)
        elif m := re.fullmatch(r"(#?)(\w+) = .+", line):
            out.append(
                TemplateLine(section, m.group(2), line.lstrip("#"), "# example" in line, not m[1])
            )
    return out


def expected_installed_config() -> Config:
    """Built-in defaults, except the one deliberate change: the key comes from LoadCredential."""
    base = Config()
    return dataclasses.replace(base, credential=dataclasses.replace(base.credential, source="file"))


def test_template_shows_every_config_key() -> None:
    shown = {(t.section, t.key) for t in template_lines()}
    config = Config()
    for section in dataclasses.fields(config):
        for key in dataclasses.fields(getattr(config, section.name)):
            assert (section.name, key.name) in shown, f"{section.name}.{key.name} is missing"
    assert {s for s, _ in shown} == {f.name for f in dataclasses.fields(config)}


def test_template_as_installed_uses_the_systemd_credential() -> None:
    assert parse_config(TEMPLATE.read_text()) == expected_installed_config()
    assert [t.key for t in template_lines() if t.active] == ["source"]


def test_template_defaults_are_the_programs_defaults() -> None:
    """Uncommenting every "#key = value" line (not the examples) changes nothing."""
    lines = [t for t in template_lines() if not t.example and not t.active]
    by_section: dict[str, list[str]] = {}
    for t in lines:
        by_section.setdefault(t.section, []).append(t.toml)
    by_section.setdefault("credential", []).append('source = "file"')
    text = "\n".join(f"[{s}]\n" + "\n".join(body) for s, body in by_section.items())
    assert parse_config(text) == expected_installed_config()


@pytest.mark.parametrize(
    "line",
    [t for t in template_lines() if t.example],
    ids=lambda t: f"{t.section}.{t.key}",
)
def test_template_examples_are_valid_settings(line: TemplateLine) -> None:
    config = parse_config(f"[{line.section}]\n{line.toml}\n")
    assert getattr(getattr(config, line.section), line.key) != getattr(
        getattr(Config(), line.section), line.key
    ), "an example should show a non-default value"
