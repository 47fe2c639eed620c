"""Approval: a person's decision on actions an Incident proposed.

Separation of duties is the API server's job, not ours: a ValidatingAdmissionPolicy
(`aiops.api.access`) rejects an Approval whose spec.approvedBy is not the requesting user,
and the operator's ClusterRole cannot create Approvals at all.

An Approval approves exactly what the person saw: it names the Incident by uid and carries,
per action, the digest of (incident uid, action id, action, params) (`step_digest`). The
operator recomputes the digest from the step as it stands when it runs; anything changed in
between (the Incident's status is only a record, and whoever can write it could rewrite a
step) makes the Approval not match, and the step does not run.
"""

import hashlib
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from aiops.api.common import (
    AGE,
    ApiModel,
    Column,
    Identifier,
    Name,
    Resource,
    Rule,
    Text,
    Timestamp,
    Username,
)
from aiops.api.incident import Sha256, Uid
from aiops.audit.record import canonical
from aiops.vocabulary import ApprovalDecision, ApprovalPhase


def step_digest(incident_uid: str, step_id: str, action: str, params: Mapping[str, Any]) -> str:
    """The sha256 (hex) of the canonical JSON of what an approval of one step approves.

    A whole float counts as the integer it equals (JSON does not tell 5000.0 from 5000, and
    the API server may hand either back)."""
    body = {
        "incident": incident_uid,
        "id": step_id,
        "action": action,
        "params": _plain_numbers(dict(params)),
    }
    return hashlib.sha256(canonical(body)).hexdigest()


def _plain_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_numbers(v) for v in value]
    return value


class ApprovalSpec(ApiModel):
    """The decision. Immutable: to change one's mind, create another Approval."""

    RULES = (
        Rule(cel="self == oldSelf", message="an Approval is immutable: create a new one"),
        Rule(
            cel=f"self.decision != '{ApprovalDecision.APPROVE}' || size(self.actions) > 0",
            message="an approval names the action ids it approves",
            check=lambda s: s.decision != ApprovalDecision.APPROVE or bool(s.actions),
            field_path=".actions",
        ),
        Rule(
            cel=f"self.decision != '{ApprovalDecision.APPROVE}' || "
            "(has(self.digests) && self.actions.all(a, a in self.digests))",
            message="an approval carries the digest of each action it approves (spec.digests; "
            "`aiops approve` computes them from the plan it shows)",
            check=lambda s: (
                s.decision != ApprovalDecision.APPROVE or all(a in s.digests for a in s.actions)
            ),
            field_path=".digests",
        ),
        Rule(
            cel="!has(self.digests) || "
            "(has(self.actions) && self.digests.all(k, k in self.actions))",
            message="spec.digests names only actions listed in spec.actions",
            check=lambda s: all(k in s.actions for k in s.digests),
            field_path=".digests",
        ),
    )

    incident: Name = Field(description="The Incident (same namespace) whose actions are decided.")
    incident_uid: Uid = Field(
        description="The Incident's metadata.uid: an Approval for another Incident of the same "
        "name (deleted and created again) is Stale."
    )
    actions: list[Identifier] = Field(
        default_factory=list,
        max_length=20,
        description="Ids of the Incident's proposed actions this decision covers. A rejection "
        "without ids rejects every action the Incident proposed.",
    )
    decision: ApprovalDecision = Field(description="approve or reject.")
    digests: dict[str, Sha256] = Field(
        default_factory=dict,
        max_length=20,
        description="Per approved action id, the sha256 (hex) of the canonical JSON of "
        '{"action", "id", "incident" (the uid), "params"}: the step exactly as the approver saw '
        "it. A step whose action or params no longer match does not run.",
    )
    approved_by: Username = Field(
        description="Username of the person deciding; the API server admits the Approval only "
        "when it is the user making the request (see `kubectl auth whoami`)."
    )
    reason: Text | None = Field(default=None, description="Why; kept in the audit log.")


class ApprovalStatus(ApiModel):
    """What the operator did with the decision. Written by the operator only."""

    phase: ApprovalPhase | None = Field(
        default=None,
        description="Pending: not handled yet; Applied: the Incident acted on it; Stale: the "
        "Incident no longer awaited these actions.",
    )
    message: Text | None = Field(default=None, description="Details, e.g. why it is Stale.")
    applied_at: Timestamp | None = Field(default=None, description="When it was Applied.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this status reflects."
    )


class Approval(Resource):
    """A person's approval or rejection of actions an Incident proposed."""

    KIND = "Approval"
    PLURAL = "approvals"
    SINGULAR = "approval"
    SHORT_NAMES = ("appr",)
    PRINTER_COLUMNS = (
        Column("Incident", ".spec.incident"),
        Column("Decision", ".spec.decision"),
        Column("By", ".spec.approvedBy"),
        Column("Phase", ".status.phase", priority=1),
        AGE,
    )
    SELECTABLE_FIELDS = (".spec.incident",)

    spec: ApprovalSpec = Field(description="The decision; immutable.")
    status: ApprovalStatus = Field(
        default_factory=ApprovalStatus,
        description="What the operator did with it; written by the operator only.",
    )
