"""Actions the core offers on every subject, beside the plugin's own.

`kubectl`: a mutating kubectl command, as an argument vector (never a shell string), on one
named object in the Subject's namespace. It is the original system's free-form remediation
made safe: verbs, kinds and flags are allowlisted per verb (`aiops.agent.kubectl_argv`), it is
high risk (always waits for a person), and it runs a server-side dry run first.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops.agent.kubectl_argv import ALLOWED_CHANGES, mutation_problems
from aiops.subjects.contract import ActionSpec, Risk


class KubectlParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1, max_length=64)

    @field_validator("argv")
    @classmethod
    def _allowed(cls, argv: list[str]) -> list[str]:
        # The allowlist the agent applies before asking, checked here again: the gate trusts
        # no caller. The argv is kept as written (a person approves what the model asked);
        # what runs is its checked, rewritten form (`aiops.policy.kubectl`).
        problems = mutation_problems(argv)
        if problems:
            raise ValueError("; ".join(problems))
        return argv


KUBECTL = ActionSpec(
    name="kubectl",
    description="Change one named object in the Subject's namespace with kubectl (argument "
    f"vector, verb first), after a server-side dry run: {ALLOWED_CHANGES}. Always needs a "
    "person's approval.",
    params=KubectlParams,
    risk=Risk.HIGH,
    reversible=False,
    retry_safe=False,
    disrupts_member=True,
)

CORE_ACTIONS = {KUBECTL.name: KUBECTL}
