"""Incident: a broken invariant (or a person's report), its investigation and its remediation."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from aiops.api.common import (
    AGE,
    ApiModel,
    Column,
    Conditions,
    Identifier,
    MapList,
    Name,
    PreservedObject,
    Resource,
    Rule,
    ShortText,
    Text,
    Timestamp,
    Username,
    immutable,
)
from aiops.vocabulary import Outcome, Phase, Risk, Severity, Source, Verdict

TIMELINE_MAX = 50
"""The timeline is bounded so the object stays small; the audit log keeps everything."""

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$", min_length=64, max_length=64)]
"""A sha256 digest as 64 lowercase hex digits."""
Uid = Annotated[str, StringConstraints(min_length=1, max_length=128)]
"""A Kubernetes object uid (`metadata.uid`)."""


class Evidence(ApiModel):
    """One piece of what was seen: a metric value, a log line, an observation, a note."""

    kind: Identifier = Field(description="What sort of evidence: metric, log, observation, note...")
    text: Text = Field(description="The evidence itself, as text.")
    at: Timestamp | None = Field(default=None, description="When it was observed.")


class IncidentSpec(ApiModel):
    """The symptom, as reported. subject, invariant, entity and source are immutable."""

    RULES = (
        immutable("subject"),
        immutable("invariant", optional=True),
        immutable("entity", optional=True),
        immutable("source"),
        Rule(
            cel=f"self.source != '{Source.SUBJECT_LOOP}' || has(self.invariant)",
            message="an Incident opened by the subject loop names its invariant",
            check=lambda s: s.source != Source.SUBJECT_LOOP or s.invariant is not None,
            field_path=".invariant",
        ),
    )

    subject: Name = Field(description="The Subject (same namespace) this Incident is about.")
    invariant: Identifier | None = Field(
        default=None,
        description="The broken invariant; absent when a person filed the Incident.",
    )
    entity: ShortText | None = Field(
        default=None,
        description="The member or key the invariant is about, e.g. store-4 or node-2.",
    )
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical.")
    summary: Annotated[Text, Field(min_length=1)] = Field(
        description="The symptom in one or two sentences."
    )
    evidence: list[Evidence] = Field(
        default_factory=list, max_length=20, description="What was seen when it was opened."
    )
    source: Source = Field(
        default=Source.HUMAN, description="Who opened it: the subject loop or a person."
    )


class Diagnosis(ApiModel):
    """The agent's conclusion about the cause."""

    summary: Text = Field(description="The diagnosis in a few sentences.")
    root_cause: Text | None = Field(default=None, description="The most likely root cause.")
    confidence: float | None = Field(
        default=None, ge=0, le=1, description="Confidence in the root cause, 0 to 1."
    )
    alternatives: list[Text] = Field(
        default_factory=list,
        max_length=10,
        description="Other causes considered, and why they were ruled out.",
    )


class DryRun(ApiModel):
    """What a dry run of the action said, where the subject's API has one."""

    ok: bool = Field(description="Whether the dry run succeeded.")
    message: Text | None = Field(default=None, description="What the dry run reported.")


class ProposedAction(ApiModel):
    """An action the agent proposed, and what the safety policy decided about it."""

    id: Identifier = Field(description="Unique within the Incident; Approvals name it.")
    action: Identifier = Field(description="The plugin action, e.g. restart-member.")
    params: PreservedObject = Field(
        default_factory=dict, description="The action's parameters (the plugin's model)."
    )
    risk: Risk = Field(description="The action's risk.")
    rationale: Text | None = Field(default=None, description="Why the agent proposed it.")
    dry_run: DryRun | None = Field(default=None, description="The dry run's result.")
    decision: Verdict | None = Field(
        default=None,
        description="The safety policy's decision: run now, wait for an Approval, or refuse.",
    )
    reason: Text | None = Field(default=None, description="Why the policy decided so.")
    proposed_at: Timestamp | None = Field(
        default=None,
        description="When the step was proposed: an Approval created before it is Stale.",
    )
    digest: Sha256 | None = Field(
        default=None,
        description="sha256 of (incident uid, id, action, params), the value an Approval "
        "carries in spec.digests. For reading only: the operator recomputes it from the step "
        "as it is when it runs, and `aiops approve` from the step it shows.",
    )
    approval_uid: Uid | None = Field(
        default=None,
        description="The uid of the Approval that approved this step. The step runs only while "
        "that Approval exists and still matches it.",
    )
    approved_by: Username | None = Field(
        default=None, description="Who approved this step, from the Approval's spec.approvedBy."
    )


class ExecutedAction(ApiModel):
    """An action that ran (or is running)."""

    id: Identifier = Field(description="The proposed action's id.")
    action: Identifier = Field(description="The plugin action.")
    params: PreservedObject = Field(default_factory=dict, description="The parameters it ran with.")
    idempotency_key: ShortText = Field(
        description="Key that makes a retry after a crash a no-op instead of a second action."
    )
    started_at: Timestamp = Field(description="When it started.")
    finished_at: Timestamp | None = Field(default=None, description="When it finished.")
    result: Outcome = Field(
        description="Running, Succeeded, Failed, or Unknown when the outcome could not be told."
    )
    message: Text | None = Field(default=None, description="What the action reported.")
    approval_uid: Uid | None = Field(
        default=None, description="The uid of the Approval it ran under, if it needed one."
    )
    approved_by: Username | None = Field(
        default=None, description="Who approved it, from that Approval."
    )
    undone: bool = Field(
        default=False, description="true once the action was reverted after failed verification."
    )
    broken_before: list[ShortText] | None = Field(
        default=None,
        max_length=50,
        description="The subject's broken invariants (invariant/entity) when the action started. "
        "A step that is not the plan's last is verified when it has broken none besides these.",
    )


class TimelineEntry(ApiModel):
    """One step of the Incident's life."""

    time: Timestamp = Field(description="When it happened.")
    phase: Phase | None = Field(default=None, description="The phase entered, if any.")
    message: Text = Field(description="What happened.")


class AuditHead(ApiModel):
    """The last audit record of this incident as of the last phase change."""

    seq: int = Field(ge=0, description="Its seq.")
    hash: Sha256 = Field(description="Its hash (the record's `hash` field).")


class AgentUsage(ApiModel):
    """What the investigation cost."""

    backend: Literal["anthropic", "runbook"] = Field(description="The backend that ran.")
    model: ShortText | None = Field(default=None, description="The model, for anthropic.")
    turns: int = Field(default=0, ge=0, description="Model turns taken.")
    input_tokens: int = Field(default=0, ge=0, description="Input tokens used.")
    output_tokens: int = Field(default=0, ge=0, description="Output tokens used.")
    cost_usd: float = Field(
        default=0, ge=0, alias="costUSD", description="Estimated cost in US dollars."
    )


class IncidentStatus(ApiModel):
    """The investigation and remediation so far. Written by the operator only."""

    phase: Phase | None = Field(
        default=None,
        description="Open, Investigating, AwaitingApproval, Remediating, Verifying, then "
        "Resolved (the subject was observed healthy again) or Escalated (a person must act).",
    )
    diagnosis: Diagnosis | None = Field(default=None, description="The agent's diagnosis.")
    proposed_actions: Annotated[list[ProposedAction], MapList(("id",))] = Field(
        default_factory=list, max_length=20, description="Actions proposed, by id."
    )
    executed_actions: list[ExecutedAction] = Field(
        default_factory=list, max_length=50, description="Actions run, oldest first."
    )
    fault_at: Timestamp | None = Field(
        default=None, description="When the fault began, when known (e.g. from a Chaos)."
    )
    chaos: Name | None = Field(
        default=None,
        description="The Chaos (same namespace) whose fault this Incident is; faultAt is then "
        "its injectedAt.",
    )
    detected_at: Timestamp | None = Field(
        default=None, description="When the broken invariant was first seen."
    )
    last_seen_at: Timestamp | None = Field(
        default=None, description="When the broken invariant was last seen."
    )
    count: int | None = Field(
        default=None, ge=0, description="How many observations saw the invariant broken."
    )
    resolved_at: Timestamp | None = Field(default=None, description="When it was Resolved.")
    escalation_reason: Text | None = Field(
        default=None, description="Why it was Escalated to a person."
    )
    timeline: list[TimelineEntry] = Field(
        default_factory=list,
        max_length=TIMELINE_MAX,
        description=f"The last {TIMELINE_MAX} steps, oldest first; the audit log has all.",
    )
    agent: AgentUsage | None = Field(default=None, description="What the investigation cost.")
    audit_head: AuditHead | None = Field(
        default=None,
        description="The incident's audit log as of the last phase change: `aiops audit verify` "
        "compares the log with it, so records cut from the end of the log are found.",
    )
    conditions: Conditions = Field(default_factory=list, description="Standard conditions.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this status reflects."
    )


class Incident(Resource):
    """A broken invariant of a Subject, or a problem a person reported, and what was done."""

    KIND = "Incident"
    PLURAL = "incidents"
    SINGULAR = "incident"
    SHORT_NAMES = ("inc",)
    PRINTER_COLUMNS = (
        Column("Subject", ".spec.subject"),
        Column("Invariant", ".spec.invariant"),
        Column("Severity", ".spec.severity"),
        Column("Phase", ".status.phase"),
        Column("Entity", ".spec.entity", priority=1),
        Column("Summary", ".spec.summary", priority=1),
        AGE,
    )
    SELECTABLE_FIELDS = (".spec.subject", ".spec.severity", ".status.phase")

    spec: IncidentSpec = Field(description="The symptom, as reported.")
    status: IncidentStatus = Field(
        default_factory=IncidentStatus,
        description="The investigation and remediation; written by the operator only.",
    )
