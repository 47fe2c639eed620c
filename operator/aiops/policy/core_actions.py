"""Actions the core offers on every subject, beside the plugin's own.

`kubectl`: a mutating kubectl command, as an argument vector (never a shell string), confined
to the Subject's namespace. It is the original system's free-form remediation made safe: it is
high risk (always waits for a person), runs a server-side dry run first, and refuses flags that
would leave the namespace or change identity.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops.subjects.contract import ActionSpec, Risk

READ_VERBS = frozenset(
    {"get", "describe", "logs", "top", "explain", "api-resources", "api-versions", "version"}
)
FORBIDDEN_FLAGS = (
    "-A", "--all-namespaces", "--kubeconfig", "--context", "--cluster", "--user", "--as",
    "--as-group", "--as-uid", "--token", "--server", "-s", "--insecure-skip-tls-verify",
    "--namespace", "-n", "--certificate-authority", "--client-key", "--client-certificate",
)  # fmt: skip


class KubectlParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1, max_length=64)

    @field_validator("argv")
    @classmethod
    def _confined(cls, argv: list[str]) -> list[str]:
        for arg in argv:
            flag = arg.split("=", 1)[0]
            if flag in FORBIDDEN_FLAGS:
                raise ValueError(f"kubectl flag {flag} is not allowed: commands stay in the "
                                 "Subject's namespace, as the operator")
        if argv[0] in ("exec", "attach", "port-forward", "proxy", "cp", "debug", "run"):
            raise ValueError(f"kubectl {argv[0]} is not allowed")
        # The same argument-vector rules the agent's kubectl tool applies (many objects at
        # once, Secrets, local files): checked here again, since the gate trusts no caller.
        from aiops.agent.kubectl_argv import mutation_problems  # (it imports READ_VERBS)

        problems = mutation_problems(argv)
        if problems:
            raise ValueError("; ".join(problems))
        return argv


KUBECTL = ActionSpec(
    name="kubectl",
    description="Run a mutating kubectl command (argument vector) in the Subject's namespace, "
    "after a server-side dry run. Always needs a person's approval.",
    params=KubectlParams,
    risk=Risk.HIGH,
    reversible=False,
    retry_safe=False,
    disrupts_member=True,
)

CORE_ACTIONS = {KUBECTL.name: KUBECTL}
