"""The incident state machine is the table in `loops/incident/machine.py`: each handler enters
only the phases the table lists for it (read from its source), the status writer refuses any
other move at run time, and docs/architecture.md's diagram is what the table generates."""

from __future__ import annotations

import ast
import inspect
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aiops import docgen
from aiops.cli.main import app
from aiops.loops.incident import driver, machine
from aiops.loops.incident.status import StatusWriteError, StatusWriter
from aiops.vocabulary import TERMINAL, Phase

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"


def entered(source: str) -> set[Phase]:
    """The phases a module's code enters: `<writer>.enter(Phase.X, ...)`, and Escalated or
    Resolved for a call of the driver's `escalate` or `resolve`."""
    out: set[Phase] = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr == "escalate":
            out.add(Phase.ESCALATED)
        elif node.func.attr == "resolve":
            out.add(Phase.RESOLVED)
        elif node.func.attr == "enter":
            first = node.args[0]
            assert (
                isinstance(first, ast.Attribute)
                and isinstance(first.value, ast.Name)
                and first.value.id == "Phase"
            ), f"enter() with {ast.unparse(first)}, not Phase.X"
            out.add(Phase[first.attr])
    return out


def test_every_open_phase_has_a_handler_and_no_closed_one_does() -> None:
    assert set(machine.MACHINE) == set(Phase) - TERMINAL
    reachable = {Phase.OPEN} | {n for s in machine.MACHINE.values() for n in s.next}
    assert reachable == set(Phase)


@pytest.mark.parametrize("phase", list(machine.MACHINE), ids=str)
def test_a_handler_enters_exactly_the_phases_the_table_lists(phase: Phase) -> None:
    state = machine.MACHINE[phase]
    source = inspect.getsource(inspect.getmodule(state.handler))  # type: ignore[arg-type]
    assert entered(source) == set(state.next)


def test_the_driver_enters_a_phase_only_to_escalate_or_resolve() -> None:
    tree = ast.parse(inspect.getsource(driver))
    for fn in ast.walk(tree):
        if isinstance(fn, ast.AsyncFunctionDef | ast.FunctionDef):
            phases = entered(ast.unparse(fn)) - {Phase.ESCALATED, Phase.RESOLVED}
            assert not phases, f"{fn.name} enters {phases}"
    escalate = textwrap.dedent(inspect.getsource(driver.IncidentDriver.escalate))
    assert entered(escalate) == {Phase.ESCALATED}


def test_the_check_sees_a_move_the_table_lacks() -> None:
    source = "async def step(d, incident, w):\n    await w.enter(Phase.RESOLVED, 'x')\n"
    assert entered(source) == {Phase.RESOLVED} != set(machine.MACHINE[Phase.OPEN].next)


class Api:
    """Status writes and Events, in memory."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.events: list[tuple[str, str, str]] = []

    async def patch_status(self, plural: str, ns: str, name: str, status: dict[str, Any]) -> None:
        self.status.update(status)

    async def post_event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


async def test_the_writer_refuses_a_move_the_table_does_not_list() -> None:
    api = Api()

    async def audit(kind: str, data: dict[str, Any]) -> None:
        return None

    obj = {"metadata": {"namespace": "ns", "name": "inc"}, "status": {"phase": "Open"}}
    w = StatusWriter(api, obj, audit)  # type: ignore[arg-type]
    w.moves = machine.allowed(Phase.OPEN)
    with pytest.raises(StatusWriteError, match="Open -> Resolved is not a move"):
        await w.enter(Phase.RESOLVED, "skipping ahead")
    assert api.status == {} and api.events == []
    await w.enter(Phase.INVESTIGATING, "investigation started")
    assert api.status["phase"] == "Investigating"
    assert machine.allowed(Phase.VERIFYING) == {Phase.REMEDIATING, Phase.RESOLVED, Phase.ESCALATED}


def test_the_state_diagram_in_the_docs_is_the_tables() -> None:
    assert docgen.stale(DOCS) == [], "docs are stale: run `aiops docs`"
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    for phase, state in machine.MACHINE.items():
        for nxt in state.next:
            assert f"    {phase} --> {nxt}: " in text


def test_a_stale_diagram_is_found_and_rewritten(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    page = docs / "architecture.md"
    page.write_text(page.read_text().replace("Verifying --> Resolved", "Verifying --> Open"))
    runner = CliRunner()
    result = runner.invoke(app, ["docs", "--check", "--docs", str(docs)])
    assert result.exit_code == 1 and "stale" in result.output
    result = runner.invoke(app, ["docs", "--docs", str(docs)])
    assert result.exit_code == 0, result.output
    assert page.read_text() == (DOCS / "architecture.md").read_text()
    assert runner.invoke(app, ["docs", "--check", "--docs", str(docs)]).exit_code == 0
