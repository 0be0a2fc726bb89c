#!/usr/bin/env bash
# Install voice-device as a systemd service (Raspberry Pi OS / Debian, Bookworm or Trixie).
#
#   sudo scripts/install.sh            # what `sudo make install` runs
#   scripts/install.sh --dry-run       # print every step, change nothing
#   scripts/install.sh --root /tmp/r   # stage into a directory tree (testing, image builds)
#
# Steps: apt packages; the service user (systemd-sysusers); a venv at /opt/voice-device/venv
# with this checkout pip-installed; /etc/voice-device/config.toml from config/config.toml when
# absent (never overwritten) and an empty /etc/voice-device/api-key for LoadCredential= (an
# existing key is kept, its owner and mode reset to root:root 0600 on every run); the
# udev rule for /dev/gpiochip*; the unit in /etc/systemd/system, enabled and (re)started.
# Run it again to upgrade: the venv is updated in place, config and API key are kept.
set -euo pipefail

PROG=install.sh
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=/
DRY_RUN=0
DO_APT=1
DO_START=1
PYTHON="${PYTHON:-python3}"
APT_GET="${APT_GET:-apt-get}"
SYSTEMCTL="${SYSTEMCTL:-systemctl}"
LGPIO_PIP="${LGPIO_PIP-lgpio}"
read -r -a PIP_ARGS <<<"${PIP_INSTALL_ARGS:-}"

usage() {
    cat <<EOF
usage: $PROG [--dry-run] [--root DIR] [--no-apt] [--no-start] [--src DIR]

  -n, --dry-run   print each command instead of running it
  --root DIR      install into DIR instead of / (implies --no-apt --no-start; the unit is
                  enabled with systemctl --root, users are created with systemd-sysusers --root)
  --no-apt        do not install Debian packages
  --no-start      enable the service but do not (re)start it
  --src DIR       the voice-device checkout to install (default: $SRC)

Environment: PYTHON (interpreter for the venv, default python3), PIP_INSTALL_ARGS (extra
pip arguments), LGPIO_PIP (pip spec for lgpio when Debian has no python3-lgpio; empty: skip).
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        -n | --dry-run) DRY_RUN=1 ;;
        --root) ROOT="${2:?--root needs a directory}"; shift ;;
        --root=*) ROOT="${1#*=}" ;;
        --no-apt) DO_APT=0 ;;
        --no-start) DO_START=0 ;;
        --src) SRC="${2:?--src needs a directory}"; shift ;;
        --src=*) SRC="${1#*=}" ;;
        -h | --help) usage; exit 0 ;;
        *) echo "$PROG: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

say() { printf '==> %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# Print a command (shell-quoted), then run it unless --dry-run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [ "$DRY_RUN" -eq 0 ]; then
        "$@"
    fi
}

# A path inside the target root.
dest() {
    if [ "$ROOT" = / ]; then
        printf '%s' "$1"
    else
        printf '%s%s' "${ROOT%/}" "$1"
    fi
}

# systemd is running here (not a chroot, not a container without it).
systemd_running() { [ "$ROOT" = / ] && [ -d /run/systemd/system ]; }

ROOT_OPT=()
if [ "$ROOT" != / ]; then
    ROOT="$(cd "$ROOT" 2>/dev/null && pwd)" || die "--root $ROOT: no such directory"
    ROOT_OPT=(--root="$ROOT")
    DO_APT=0
    DO_START=0
fi

# Root first: an ordinary user may not even be able to read the checkout (a clone in /root).
if [ "$ROOT" = / ] && [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo make install (or --dry-run to see the steps)"
fi
if [ ! -f "$SRC/pyproject.toml" ] || [ ! -f "$SRC/systemd/voice-device.service" ]; then
    die "$SRC is not a voice-device checkout (use --src)"
fi

PREFIX=/opt/voice-device
VENV="$PREFIX/venv"
ETC=/etc/voice-device
UNIT=voice-device.service

# ---------------------------------------------------------------- the system
if [ -r "$(dest /etc/os-release)" ]; then
    # shellcheck disable=SC1090
    OS_ID="$(. "$(dest /etc/os-release)" && printf '%s %s' "${ID:-?}" "${VERSION_CODENAME:-?}")"
    case "$OS_ID" in
        "debian bookworm" | "debian trixie" | "raspbian bookworm" | "raspbian trixie") ;;
        *) warn "tested on Raspberry Pi OS / Debian bookworm and trixie; this is $OS_ID" ;;
    esac
fi
if [ "$ROOT" = / ] && ! grep -qs "Raspberry Pi" /proc/device-tree/model; then
    warn "this does not look like a Raspberry Pi: GPIO buttons and LEDs will not work"
fi

# ---------------------------------------------------------------- packages
# lgpio (gpiozero's pin factory for /dev/gpiochip*) from Debian when the system has it.
SYSTEM_LGPIO=0
if [ -e "$(dest /usr/lib/python3/dist-packages/lgpio.py)" ]; then
    SYSTEM_LGPIO=1
fi
if [ "$DO_APT" -eq 1 ]; then
    say "Debian packages"
    # python3-dev, gcc, libasound2-dev: pyalsaaudio is built from source by pip.
    packages=(python3 python3-venv python3-dev gcc libasound2-dev alsa-utils)
    # Raspberry Pi OS packages lgpio; plain Debian does not, and pip then installs it into
    # the venv instead.
    if apt-cache show python3-lgpio >/dev/null 2>&1; then
        packages+=(python3-lgpio)
        SYSTEM_LGPIO=1
    fi
    run "$APT_GET" update
    run env DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y --no-install-recommends \
        "${packages[@]}"
fi

# ---------------------------------------------------------------- service user
say "service user voice-device (groups audio, gpio)"
run install -D -m 0644 "$SRC/systemd/voice-device.sysusers.conf" \
    "$(dest /etc/sysusers.d/voice-device.conf)"
run systemd-sysusers "${ROOT_OPT[@]}" "$SRC/systemd/voice-device.sysusers.conf"

# The service's group id as the target root knows it (the name may not exist on the host).
group_id() {
    local gid
    gid="$(awk -F: -v g=voice-device '$1 == g { print $3 }' "$(dest /etc/group)" 2>/dev/null || true)"
    printf '%s' "${gid:-voice-device}"
}

# ---------------------------------------------------------------- venv
say "Python environment $VENV"
venv_opts=()
if [ "$SYSTEM_LGPIO" -eq 1 ]; then
    # Let the venv see Debian's python3-lgpio.
    venv_opts+=(--system-site-packages)
fi
if [ ! -x "$(dest "$VENV")/bin/python" ]; then
    run install -d -m 0755 "$(dest "$PREFIX")"
    run "$PYTHON" -m venv "${venv_opts[@]}" "$(dest "$VENV")"
fi
run "$(dest "$VENV")/bin/python" -m pip install --upgrade --no-input "${PIP_ARGS[@]}" "$SRC"
if [ "$SYSTEM_LGPIO" -eq 0 ] && [ -n "$LGPIO_PIP" ]; then
    run "$(dest "$VENV")/bin/python" -m pip install --no-input "${PIP_ARGS[@]}" "$LGPIO_PIP" ||
        warn "lgpio did not install: buttons and LEDs need it (apt install python3-lgpio, or swig + liblgpio-dev)"
fi
# The CLI on the PATH (kiosk commands, doctor); the unit starts the venv's copy directly.
run install -d -m 0755 "$(dest /usr/local/bin)"
run ln -sfn "$VENV/bin/voice-device" "$(dest /usr/local/bin/voice-device)"
run install -m 0644 "$SRC/hardware.md" "$(dest "$PREFIX")/hardware.md"
run install -D -m 0644 "$SRC/docs/wiring.svg" "$(dest "$PREFIX")/docs/wiring.svg"
run install -m 0644 "$SRC/config/config.toml" "$(dest "$PREFIX")/config.toml.example"

# ---------------------------------------------------------------- config and API key
say "configuration $ETC"
run install -d -m 0750 -o root -g "$(group_id)" "$(dest "$ETC")"
if [ -e "$(dest "$ETC/config.toml")" ]; then
    say "keeping $ETC/config.toml (the current template is $PREFIX/config.toml.example)"
else
    run install -m 0640 -o root -g "$(group_id)" "$SRC/config/config.toml" "$(dest "$ETC/config.toml")"
fi
if [ -e "$(dest "$ETC/api-key")" ]; then
    # Kept, but never readable by anyone else (group voice-device holds kiosk users): the
    # owner and mode are put back on every run.
    say "keeping $ETC/api-key (owner root:root, mode 0600 re-asserted)"
    run chown root:root "$(dest "$ETC/api-key")"
    run chmod 0600 "$(dest "$ETC/api-key")"
else
    # Read by systemd (LoadCredential=) as root, handed to the service privately.
    run install -m 0600 -o root -g root /dev/null "$(dest "$ETC/api-key")"
fi

# ---------------------------------------------------------------- udev, unit
say "udev rule for /dev/gpiochip*"
run install -D -m 0644 "$SRC/systemd/60-voice-device-gpio.rules" \
    "$(dest /etc/udev/rules.d/60-voice-device-gpio.rules)"
if systemd_running && command -v udevadm >/dev/null; then
    run udevadm control --reload-rules || warn "udevadm control --reload-rules failed"
    run udevadm trigger --subsystem-match=gpio || warn "udevadm trigger failed"
fi

say "systemd unit $UNIT"
run install -D -m 0644 "$SRC/systemd/$UNIT" "$(dest /etc/systemd/system/$UNIT)"
if systemd_running; then
    run "$SYSTEMCTL" daemon-reload
fi
run "$SYSTEMCTL" "${ROOT_OPT[@]}" enable "$UNIT"

if [ "$ROOT" = / ] && [ "$DRY_RUN" -eq 0 ]; then
    "$VENV/bin/voice-device" config check "$ETC/config.toml" ||
        warn "$ETC/config.toml has errors: fix them before starting the service"
fi
if [ "$DO_START" -eq 1 ] && systemd_running; then
    run "$SYSTEMCTL" restart "$UNIT"
fi

cat <<EOF

voice-device is installed$([ "$ROOT" != / ] && printf ' under %s' "$ROOT")$([ "$DRY_RUN" -eq 1 ] && printf ' (dry run: nothing was changed)').
Next:
  1. Put your API key in $ETC/api-key (sudoedit $ETC/api-key; one line, mode 0600).
  2. Pick the audio devices and pins in $ETC/config.toml (voice-device devices lists them;
     hardware.md explains the wiring), then: sudo systemctl restart voice-device
  3. Check everything: sudo CREDENTIALS_DIRECTORY=$ETC voice-device doctor --config $ETC/config.toml
     Logs: journalctl -u voice-device -f     State: systemctl status voice-device
EOF
