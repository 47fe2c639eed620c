"""The Incident state machine, as data: each phase, the module whose `step` handles it, and
the phases that step may enter next (with when). The driver dispatches through this table and
its status writer refuses a phase change the table does not list; docs/architecture.md's
diagram is generated from it (`aiops docs`), and a test checks each handler against it.

Any phase also goes to Escalated when its status cannot be written (the driver's last resort).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiops.api import Incident
from aiops.loops.incident.phases import (
    awaiting_approval,
    investigating,
    remediating,
    verifying,
)
from aiops.loops.incident.phases import open as opened
from aiops.loops.incident.status import StatusWriter
from aiops.vocabulary import TERMINAL, Phase

if TYPE_CHECKING:
    from aiops.loops.incident.driver import IncidentDriver

Handler = Callable[["IncidentDriver", Incident, StatusWriter], Awaitable[float]]
"""One step of a phase: returns the delay before the next step."""

UNWRITABLE = "its status cannot be written"
"""Why any phase may go to Escalated, beside the moves its handler makes."""


@dataclass(frozen=True)
class State:
    handler: Handler
    next: Mapping[Phase, str]  # the phases its handler may enter, and when


MACHINE: Mapping[Phase, State] = {
    Phase.OPEN: State(
        opened.step,
        {
            Phase.INVESTIGATING: "always",
        },
    ),
    Phase.INVESTIGATING: State(
        investigating.step,
        {
            Phase.AWAITING_APPROVAL: "a step waits for an Approval",
            Phase.REMEDIATING: "a step may run now",
            Phase.VERIFYING: "no step proposed",
            Phase.ESCALATED: "the agent escalates, every step is refused, or no Subject",
        },
    ),
    Phase.AWAITING_APPROVAL: State(
        awaiting_approval.step,
        {
            Phase.REMEDIATING: "no step waits, one may run",
            Phase.ESCALATED: "every step rejected, no approval in time, or the Subject deleted",
        },
    ),
    Phase.REMEDIATING: State(
        remediating.step,
        {
            Phase.VERIFYING: "the step ran, or was resumed after a restart",
            Phase.RESOLVED: "every step ran and was verified",
            Phase.ESCALATED: "refused at run time, failed, or no Subject",
        },
    ),
    Phase.VERIFYING: State(
        verifying.step,
        {
            Phase.REMEDIATING: "the step is verified and another follows",
            Phase.RESOLVED: "the invariant holds again",
            Phase.ESCALATED: "not verified in time (a reversible step undone), or no Subject",
        },
    ),
}


def allowed(phase: Phase) -> frozenset[Phase]:
    """The phases an Incident in `phase` may enter: its handler's moves, and Escalated."""
    state = MACHINE.get(phase)
    return frozenset(state.next if state else ()) | {Phase.ESCALATED}


def mermaid() -> str:
    """The table as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", f"    [*] --> {Phase.OPEN}"]
    for phase, state in MACHINE.items():
        lines += [f"    {phase} --> {nxt}: {when}" for nxt, when in state.next.items()]
    lines += [f"    {phase} --> [*]" for phase in Phase if phase in TERMINAL]
    lines.append(f"    note right of {Phase.ESCALATED} : also from any phase when {UNWRITABLE}")
    return "\n".join(lines) + "\n"
