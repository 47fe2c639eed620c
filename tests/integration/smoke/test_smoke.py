"""Smoke: the real API server takes a CRD, serves, watches and deletes objects, runs a
Deployment's pods on simulated nodes, and a kopf operator writes status we can read."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import kopf
import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client, watch

from tests.fixtures.cluster import ClusterHandle

HERE = Path(__file__).parent
GROUP, VERSION, PLURAL = "smoke.aiops.dev", "v1", "widgets"


@pytest.fixture(scope="module")
def widgets(cluster: ClusterHandle) -> Iterator[None]:
    proc = cluster.kubectl("apply", "-f", str(HERE / "widget-crd.yaml"))
    assert proc.returncode == 0, proc.stderr
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/widgets.smoke.aiops.dev",
        "--timeout=30s",
        check=True,
    )
    yield
    cluster.kubectl("delete", "-f", str(HERE / "widget-crd.yaml"), "--wait=false")


@pytest.fixture
def namespace(cluster: ClusterHandle, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"smoke-{request.node.name.replace('_', '-')[:40].lower()}-{int(time.time())}"
    cluster.kubectl("create", "namespace", name, check=True)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


def widget(name: str, size: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size},
    }


def test_object_created_watched_and_deleted(
    cluster: ClusterHandle, widgets: None, namespace: str
) -> None:
    api = client.CustomObjectsApi(cluster.api_client())
    seen: list[tuple[str, str]] = []
    # Watch from the list's resourceVersion: every change after it is delivered, however late
    # the watch request reaches the server (no sleep racing the create).
    listed: dict[str, Any] = cast(
        dict[str, Any], api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    )
    since = listed["metadata"]["resourceVersion"]

    def watch_widgets() -> None:
        w = watch.Watch()
        for event in w.stream(
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            resource_version=since,
            timeout_seconds=30,
        ):
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                w.stop()

    watcher = threading.Thread(target=watch_widgets, daemon=True)
    watcher.start()
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, widget("w1", 3))
    got: dict[str, Any] = cast(
        dict[str, Any], api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "w1")
    )
    assert got["spec"] == {"size": 3}
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "w1")
    watcher.join(timeout=30)
    assert ("ADDED", "w1") in seen
    assert ("DELETED", "w1") in seen
    assert seen.index(("ADDED", "w1")) < seen.index(("DELETED", "w1"))


def test_schema_is_enforced(cluster: ClusterHandle, widgets: None, namespace: str) -> None:
    proc = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(widget("bad", 0))
    )
    assert proc.returncode != 0
    assert "spec.size" in proc.stderr and "should be greater than or equal to 1" in proc.stderr


def test_kopf_operator_patches_status(
    cluster: ClusterHandle, widgets: None, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    settings = kopf.OperatorSettings()
    settings.watching.server_timeout = 10
    args = ["run", "--standalone", "--namespace", namespace, str(HERE / "widget_operator.py")]
    with KopfRunner(args, settings=settings, timeout=60):
        cluster.kubectl(
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            input=yaml.safe_dump(widget("w2", 21)),
            check=True,
        )
        api = client.CustomObjectsApi(cluster.api_client())
        deadline = time.monotonic() + 30
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            obj: dict[str, Any] = cast(
                dict[str, Any],
                api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "w2"),
            )
            status = obj.get("status", {})
            if status.get("phase") == "Seen":
                break
            time.sleep(0.2)
    assert status.get("phase") == "Seen"
    assert status.get("doubled") == 42


def test_deployment_pods_run_on_simulated_nodes(cluster: ClusterHandle, namespace: str) -> None:
    nodes = cluster.kubectl("get", "nodes", "-o", "name", check=True).stdout.split()
    assert len(nodes) >= 2
    cluster.kubectl(
        "create",
        "deployment",
        "web",
        "-n",
        namespace,
        "--image=example.invalid/web:1",
        "--replicas=3",
        check=True,
    )
    started = time.monotonic()
    pods: list[str] = []
    while time.monotonic() - started < 60:
        out = cluster.kubectl(
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.status.phase} {.spec.nodeName}{'\\n'}{end}",
            check=True,
        ).stdout
        pods = [line for line in out.split("\n") if line]
        if len(pods) == 3 and all(p.startswith("Running ") for p in pods):
            break
        time.sleep(0.25)
    elapsed = time.monotonic() - started
    assert len(pods) == 3, pods
    assert all(p.startswith("Running ") and len(p.split()) == 2 for p in pods), pods
    print(f"3 pods Running {elapsed:.1f} s after the Deployment was created")
