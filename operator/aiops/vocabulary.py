"""The words of aiops' states, each defined once: the API models, the loops, the gate, the
agent and the CLI all use these, and the CRDs' enums are generated from them.

A word is a `StrEnum`: it equals its value (`Phase.RESOLVED == "Resolved"`), so a status read
as plain JSON compares with it, and it is written as its value. The API models accept the
value from Python data (they are strict otherwise and would demand the enum member).

Kubernetes' own words (Condition and Event types) are here too where the operator repeats them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, cast

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema


class Word(StrEnum):
    """Base of every word: on the wire, and to a pydantic model, it is its value."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = dict(handler(source))
        schema["strict"] = False
        return cast(CoreSchema, schema)


# -- Incident -------------------------------------------------------------------------------


class Phase(Word):
    """An Incident's phase (`status.phase`); see `loops/incident_machine.py` for the moves."""

    OPEN = "Open"
    INVESTIGATING = "Investigating"
    AWAITING_APPROVAL = "AwaitingApproval"
    REMEDIATING = "Remediating"
    VERIFYING = "Verifying"
    RESOLVED = "Resolved"
    ESCALATED = "Escalated"


TERMINAL: frozenset[Phase] = frozenset({Phase.RESOLVED, Phase.ESCALATED})
"""An Incident in one of these phases is closed: no daemon drives it, nothing changes it."""


class Source(Word):
    """Who opened an Incident (`spec.source`)."""

    SUBJECT_LOOP = "subject-loop"
    HUMAN = "human"


class Verdict(Word):
    """The policy gate's decision on a step (`proposedActions[].decision`)."""

    RUN = "run"
    AWAIT_APPROVAL = "await-approval"
    REFUSED = "refused"


class Check(Word):
    """The gate's check that decided: the one that refused, or `approval`/`autonomy` for a yes
    or a wait."""

    SWITCH = "switch"
    PAUSED = "paused"
    ACTION = "action"
    PARAMS = "params"
    AUTONOMY = "autonomy"
    BUDGET = "budget"
    OBSERVATION = "observation"
    BLAST_RADIUS = "blast-radius"
    PRECONDITION = "precondition"
    APPROVAL = "approval"


class Outcome(Word):
    """What became of an action that was started (`executedActions[].result`)."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"  # the outcome could not be told (interrupted by a restart)


class Risk(Word):
    """An action's risk: under autonomy execute, only a low-risk action runs unapproved."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Severity(Word):
    """How bad a broken invariant is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# -- Approval -------------------------------------------------------------------------------


class ApprovalDecision(Word):
    """A person's decision in an Approval (`spec.decision`)."""

    APPROVE = "approve"
    REJECT = "reject"


class ApprovalPhase(Word):
    """What the operator did with an Approval (`status.phase`)."""

    PENDING = "Pending"
    APPLIED = "Applied"
    STALE = "Stale"


HANDLED: frozenset[ApprovalPhase] = frozenset({ApprovalPhase.APPLIED, ApprovalPhase.STALE})
"""An Approval in one of these phases has been handled once and for all."""


# -- Subject --------------------------------------------------------------------------------


class Autonomy(Word):
    """How much the operator may do on a Subject without a person (`spec.autonomy`)."""

    OBSERVE = "observe"
    PROPOSE = "propose"
    EXECUTE = "execute"


class Health(Word):
    """A Subject's health (`status.health`)."""

    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"
    PAUSED = "Paused"


class MemberState(Word):
    """A member's state, as a plugin observes it (`status.members[].state`)."""

    UP = "Up"
    DOWN = "Down"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"


# -- Chaos ----------------------------------------------------------------------------------


class ChaosPhase(Word):
    """A Chaos' phase (`status.phase`); see `loops/chaos_driver.py` for the moves."""

    PENDING = "Pending"
    INJECTED = "Injected"
    RECOVERED = "Recovered"
    FAILED = "Failed"


class TargetState(Word):
    """One target of a Chaos (`status.targets[].state`)."""

    INJECTING = "Injecting"
    INJECTED = "Injected"
    REVERT_FAILED = "RevertFailed"
    REVERTED = "Reverted"


ACTIVE_TARGETS: frozenset[TargetState] = frozenset(
    {TargetState.INJECTING, TargetState.INJECTED, TargetState.REVERT_FAILED}
)
"""A target in one of these states may hold the fault: it must still be reverted."""


class RecoveredBy(Word):
    """What brought a Subject back after a Chaos (`status.recoveredBy`)."""

    OPERATOR = "operator"
    SELF = "self"
    REVERT = "revert"


# -- Kubernetes' words ----------------------------------------------------------------------


class ConditionStatus(Word):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(Word):
    """The condition types the operator sets."""

    # Subject
    READY = "Ready"
    OBSERVATION_FAILING = "ObservationFailing"
    DEGRADED = "Degraded"
    # Incident (set by the subject loop)
    BREACHED = "Breached"
    # Chaos
    ALL_INJECTED = "AllInjected"
    ALL_RECOVERED = "AllRecovered"
    SUBJECT_RECOVERED = "SubjectRecovered"


class Reason(Word):
    """Condition and Event reasons the operator gives in more than one place (a reason said
    once stays a literal where it is said)."""

    OBSERVED = "Observed"
    OBSERVATION_FAILED = "ObservationFailed"
    INJECTED = "Injected"
    RECOVERED = "Recovered"
    REVERTED = "Reverted"
    REVERT_FAILED = "RevertFailed"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class EventType(Word):
    NORMAL = "Normal"
    WARNING = "Warning"
