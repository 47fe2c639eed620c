"""Runs the core `kubectl` action: a server-side dry run, then the command, in the Subject's
namespace, as the operator, with no shell.

What runs is never the model's argument vector as written: `mutation_command` checks it
against the allowlist of verbs, kinds and flags (`argv`) and rewrites it
into one unambiguous form, `kubectl --namespace=NS VERB [--dry-run=server] KIND.V.G/NAME
[PAIRS] --flag=value...`. The dry-run flag sits right after the verb, so no flag the model
left without its value can take it as one, and a refused command runs neither way. kubectl
gets only the environment it needs to reach the API server (`kubectl_env`).
"""

from __future__ import annotations

import asyncio
import os

from aiops.actions.kubectl.argv import KubectlRefused, mutation_command
from aiops.subjects.contract import ActionResult

KUBECTL_TIMEOUT = 60.0
MAX_OUTPUT = 4000

# What kubectl needs to find the API server and nothing else: not the model's API key, not
# any other secret the operator's environment holds. KUBECACHEDIR: where kubectl keeps its
# discovery cache ($HOME/.kube/cache unless the operator points it at its state directory).
_KUBECTL_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "KUBECONFIG",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "LANG",
        "TMPDIR",
        "KUBECACHEDIR",
    }
)


def kubectl_env() -> dict[str, str]:
    """The environment a kubectl subprocess gets: the allowlisted variables of ours, and
    `KUBERC=off`, so no preferences file can add flags or aliases to the command we built."""
    env = {k: v for k, v in os.environ.items() if k in _KUBECTL_ENV}
    env["KUBERC"] = "off"
    return env


def kubectl_command(argv: list[str], namespace: str, *, dry_run: bool, kubectl: str) -> list[str]:
    """The command line to run (`kubectl`: the binary, AIOPS_KUBECTL of the operator's
    settings); `KubectlRefused` (saying why) if `argv` is not an allowed change."""
    command = mutation_command(argv)
    return [kubectl, f"--namespace={namespace}", *command.argv(dry_run=dry_run)]


async def _run(command: list[str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=kubectl_env(),
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=KUBECTL_TIMEOUT)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()  # ours, by its pid: a hung kubectl is not left behind
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")[-MAX_OUTPUT:]


async def dry_run_kubectl(argv: list[str], namespace: str, *, kubectl: str) -> ActionResult:
    """The API server's verdict on the command (admission, validation, the live object),
    with nothing persisted: asked when the step is proposed, so a person approving sees it,
    and again just before it runs, since the object may have changed since."""
    try:
        command = kubectl_command(argv, namespace, dry_run=True, kubectl=kubectl)
    except KubectlRefused as err:
        return ActionResult(ok=False, message=f"refused, nothing ran: {err}")
    try:
        code, out = await _run(command)
    except (OSError, TimeoutError) as err:
        return ActionResult(ok=False, message=f"server-side dry run could not run: {err}")
    if code != 0:
        return ActionResult(ok=False, message=f"server-side dry run refused it: {out.strip()}")
    return ActionResult(ok=True, message=f"server-side dry run: {out.strip() or 'ok'}")


async def run_kubectl(argv: list[str], namespace: str, *, kubectl: str) -> ActionResult:
    dry = await dry_run_kubectl(argv, namespace, kubectl=kubectl)
    if not dry.ok:
        return dry
    code, out = await _run(kubectl_command(argv, namespace, dry_run=False, kubectl=kubectl))
    return ActionResult(ok=code == 0, message=out.strip() or f"exit {code}")
