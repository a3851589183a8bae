"""The layout keeps its promises: no import cycle, and pure modules never build the Faust app."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from harness.workers import REPO

PACKAGES = ("app", "agents", "models")
# Modules that hold rules and data, testable without Kafka: importing them must not import
# Faust (let alone build and patch the app).
PURE = (
    "app.settings",
    "app.fetch",
    "app.redact",
    "app.log_throttle",
    "app.metrics",
    "app.pipeline.records",
    "app.pipeline.posts",
    "app.pipeline.delivery",
    "app.pipeline.channels",
    "app.keys.apikeys",
    "app.keys.commands",
    "app.keys.keywords",
    "app.ocr.images",
    "app.ocr.addresses",
    "app.ocr.admission",
    "app.ocr.cache",
    "app.ocr.similar",
    "app.dispatch.policy",
    "app.dispatch.progress",
    "app.dispatch.signing",
    "app.live.feed",
    "app.kafka.stall_watch",
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Return our modules that ``name`` imports, at load time or inside a function."""
    imported = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            imported.add(base)
            imported |= {f"{base}.{alias.name}" for alias in node.names}
    return {module for module in imported if module in known and module != name}


def test_no_module_imports_itself_back() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


# The layers, lowest first (docs/development.md, "Layers"): a module imports only from its own
# layer or the ones below, so an arrow never runs back up. Within a layer, no cycles (above).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("models",),
    (
        "app.settings",
        "app.redact",
        "app.log_throttle",
        "app.metrics",
        "app.activity",
        "app.samples",
    ),
    ("app.kafka", "app.fetch", "app.ocr", "app.sealing"),
    ("app.pipeline", "app.live", "app.dispatch"),
    ("app.keys",),
    ("app.web", "agents", "app.faust_app", "app.patches"),
    ("app.worker", "app.cli", "app.__main__"),
)


def _unit(module: str) -> str:
    """Return the part of the layout a module belongs to: a package of app/, or a top level."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "app" and len(parts) > 1 else parts[0]


def test_imports_never_run_back_up_the_layers() -> None:
    floor = {unit: level for level, units in enumerate(LAYERS) for unit in units}
    modules = _modules()
    unplaced = sorted({_unit(name) for name in modules} - set(floor) - {"app"})
    assert not unplaced, f"place these in LAYERS (and docs/development.md): {unplaced}"
    upward = []
    for name, path in modules.items():
        for imported in _imports(name, path, set(modules)):
            source, target = _unit(name), _unit(imported)
            if source != "app" and target != "app" and floor[target] > floor[source]:
                upward.append(f"{name} -> {imported}")
    assert not upward, "imports that run back up the layers: " + "; ".join(sorted(upward))


def test_models_and_pure_modules_load_without_faust() -> None:
    models = [name for name in _modules() if name.startswith("models")]
    code = (
        "import importlib, json, sys\n"
        f"for name in {json.dumps([*models, *PURE])}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'faust' or m.startswith("
        "('faust.', 'app.faust_app', 'app.worker', 'app.patches')))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert json.loads(loaded.stdout) == []


def test_each_test_says_what_it_needs_by_its_marker() -> None:
    # `make check` selects by marker: a test of the real engine or broker left unmarked would
    # make the day-to-day run slow (or fail without a broker).
    tests = Path(__file__).resolve().parents[1]
    marks = {"ocr": "pytest.mark.ocr", "integration": "pytest.mark.integration"}
    unmarked = [
        str(path.relative_to(tests))
        for folder, mark in marks.items()
        for path in (tests / folder).glob("test_*.py")
        if not re.search(rf"^pytestmark = \[?{re.escape(mark)}\b", path.read_text(), re.M)
    ]
    assert not unmarked


def test_benchmarks_and_the_harness_never_import_the_tests() -> None:
    # What both need is in harness/; a benchmark importing tests/ pulled pytest into a bench.
    # And the worker never imports either.
    wrong = []
    for folder, forbidden in [
        ("bench", ("tests",)),
        ("harness", ("tests", "bench")),
        *((package, ("tests", "bench", "harness")) for package in PACKAGES),
    ]:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                wrong += [
                    f"{path.relative_to(REPO)}: {name}"
                    for name in names
                    if name.split(".")[0] in forbidden
                ]
    assert not wrong
