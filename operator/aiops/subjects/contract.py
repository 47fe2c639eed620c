"""The plugin contract: what a subject plugin gives the core, and the typed values they trade.

A plugin is a class deriving from `SubjectPlugin`, registered under the entry-point group
`aiops.subjects` by its type name (`Subject.spec.type`). The core only ever talks to it through
this module, so a second subject proves the core knows nothing subject-specific.
"""

from __future__ import annotations

import abc
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The words a plugin uses, defined once for the API and the core; imported from here by plugins.
from aiops.vocabulary import MemberState, Outcome, Risk, Severity

if TYPE_CHECKING:
    from aiops.subjects.context import PluginContext


def utcnow() -> datetime:
    """Always timezone-aware UTC (the original system mixed local time and UTC)."""
    return datetime.now(UTC)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Member(Frozen):
    """One member of a subject (a rate limiter node, a TiKV store). A dead member is reported
    as Down with when it was last seen, never dropped from the list."""

    name: str
    state: MemberState
    role: str = ""
    address: str = ""
    last_seen: datetime | None = None
    message: str = ""


class Observation(Frozen):
    """What one `observe()` saw. `metrics` maps a metric name to values per entity (a member
    name, a key, or "" for the subject as a whole); `facts` is bounded detail for the agent."""

    observed_at: datetime = Field(default_factory=utcnow)
    members: list[Member] = []
    metrics: dict[str, dict[str, float]] = {}
    facts: dict[str, Any] = {}

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def down_members(self) -> list[Member]:
        return [m for m in self.members if m.state is MemberState.DOWN]


class Invariant(Frozen):
    """A rule the subject must keep. `threshold` and `hold` (how long a breach must last before
    it is an incident) can be overridden per Subject; `source` says what detects it."""

    name: str
    description: str
    severity: Severity
    threshold: float | None = None
    hold: timedelta = timedelta(0)
    source: str = "probe"  # "probe" (the plugin's own API reads) or "metrics" (PromQL)


class Violation(Frozen):
    """One breach seen now, for one entity. The core applies the hold time and deduplication."""

    invariant: str
    entity: str = ""
    severity: Severity
    summary: str
    value: float | None = None
    evidence: list[str] = []


class ActionSpec(Frozen):
    """A remediation the plugin offers. The policy gate reads risk, reversibility and whether it
    disrupts a member (blast radius: one member disrupted at a time).

    `member_param` is the one way an action names the member it targets: the name of its
    parameter whose value, as `params` validates it, is that member's name as `observe()`
    names it (`Member.name`). The gate's blast radius does not count the target itself among
    the members already down (restarting the one down member is the fix, not a second
    disruption); an action without one counts every down member."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str
    description: str
    params: type[BaseModel]
    risk: Risk
    reversible: bool = False
    retry_safe: bool = False
    disrupts_member: bool = False
    member_param: str | None = None

    @model_validator(mode="after")
    def _member_param_is_a_parameter(self) -> ActionSpec:
        if self.member_param is not None and self.member_param not in self.params.model_fields:
            raise ValueError(
                f"action {self.name}: member_param {self.member_param!r} is not one of its "
                f"parameters ({', '.join(sorted(self.params.model_fields)) or 'none'})"
            )
        return self

    def target_member(self, params: BaseModel) -> str | None:
        """The member these (validated) parameters target, or None when the action names none."""
        if self.member_param is None:
            return None
        value = getattr(params, self.member_param, None)
        return None if value is None else str(value)


class ActionResult(Frozen):
    ok: bool
    message: str
    detail: dict[str, Any] = {}


class RunbookStep(Frozen):
    """One step of a runbook remedy. String values in `params` may use `{entity}`."""

    action: str
    params: dict[str, Any] = {}
    rationale: str = ""


class RunbookEntry(Frozen):
    """What a careful SRE would do for one invariant: the diagnosis, the likely causes in order,
    and the remedy. The runbook agent follows it; the model agent reads it as a hint."""

    invariant: str
    diagnosis: str
    likely_causes: list[str]
    steps: list[RunbookStep] = []


class FaultTarget(StrEnum):
    """What a Chaos' target names for a fault: a member of the subject (resolved against the
    observation's members, or a selector), a key of the subject's data (a rate-limit key),
    or nothing (the fault hits the subject as a whole, e.g. its Redis)."""

    MEMBER = "member"
    KEY = "key"
    SUBJECT = "subject"


class FaultSpec(Frozen):
    """A fault the plugin can inject for a Chaos resource, and undo.

    `inject` returns `ActionResult(detail={INSTANT: True})` when the fault was over as soon
    as it was made (a pod deleted, which its controller recreates): the Chaos records the
    time and recovers at once. Otherwise the fault holds until `revert`, which must be
    idempotent (reverting what is not there is a no-op that says so)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str
    description: str
    params: type[BaseModel]
    target: FaultTarget = FaultTarget.MEMBER


# ActionResult.detail key set by `inject` when the fault recovered by itself at once.
INSTANT = "instant"


class ActionRecord(Frozen):
    """One action of this operator on the Subject as an Incident's status records it: written
    `Running`, with its idempotency key, before the action is sent, so it outlives a crash of
    the operator. A plugin that leaves state behind while an action runs (a drain, a lock)
    reads these (`PluginContext.records`) to recognise that state as its own after a restart."""

    incident: str
    action: str
    params: dict[str, Any] = {}
    key: str
    started_at: datetime
    result: Outcome
    undone: bool = False
    message: str = ""


class PluginError(Exception):
    """A plugin could not do what was asked; the message is safe to show (no secrets)."""


class SubjectPlugin(abc.ABC):
    """Base class of every subject plugin. Class attributes describe it; an instance is bound to
    one Subject's validated config and context, and is created anew when the spec changes."""

    type_name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    invariants: ClassVar[tuple[Invariant, ...]]
    actions: ClassVar[tuple[ActionSpec, ...]]
    runbook: ClassVar[tuple[RunbookEntry, ...]]
    faults: ClassVar[tuple[FaultSpec, ...]] = ()

    def __init__(self, config: BaseModel, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx

    @abc.abstractmethod
    async def observe(self) -> Observation:
        """Read the subject's state. Raise (any exception) when it cannot be read: the core
        turns that into Unknown, never into "all clear"."""

    @abc.abstractmethod
    def evaluate(self, obs: Observation, invariants: dict[str, Invariant]) -> list[Violation]:
        """The breaches in `obs` of the given invariants (already merged with the Subject's
        overrides, disabled ones left out). Pure: no I/O."""

    async def preconditions(self, action: str, params: BaseModel, obs: Observation) -> list[str]:
        """Reasons, checked against live state, why `action` must not run now (empty: go)."""
        return []

    async def execute(self, action: str, params: BaseModel, key: str) -> ActionResult:
        """Run one action. `key` is its idempotency key: a plugin whose subject can remember
        it should, so a retried call does not act twice."""
        raise PluginError(f"{self.type_name} has no action {action!r}")

    async def undo(self, action: str, params: BaseModel, key: str) -> ActionResult:
        raise PluginError(f"{self.type_name} cannot undo {action!r}")

    async def release(self, action: str, params: BaseModel, key: str) -> ActionResult:
        """The operator restarted while `action` (idempotency key `key`) ran, and it is not sent
        again: release what it holds only while it runs and what it left half-done (a drain, a
        lock), so nothing of it outlives the incident unowned. Not asked to undo what finished.
        Idempotent (a second call finds nothing); touches only what this key's action made.
        The gate judges it like an undo. The default holds nothing."""
        return ActionResult(ok=True, message=f"{action} holds nothing to release")

    async def inject(self, fault: str, params: BaseModel, target: str) -> ActionResult:
        raise PluginError(f"{self.type_name} has no fault {fault!r}")

    async def revert(self, fault: str, params: BaseModel, target: str) -> ActionResult:
        raise PluginError(f"{self.type_name} has no fault {fault!r}")

    async def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections; called when the Subject is deleted or its spec changes."""

    # -- lookups the core uses ---------------------------------------------------------------

    @classmethod
    def action(cls, name: str) -> ActionSpec:
        return _find(cls.actions, name, f"{cls.type_name} has no action {name!r}")

    @classmethod
    def fault(cls, name: str) -> FaultSpec:
        return _find(cls.faults, name, f"{cls.type_name} has no fault {name!r}")

    @classmethod
    def invariant(cls, name: str) -> Invariant:
        return _find(cls.invariants, name, f"{cls.type_name} has no invariant {name!r}")


_Named = TypeVar("_Named", ActionSpec, FaultSpec, Invariant)


def _find(items: tuple[_Named, ...], name: str, missing: str) -> _Named:
    for item in items:
        if item.name == name:
            return item
    raise PluginError(missing)
