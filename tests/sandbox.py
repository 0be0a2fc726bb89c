"""Run a command under the kernel-side sandbox of a systemd unit, without systemd.

systemd enforces several of ``voice-device.service``'s hardening settings with seccomp filters
that it installs just before ``execve``. This launcher reads those settings from the unit file
and installs equivalent filters through libseccomp (via ctypes), then execs the command, so a
test can check that the real program still works inside them — no Pi, no systemd as PID 1::

    python tests/sandbox.py systemd/voice-device.service -- .venv/bin/python -c "import numpy"

Emulated (as systemd 252 implements them):

* ``NoNewPrivileges=yes`` — ``prctl(PR_SET_NO_NEW_PRIVS)`` (needed for seccomp anyway).
* ``SystemCallFilter=`` with ``@groups`` and ``~`` removals, plus the always-allowed
  ``@default``; anything else fails with ``SystemCallErrorNumber=`` (or kills the process
  when that is unset). Group contents come from ``systemd-analyze syscall-filter``.
* ``RestrictAddressFamilies=`` — ``socket(2)`` of any other family fails with EAFNOSUPPORT.
* ``MemoryDenyWriteExecute=yes`` — ``mmap`` with ``PROT_WRITE|PROT_EXEC``, ``mprotect`` /
  ``pkey_mprotect`` adding ``PROT_EXEC`` and ``shmat(SHM_EXEC)`` fail with EPERM.

Not emulated (they need namespaces or cgroups): ``ProtectSystem=``, ``ProtectHome=``,
``PrivateTmp=``, ``DevicePolicy=``/``DeviceAllow=``, ``ProtectProc=``, the user and groups.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

PR_SET_NO_NEW_PRIVS = 38
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_CMP_EQ = 4
SCMP_CMP_GT = 6
SCMP_CMP_MASKED_EQ = 7
PROT_WRITE = 0x2
PROT_EXEC = 0x4
SHM_EXEC = 0o100000


def scmp_act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class ArgCmp(ctypes.Structure):
    """``struct scmp_arg_cmp``: (arg index, operator, datum_a, datum_b)."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def read_service_settings(unit: Path) -> dict[str, list[str]]:
    """Every ``Key=Value`` of the ``[Service]`` section, repeated keys kept in order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def syscall_groups() -> dict[str, list[str]]:
    """``@group`` → members (names and nested ``@groups``) from ``systemd-analyze``."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.startswith("    ") and not line.strip().startswith("#"):
            current.append(line.strip())
        elif not line.strip():
            current = None
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        if name.startswith("@"):
            if name not in groups:
                raise SystemExit(f"sandbox: unknown system call group {name}")
            out |= expand(groups[name], groups)
        else:
            out.add(name)
    return out


def allowed_syscalls(filters: list[str], groups: dict[str, list[str]]) -> set[str] | None:
    """The allow list that ``SystemCallFilter=`` lines produce; ``None`` for deny-list mode."""
    allow: set[str] | None = None
    for value in filters:
        if not value:
            allow = None
            continue
        invert = value.startswith("~")
        names = value.lstrip("~").split()
        if allow is None:
            if invert:
                raise SystemExit("sandbox: deny-list SystemCallFilter= is not emulated")
            allow = expand(["@default"], groups)
        if invert:
            allow -= expand(names, groups)
        else:
            allow |= expand(names, groups)
    return allow


class Seccomp:
    def __init__(self) -> None:
        name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
        self.lib = ctypes.CDLL(name, use_errno=True)
        self.lib.seccomp_init.restype = ctypes.c_void_p
        self.lib.seccomp_init.argtypes = [ctypes.c_uint32]
        self.lib.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(ArgCmp),
        ]
        self.lib.seccomp_load.argtypes = [ctypes.c_void_p]
        self.lib.seccomp_release.argtypes = [ctypes.c_void_p]
        self.lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]

    def number(self, name: str) -> int | None:
        nr = int(self.lib.seccomp_syscall_resolve_name(name.encode()))
        return nr if nr >= 0 else None

    def load(self, default: int, rules: list[tuple[int, str, list[ArgCmp]]]) -> None:
        ctx = self.lib.seccomp_init(default)
        if not ctx:
            raise SystemExit("sandbox: seccomp_init failed")
        try:
            for action, name, args in rules:
                nr = self.number(name)
                if nr is None:
                    continue  # not a system call on this architecture
                array = (ArgCmp * len(args))(*args) if args else None
                rc = self.lib.seccomp_rule_add_array(ctx, action, nr, len(args), array)
                if rc < 0:
                    raise SystemExit(f"sandbox: seccomp rule for {name}: {os.strerror(-rc)}")
            rc = self.lib.seccomp_load(ctx)
            if rc < 0:
                raise SystemExit(f"sandbox: seccomp_load: {os.strerror(-rc)}")
        finally:
            self.lib.seccomp_release(ctx)


def family_number(name: str) -> int:
    value = getattr(socket, name, None)
    if value is None:
        raise SystemExit(f"sandbox: unknown address family {name}")
    return int(value)


def apply(unit: Path) -> list[str]:
    """Install the unit's seccomp-based restrictions on this process; returns what was done."""
    settings = read_service_settings(unit)
    done: list[str] = []
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SystemExit("sandbox: PR_SET_NO_NEW_PRIVS failed")
    done.append("NoNewPrivileges")
    sc = Seccomp()

    # Filters stack: the kernel applies the most restrictive verdict of all of them.
    if settings.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        eperm = scmp_act_errno(errno.EPERM)
        wx = PROT_WRITE | PROT_EXEC
        sc.load(
            SCMP_ACT_ALLOW,
            [
                (eperm, "mmap", [ArgCmp(2, SCMP_CMP_MASKED_EQ, wx, wx)]),
                (eperm, "mprotect", [ArgCmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)]),
                (eperm, "pkey_mprotect", [ArgCmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)]),
                (eperm, "shmat", [ArgCmp(2, SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC)]),
            ],
        )
        done.append("MemoryDenyWriteExecute")

    families = " ".join(settings.get("RestrictAddressFamilies", [])).split()
    if families:
        allowed = {family_number(f) for f in families}
        top = max(allowed)
        refuse = scmp_act_errno(errno.EAFNOSUPPORT)
        rules = [
            (refuse, "socket", [ArgCmp(0, SCMP_CMP_EQ, n, 0)])
            for n in range(top)
            if n not in allowed
        ]
        rules.append((refuse, "socket", [ArgCmp(0, SCMP_CMP_GT, top, 0)]))
        sc.load(SCMP_ACT_ALLOW, rules)
        done.append("RestrictAddressFamilies=" + " ".join(families))

    filters = settings.get("SystemCallFilter", [])
    allow = allowed_syscalls(filters, syscall_groups()) if filters else None
    if allow is not None:
        errno_name = settings.get("SystemCallErrorNumber", [""])[-1]
        if errno_name:
            default = scmp_act_errno(getattr(errno, errno_name))
        else:
            default = SCMP_ACT_KILL_PROCESS
        sc.load(default, [(SCMP_ACT_ALLOW, name, []) for name in sorted(allow)])
        done.append(f"SystemCallFilter ({len(allow)} calls)")
    return done


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: sandbox.py UNIT -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    unit = Path(argv[0])
    done = apply(unit)
    if os.environ.get("SANDBOX_VERBOSE"):
        print("sandbox: " + ", ".join(done), file=sys.stderr)
    command = argv[2:]
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
