"""The tools the model is offered: their inputs as pydantic models (strict, no extra fields),
and the definitions sent to the Messages API, generated from those same models so that what
the model is told and what is enforced cannot drift apart."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Line = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]


class ToolInput(BaseModel):
    # Strict: "5" is not 5, and a field the schema does not name is an error, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True)


class NoInput(ToolInput):
    pass


class PromqlInput(ToolInput):
    query: Line = Field(description="A PromQL expression.")


class PromqlRangeInput(ToolInput):
    query: Line = Field(description="A PromQL expression.")
    minutes: int = Field(ge=1, le=1440, description="How far back from now.")
    step_seconds: int = Field(ge=1, le=3600, description="Resolution; at most 600 points.")


class K8sGetInput(ToolInput):
    kind: Name = Field(
        description="pods, deployments, statefulsets, services, events or configmaps."
    )
    name: Name | None = Field(
        default=None, description="One object (with its events); omit to list the kind."
    )


class PodLogsInput(ToolInput):
    pod: Name = Field(description="Pod name in the Subject's namespace.")
    tail: int = Field(default=100, ge=1, le=1000, description="Last lines per container.")


class KubectlInput(ToolInput):
    argv: list[Annotated[str, StringConstraints(max_length=1024)]] = Field(
        min_length=1,
        max_length=64,
        description='Arguments after "kubectl", verb first, e.g. ["get", "pods", "-o", '
        '"wide"]. Never one string; no shell is involved.',
    )


class ProposeInput(ToolInput):
    action: Name = Field(description="An action name from list_actions.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Exactly the parameters the action defines."
    )
    rationale: Line = Field(description="Why this step, in a sentence or two.")


class ResolveInput(ToolInput):
    summary: Line = Field(description="The diagnosis in a few sentences.")
    root_cause: Line | None = Field(default=None, description="The root cause, if known.")
    confidence: float | None = Field(default=None, ge=0, le=1, description="0 to 1.")
    alternatives: list[Line] = Field(
        default_factory=list, max_length=10, description="Other causes considered."
    )


class EscalateInput(ToolInput):
    reason: Line = Field(description="Why a person must take over.")
    summary: Line | None = Field(default=None, description="What you found so far.")


TOOL_INPUTS: dict[str, tuple[type[ToolInput], str]] = {
    "observe_subject": (
        NoInput,
        "Observe the Subject now: members and their state, metrics, facts, and which "
        "invariants are broken.",
    ),
    "promql_query": (PromqlInput, "Run an instant PromQL query on the Subject's Prometheus."),
    "promql_range_query": (
        PromqlRangeInput,
        "Run a PromQL range query over the last `minutes`, at `step_seconds` resolution.",
    ),
    "k8s_get": (
        K8sGetInput,
        "List objects of a kind, or get one object with its events, in the Subject's "
        "namespace. Secrets are never readable.",
    ),
    "k8s_events": (NoInput, "Recent Kubernetes events in the Subject's namespace."),
    "pod_logs": (PodLogsInput, "The last lines of a pod's logs (each container)."),
    "kubectl": (
        KubectlInput,
        "Run a read-only kubectl command (get, describe, logs, top, explain, api-resources, "
        "version) in the Subject's namespace. Mutating verbs are not run: propose them as "
        'action "kubectl" with params {"argv": [...]} (high risk, needs a person).',
    ),
    "list_actions": (
        NoInput,
        "The remediation actions available, with their parameters, risk and reversibility.",
    ),
    "propose_action": (
        ProposeInput,
        "Add one step to the remediation plan. The policy gate checks it first and answers "
        "run, await-approval or refused (with the reason); a refused step is not added. "
        "Nothing runs now.",
    ),
    "resolve": (
        ResolveInput,
        "Finish: the diagnosis, with the plan proposed so far (which may be empty).",
    ),
    "escalate": (EscalateInput, "Finish: hand the incident to a person, with the reason."),
}

FINAL_TOOLS = frozenset({"resolve", "escalate"})


def compact_schema(schema: Any) -> Any:
    """A JSON schema without titles: they cost tokens and say nothing."""
    if isinstance(schema, dict):
        # A string under "title" is a title; a dict there is a property named "title".
        return {
            k: compact_schema(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [compact_schema(v) for v in schema]
    return schema


def tool_definitions() -> list[dict[str, Any]]:
    """The `tools` of a Messages API request; the last carries the prompt-cache breakpoint,
    which caches every tool definition (they come first in the cached prefix)."""
    tools: list[dict[str, Any]] = []
    for name, (model, description) in TOOL_INPUTS.items():
        schema = compact_schema(model.model_json_schema())
        schema.setdefault("properties", {})
        schema["additionalProperties"] = False
        tools.append({"name": name, "description": description, "input_schema": schema})
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    return tools
