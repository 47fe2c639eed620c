"""What the core hands a plugin instance: where Prometheus is, how to touch the workload,
a shared HTTP client, and this operator's actions on record for the Subject. Built per Subject
from its spec."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from aiops.subjects.contract import ActionRecord
from aiops.subjects.metrics import Prometheus
from aiops.subjects.workload import Workload

Records = Callable[[], Awaitable[list[ActionRecord]]]


async def no_records() -> list[ActionRecord]:
    return []


@dataclass
class PluginContext:
    subject: str  # namespace/name, for messages
    prometheus: Prometheus | None
    workload: Workload | None
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    )
    # Every action of this operator on the Subject, from its Incidents' status as the API
    # server has it now (raises when it cannot be read). Durable, unlike a plugin's memory:
    # what a killed operator had started is on record here before it was sent.
    records: Records = no_records

    async def aclose(self) -> None:
        await self.http.aclose()
