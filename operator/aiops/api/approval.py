"""Approval: a person's decision on actions an Incident proposed.

Separation of duties is the API server's job, not ours: a ValidatingAdmissionPolicy
(`aiops.api.access`) rejects an Approval whose spec.approvedBy is not the requesting user,
and the operator's ClusterRole cannot create Approvals at all.
"""

from typing import Literal

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


class ApprovalSpec(ApiModel):
    """The decision. Immutable: to change one's mind, create another Approval."""

    RULES = (
        Rule(cel="self == oldSelf", message="an Approval is immutable: create a new one"),
        Rule(
            cel="self.decision != 'approve' || size(self.actions) > 0",
            message="an approval names the action ids it approves",
            check=lambda s: s.decision != "approve" or bool(s.actions),
            field_path=".actions",
        ),
    )

    incident: Name = Field(description="The Incident (same namespace) whose actions are decided.")
    actions: list[Identifier] = Field(
        default_factory=list,
        max_length=20,
        description="Ids of the Incident's proposed actions this decision covers. A rejection "
        "without ids rejects every action the Incident proposed.",
    )
    decision: Literal["approve", "reject"] = Field(description="approve or reject.")
    approved_by: Username = Field(
        description="Username of the person deciding; the API server admits the Approval only "
        "when it is the user making the request (see `kubectl auth whoami`)."
    )
    reason: Text | None = Field(default=None, description="Why; kept in the audit log.")


class ApprovalStatus(ApiModel):
    """What the operator did with the decision. Written by the operator only."""

    phase: Literal["Pending", "Applied", "Stale"] | None = Field(
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
