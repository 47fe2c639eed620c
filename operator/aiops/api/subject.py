"""Subject: a distributed system the operator watches, through one plugin."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

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
    Url,
    immutable,
)
from aiops.api.durations import (
    ApprovalTimeout,
    Cooldown,
    GracePeriod,
    Hold,
    Interval,
    TimeBudget,
)
from aiops.vocabulary import Autonomy, Health, MemberState, Severity


class PrometheusRef(ApiModel):
    """Where the subject's metrics are queried (PromQL over HTTP)."""

    url: Url = Field(
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus:9090."
    )


class SupervisorWorkload(ApiModel):
    """Members run as processes under supervisord, reached over its XML-RPC interface."""

    url: Url = Field(description="supervisord's XML-RPC endpoint, e.g. http://127.0.0.1:9001/RPC2.")
    programs: dict[str, Identifier] = Field(
        default_factory=dict,
        max_length=64,
        description="Member name to supervisord program name, for members whose program "
        "is not named like the member.",
    )


class Workload(ApiModel):
    """Where the subject's members run, so that actions and faults can reach them."""

    RULES = (
        Rule(
            cel="self.kind != 'pods' || has(self.selector)",
            message="a pods workload needs selector",
            check=lambda w: w.kind != "pods" or w.selector is not None,
            field_path=".selector",
        ),
        Rule(
            cel="self.kind != 'supervisor' || has(self.supervisor)",
            message="a supervisor workload needs supervisor",
            check=lambda w: w.kind != "supervisor" or w.supervisor is not None,
            field_path=".supervisor",
        ),
        Rule(
            cel="self.kind == 'pods' ? !has(self.supervisor) : !has(self.selector)",
            message="selector belongs to pods workloads and supervisor to supervisor workloads",
            check=lambda w: (w.supervisor is None) if w.kind == "pods" else (w.selector is None),
        ),
    )

    kind: Literal["pods", "supervisor"] = Field(
        description="pods: Kubernetes pods found by selector; supervisor: processes run by "
        "supervisord (the local control plane, where pods are simulated)."
    )
    namespace: Name | None = Field(
        default=None,
        description="Namespace of the pods; defaults to the Subject's namespace.",
    )
    selector: LabelSelector | None = Field(
        default=None, description="Selects the member pods (kind pods)."
    )
    supervisor: SupervisorWorkload | None = Field(
        default=None, description="The supervisord that runs the members (kind supervisor)."
    )


class InvariantOverride(ApiModel):
    """Tunes one of the plugin's invariants for this subject; unset fields keep the plugin's."""

    name: Identifier = Field(description="The invariant's name, as the plugin defines it.")
    enabled: bool | None = Field(
        default=None, description="false turns the invariant off for this subject."
    )
    threshold: float | None = Field(
        default=None, description="Replaces the invariant's threshold (its unit is the plugin's)."
    )
    for_: Hold | None = Field(
        default=None,
        alias="for",
        description="How long the invariant must be broken before an Incident opens.",
    )
    severity: Severity | None = Field(
        default=None, description="Severity of the Incidents this invariant opens."
    )


class SecretKeyRef(ApiModel):
    """A key of a Secret in the Subject's namespace."""

    name: Name = Field(description="Name of the Secret.")
    key: Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = Field(
        description="Key within the Secret."
    )


class AgentSpec(ApiModel):
    """Who investigates this subject's Incidents, and within which budgets."""

    backend: Literal["auto", "anthropic", "runbook"] = Field(
        default="auto",
        description="anthropic: Claude through the Anthropic API; runbook: the plugin's "
        "deterministic runbook; auto: anthropic when an API key is configured, else runbook.",
    )
    model: ShortText | None = Field(
        default=None,
        description="Model name for the anthropic backend; the operator's default when unset.",
    )
    max_turns: int | None = Field(
        default=None, ge=1, le=100, description="Most model turns spent on one Incident."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Most output tokens in one model turn."
    )
    temperature: float | None = Field(
        default=None, ge=0, le=1, description="Sampling temperature, 0 to 1."
    )
    time_budget: TimeBudget | None = Field(
        default=None, description="Wall-clock budget for one investigation (1s to 1h)."
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding the Anthropic API key for this subject."
    )
    system_prompt_addendum: Text | None = Field(
        default=None,
        description="Added to the anthropic agent's system prompt, after the operator's rules "
        "(which it cannot lift), e.g. an evaluation variant's instructions.",
    )


class SubjectSpec(ApiModel):
    """What to watch and how much the operator may do about it."""

    RULES = (immutable("type"),)

    type: Identifier = Field(
        description="The subject plugin (entry point in group aiops.subjects), e.g. tikv or "
        "ratelimiter. Immutable."
    )
    config: PreservedObject = Field(
        default_factory=dict,
        description="The plugin's configuration; the plugin validates it.",
    )
    prometheus: PrometheusRef | None = Field(
        default=None, description="Prometheus that scrapes the subject."
    )
    workload: Workload | None = Field(
        default=None, description="Where the members run, for actions and faults."
    )
    interval: Interval = Field(
        default="10s", description="How often the subject is observed (1s to 1h)."
    )
    invariants: Annotated[list[InvariantOverride], MapList(("name",))] = Field(
        default_factory=list,
        max_length=64,
        description="Per-subject overrides of the plugin's invariants, one per name.",
    )
    autonomy: Autonomy = Field(
        default=Autonomy.PROPOSE,
        description="observe: open Incidents only; propose: diagnose and propose actions, "
        "run them after an Approval; execute: run low-risk actions without waiting.",
    )
    agent: AgentSpec | None = Field(
        default=None, description="The investigating agent and its budgets."
    )
    paused: bool = Field(
        default=False,
        description="true stops observation and remediation; open Incidents stay as they are.",
    )
    observation_grace_period: GracePeriod = Field(
        default="30s",
        description="How long observation may fail before the subject turns Unknown and an "
        "Incident opens: a failed observation is never counted as healthy.",
    )
    cooldown: Cooldown = Field(
        default="30s",
        description="Quiet time after an action on this subject finishes before another "
        "incident's action may start (0s to 1h), so that two incidents never pile remediations "
        "onto a subject that is still settling. Steps of one incident's plan are paced by "
        "verification instead.",
    )
    approval_timeout: ApprovalTimeout | None = Field(
        default=None,
        description="How long an incident waits for an Approval before it escalates (10s to "
        "168h); unset: the operator's default (AIOPS_APPROVAL_TIMEOUT, 30m).",
    )


class Member(ApiModel):
    """One member of the subject (a node, a store, a process) as last observed."""

    name: Identifier = Field(description="The member's name, as the plugin reports it.")
    state: MemberState = Field(
        description="Up, Down, Degraded, or Unknown when the last observation could not tell."
    )
    role: ShortText | None = Field(
        default=None, description="The member's role in the subject, e.g. pd or tikv."
    )
    message: Text | None = Field(default=None, description="Why the member is in this state.")


class PendingBreach(ApiModel):
    """A broken invariant being held (see the invariant's `for`) or already an Incident."""

    invariant: Identifier = Field(description="The broken invariant.")
    entity: ShortText = Field(default="", description="The member or key it is broken for.")
    since: Timestamp = Field(description="First observation in which it was broken.")
    last_seen: Timestamp = Field(description="Last observation in which it was broken.")
    incident: ShortText = Field(
        default="", description="The Incident opened for it, once the hold has passed."
    )


class Detection(ApiModel):
    """The subject loop's memory, kept here so that an operator restart neither forgets a
    breach being held nor opens a second Incident for one."""

    pending: Annotated[list[PendingBreach], MapList(("invariant", "entity"))] = Field(
        default_factory=list,
        max_length=256,
        description="Breaches held or open, one per invariant and entity.",
    )


class SubjectStatus(ApiModel):
    """What the operator last observed. Written by the operator only."""

    health: Health | None = Field(
        default=None,
        description="Healthy: every invariant holds; Degraded: one is broken; Unknown: "
        "observation is failing; Paused: spec.paused is true.",
    )
    members: Annotated[list[Member], MapList(("name",))] = Field(
        default_factory=list, max_length=256, description="Members and their state."
    )
    conditions: Conditions = Field(
        default_factory=list, description="Standard conditions, e.g. Observing and Healthy."
    )
    open_incidents: int = Field(
        default=0, ge=0, description="Incidents of this subject not yet Resolved or Escalated."
    )
    last_observation_time: Timestamp | None = Field(
        default=None, description="When the last successful observation finished."
    )
    observation_failing_since: Timestamp | None = Field(
        default=None,
        description="When observation started failing; absent while it succeeds.",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this status reflects."
    )
    detection: Detection | None = Field(
        default=None, description="Breaches being held or open (the subject loop's memory)."
    )


class Subject(Resource):
    """A distributed system the operator watches through a plugin, and may remediate."""

    KIND = "Subject"
    PLURAL = "subjects"
    SINGULAR = "subject"
    SHORT_NAMES = ("subj",)
    PRINTER_COLUMNS = (
        Column("Type", ".spec.type"),
        Column("Health", ".status.health"),
        Column("Open Incidents", ".status.openIncidents"),
        Column("Autonomy", ".spec.autonomy"),
        Column("Paused", ".spec.paused", priority=1),
        Column("Last Observed", ".status.lastObservationTime", priority=1),
        AGE,
    )
    SELECTABLE_FIELDS = (".spec.type",)

    spec: SubjectSpec = Field(description="What to watch and how much the operator may do.")
    status: SubjectStatus = Field(
        default_factory=SubjectStatus,
        description="What the operator last observed; written by the operator only.",
    )
