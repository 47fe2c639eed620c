"""The rate limiter under the operator: the session's local stack (Redis, toxiproxy, three nodes,
Prometheus, all real processes under supervisord) with its load generator running, the real
API server, and `aiops operator run` in-process, watching one Subject of type ratelimiter.

Only the subject loop runs: the incident loop would move each Incident on (investigate,
escalate) while these tests look at what the subject loop does: open it once, refresh it,
mark it `Breached=False` when the invariant holds again.

Everything here is module-scoped: starting the operator and letting the Subject settle costs
seconds a test should not pay again. Tests that break the stack repair it before they end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client as k8s

from ratelimiter.localstack import LocalStack
from ratelimiter.localstack.toxiproxy import Toxiproxy
from tests.fixtures import polling
from tests.fixtures.aiops_api import ApiNamespace, api_namespace
from tests.fixtures.cluster import ClusterHandle

SUBJECT = "rl"
GROUP, VERSION = "aiops.dev", "v1alpha1"


def subject_manifest(
    name: str, stack: LocalStack, config: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    """A ratelimiter Subject on the stack: every node as an admin URL, Redis read directly
    (not through toxiproxy, so a latency fault slows the nodes and not the observer)."""
    urls = stack.urls
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Subject",
        "metadata": {"name": name},
        "spec": {
            "type": "ratelimiter",
            "config": config
            if config is not None
            else {
                "adminUrls": list(urls.nodes.values()),
                "redisUrl": urls.redis,
                "latencyWindow": "5s",
                "toxiproxyUrl": urls.toxiproxy,
            },
            "prometheus": {"url": urls.prometheus},
            "workload": {"kind": "supervisor", "supervisor": {"url": f"{urls.supervisor}/RPC2"}},
            "interval": "1s",
            "autonomy": "observe",
            **spec,
        },
    }


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30) -> Any:
    """Polls `probe` until it returns something truthy; returns that."""
    return polling.wait_for(what, probe, timeout, every=0.3)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    return {}


@dataclass
class RateLimiterEnv:
    ns: ApiNamespace
    stack: LocalStack
    custom: k8s.CustomObjectsApi

    def subject(self, name: str = SUBJECT) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns.namespace, "subjects", name
        )
        return cast(dict[str, Any], obj)

    def incidents(self, subject: str = SUBJECT) -> dict[str, dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(
            GROUP,
            VERSION,
            self.ns.namespace,
            "incidents",
            label_selector=f"aiops.dev/subject={subject}",
        )
        items: list[dict[str, Any]] = cast(dict[str, Any], listed)["items"]
        return {i["metadata"]["name"]: i for i in items}

    def apply(self, *manifests: dict[str, Any]) -> None:
        proc = self.ns.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
        assert proc.returncode == 0, proc.stderr

    def healthy(self, name: str = SUBJECT) -> bool:
        return (self.subject(name).get("status") or {}).get("health") == "Healthy"

    def new_incident(self, before: set[str], timeout: float = 30) -> dict[str, Any]:
        """The first Incident of the Subject not in `before`, once the subject loop has
        written its first status (it creates the object, then writes status: a read in
        between sees no status yet)."""
        found = wait_for(
            "an Incident with its first status",
            lambda: [
                i
                for n, i in self.incidents().items()
                if n not in before and (i.get("status") or {}).get("timeline")
            ],
            timeout,
        )
        return dict(found[0])

    def cleared(self, name: str) -> bool:
        inc = self.incidents().get(name) or {}
        return condition(inc, "Breached").get("status") == "False"


def stack_healthy(stack: LocalStack) -> bool:
    try:
        return all(
            httpx.get(f"{u}/health", timeout=2).status_code == 200
            for u in stack.urls.nodes.values()
        )
    except httpx.HTTPError:
        return False


def repair(stack: LocalStack) -> None:
    """Whatever a test broke: every program running, no toxic, every node healthy."""
    Toxiproxy(stack.urls.toxiproxy).reset()
    stack.up()
    wait_for("every node healthy", lambda: stack_healthy(stack), timeout=30)


@contextmanager
def subject_loop(ns: ApiNamespace) -> Iterator[KopfRunner]:
    """`aiops operator run -n NS` with the subject loop alone, in a thread."""
    args = [
        "run",
        "--standalone",
        "--namespace",
        ns.namespace,
        "-m",
        "aiops.loops.startup",
        "-m",
        "aiops.loops.subjects",
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(ns.cluster.kubeconfig))
        with KopfRunner(args, timeout=60) as runner:
            yield runner
    assert runner.exception is None, runner.output


@pytest.fixture(scope="module")
def rl_env(aiops_api: ClusterHandle, rl_stack: LocalStack) -> Iterator[RateLimiterEnv]:
    """The operator watching Subject `rl` on the stack, with the load generator running
    (50 checks/s over 100 keys: latency has samples, the counters have keys)."""
    repair(rl_stack)
    rl_stack.start_program("loadgen")
    try:
        for ns in api_namespace(aiops_api, "rlsubj"):
            env = RateLimiterEnv(ns, rl_stack, k8s.CustomObjectsApi(aiops_api.api_client()))
            env.apply(
                subject_manifest(
                    SUBJECT,
                    rl_stack,
                    # Metric invariants wait for the scrape; a short hold keeps the tests short
                    # while still showing a breach held before it is an Incident.
                    invariants=[{"name": "high_latency", "for": "3s"}],
                )
            )
            with subject_loop(ns):
                wait_for("Subject rl Healthy", env.healthy, timeout=60)
                yield env
    finally:
        rl_stack.stop_program("loadgen")
        repair(rl_stack)
