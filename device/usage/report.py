"""Usage surfaces: the ``usage`` JSON (control socket), the ``usage`` event, the per-response log
line, the text table, and the ``voice-device usage`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .budget import Budget
from .ledger import Clock, DayTotals, UsageLedger, local_clock
from .store import UsageStore, default_path
from .tokens import TokenUsage

DAYS_SHOWN = 7


def day_json(day: date, totals: DayTotals) -> dict[str, Any]:
    data = totals.to_mapping()
    data.pop("limits_hit")
    return {"date": day.isoformat(), **data}


def usage_json(ledger: UsageLedger, now: datetime, budget: Budget | None = None) -> dict[str, Any]:
    """The figures of ``voice-device usage`` and the control socket's ``usage`` reply (add
    ``"ok": true``): today first, then the six days before it, and the daily limits that are set
    with today's use."""
    days = [day_json(d, t) for d, t in ledger.recent(DAYS_SHOWN, now)]
    return {
        "today": days[0]["date"],
        "days": days,
        "limits": budget.usage_of_limits(ledger, now) if budget is not None else {},
    }


def usage_event(usage: TokenUsage, ledger: UsageLedger, now: datetime) -> dict[str, Any]:
    """``{"event": "usage", ...}`` for control-socket subscribers after each response."""
    return {
        "event": "usage",
        "response": usage.to_mapping(),
        "today": day_json(now.date(), ledger.today(now)),
    }


def format_response_log(usage: TokenUsage, today: DayTotals | None = None) -> str:
    """The one log line per ``response.done``."""
    u = usage
    line = (
        f"response usage: input {u.input_tokens} tokens (audio {u.input_audio_tokens}, "
        f"text {u.input_text_tokens}, cached {u.cached_tokens}), output {u.output_tokens} "
        f"(audio {u.output_audio_tokens}, text {u.output_text_tokens}), total {u.total_tokens}"
    )
    if today is not None:
        line += (
            f"; today {today.responses} responses, input audio {today.tokens.input_audio_tokens}"
            f", output audio {today.tokens.output_audio_tokens}, connected "
            f"{_duration(today.connected_s)}"
        )
    return line


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


_COLUMNS = (
    "date",
    "connected",
    "responses",
    "mic sent",
    "model audio",
    "input (audio)",
    "output (audio)",
)


def _row(label: str, day: Mapping[str, Any]) -> list[str]:
    tokens = day["tokens"]
    return [
        label,
        _duration(day["connected_s"]),
        str(day["responses"]),
        _duration(day["audio_sent_s"]),
        _duration(day["audio_received_s"]),
        f"{tokens['input_tokens']} ({tokens['input_token_details']['audio_tokens']})",
        f"{tokens['output_tokens']} ({tokens['output_token_details']['audio_tokens']})",
    ]


def format_usage_text(data: Mapping[str, Any]) -> str:
    """A table of :func:`usage_json`'s figures: one row per day and a 7-day total."""
    days = data["days"]
    total = DayTotals()
    for day in days:
        parsed = DayTotals.from_mapping(day, f"days.{day['date']}")
        total = DayTotals(
            tokens=total.tokens + parsed.tokens,
            connected_s=total.connected_s + parsed.connected_s,
            audio_sent_s=total.audio_sent_s + parsed.audio_sent_s,
            audio_received_s=total.audio_received_s + parsed.audio_received_s,
            responses=total.responses + parsed.responses,
        )
    rows = [list(_COLUMNS)]
    rows += [_row(day["date"] + (" today" if i == 0 else ""), day) for i, day in enumerate(days)]
    rows.append(_row(f"last {len(days)} days", day_json(date.min, total)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, lines[1])
    for key, figures in data.get("limits", {}).items():
        unit = "minutes connected" if key.endswith("minutes") else "tokens used"
        lines.append(f"{key}: {figures['used']:g} of {figures['limit']:g} {unit} today")
    return "\n".join(lines)


# ------------------------------------------------------------------ the CLI command


def add_usage_parser(sub: Any, default_socket: str) -> None:
    """Register ``voice-device usage`` on the CLI's subparsers."""
    p = sub.add_parser("usage", help="today's and the last 7 days' usage totals")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--socket", default=default_socket)
    p.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help=f"read this state file when the service is not running ({default_path()})",
    )


def run_usage(args: argparse.Namespace, clock: Clock = local_clock) -> int:
    """Ask the running service; when it is not reachable read the state file (which lags the
    service by at most a few seconds). Exit 0, or 3 when neither is available."""
    from ..control import ControlClientError, request

    try:
        reply = request(args.socket, {"cmd": "usage"}, timeout=10.0)
        data: dict[str, Any] = {k: v for k, v in reply.items() if k != "ok"}
        if not reply.get("ok"):
            print(f"voice-device: {reply.get('error', 'usage failed')}", file=sys.stderr)
            return 1
    except ControlClientError:
        from_file = usage_from_file(args.state_file, clock)
        if from_file is None:
            return 3
        data = from_file
    print(json.dumps(data) if args.json else format_usage_text(data))
    return 0


def usage_from_file(path: Path | None, clock: Clock = local_clock) -> dict[str, Any] | None:
    """:func:`usage_json` of the state file, or ``None`` (and a message) when there is none."""
    store = UsageStore(path)
    if not store.path.exists():
        print(
            f"voice-device: no usage recorded yet ({store.path} does not exist) and "
            "the service is not reachable",
            file=sys.stderr,
        )
        return None
    ledger = store.load(clock, repair=False)
    return usage_json(ledger, clock())
