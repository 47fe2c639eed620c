"""The one interface every agent backend implements, and the values it trades with the loop.

An agent reads (through `Toolbox`), thinks, and returns an `AgentResult`: a diagnosis and an
ordered plan of steps. It never mutates the subject. `Toolbox.check_action` lets it ask the
policy gate what would happen to a step (validation, preconditions, the decision), so that a
model can adapt its plan to a refusal; the loop asks the gate again before each step runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from aiops.api import Incident, Subject
from aiops.subjects.contract import SubjectPlugin, Violation


class PlanStep(BaseModel):
    """One remediation step the agent proposes."""

    model_config = ConfigDict(extra="forbid")

    action: str
    params: dict[str, Any] = {}
    rationale: str = ""


class DiagnosisResult(BaseModel):
    summary: str
    root_cause: str | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)
    alternatives: list[str] = []


class Usage(BaseModel):
    backend: Literal["anthropic", "runbook"]
    model: str | None = None
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0


class AgentResult(BaseModel):
    """`plan`: run `steps` in order (may be empty when nothing needs doing and the invariant
    holds); `escalate`: hand over to a person, with the reason."""

    outcome: Literal["plan", "escalate"]
    diagnosis: DiagnosisResult
    steps: list[PlanStep] = []
    escalation_reason: str | None = None
    usage: Usage


class Toolbox(Protocol):
    """Read-only tools over the incident's own subject (and its namespace), for agents.

    Every method returns JSON-able data and raises `ToolError` with a message meant for the
    model when the input is wrong; outputs are already redacted and truncated to a budget.
    """

    async def observe(self) -> dict[str, Any]: ...
    async def promql(self, query: str) -> dict[str, Any]: ...
    async def promql_range(self, query: str, minutes: int, step_seconds: int) -> dict[str, Any]: ...
    async def k8s_get(self, kind: str, name: str | None = None) -> dict[str, Any]: ...
    async def k8s_events(self) -> dict[str, Any]: ...
    async def pod_logs(self, pod: str, tail: int = 100) -> dict[str, Any]: ...
    async def kubectl(self, argv: list[str]) -> dict[str, Any]: ...
    async def list_actions(self) -> dict[str, Any]: ...
    async def check_action(self, action: str, params: dict[str, Any]) -> dict[str, Any]: ...


class ToolError(Exception):
    """A tool refused its input; the message goes back to the model as the tool's result."""


AuditFn = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Appends one record (kind, data) to the incident's audit log."""


class Checkpoint(Protocol):
    """Where an agent keeps its in-flight state (e.g. a model conversation) so that the next
    operator resumes it after a SIGTERM or a crash instead of starting over."""

    async def load(self) -> dict[str, Any] | None: ...
    async def save(self, state: dict[str, Any]) -> None: ...
    async def clear(self) -> None: ...


class Investigation(BaseModel):
    """Everything an agent gets for one incident."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    incident: Incident
    subject: Subject
    plugin: type[SubjectPlugin]
    violations: list[Violation] = []  # broken now, per a fresh observation at the start
    tools: Any  # a Toolbox
    audit: Any  # an AuditFn
    checkpoint: Any  # a Checkpoint


class Agent(Protocol):
    name: str

    async def investigate(self, inv: Investigation) -> AgentResult: ...
