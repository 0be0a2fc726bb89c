"""Usage accounting, the daily budget and idle disconnect (issue 15).

Pure parts (no I/O): :class:`TokenUsage`, :class:`UsageLedger`, :class:`Budget`,
:class:`IdleTimer`, the settings and the formatters. :class:`UsageStore` is the one piece that
touches the disk (the state file).
"""

from .budget import Budget, LimitHit
from .idle import IdleTimer
from .ledger import DayTotals, UsageLedger, local_clock
from .meter import Stop, UsageMeter
from .report import (
    add_usage_parser,
    format_response_log,
    format_usage_text,
    run_usage,
    usage_event,
    usage_json,
)
from .settings import IdleSettings, LimitsSection
from .store import UsageStore, default_path, state_dir
from .tokens import TokenUsage

__all__ = [
    "Budget",
    "DayTotals",
    "IdleSettings",
    "IdleTimer",
    "LimitHit",
    "LimitsSection",
    "Stop",
    "TokenUsage",
    "UsageLedger",
    "UsageMeter",
    "UsageStore",
    "add_usage_parser",
    "default_path",
    "format_response_log",
    "format_usage_text",
    "local_clock",
    "run_usage",
    "state_dir",
    "usage_event",
    "usage_json",
]
