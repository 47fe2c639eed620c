"""The core action `kubectl`: a mutating kubectl command, as an argument vector (never a shell
string), on one named object in the Subject's namespace.

It is the original system's free-form remediation made safe: verbs, kinds and flags are
allowlisted per verb (`argv`), it is high risk (always waits for a person), and it runs a
server-side dry run when it is proposed and again just before it runs (`command`).

- `argv`: what a model may ask of kubectl, decided from the argument vector alone (reads for
  the agent's read-only tool, changes for this action);
- `command`: how a change runs: the rewritten command line, the environment, the dry run.
"""

from __future__ import annotations

from typing import cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops.actions.core import CoreAction, Where
from aiops.actions.kubectl.argv import ALLOWED_CHANGES, mutation_problems
from aiops.actions.kubectl.command import dry_run_kubectl, run_kubectl
from aiops.subjects.contract import ActionResult, ActionSpec, Risk


class KubectlParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1, max_length=64)

    @field_validator("argv")
    @classmethod
    def _allowed(cls, argv: list[str]) -> list[str]:
        # The allowlist the agent applies before asking, checked here again: the gate trusts
        # no caller. The argv is kept as written (a person approves what the model asked);
        # what runs is its checked, rewritten form (`command`).
        problems = mutation_problems(argv)
        if problems:
            raise ValueError("; ".join(problems))
        return argv


SPEC = ActionSpec(
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


async def _run(params: BaseModel, where: Where) -> ActionResult:
    argv = list(cast(KubectlParams, params).argv)
    return await run_kubectl(argv, where.namespace, kubectl=where.kubectl)


async def _dry_run(params: BaseModel, where: Where) -> ActionResult:
    argv = list(cast(KubectlParams, params).argv)
    return await dry_run_kubectl(argv, where.namespace, kubectl=where.kubectl)


KUBECTL = CoreAction(spec=SPEC, run=_run, dry_run=_dry_run)
