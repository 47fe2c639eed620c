"""What an evaluation run and each of its trials record: the models `aiops eval run` writes
and `aiops eval report|compare` read (through `aiops.eval.store`).

Every time is timezone-aware UTC (a naive datetime is refused, any other zone is converted):
the original harness mixed local time and UTC. Durations are seconds as floats, measured from
the Chaos' `injectedAt` (TTD, TTR, healthy again), so they mean what `aiops chaos` and the
Incident say.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware instant, held in UTC."""


class TrialOutcome(StrEnum):
    """What became of one trial. Exactly one per trial; the rules are in `aiops.eval.outcome`."""

    RESOLVED = "resolved"
    """Its Incident was Resolved, no action was undone, and the Subject was healthy again."""
    ESCALATED = "escalated"
    """Its Incident was Escalated (a person must act), and no action ran that failed to fix."""
    TIMEOUT = "timeout"
    """No Incident of this fault was ever opened, or it did not end within the trial's time:
    never a success."""
    WRONG_FIX = "wrong_fix"
    """An action ran and the invariant still broke (not verified, undone, or the Subject was
    not healthy again), i.e. the agent changed the system without fixing it."""
    SELF_HEALED = "self_healed"
    """The Subject was healthy again before the fault was reverted and no action of ours ran
    (the baseline's finding: nobody gets credit for this fault)."""
    ERROR = "error"
    """The trial could not be run as planned (the Chaos Failed, the Subject did not become
    healthy before injection, the API refused something); the detail says what."""


class Backend(StrEnum):
    RUNBOOK = "runbook"
    ANTHROPIC = "anthropic"


class VariantInfo(BaseModel):
    """A variant as the run applied it to each Subject (the campaign's `variants` entry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    backend: Backend = Backend.RUNBOOK
    model: str | None = None
    prompt_addendum: str | None = None
    autonomy: str = "execute"
    max_turns: int | None = None
    baseline: bool = Field(
        default=False,
        description="The agent does not act (autonomy observe): how the system fares alone.",
    )


class ActionRecord(BaseModel):
    """One action of the trial's Incident, as its status recorded it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    action: str
    risk: str = Field(description="low, medium or high (the proposal's risk).")
    result: str = Field(description="Succeeded, Failed, Unknown or Running.")
    undone: bool = False
    approved_by: str | None = None
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None


class TrialRecord(BaseModel):
    """One trial: one fault injected into one Subject under one variant, and what happened."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    seq: int = Field(ge=1, description="Position in the run's plan, 1..N (stable on resume).")
    subject: str = Field(description="namespace/name of the Subject.")
    fault: str = Field(description="The campaign's fault entry name (often the plugin fault).")
    plugin_fault: str = Field(description="The plugin's fault the Chaos injected.")
    variant: str
    baseline: bool = False
    trial: int = Field(ge=1, description="Trial number within (subject, fault, variant).")
    outcome: TrialOutcome
    detail: str = Field(default="", description="Why this outcome, in words.")

    chaos: str | None = Field(default=None, description="The Chaos' name.")
    injected_at: UtcDatetime | None = Field(default=None, description="The Chaos' injectedAt.")
    recovered_by: str | None = Field(
        default=None, description="The Chaos' recoveredBy: operator, self or revert."
    )
    incident: str | None = Field(default=None, description="The Incident's name.")
    incident_uid: str | None = None
    incident_phase: str | None = Field(default=None, description="Resolved, Escalated, ...")
    invariant: str | None = None
    audit_seq: int | None = Field(
        default=None, description="The Incident's status.auditHead.seq at the end."
    )
    audit_hash: str | None = Field(
        default=None, description="The Incident's status.auditHead.hash at the end."
    )

    ttd_s: float | None = Field(default=None, description="detectedAt - injectedAt.")
    ttr_s: float | None = Field(default=None, description="resolvedAt - injectedAt (Resolved).")
    healthy_s: float | None = Field(
        default=None, description="The Subject healthy again (Chaos healthyAt) - injectedAt."
    )
    approval_s: float = Field(default=0.0, description="Seconds spent in AwaitingApproval.")

    actions: list[ActionRecord] = Field(default_factory=list)
    proposed: int = Field(default=0, description="Steps the agent proposed.")
    refused: int = Field(default=0, description="Proposed steps the policy gate refused.")
    tool_calls: int | None = Field(
        default=None, description="Tool calls in the audit log; None when it was not readable."
    )
    model_turns: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    started_at: UtcDatetime
    finished_at: UtcDatetime

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.subject, self.fault, self.variant, self.trial)

    def actions_by(self, risk: str | None = None, result: str | None = None) -> int:
        """How many actions ran with this risk and/or result."""
        return sum(
            1
            for a in self.actions
            if (risk is None or a.risk == risk) and (result is None or a.result == result)
        )


class RunRecord(BaseModel):
    """One `aiops eval run`: the campaign as it was, and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str = Field(description="The campaign's name.")
    campaign_text: str = Field(description="The campaign file, verbatim.")
    campaign_sha256: str
    started_at: UtcDatetime
    finished_at: UtcDatetime | None = Field(
        default=None, description="None while running, or when the run was interrupted."
    )
    planned: int = Field(ge=0, description="Trials in the plan.")
    variants: list[VariantInfo] = Field(default_factory=list)
    settings: dict[str, Any] = Field(
        default_factory=dict, description="The campaign's timings, as run (seconds)."
    )
