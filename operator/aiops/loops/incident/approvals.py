"""Whether an Approval approves one step of an Incident's plan.

The Incident's status is a record, not an authority: whoever can patch `incidents/status`
could write "approved" into it. So a step counts as approved only through a live Approval
object (which the API server admits only from its approver, and keeps immutable) that names
this Incident by uid, was created after the step was proposed, and carries the digest of the
step exactly as it is now. These checks run when Approvals are applied and again, on the live
object, every time an approved step is about to run (or be resumed, or undone).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiops.api.approval import Approval, step_digest
from aiops.vocabulary import ApprovalDecision


def mismatch(
    ap: Approval,
    incident_uid: str,
    step_id: str,
    action: str,
    params: Mapping[str, Any],
    proposed_at: datetime | None,
) -> str | None:
    """Why `ap` does not decide this step, or None when it does. For a rejection only the
    incident and the time are checked: a rejection of a changed step still rejects it."""
    if ap.spec.incident_uid != incident_uid:
        return (
            f"it is for incident uid {ap.spec.incident_uid}, not this incident's "
            f"{incident_uid} (another Incident, or an earlier one of the same name)"
        )
    created = ap.metadata.creation_timestamp
    if proposed_at is None:
        if ap.spec.decision == ApprovalDecision.APPROVE:
            return f"{step_id} has no proposal time on record (proposedAt)"
    # creationTimestamp has whole seconds: compare with the second the step was proposed in.
    elif created is not None and created < proposed_at.replace(microsecond=0):
        return (
            f"it was created at {created.isoformat()}, before {step_id} was proposed at "
            f"{proposed_at.isoformat()}: it cannot have approved this step"
        )
    if ap.spec.decision != ApprovalDecision.APPROVE:
        return None
    got = ap.spec.digests.get(step_id)
    if got is None:
        return f"it carries no digest for {step_id} (spec.digests)"
    if got != step_digest(incident_uid, step_id, action, params):
        return (
            f"its digest for {step_id} does not match the step: the action or its params "
            "are not what was approved"
        )
    return None
