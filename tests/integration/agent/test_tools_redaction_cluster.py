"""IncidentTools against a real API server: a pod that carries its Redis password in its spec
(an env value, a `--requirepass` argument, a probe's `redis-cli -a`) and a ConfigMap holding a
redis.conf are read every way the tools allow, and the password never comes out; output
templates, which would print it without its name, are refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from aiops.agent.base import ToolError
from aiops.agent.tools import IncidentTools
from tests.fixtures.cluster import ClusterHandle
from tests.unit.agent.support import harness

pytestmark = pytest.mark.cluster

PASSWORD = "fake-redis-pw-7f3a"

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "redis-0"},
    "spec": {
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "redis",
                "image": "example.invalid/redis:7",
                "args": ["redis-server", "--requirepass", PASSWORD],
                "env": [
                    {"name": "REDIS_PASSWORD", "value": PASSWORD},
                    {"name": "REDIS_PORT", "value": "6379"},
                ],
                "livenessProbe": {"exec": {"command": ["redis-cli", "-a", PASSWORD, "ping"]}},
            }
        ],
    },
}


@dataclass
class World:
    cluster: ClusterHandle
    namespace: str


@pytest.fixture(scope="module")
def world(cluster: ClusterHandle) -> Iterator[World]:
    namespace = f"agent-redact-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace, check=True)
    try:
        cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(POD), check=True)
        cluster.kubectl(
            "-n",
            namespace,
            "create",
            "configmap",
            "redis-conf",
            f"--from-literal=redis.conf=port 6379\nrequirepass {PASSWORD}\n",
            check=True,
        )
        yield World(cluster, namespace)
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def tools_for(world: World) -> IncidentTools:
    h = harness()
    return IncidentTools(
        h.plugin,
        None,
        world.cluster.api_client(),
        world.namespace,
        world.cluster.kubectl_bin,
        h.preview,
        h.redactor,
        6000,
        kubeconfig=world.cluster.kubeconfig,
    )


async def test_a_password_in_a_pod_spec_never_comes_out_of_the_tools(world: World) -> None:
    tools = tools_for(world)
    outputs = [
        await tools.k8s_get("pods", "redis-0"),
        await tools.k8s_get("configmaps", "redis-conf"),
        await tools.kubectl(["get", "pod", "redis-0", "-o", "json"]),
        await tools.kubectl(["get", "pod", "redis-0", "-o", "yaml"]),
        await tools.kubectl(["describe", "pod", "redis-0"]),
        await tools.kubectl(["get", "configmap", "redis-conf", "-o", "yaml"]),
        await tools.kubectl(["describe", "configmap", "redis-conf"]),
    ]
    for n, output in enumerate(outputs):
        text = json.dumps(output)
        assert PASSWORD not in text, f"output {n} holds the password: {text[:2000]}"
    # What is not secret is still there to diagnose with.
    pod_json = outputs[2]
    assert pod_json["exit_code"] == 0
    env = pod_json["stdout"]["spec"]["containers"][0]["env"]
    assert {"name": "REDIS_PORT", "value": "6379"} in env
    assert {"name": "REDIS_PASSWORD", "value": "[REDACTED]"} in env
    # YAML is read as data too (with libyaml); describe stays text.
    assert "REDIS_PASSWORD" in json.dumps(outputs[3]["stdout"])
    assert "REDIS_PORT:      6379" in outputs[4]["stdout"]
    assert "--requirepass\n      [REDACTED]" in outputs[4]["stdout"]


@pytest.mark.parametrize(
    "output",
    [
        ["-o", "jsonpath={.spec.containers[*].env[*].value}"],
        ["-o", "go-template={{range .spec.containers}}{{.args}}{{end}}"],
        ["-o", "custom-columns=V:.spec.containers[*].env[*].value"],
    ],
)
async def test_templates_that_would_print_it_bare_are_refused(
    world: World, output: list[str]
) -> None:
    with pytest.raises(ToolError, match="templates print values without their key names"):
        await tools_for(world).kubectl(["get", "pod", "redis-0", *output])
