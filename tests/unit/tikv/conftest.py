"""Builds the real TikvPlugin (found through its entry point) against FakePd and a stub
Prometheus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import pytest

from aiops.subjects import registry
from aiops.subjects.context import PluginContext
from aiops.subjects.contract import SubjectPlugin
from aiops.subjects.metrics import Prometheus
from tests.unit.tikv.fakepd import FakePd, FakeWorkload, StubPrometheus

STATUS = {
    1: "tikv-0.tikv-peer.tikv.svc:20180",
    2: "tikv-1.tikv-peer.tikv.svc:20180",
    3: "tikv-2.tikv-peer.tikv.svc:20180",
}


def healthy_series(prom: StubPrometheus, stores: tuple[int, ...] = (1, 2, 3)) -> None:
    """What Prometheus holds for a healthy cluster scraped on the status port."""
    prom.series = {
        "latency": [({"instance": STATUS[s]}, 0.004) for s in stores],
        "up": [({"instance": STATUS[s]}, 1.0) for s in stores],
    }


class MakePlugin(Protocol):
    def __call__(
        self,
        pd: FakePd,
        *,
        prometheus: bool = True,
        workload: FakeWorkload | None = None,
        **config: Any,
    ) -> SubjectPlugin: ...


@pytest.fixture(scope="session")
def _prom_server() -> Iterator[StubPrometheus]:
    stub = StubPrometheus()
    yield stub
    stub.close()


@pytest.fixture
def prom(_prom_server: StubPrometheus) -> StubPrometheus:
    """The stub, reset to a healthy cluster for each test."""
    _prom_server.raw = None
    _prom_server.queries.clear()
    healthy_series(_prom_server)
    return _prom_server


@pytest.fixture
async def make_plugin(prom: StubPrometheus) -> AsyncIterator[MakePlugin]:
    contexts: list[PluginContext] = []

    def make(
        pd: FakePd,
        *,
        prometheus: bool = True,
        workload: FakeWorkload | None = None,
        **config: Any,
    ) -> SubjectPlugin:
        plugin_cls = registry.load("tikv")
        cfg = registry.validate_config(
            plugin_cls,
            {
                "pdUrls": [pd.url],
                "pollIntervalSeconds": 0.01,
                "waitTimeoutSeconds": 1,
                "restartTimeoutSeconds": 1,
                **config,
            },
        )
        ctx = PluginContext(
            subject="tikv/basic",
            prometheus=Prometheus(prom.url, timeout=2) if prometheus else None,
            workload=workload,
            http=pd.client(),
        )
        contexts.append(ctx)
        return plugin_cls(cfg, ctx)

    yield make
    for ctx in contexts:
        await ctx.aclose()
