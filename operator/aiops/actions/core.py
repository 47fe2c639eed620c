"""What a core action is: an action the operator offers on every Subject, beside the plugin's
own, with its own way to run (and, where the API it changes has one, to dry-run)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel

from aiops.subjects.contract import ActionResult, ActionSpec


@dataclass(frozen=True)
class Where:
    """Where a core action runs, and with what: the Subject's namespace, and the kubectl
    binary of the operator's settings (AIOPS_KUBECTL)."""

    namespace: str
    kubectl: str = "kubectl"


Runner = Callable[[BaseModel, Where], Awaitable[ActionResult]]
"""(validated params, where it runs) -> what it did."""


@dataclass(frozen=True)
class CoreAction:
    spec: ActionSpec
    run: Runner
    dry_run: Runner | None = None
