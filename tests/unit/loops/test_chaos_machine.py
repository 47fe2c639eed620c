"""The Chaos state machine's table (`loops/chaos_machine.py`) lists the phases the driver
writes, and docs/chaos.md's diagram is what the table generates."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from aiops import docgen
from aiops.loops import chaos_driver, chaos_machine
from aiops.vocabulary import ChaosPhase

DOCS = Path(__file__).resolve().parents[3] / "docs"


def written(source: str) -> set[ChaosPhase]:
    """The phases a module writes: every `phase=ChaosPhase.X` keyword argument."""
    return {
        ChaosPhase[kw.value.attr]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "phase"
        and isinstance(kw.value, ast.Attribute)
        and isinstance(kw.value.value, ast.Name)
        and kw.value.value.id == "ChaosPhase"
    }


def test_the_driver_writes_exactly_the_phases_the_table_enters() -> None:
    entered = {nxt for moves in chaos_machine.MOVES.values() for nxt in moves}
    assert set(chaos_machine.MOVES) == set(ChaosPhase)
    assert written(inspect.getsource(chaos_driver)) == entered


def test_a_phase_written_outside_the_table_is_seen() -> None:
    assert written("updated(s, phase=ChaosPhase.FAILED, message=m)") == {ChaosPhase.FAILED}
    assert written("updated(s, message=m)") == set()


def test_the_lifecycle_diagram_in_the_docs_is_the_tables() -> None:
    assert "chaos.md" not in docgen.stale(DOCS), "docs/chaos.md is stale: run `aiops docs`"
    text = (DOCS / "chaos.md").read_text(encoding="utf-8")
    for phase, moves in chaos_machine.MOVES.items():
        for nxt in moves:
            assert f"    {phase} --> {nxt}: " in text
