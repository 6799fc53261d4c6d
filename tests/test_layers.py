"""The shape of the code: layers, each importing only those below it, and no import cycles.

Every import counts, at the top of a module, inside a function or under TYPE_CHECKING: a
lazy or typing-only import is still a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module may import from its own layer and those listed before it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        (
            "roost",
            "roost.errors",
            "roost.config",
            "roost.metrics",
            "roost.logs",
            "roost.model",
            "roost.patterns",
            "roost.schemas",
            "roost.niceness",
        ),
    ),
    ("dialects", ("roost.dialects",)),
    ("pipeline", ("roost.pipeline",)),
    ("destinations", ("roost.destinations",)),
    ("storage", ("roost.storage",)),
    ("consumers", ("roost.consumers",)),
    ("query", ("roost.query",)),
    ("runtime", ("roost.runtime",)),
    ("web", ("roost.web",)),
    ("devtools", ("roost.devtools",)),
    ("commands", ("roost.commands",)),
    ("cli", ("roost.cli", "roost.__main__")),
]
# The Python client is given to users on its own: it imports nothing of the server.
ALONE = ("roost.sdk",)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, found = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best and (prefix != "roost" or module == "roost"):
                best, found = len(prefix), index
    return found


def imports(module: str) -> Iterator[tuple[str, int]]:
    """The Roost modules `module` imports, with the line of each import."""
    tree = ast.parse(MODULES[module].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "roost":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import"
            if node.module is None or node.module.split(".")[0] != "roost":
                continue
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                yield (child if child in MODULES else node.module), node.lineno


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in MODULES if layer_of(m) < 0 and not m.startswith(ALONE)]
    assert not unplaced, f"modules in no layer (add them to LAYERS): {unplaced}"


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = []
    for module in MODULES:
        if module.startswith(ALONE):
            continue
        own = layer_of(module)
        for target, line in imports(module):
            if layer_of(target) > own:
                upward.append(
                    f"{MODULES[module].relative_to(SRC)}:{line} ({LAYERS[own][0]}) imports "
                    f"{target} ({LAYERS[layer_of(target)][0]})"
                )
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_the_client_imports_nothing_of_the_server() -> None:
    found = [
        f"{m} imports {t}"
        for m in MODULES
        if m.startswith(ALONE)
        for t, _ in imports(m)
        if not t.startswith(ALONE)
    ]
    assert not found


def test_no_import_cycles() -> None:
    graph = {m: sorted({t for t, _ in imports(m) if t != m}) for m in MODULES}
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(" ↔ ".join(sorted(c)) for c in cycles)


def strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, [])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph.get(target, []))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        item = stack.pop()
                        on_stack.discard(item)
                        component.append(item)
                        if item == node:
                            break
                    found.append(component)
    return found


def test_the_checks_see_a_violation() -> None:
    """The checks above would fail on a bad edge (a check that cannot fail checks nothing)."""
    assert layer_of("roost.storage.log.sqlite") < layer_of("roost.consumers.loader")
    assert layer_of("roost.web.dashboard.pages") > layer_of("roost.runtime")
    assert layer_of("roost.errors") == 0
    assert [sorted(c) for c in strongly_connected({"a": ["b"], "b": ["a"], "c": []}) if len(c) > 1]


@pytest.mark.parametrize("entry", ["roost.web.app", "roost.consumers.worker"])
def test_the_server_does_not_load_the_dev_tools(entry: str) -> None:
    code = (
        f"import sys, {entry}, roost.runtime; "
        "loaded = [m for m in sys.modules if m.startswith('roost.devtools')]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


IO_LIBRARIES = ("sqlalchemy", "duckdb", "httpx", "maxminddb", "nats", "psycopg", "socket",
                "urllib.request", "sqlite3", "smtplib", "clickhouse")  # fmt: skip


def test_the_dialects_and_the_pipeline_do_no_io() -> None:
    """They are handed what they look up (the rate-limit buckets, the GeoIP database…)."""
    found = []
    for module, path in MODULES.items():
        if not module.startswith(("roost.dialects", "roost.pipeline")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [
                f"{module} imports {n}"
                for n in names
                if n.split(".")[0] in IO_LIBRARIES or n.startswith(IO_LIBRARIES)
            ]
    assert not found, found
