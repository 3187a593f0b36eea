"""The architecture, checked: which part of the package may import which (every import statement, the ones inside
functions too), no import circle, what the run-time core loads, the size of its modules and functions, and that the
nodes are shells over the core.

    core        what a robot runs: imports only core; hailo_platform only in core/backends/hailort.py
    export      weights -> model directory: imports core
    ros         node shells: import core, ros, and export's store (the default model on first use)
    evaluation  measuring only: imports core, export, evaluation, and the ROS contracts (ros.topics, ros.diagnostics)
    cli         may import everything
Nothing but cli and evaluation imports evaluation, so measuring code never runs in a robot's process.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hailo_whisper_ros"
ROOT = "hailo_whisper_ros"
ALLOWED = {
    "core": ("core",),
    "export": ("core", "export"),
    "ros": ("core", "ros", "export.store"),
    "evaluation": ("core", "export", "evaluation", "ros.topics", "ros.diagnostics"),
    "cli": ("core", "export", "evaluation", "ros", "cli"),
}
MAX_MODULE_LINES = 500


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def part_of(path: Path) -> str | None:
    relative = path.relative_to(PACKAGE).parts
    return relative[0] if len(relative) > 1 else None


def imported_names(path: Path) -> set[str]:
    """Every module an import statement of the file names (absolute, as written)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module)
            # `from hailo_whisper_ros.core import errors` imports the module core.errors.
            names.update(f"{node.module}.{alias.name}" for alias in node.names if node.module.startswith(ROOT))
    return names


def allowed(part: str, name: str) -> bool:
    inner = name[len(ROOT) + 1:]
    return any(inner == prefix or inner.startswith(prefix + ".") for prefix in ALLOWED[part])


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_part_imports_only_what_it_may(path):
    part = part_of(path)
    if part is None:  # the package's __init__ and __main__ (the CLI entry point)
        return
    own = [name for name in imported_names(path) if name == ROOT or name.startswith(ROOT + ".")]
    # `from hailo_whisper_ros.core.x import Symbol` also lists core.x.Symbol: only names of modules count.
    modules_named = [name for name in own if (PACKAGE.parent / (name.replace(".", "/") + ".py")).is_file()
                     or (PACKAGE.parent / name.replace(".", "/")).is_dir()]
    forbidden = sorted(name for name in modules_named if name != ROOT and not allowed(part, name))
    assert not forbidden, f"{path.relative_to(PACKAGE)} ({part}) imports {forbidden}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_third_party_boundaries(path):
    names = imported_names(path)
    relative = path.relative_to(PACKAGE).as_posix()
    if any(name.split(".")[0] == "hailo_platform" for name in names):
        assert relative == "core/backends/hailort.py", f"{relative} imports hailo_platform"
    if part_of(path) in ("core", "export"):
        assert not any(name.split(".")[0] == "rclpy" for name in names), f"{relative} imports rclpy"


def test_the_core_loads_neither_rclpy_nor_hailo_platform():
    script = """
import importlib, pkgutil, sys
import hailo_whisper_ros.core as core
names = [m.name for m in pkgutil.walk_packages(core.__path__, "hailo_whisper_ros.core.")]
for name in names:
    importlib.import_module(name)
print(len(names))
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in ("rclpy", "hailo_platform"))))
print(",".join(sorted(m for m in sys.modules if m.startswith("hailo_whisper_ros.") and
                      m.split(".")[1] not in ("core",))))
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    count, third_party, other_parts = completed.stdout.splitlines()
    assert int(count) >= 20
    assert third_party == "", f"importing the core loaded {third_party}"
    assert other_parts == "", f"importing the core loaded {other_parts}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_500_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines: split it by concern"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules its import statements name (the ones inside functions too)."""
    names = {module_name(path): path for path in modules()}
    graph = {}
    for name, path in names.items():
        targets = set()
        for imported in imported_names(path):
            while imported and imported not in names:  # `from package.module import Symbol` names package.module
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported != ROOT:
                targets.add(imported)
        graph[name] = targets
    return graph


def test_no_import_circle():
    graph = import_graph()
    circles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                circles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert not circles, f"modules that import each other: {circles}"


def test_no_ros_module_drives_the_segmenter():
    """The live input pipeline is the core's AudioIntake: a node only puts messages in and publishes its events."""
    for path in (PACKAGE / "ros").rglob("*.py"):
        assert not re.search(r"\bSegmenter\b", path.read_text()), f"{path.relative_to(PACKAGE)} uses the Segmenter"


MAX_NODE_MODULE_LINES = 200
MAX_FUNCTION_LINES = 60


@pytest.mark.parametrize("path", sorted((PACKAGE / "ros" / "nodes").glob("*.py")), ids=lambda p: p.name)
def test_node_modules_are_shells(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_NODE_MODULE_LINES, f"ros/nodes/{path.name} has {lines} lines: move the logic to the core"


CODE_AND_TESTS = modules() + sorted((PACKAGE.parent / "test").rglob("*.py"))


@pytest.mark.parametrize("path", CODE_AND_TESTS, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_function_is_over_60_lines(path):
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.relative_to(PACKAGE.parent)}: {long}: split them so that each reads in one screen"
