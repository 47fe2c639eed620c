"""The TiKV plugin's PromQL against a real Prometheus.

1. Every query in tikv_subject.queries parses and runs (`status: success`; an empty result is
   fine), for the default config and for non-default labels, job and port.
2. With Prometheus really scraping TiKV-shaped histograms, the plugin reads each store's p99
   from its status port (20180), and a store scraped only on its gRPC port (20160) is not
   read as healthy: it is `metrics_missing`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiops.subjects import registry
from aiops.subjects.context import PluginContext
from aiops.subjects.metrics import Prometheus
from tests.fixtures.pd_standin import PdStandIn, healthy
from tests.fixtures.prometheus import PrometheusProcess, start_prometheus
from tikv_subject.config import TikvConfig
from tikv_subject.queries import build

CONFIGS = [
    {},
    {
        "storeLabel": "pod",
        "prometheusJob": "tidb-cluster-tikv",
        "statusPort": 20181,
        "latencyWindow": "5m",
    },
]


@pytest.mark.parametrize("overrides", CONFIGS, ids=["defaults", "custom"])
def test_every_query_parses_and_runs(prometheus_url: str, overrides: dict[str, Any]) -> None:
    cfg = TikvConfig.model_validate({"pdUrls": ["http://pd:2379"], **overrides})
    queries = build(cfg).all()
    assert queries  # a Queries without fields would make this test pass on nothing
    for name, promql in queries.items():
        resp = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
        body = resp.json()
        assert resp.status_code == 200 and body["status"] == "success", (name, promql, body)
        assert body["data"]["resultType"] == "vector", (name, promql)
        assert f':{cfg.status_port}"' in promql, (name, promql)


# -- a real scrape ------------------------------------------------------------------------------

BUCKETS = (0.001, 0.01, 0.1, 0.4, 0.8)
RATE = 200  # requests per second, all in one bucket


def exposition(elapsed: float, slow: bool) -> str:
    """TiKV's gRPC histogram as its status port serves it: every request of the slow store
    takes 0.4-0.8 s (p99 ~0.796), of the fast one under 1 ms (p99 ~0.00099)."""
    total = int(elapsed * RATE) + RATE
    lines = ["# TYPE tikv_grpc_msg_duration_seconds histogram"]
    for le in BUCKETS:
        count = total if (le >= 0.8 if slow else le >= 0.001) else 0
        lines.append(f'tikv_grpc_msg_duration_seconds_bucket{{type="kv_get",le="{le}"}} {count}')
    lines += [
        f'tikv_grpc_msg_duration_seconds_bucket{{type="kv_get",le="+Inf"}} {total}',
        f'tikv_grpc_msg_duration_seconds_sum{{type="kv_get"}} {total * (0.6 if slow else 0.0005)}',
        f'tikv_grpc_msg_duration_seconds_count{{type="kv_get"}} {total}',
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    started = time.monotonic()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition(time.monotonic() - started, slow=self.path == "/slow").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def target(address: str, instance: str, path: str) -> dict[str, Any]:
    # Each target's `instance` is what Kubernetes service discovery would give a TiKV pod.
    return {"targets": [address], "labels": {"instance": instance, "__metrics_path__": path}}


@pytest.fixture(scope="module")
def scraping_prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    running: PrometheusProcess = start_prometheus(
        Path(tmp_path_factory.mktemp("prometheus-tikv")),
        scrape_configs=[
            {
                "job_name": "tikv",
                "scrape_interval": "1s",
                "static_configs": [
                    target(exporter, "tikv-0.tikv-peer.tikv.svc:20180", "/slow"),
                    target(exporter, "tikv-1.tikv-peer.tikv.svc:20180", "/fast"),
                    # Scraped on the gRPC port, as the original system assumed: never read.
                    target(exporter, "tikv-2.tikv-peer.tikv.svc:20160", "/slow"),
                ],
            }
        ],
        scrape_interval="1s",
    )
    yield running.url
    running.stop()


@pytest.fixture
async def http(scraping_prometheus: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def wait_for_rates(url: str, timeout: float = 30.0) -> None:
    """rate() needs two samples of each series."""
    query = 'count(rate(tikv_grpc_msg_duration_seconds_count{job="tikv"}[1m]) > 0)'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
        values = result["data"]["result"]
        if values and float(values[0]["value"][1]) == 3:
            return
        time.sleep(0.25)
    pytest.fail(f"Prometheus at {url} did not collect two scrapes of 3 targets in {timeout} s")


async def test_latency_is_read_from_the_status_port(scraping_prometheus: str) -> None:
    wait_for_rates(scraping_prometheus)
    pd = healthy(PdStandIn())
    plugin_cls = registry.load("tikv")
    cfg = registry.validate_config(plugin_cls, {"pdUrls": pd.urls})
    ctx = PluginContext(
        subject="tikv/basic",
        prometheus=Prometheus(scraping_prometheus),
        workload=None,
        http=httpx.AsyncClient(),
    )
    try:
        plugin = plugin_cls(cfg, ctx)
        obs = await plugin.observe()
        p99 = obs.metrics["grpc_p99_seconds"]
        assert set(p99) == {"store-1", "store-2"}
        assert p99["store-1"] == pytest.approx(0.796, abs=0.01)
        assert p99["store-2"] == pytest.approx(0.00099, abs=0.0002)
        violations = plugin.evaluate(obs, {i.name: i for i in plugin.invariants})
        assert {(v.invariant, v.entity) for v in violations} == {
            ("high_latency", "store-1"),
            ("metrics_missing", "store-3"),  # its only scrape is on 20160
        }
    finally:
        await ctx.aclose()
        pd.close()
