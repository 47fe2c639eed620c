"""The outcome rules: never detected is a timeout, never a success; an action that ran and did
not fix, or was undone, is a wrong fix; healing by itself (or by the revert) earns the agent
nothing."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiops.api import ChaosStatus, Incident
from aiops.eval.outcome import decide
from aiops.eval.records import TrialOutcome

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def chaos(**fields: Any) -> ChaosStatus:
    return ChaosStatus.model_validate(
        {"phase": "Injected", "injectedAt": T0, "endsAt": at(30), **fields}
    )


def incident(phase: str, *actions: dict[str, Any]) -> Incident:
    return Incident.model_validate(
        {
            "apiVersion": "aiops.dev/v1alpha1",
            "kind": "Incident",
            "metadata": {"name": "inc", "namespace": "ns"},
            "spec": {"subject": "rl", "summary": "drift", "invariant": "counter_drift"},
            "status": {"phase": phase, "executedActions": list(actions)},
        }
    )


def action(result: str = "Succeeded", undone: bool = False) -> dict[str, Any]:
    return {
        "id": "a1",
        "action": "reset_counter",
        "idempotencyKey": "k",
        "startedAt": at(8),
        "result": result,
        "undone": undone,
    }


HEALTHY_BY_OPERATOR = {"healthyAt": at(10), "recoveredBy": "operator", "brokenAt": at(1)}


@pytest.mark.parametrize(
    ("status", "inc", "ended", "expected"),
    [
        (chaos(phase="Failed", message="no such member"), None, False, TrialOutcome.ERROR),
        (chaos(), None, False, TrialOutcome.TIMEOUT),  # never detected
        (chaos(brokenAt=at(1)), None, False, TrialOutcome.TIMEOUT),  # broken, no Incident
        (
            chaos(brokenAt=at(1), healthyAt=at(3), recoveredBy="self"),
            None,
            False,
            TrialOutcome.SELF_HEALED,
        ),
        (chaos(), incident("Investigating"), False, TrialOutcome.TIMEOUT),
        (chaos(**HEALTHY_BY_OPERATOR), incident("Resolved", action()), True, TrialOutcome.RESOLVED),
        (chaos(), incident("Resolved", action()), True, TrialOutcome.WRONG_FIX),  # not healthy
        (
            chaos(healthyAt=at(31), recoveredBy="revert", brokenAt=at(1)),
            incident("Resolved", action()),
            True,
            TrialOutcome.WRONG_FIX,  # healthy only once reverted
        ),
        (
            chaos(healthyAt=at(31), recoveredBy="revert", brokenAt=at(1)),
            incident("Resolved"),
            True,
            TrialOutcome.TIMEOUT,  # the fault outlasted the agent
        ),
        (chaos(), incident("Escalated", action(undone=True)), True, TrialOutcome.WRONG_FIX),
        (chaos(), incident("Escalated", action()), True, TrialOutcome.WRONG_FIX),
        (chaos(), incident("Escalated", action("Failed")), True, TrialOutcome.ESCALATED),
        (chaos(), incident("Escalated"), True, TrialOutcome.ESCALATED),
        (
            chaos(healthyAt=at(20), recoveredBy="self", brokenAt=at(1)),
            incident("Escalated"),
            True,
            TrialOutcome.SELF_HEALED,
        ),
        (
            # Credited `self` though seen healthy after the revert was due: not self-healed.
            chaos(healthyAt=at(30.5), recoveredBy="self", brokenAt=at(1)),
            incident("Escalated"),
            True,
            TrialOutcome.ESCALATED,
        ),
    ],
)
def test_outcome(
    status: ChaosStatus, inc: Incident | None, ended: bool, expected: TrialOutcome
) -> None:
    verdict = decide(status, inc, ended=ended, waited_s=15)
    assert verdict.outcome == expected, verdict.detail
    assert verdict.detail


def test_an_invariant_that_breaks_again_after_resolution_is_a_wrong_fix() -> None:
    verdict = decide(
        chaos(**HEALTHY_BY_OPERATOR), incident("Resolved", action()), ended=True, broke_again="i2"
    )
    assert verdict.outcome == TrialOutcome.WRONG_FIX and "i2" in verdict.detail
