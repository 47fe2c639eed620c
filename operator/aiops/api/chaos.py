"""Chaos: a fault injected into a Subject for a bounded time, then reverted."""

from typing import Annotated, Literal

from pydantic import Field

from aiops.api.common import (
    AGE,
    ApiModel,
    Column,
    Conditions,
    Identifier,
    LabelSelector,
    MapList,
    Name,
    PreservedObject,
    Resource,
    Rule,
    ShortText,
    Text,
    Timestamp,
)
from aiops.api.durations import FaultDuration
from aiops.vocabulary import ChaosPhase, RecoveredBy, TargetState


class ChaosTarget(ApiModel):
    """Which members get the fault: one named member (or key), or members selected by labels."""

    RULES = (
        Rule(
            cel="has(self.member) != has(self.selector)",
            message="target names exactly one of member or selector",
            check=lambda t: (t.member is None) != (t.selector is None),
        ),
        Rule(
            cel="has(self.selector) || self.mode == 'one'",
            message="mode all needs a selector: a member target is always one member",
            check=lambda t: t.selector is not None or t.mode == "one",
            field_path=".mode",
        ),
    )

    member: Identifier | None = Field(
        default=None,
        description="The member, by name; for a fault on a key of the subject's data, the key.",
    )
    selector: LabelSelector | None = Field(
        default=None, description="Members selected by their labels (pods workloads)."
    )
    mode: Literal["one", "all"] = Field(
        default="one",
        description="one: a single selected member, chosen at random; all: every one.",
    )


class ChaosSpec(ApiModel):
    """The fault. Immutable: delete the Chaos (which reverts it) and create another."""

    RULES = (Rule(cel="self == oldSelf", message="a Chaos is immutable: delete and recreate it"),)

    subject: Name = Field(description="The Subject (same namespace) to inject the fault into.")
    fault: Identifier = Field(
        description="The fault, as the subject's plugin names it, e.g. kill_node or redis_latency."
    )
    target: ChaosTarget | None = Field(
        default=None,
        description="Which members (or which key) get the fault; left out for a fault on the "
        "subject as a whole.",
    )
    params: PreservedObject = Field(
        default_factory=dict, description="The fault's parameters (the plugin's model)."
    )
    duration: FaultDuration = Field(
        default="1m",
        description="How long the fault lasts before it is reverted (1s to 24h; the operator "
        "may set a lower maximum).",
    )


class TargetRecord(ApiModel):
    """One target of the fault and its state: with the spec, all a restart needs to revert."""

    name: ShortText = Field(
        description="The member, the key, or the subject's name for a subject-wide fault."
    )
    state: TargetState = Field(
        description="Injecting (claimed, the plugin was asked), Injected, RevertFailed (the "
        "revert is being retried), or Reverted."
    )
    injected_at: Timestamp | None = Field(
        default=None, description="When the plugin said the fault was made."
    )
    reverted_at: Timestamp | None = Field(default=None, description="When it was reverted.")
    instant: bool = Field(
        default=False,
        description="true when the fault was over as soon as made (a pod deleted, which its "
        "controller recreates): nothing to revert.",
    )
    message: Text | None = Field(default=None, description="What the plugin last said.")


class ChaosStatus(ApiModel):
    """Where the fault is, and what became of the subject. Written by the operator only."""

    phase: ChaosPhase | None = Field(
        default=None,
        description="Pending, Injected (the fault is active), Recovered (reverted), or Failed "
        "(nothing of it is left injected).",
    )
    targets: Annotated[list[TargetRecord], MapList(("name",))] = Field(
        default_factory=list, max_length=256, description="The targets, chosen at injection."
    )
    injected_at: Timestamp | None = Field(
        default=None, description="When the fault was first made (TTD and TTR count from it)."
    )
    ends_at: Timestamp | None = Field(
        default=None, description="When the fault is reverted by itself (injectedAt + duration)."
    )
    time_left: ShortText | None = Field(
        default=None, description="Time until the fault ends, as of the last status write."
    )
    recovered_at: Timestamp | None = Field(
        default=None, description="When every target was reverted."
    )
    waiting_for: Name | None = Field(
        default=None,
        description="The Chaos holding this fault on a target of this one; this one waits.",
    )
    broken_at: Timestamp | None = Field(
        default=None, description="When the Subject was first observed broken after injection."
    )
    healthy_at: Timestamp | None = Field(
        default=None, description="When the Subject was first observed healthy again after that."
    )
    recovered_by: RecoveredBy | None = Field(
        default=None,
        description="What brought the Subject back: operator (an action of a linked "
        "Incident), self (it healed before the revert), or revert.",
    )
    incident: Name | None = Field(
        default=None, description="The Incident whose action brought the Subject back."
    )
    incidents: list[Name] = Field(
        default_factory=list,
        max_length=32,
        description="Incidents opened on the Subject during this fault, linked to it.",
    )
    message: Text | None = Field(default=None, description="What happened, in words.")
    conditions: Conditions = Field(default_factory=list, description="Standard conditions.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this status reflects."
    )


class Chaos(Resource):
    """A fault injected into a Subject for a bounded time; a finalizer guarantees the revert."""

    KIND = "Chaos"
    PLURAL = "chaos"
    SINGULAR = "chaos"
    SHORT_NAMES = ("ch",)
    PRINTER_COLUMNS = (
        Column("Subject", ".spec.subject"),
        Column("Fault", ".spec.fault"),
        Column(
            "Target",
            ".status.targets[*].name",
            type="string",
            description="The targets the fault was injected into.",
        ),
        Column("Phase", ".status.phase"),
        Column("Time Left", ".status.timeLeft"),
        Column("Recovered By", ".status.recoveredBy", priority=1),
        Column("Duration", ".spec.duration", priority=1),
        Column("Message", ".status.message", priority=1),
        AGE,
    )
    SELECTABLE_FIELDS = (".spec.subject",)

    spec: ChaosSpec = Field(description="The fault; immutable.")
    status: ChaosStatus = Field(
        default_factory=ChaosStatus,
        description="Where the fault is; written by the operator only.",
    )
