"""What the core hands a plugin instance: where Prometheus is, how to touch the workload,
a shared HTTP client, and this operator's actions on record for the Subject. Built per Subject
from its spec."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from aiops.subjects.contract import ActionRecord
from aiops.subjects.metrics import Prometheus
from aiops.subjects.workload import Workload

Records = Callable[[], Awaitable[list[ActionRecord]]]


async def no_records() -> list[ActionRecord]:
    return []


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context (httpx's default: verified, its CA bundle) for every context's client.
    Each client would load the CA bundle into one of its own: about 1 MiB apiece, which the
    allocator keeps after the client closes, so 200 incidents bound at once cost 200 MiB of
    RSS for good (measured in the reliability suite's flood)."""
    return httpx.create_ssl_context()


def _http() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(5.0), verify=_tls())


@dataclass
class PluginContext:
    subject: str  # namespace/name, for messages
    prometheus: Prometheus | None
    workload: Workload | None
    http: httpx.AsyncClient = field(default_factory=_http)
    # Every action of this operator on the Subject, from its Incidents' status as the API
    # server has it now (raises when it cannot be read). Durable, unlike a plugin's memory:
    # what a killed operator had started is on record here before it was sent.
    records: Records = no_records

    async def aclose(self) -> None:
        await self.http.aclose()
