"""IncidentTools against a real API server: reads stay in the Subject's namespace, kubectl
reads run and mutations never do, Secrets stay unread."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from aiops.agent.base import ToolError
from aiops.agent.tools import IncidentTools
from tests.fixtures.cluster import ClusterHandle
from tests.unit.agent.support import Harness, harness

pytestmark = pytest.mark.cluster


@dataclass
class Namespaces:
    cluster: ClusterHandle
    mine: str
    other: str


@pytest.fixture(scope="module")
def namespaces(cluster: ClusterHandle) -> Iterator[Namespaces]:
    suffix = uuid.uuid4().hex[:8]
    ns = Namespaces(cluster, f"agent-tools-{suffix}", f"agent-other-{suffix}")
    for name in (ns.mine, ns.other):
        cluster.kubectl("create", "namespace", name, check=True)
    try:
        k = cluster.kubectl
        k(
            "-n",
            ns.mine,
            "create",
            "configmap",
            "app-config",
            "--from-literal=mode=fast",
            "--from-literal=password=hunter2",
            check=True,
        )
        k(
            "-n",
            ns.mine,
            "create",
            "secret",
            "generic",
            "db",
            "--from-literal=pw=s3cret",
            check=True,
        )
        # A pod needs the namespace's default ServiceAccount, which the controller-manager
        # creates a moment after the namespace: wait for it instead of racing it.
        deadline = time.monotonic() + 30
        while k("-n", ns.mine, "get", "serviceaccount", "default").returncode != 0:
            assert time.monotonic() < deadline, "no default ServiceAccount after 30 s"
            time.sleep(0.2)
        k(
            "-n",
            ns.mine,
            "run",
            "web-0",
            "--image=example.invalid/web:1",
            "--restart=Never",
            check=True,
        )
        k("-n", ns.other, "create", "configmap", "elsewhere", "--from-literal=a=b", check=True)
        yield ns
    finally:
        for name in (ns.mine, ns.other):
            cluster.kubectl("delete", "namespace", name, "--wait=false")


def tools_in(ns: Namespaces) -> tuple[Harness, IncidentTools]:
    h = harness()  # the test subject, its preview and a redactor
    tools = IncidentTools(
        h.plugin,
        None,
        ns.cluster.api_client(),
        ns.mine,
        ns.cluster.kubectl_bin,
        h.preview,
        h.redactor,
        6000,
        kubeconfig=ns.cluster.kubeconfig,
    )
    return h, tools


async def test_kubernetes_reads_see_the_subjects_namespace_only(namespaces: Namespaces) -> None:
    _, tools = tools_in(namespaces)
    configmaps = await tools.k8s_get("configmaps")
    names = {item["name"] for item in configmaps["items"]}
    assert "app-config" in names and "elsewhere" not in names
    one = await tools.k8s_get("cm", "app-config")
    assert one["object"]["data"]["mode"] == "fast"
    assert "hunter2" not in json.dumps(one)  # a password key in a ConfigMap is still masked
    pods = await tools.k8s_get("pods")
    assert [p["name"] for p in pods["items"]] == ["web-0"]
    with pytest.raises(ToolError, match=f"not found in namespace {namespaces.mine}"):
        await tools.k8s_get("configmaps", "elsewhere")
    with pytest.raises(ToolError, match="Secrets are never read"):
        await tools.k8s_get("secrets", "db")
    assert "events" in await tools.k8s_events()


async def test_kubectl_reads_run_and_mutations_never_do(namespaces: Namespaces) -> None:
    _, tools = tools_in(namespaces)
    listed = await tools.kubectl(["get", "configmaps", "-o", "name"])
    assert listed["exit_code"] == 0
    assert "configmap/app-config" in listed["stdout"]
    assert "elsewhere" not in listed["stdout"]
    # The other namespace's object does not exist from here: the namespace is forced.
    other = await tools.kubectl(["get", "configmap", "elsewhere"])
    assert other["exit_code"] != 0 and "not found" in other["stderr"]
    # Shell syntax is a literal argument: the API server is asked for that exact name.
    odd = await tools.kubectl(["get", "pods", "web-0$(id);true"])
    assert 'pods "web-0$(id);true" not found' in odd["stderr"]

    for argv in (
        ["delete", "configmap", "app-config"],
        ["delete", "pods", "--all"],
        ["get", "configmaps", "-A"],
        ["get", "secret", "db", "-o", "yaml"],
        ["get", "configmap", "elsewhere", "-n", namespaces.other],
    ):
        with pytest.raises(ToolError):
            await tools.kubectl(argv)
    still = namespaces.cluster.kubectl("-n", namespaces.mine, "get", "configmap", "app-config")
    assert still.returncode == 0, still.stderr
    pods = namespaces.cluster.kubectl("-n", namespaces.mine, "get", "pods", "-o", "name")
    assert pods.stdout.split() == ["pod/web-0"]
