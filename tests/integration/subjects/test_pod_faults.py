"""The pods workload's fault executors against the real API server, acting as the operator's
ServiceAccount (so its role is what allows them): a pod kill deletes the pod and its controller
makes another on a simulated node; a partition is a NetworkPolicy selecting exactly the target
pod, which the revert deletes, as often as it is asked. Then the same through the TiKV plugin's
contract (PD is the tests' PD stand-in; the StatefulSet and its pods are real objects), where
the exec-based faults meet simulated nodes that run no containers and fail with the API
server's reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client as k8s

from aiops.subjects import registry
from aiops.subjects.context import PluginContext
from aiops.subjects.contract import INSTANT, PluginError
from aiops.subjects.faults import netpolicy
from aiops.subjects.faults.netpolicy import LABEL
from aiops.subjects.workload import PodsWorkload
from tests.fixtures import polling
from tests.fixtures.aiops_api import ApiNamespace, api_namespace
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.pd_standin import PdStandIn, healthy

pytestmark = pytest.mark.cluster


@pytest.fixture
def env(aiops_api: ClusterHandle) -> Iterator[ApiNamespace]:
    yield from api_namespace(aiops_api, "podfault")


def as_operator(env: ApiNamespace) -> k8s.ApiClient:
    api = env.cluster.api_client()
    api.set_default_header("Impersonate-User", env.operator)
    return api


def running_pods(env: ApiNamespace, selector: str) -> dict[str, str]:
    """Pod name -> uid, of the Running pods not being deleted."""
    out = env.kubectl("get", "pods", "-l", selector, "-o", "json", check=True).stdout
    return {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in json.loads(out)["items"]
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }


def wait_running(env: ApiNamespace, selector: str, count: int) -> dict[str, str]:
    return dict(
        polling.wait_for(
            f"{count} pods {selector} Running",
            lambda: pods if len(pods := running_pods(env, selector)) == count else None,
            timeout=90,
        )
    )


def deployment(env: ApiNamespace, name: str, replicas: int) -> dict[str, str]:
    env.kubectl(
        "create",
        "deployment",
        name,
        "--image=example.invalid/app:1",
        f"--replicas={replicas}",
        check=True,
    )
    return wait_running(env, f"app={name}", replicas)


def policies(env: ApiNamespace) -> list[dict[str, Any]]:
    out = env.kubectl("get", "networkpolicies", "-o", "json", check=True).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def pod_labels(env: ApiNamespace, pod: str) -> dict[str, str]:
    out = env.kubectl("get", "pod", pod, "-o", "json", check=True).stdout
    labels: dict[str, str] = json.loads(out)["metadata"].get("labels", {})
    return labels


async def test_pod_kill_deletes_the_pod_and_its_controller_makes_another(
    env: ApiNamespace,
) -> None:
    before = deployment(env, "web", 2)
    workload = PodsWorkload(env.namespace, {"app": "web"}, k8s.CoreV1Api(as_operator(env)))
    victim = sorted(before)[0]
    done = await workload.kill(victim)
    assert done.detail == {INSTANT: True}
    assert f"pod {env.namespace}/{victim} deleted" in done.message
    polling.wait_for(f"{victim} gone", lambda: env.get("pods", victim) is None, timeout=60)
    after = wait_running(env, "app=web", 2)
    assert victim not in after and len(set(after) - set(before)) == 1
    # Nothing to revert: the controller did it.
    assert "managed by its controller" in (await workload.start(victim)).message
    with pytest.raises(
        PluginError,
        match=rf"no pod 'not-ours' matches app=web in namespace "
        rf"{env.namespace}",
    ):
        await workload.kill("not-ours")
    assert running_pods(env, "app=web") == after


async def test_partition_is_a_networkpolicy_on_exactly_that_pod_and_heal_deletes_it(
    env: ApiNamespace,
) -> None:
    pods = sorted(deployment(env, "db", 2))
    workload = PodsWorkload(env.namespace, {"app": "db"}, k8s.CoreV1Api(as_operator(env)))
    name = netpolicy.policy_name("partition_node", pods[0])
    made = await workload.partition(pods[0], name, "both")
    assert "(ingress and egress)" in made.message and "(created)" in made.message
    (policy,) = policies(env)
    assert policy["metadata"]["name"] == name
    assert policy["spec"]["podSelector"] == {"matchLabels": {LABEL: name}}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]  # allows nothing
    # The policy's selector picks the target pod and no other.
    assert sorted(running_pods(env, f"{LABEL}={name}")) == [pods[0]]
    # Injected again (an operator retrying): still one policy, now egress only.
    again = await workload.partition(pods[0], name, "egress")
    assert "(replaced)" in again.message
    (policy,) = policies(env)
    assert policy["spec"]["policyTypes"] == ["Egress"]

    healed = await workload.heal(pods[0], name)
    assert f"NetworkPolicy {name} deleted" in healed.message
    assert policies(env) == [] and LABEL not in pod_labels(env, pods[0])
    twice = await workload.heal(pods[0], name)
    assert f"NetworkPolicy {name} was already gone" in twice.message
    assert f"no {LABEL}={name} label on it" in twice.message


async def test_partition_refuses_a_pod_outside_the_selector_and_heals_a_deleted_one(
    env: ApiNamespace,
) -> None:
    pods = sorted(deployment(env, "cache", 1))
    env.kubectl("run", "stranger", "--image=example.invalid/app:1", check=True)
    workload = PodsWorkload(env.namespace, {"app": "cache"}, k8s.CoreV1Api(as_operator(env)))
    with pytest.raises(PluginError, match="no pod 'stranger' matches app=cache"):
        await workload.partition("stranger", "aiops-chaos-x-stranger", "both")
    assert policies(env) == []
    name = netpolicy.policy_name("partition_node", pods[0])
    await workload.partition(pods[0], name, "ingress")
    env.kubectl("delete", "pod", pods[0], "--wait=true", check=True)
    healed = await workload.heal(pods[0], name)
    assert "deleted" in healed.message and "the pod is gone" in healed.message
    assert policies(env) == []


async def test_pause_is_refused_for_pods_with_the_reason(env: ApiNamespace) -> None:
    workload = PodsWorkload(env.namespace, {"app": "none"}, k8s.CoreV1Api(as_operator(env)))
    with pytest.raises(PluginError, match="no pod 'any' matches app=none"):
        await workload.pause("any")


def tikv_statefulset(namespace: str) -> dict[str, Any]:
    """Three store pods named as PD's stand-in addresses them (tikv-N.tikv-peer...)."""
    labels = {"app": "tikv"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "tikv", "namespace": namespace},
        "spec": {
            "serviceName": "tikv-peer",
            "replicas": 3,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "tikv", "image": "example.invalid/tikv:1"}]},
            },
        },
    }


async def test_tikv_store_faults_through_the_plugin_contract(env: ApiNamespace) -> None:
    env.kubectl(
        "apply", "-f", "-", input=yaml.safe_dump(tikv_statefulset(env.namespace)), check=True
    )
    before = wait_running(env, "app=tikv", 3)
    pd = healthy(PdStandIn())
    plugin_cls = registry.load("tikv")
    cfg = registry.validate_config(plugin_cls, {"pdUrls": pd.urls})
    workload = PodsWorkload(env.namespace, {"app": "tikv"}, k8s.CoreV1Api(as_operator(env)))
    ctx = PluginContext(f"{env.namespace}/tikv", None, workload, http=httpx.AsyncClient())
    plugin = plugin_cls(cfg, ctx)
    try:
        no = plugin.fault("kill_store").params()
        killed = await plugin.inject("kill_store", no, "store-2")  # tikv-1
        assert killed.detail == {INSTANT: True}
        # A StatefulSet makes the pod again under the same name: a new uid tells it apart.
        polling.wait_for(
            "tikv-1 recreated Running",
            lambda: running_pods(env, "app=tikv").get("tikv-1") not in (None, before["tikv-1"]),
            timeout=90,
        )

        cut = plugin.fault("partition_store").params()
        made = await plugin.inject("partition_store", cut, "store-3")  # tikv-2
        assert made.ok
        (policy,) = policies(env)
        assert policy["metadata"]["name"] == "aiops-chaos-partition-store-tikv-2"
        assert sorted(running_pods(env, f"{LABEL}=aiops-chaos-partition-store-tikv-2")) == [
            "tikv-2"
        ]
        for _ in range(2):
            assert (await plugin.revert("partition_store", cut, "store-3")).ok
        assert policies(env) == [] and LABEL not in pod_labels(env, "tikv-2")

        # The chart's stores share no process namespace: SIGSTOP from inside cannot work.
        with pytest.raises(PluginError, match=r"pausing pod .*/tikv-0 needs spec\.shareProcess"):
            await plugin.inject("pause_store", plugin.fault("pause_store").params(), "store-1")

        # Disk fill and latency run commands in the store's pod through the exec API. The
        # simulated nodes run no containers, so the API server answers that exec cannot run,
        # and the fault fails with its words (a real cluster runs them: see the unit tests).
        fill = plugin.fault("fill_store_disk").params()
        with pytest.raises(PluginError, match=r"^sh in pod .*/tikv-0 failed \(exit -1\): .+"):
            await plugin.inject("fill_store_disk", fill, "store-1")
        delay = plugin.fault("store_latency").params()
        with pytest.raises(PluginError, match=r"^tc qdisc replace in tikv-0 failed \(exit -1\)"):
            await plugin.inject("store_latency", delay, "store-1")
    finally:
        await plugin.close()
        await ctx.aclose()
        pd.close()
