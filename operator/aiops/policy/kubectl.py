"""Runs the core `kubectl` action: a server-side dry run, then the command, in the Subject's
namespace, as the operator, with the argument vector as given (no shell)."""

from __future__ import annotations

import asyncio
import os

from aiops.subjects.contract import ActionResult


async def _run(argv: list[str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()  # ours, by its pid: a hung kubectl is not left behind
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")[-4000:]


def _base(argv: list[str], namespace: str) -> list[str]:
    return [os.environ.get("AIOPS_KUBECTL", "kubectl"), "--namespace", namespace, *argv]


async def dry_run_kubectl(argv: list[str], namespace: str) -> ActionResult:
    """The API server's verdict on the command (admission, validation, the live object),
    with nothing persisted: asked when the step is proposed, so a person approving sees it,
    and again just before it runs, since the object may have changed since."""
    try:
        code, out = await _run([*_base(argv, namespace), "--dry-run=server"])
    except (OSError, TimeoutError) as err:
        return ActionResult(ok=False, message=f"server-side dry run could not run: {err}")
    if code != 0:
        return ActionResult(ok=False, message=f"server-side dry run refused it: {out.strip()}")
    return ActionResult(ok=True, message=f"server-side dry run: {out.strip() or 'ok'}")


async def run_kubectl(argv: list[str], namespace: str) -> ActionResult:
    dry = await dry_run_kubectl(argv, namespace)
    if not dry.ok:
        return dry
    code, out = await _run(_base(argv, namespace))
    return ActionResult(ok=code == 0, message=out.strip() or f"exit {code}")
