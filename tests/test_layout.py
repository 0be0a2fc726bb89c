"""The shape of the code a newcomer relies on: small modules, short functions, and a protocol
core (``device/realtime/``) that does no I/O. Read with :mod:`ast`, nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

DEVICE = Path(__file__).resolve().parents[1] / "device"
REALTIME = DEVICE / "realtime"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
IO_LIBRARIES = {"asyncio", "websockets", "alsaaudio", "gpiozero"}


def modules(root: Path) -> list[Path]:
    found = sorted(root.rglob("*.py"))
    assert found, f"no modules under {root}"
    return found


def name(path: Path) -> str:
    return str(path.relative_to(DEVICE.parent))


def test_no_module_in_device_is_over_400_lines() -> None:
    long = {
        name(p): n
        for p in modules(DEVICE)
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_in_device_is_over_60_lines() -> None:
    long: dict[str, int] = {}
    for path in modules(DEVICE):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{name(path)}:{node.lineno} {node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def imported_roots(tree: ast.AST) -> list[tuple[str, int]]:
    """``(top-level module, relative level)`` of every import in ``tree``, nested ones too."""
    roots: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots += [(alias.name.split(".")[0], 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots.append(((node.module or "").split(".")[0], node.level))
    return roots


def test_the_realtime_package_imports_no_io_library() -> None:
    """Every module of device/realtime/ (the conversation core and the codecs it uses) is
    sans-I/O: no asyncio, websockets, alsaaudio or gpiozero, and nothing from outside the
    package (``from ..x``), which could bring them in."""
    seen = set()
    for path in modules(REALTIME):
        seen.add(path.stem)
        for root, level in imported_roots(ast.parse(path.read_text())):
            assert level <= 1, f"{name(path)} imports from outside device/realtime/"
            assert level == 1 or root not in IO_LIBRARIES, f"{name(path)} imports {root}"
    assert {"conversation", "effects", "events", "notices", "pcm"} <= seen


def test_the_checks_see_a_violation() -> None:
    """The import walk finds imports inside functions and relative ones."""
    tree = ast.parse("def f():\n    import asyncio.tasks\nfrom ..audio import capture\n")
    assert sorted(imported_roots(tree)) == [("asyncio", 0), ("audio", 2)]
