"""Tools the model may call: a registry of named functions, and running one call.

Pure: running a tool awaits the tool's own coroutine (if it returns one) but schedules nothing;
the session decides where the call runs so a slow tool never blocks audio, mute or barge-in.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .events import ToolSpec

ToolFunc = Callable[..., Awaitable[Any] | Any]

#: A tool name quoted in an output or an error is cut to this many characters.
MAX_NAME_SHOWN = 80


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call. ``func`` receives the parsed arguments as keywords."""

    spec: ToolSpec
    func: ToolFunc


class ToolRegistry:
    """Named tools; ``@registry.tool(description=..., parameters=...)`` registers a function."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {t.spec.name: t for t in tools or []}

    def add(
        self,
        name: str,
        func: ToolFunc,
        description: str = "",
        parameters: dict[str, Any] | None = None,
    ) -> None:
        spec = ToolSpec(name, description, parameters or {"type": "object", "properties": {}})
        self._tools[name] = Tool(spec, func)

    def tool(
        self, description: str = "", parameters: dict[str, Any] | None = None
    ) -> Callable[[ToolFunc], ToolFunc]:
        def register(func: ToolFunc) -> ToolFunc:
            self.add(func.__name__, func, description or (func.__doc__ or "").strip(), parameters)
            return func

        return register

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(t.spec for t in self._tools.values())

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __len__(self) -> int:
        return len(self._tools)


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What one call produced: the output for the model, and an error for the user (or "")."""

    output: str
    error: str = ""


def shown_name(name: str | None) -> str:
    """A tool name as quoted in messages: ``repr``, cut to :data:`MAX_NAME_SHOWN`."""
    if name is None:
        return "None"
    cut = name if len(name) <= MAX_NAME_SHOWN else name[:MAX_NAME_SHOWN] + "…"
    return repr(cut)


async def run_tool(registry: ToolRegistry, name: str | None, arguments: str) -> ToolOutcome:
    """Run one call; never raises (an unknown tool or a raising tool still yields an output)."""
    tool = registry.get(name) if name else None
    if tool is None:
        return ToolOutcome(
            json.dumps({"error": f"unknown tool {shown_name(name)}"}),
            f"the model called an unknown tool {shown_name(name)}",
        )
    try:
        args = json.loads(arguments) if arguments.strip() else {}
        if not isinstance(args, dict):
            raise TypeError("arguments must be a JSON object")
        result = tool.func(**args)
        if inspect.isawaitable(result):
            result = await result
        return ToolOutcome(json.dumps(result, default=str))
    except Exception as exc:
        what = f"{type(exc).__name__}: {exc}"
        return ToolOutcome(json.dumps({"error": what}), f"tool {shown_name(name)} failed: {what}")
