"""What the core hands a plugin instance: where Prometheus is, how to touch the workload,
and a shared HTTP client. Built per Subject from its spec."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from aiops.subjects.metrics import Prometheus
from aiops.subjects.workload import Workload


@dataclass
class PluginContext:
    subject: str  # namespace/name, for messages
    prometheus: Prometheus | None
    workload: Workload | None
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    )

    async def aclose(self) -> None:
        await self.http.aclose()
