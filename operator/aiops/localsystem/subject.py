"""The example Subject `aiops up` applies: the rate limiter stack, watched every second."""

from __future__ import annotations

from typing import Any

from aiops.api import GROUP, VERSION
from aiops.localsystem.layout import SUBJECT
from ratelimiter.localstack import LocalStack


def subject_manifest(stack: LocalStack, namespace: str) -> dict[str, Any]:
    urls = stack.urls
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Subject",
        "metadata": {"name": SUBJECT, "namespace": namespace},
        "spec": {
            "type": "ratelimiter",
            "config": {
                "adminUrls": list(urls.nodes.values()),
                # Redis read directly, not through toxiproxy: a latency fault slows the nodes,
                # not the observer.
                "redisUrl": urls.redis,
                "toxiproxyUrl": urls.toxiproxy,
                "redisDataDir": str(stack.directory / "redis"),
                "latencyWindow": "10s",
            },
            "prometheus": {"url": urls.prometheus},
            "workload": {"kind": "supervisor", "supervisor": {"url": f"{urls.supervisor}/RPC2"}},
            "interval": "1s",
            # A busy 2-core laptop answers some checks in 50 ms (the plugin's threshold): the
            # demo's latency invariant asks for 200 ms over 10 s, so only a fault trips it.
            "invariants": [{"name": "high_latency", "threshold": 0.2, "for": "10s"}],
            "autonomy": "propose",
            "cooldown": "5s",
            "approvalTimeout": "10m",
        },
    }
