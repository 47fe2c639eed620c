"""The operator's packages import each other in one direction: no cycle among them (an
agent ↔ policy cycle once made the kubectl action live in three places). The front ends
(`aiops.cli`, `aiops.demo`) sit on top of everything and are left out."""

from __future__ import annotations

import ast
from pathlib import Path

import aiops

ROOT = Path(aiops.__file__).parent
FRONT_ENDS = {"cli", "demo"}


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """The top-level aiops packages and modules `path` imports (at any depth of the file)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if (
                parts[0] == "aiops"
                and len(parts) > 1
                and ((ROOT / parts[1]).is_dir() or (ROOT / f"{parts[1]}.py").is_file())
            ):
                out.add(parts[1])
    return out


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == ROOT:
            continue
        package = _package_of(path)
        if package in FRONT_ENDS:
            continue
        graph.setdefault(package, set()).update(_imports(path) - {package} - FRONT_ENDS)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph`, or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_packages_import_each_other_without_a_cycle() -> None:
    graph = package_graph()
    assert {"actions", "agent", "policy", "loops", "api", "subjects"} <= graph.keys()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_check_finds_a_cycle() -> None:
    assert _cycle({"agent": {"policy"}, "policy": {"agent"}}) == ["agent", "policy", "agent"]
    assert _cycle({"agent": {"policy"}, "policy": {"actions"}}) is None


def test_policy_and_actions_import_no_agent() -> None:
    graph = package_graph()
    assert "agent" not in graph["policy"] and "agent" not in graph["actions"]
