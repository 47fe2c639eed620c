"""Chaos: a fault injected into a Subject for a bounded time, then reverted."""

from typing import Literal

from pydantic import Field

from aiops.api.common import (
    AGE,
    ApiModel,
    Column,
    Conditions,
    Identifier,
    LabelSelector,
    Name,
    PreservedObject,
    Resource,
    Rule,
    Text,
    Timestamp,
)
from aiops.api.durations import FaultDuration


class ChaosTarget(ApiModel):
    """Which members get the fault: one named member, or members selected by labels."""

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

    member: Identifier | None = Field(default=None, description="The member, by name.")
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
        description="The fault, as the subject's plugin names it, e.g. kill-member or latency."
    )
    target: ChaosTarget = Field(description="Which members get the fault.")
    params: PreservedObject = Field(
        default_factory=dict, description="The fault's parameters (the plugin's model)."
    )
    duration: FaultDuration = Field(
        default="1m", description="How long the fault lasts before it is reverted (1s to 24h)."
    )


class ChaosStatus(ApiModel):
    """Where the fault is. Written by the operator only."""

    phase: Literal["Pending", "Injected", "Recovered", "Failed"] | None = Field(
        default=None,
        description="Pending, Injected (the fault is active), Recovered (reverted), or Failed.",
    )
    targets: list[Identifier] = Field(
        default_factory=list, max_length=256, description="The members the fault was injected into."
    )
    injected_at: Timestamp | None = Field(default=None, description="When it was injected.")
    recovered_at: Timestamp | None = Field(default=None, description="When it was reverted.")
    message: Text | None = Field(default=None, description="Details, e.g. why it Failed.")
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
        Column("Phase", ".status.phase"),
        Column("Duration", ".spec.duration", priority=1),
        Column("Targets", ".status.targets", priority=1),
        AGE,
    )
    SELECTABLE_FIELDS = (".spec.subject",)

    spec: ChaosSpec = Field(description="The fault; immutable.")
    status: ChaosStatus = Field(
        default_factory=ChaosStatus,
        description="Where the fault is; written by the operator only.",
    )
