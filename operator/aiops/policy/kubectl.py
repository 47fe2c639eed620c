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
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(errors="replace")[-4000:]


async def run_kubectl(argv: list[str], namespace: str) -> ActionResult:
    kubectl = os.environ.get("AIOPS_KUBECTL", "kubectl")
    base = [kubectl, "--namespace", namespace, *argv]
    code, out = await _run([*base, "--dry-run=server"])
    if code != 0:
        return ActionResult(ok=False, message=f"server-side dry run refused it: {out.strip()}")
    code, out = await _run(base)
    return ActionResult(ok=code == 0, message=out.strip() or f"exit {code}")
