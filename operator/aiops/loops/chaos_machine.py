"""The Chaos state machine, as data: each phase and the phases a Chaos may go to from it (with
when). The driver (`chaos_driver.py`) steps a Chaos by its phase and by what its targets may
still carry; a test checks that the phases it writes are the ones this table lists, and
docs/chaos.md's diagram is generated from it (`aiops docs`).

Once Recovered, the Chaos stays so and watches the Subject (condition `SubjectRecovered`).
"""

from __future__ import annotations

from collections.abc import Mapping

from aiops.vocabulary import ChaosPhase

MOVES: Mapping[ChaosPhase, Mapping[ChaosPhase, str]] = {
    ChaosPhase.PENDING: {
        ChaosPhase.PENDING: "a target is held by another Chaos, or a restart mid-injection",
        ChaosPhase.INJECTED: "every target injected",
        ChaosPhase.RECOVERED: "an instant fault, or deleted mid-injection and reverted",
        ChaosPhase.FAILED: "refused before injecting, or an injection failed and rolled back",
    },
    ChaosPhase.INJECTED: {
        ChaosPhase.INJECTED: "a revert failed, retried with backoff",
        ChaosPhase.RECOVERED: "the duration ends or the Chaos is deleted, every target reverted",
    },
    ChaosPhase.RECOVERED: {},
    ChaosPhase.FAILED: {},
}

FINAL = frozenset({ChaosPhase.RECOVERED, ChaosPhase.FAILED})


def mermaid() -> str:
    """The table as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", f"    [*] --> {ChaosPhase.PENDING}"]
    for phase, moves in MOVES.items():
        lines += [f"    {phase} --> {nxt}: {when}" for nxt, when in moves.items()]
    lines += [f"    {phase} --> [*]" for phase in ChaosPhase if phase in FINAL]
    return "\n".join(lines) + "\n"
