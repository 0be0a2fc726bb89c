"""``make bench``: every benchmark, each in its own process, as one table.

    python -m benchmarks [--quick] [--write]

Each module runs in a fresh interpreter (alsa-lib reads ``ALSA_CONFIG_PATH`` once per process,
and one benchmark's threads must not disturb the next). ``--write`` replaces the results
section of ``benchmarks/README.md`` with this run's table, machine and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from benchmarks import Row, table

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"

#: module, keyword arguments of its rows() for a full and a --quick run
MODULES: list[tuple[str, dict[str, object], dict[str, object]]] = [
    ("codec", {}, {}),
    ("audio_latency", {}, {}),
    ("button_latency", {"presses": 400}, {"presses": 100}),
    ("bargein", {"rounds": 10}, {"rounds": 3}),
    ("service", {"seconds": 60.0}, {"seconds": 15.0}),
    ("service", {"seconds": 60.0, "period_ms": 40}, {"seconds": 15.0, "period_ms": 40}),
    ("service", {"seconds": 60.0, "rate": 24000}, {"seconds": 15.0, "rate": 24000}),
    ("fleet", {"devices": 200, "commands": 1000}, {"devices": 50, "commands": 200}),
    ("wake", {"seconds": 120.0, "rounds": 3}, {"seconds": 30.0, "rounds": 1}),
    ("wake_connect", {"rounds": 24}, {"rounds": 6}),
    ("wake_service", {"seconds": 60.0}, {"seconds": 15.0}),
]


def run_module(name: str, kwargs: dict[str, object]) -> list[Row]:
    code = (
        "import dataclasses, json, sys\n"
        f"from benchmarks import {name} as m\n"
        f"rows = m.rows(**{kwargs!r})\n"
        "sys.stdout.write('\\nROWS ' + json.dumps([dataclasses.asdict(r) for r in rows]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=HERE.parent, check=False
    )
    marker = proc.stdout.rfind("ROWS ")
    if proc.returncode != 0 or marker < 0:
        tail = (proc.stderr or proc.stdout)[-1500:]
        return [Row(f"{name}: FAILED", float("nan"), None, "", note=tail.replace("\n", " "))]
    return [Row(**r) for r in json.loads(proc.stdout[marker + 5 :])]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.node() or 'host'}: {cpu}, {os.cpu_count()} cores, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args()
    rows: list[Row] = []
    for name, full, quick in MODULES:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += run_module(name, quick if args.quick else full)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = f"Measured {when} on {machine()}.\n\n{table(rows)}\n"
    print(report)
    if args.write:
        readme = HERE / "README.md"
        text = readme.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        readme.write_text(text[:start] + "\n" + report + text[end:])
    missed = [r.name for r in rows if r.met is False or r.name.endswith("FAILED")]
    if missed:
        print("missed: " + "; ".join(missed), file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
