#!/usr/bin/env bash
# Remove what scripts/install.sh installed.
#
#   sudo scripts/uninstall.sh            # what `sudo make uninstall` runs: keeps the config
#   sudo scripts/uninstall.sh --purge    # also /etc/voice-device (config, API key), the usage
#                                        # history in /var/lib/voice-device, and the user
#   scripts/uninstall.sh --dry-run       # print every step, change nothing
#
# Debian packages are left installed (other programs may use them), and so is the gpio group.
set -euo pipefail

PROG=uninstall.sh
ROOT=/
DRY_RUN=0
PURGE=0
SYSTEMCTL="${SYSTEMCTL:-systemctl}"

usage() {
    cat <<EOF
usage: $PROG [--dry-run] [--root DIR] [--purge]

  -n, --dry-run   print each command instead of running it
  --root DIR      remove from a tree staged with install.sh --root DIR
  --purge         also remove /etc/voice-device (config and API key), /var/lib/voice-device
                  (usage history) and the user voice-device
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        -n | --dry-run) DRY_RUN=1 ;;
        --root) ROOT="${2:?--root needs a directory}"; shift ;;
        --root=*) ROOT="${1#*=}" ;;
        --purge) PURGE=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "$PROG: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

say() { printf '==> %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [ "$DRY_RUN" -eq 0 ]; then
        "$@"
    fi
}

dest() {
    if [ "$ROOT" = / ]; then
        printf '%s' "$1"
    else
        printf '%s%s' "${ROOT%/}" "$1"
    fi
}

systemd_running() { [ "$ROOT" = / ] && [ -d /run/systemd/system ]; }

ROOT_OPT=()
USER_OPT=()
if [ "$ROOT" != / ]; then
    ROOT="$(cd "$ROOT" 2>/dev/null && pwd)" || die "--root $ROOT: no such directory"
    ROOT_OPT=(--root="$ROOT")
    USER_OPT=(--prefix "$ROOT")
fi
if [ "$ROOT" = / ] && [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo make uninstall (or --dry-run to see the steps)"
fi

UNIT=voice-device.service
UNIT_FILE="$(dest /etc/systemd/system/$UNIT)"

say "systemd unit $UNIT"
if [ -e "$UNIT_FILE" ]; then
    if systemd_running; then
        run "$SYSTEMCTL" disable --now "$UNIT"
    else
        run "$SYSTEMCTL" "${ROOT_OPT[@]}" disable "$UNIT"
    fi
    run rm -f "$UNIT_FILE"
    if systemd_running; then
        run "$SYSTEMCTL" daemon-reload
        run "$SYSTEMCTL" reset-failed "$UNIT" 2>/dev/null || true
    fi
else
    say "not installed"
fi

say "udev rule, sysusers entry, /opt/voice-device"
run rm -f "$(dest /etc/udev/rules.d/60-voice-device-gpio.rules)"
if systemd_running && command -v udevadm >/dev/null; then
    run udevadm control --reload-rules || warn "udevadm control --reload-rules failed"
fi
run rm -f "$(dest /etc/sysusers.d/voice-device.conf)"
run rm -rf "$(dest /opt/voice-device)"
link="$(dest /usr/local/bin/voice-device)"
if [ "$(readlink "$link" 2>/dev/null)" = /opt/voice-device/venv/bin/voice-device ]; then
    run rm -f "$link"
fi

if [ "$PURGE" -eq 1 ]; then
    say "purge: /etc/voice-device, /var/lib/voice-device and the user voice-device"
    run rm -rf "$(dest /etc/voice-device)"
    run rm -rf "$(dest /var/lib/voice-device)"
    if grep -q '^voice-device:' "$(dest /etc/passwd)" 2>/dev/null; then
        run userdel "${USER_OPT[@]}" voice-device
    fi
    # userdel removes the user's own group only where login.defs says so (USERGROUPS_ENAB).
    if [ "$DRY_RUN" -eq 1 ]; then
        say "(and the group voice-device, if userdel leaves it behind)"
    elif grep -q '^voice-device:' "$(dest /etc/group)" 2>/dev/null; then
        run groupdel "${USER_OPT[@]}" voice-device
    fi
else
    say "kept /etc/voice-device (config, API key), /var/lib/voice-device (usage history) and" \
        "the user voice-device: --purge removes them"
fi
say "done$([ "$DRY_RUN" -eq 1 ] && printf ' (dry run: nothing was changed)')"
