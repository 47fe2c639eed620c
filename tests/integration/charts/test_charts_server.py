"""The charts against a real API server (the `cluster` fixture, aiops API installed first).

1. Every chart, with each of its value sets (tests/unit/charts/helm.py), rendered and sent
   through `kubectl apply --dry-run=server`: the API server validates every object, the
   Subjects against our CRD schema included.
2. The operator chart installed for real with helm into fresh namespaces: the objects are there,
   and the operator's ServiceAccount can do what the loops need where it watches, nothing where
   it does not, and never create an Approval; a `helm upgrade` keeps the switch an SRE
   stopped; cluster mode widens the reach; `helm uninstall` keeps the audit log.
Pods are simulated here (the image does not run): the assertions are on objects and RBAC.
"""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import ClusterHandle
from tests.unit.charts.helm import (
    CHARTS,
    chart_cases,
    helm,
    template,
    value_sets,
)

pytestmark = pytest.mark.cluster

CASES = chart_cases()
SA = "aiops-operator"


@dataclass
class Namespaces:
    """Namespaces of this module's own, all named with one unique prefix."""

    cluster: ClusterHandle
    prefix: str
    made: list[str] = field(default_factory=list)

    def make(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        self.cluster.kubectl("create", "namespace", name, check=True)
        self.made.append(name)
        return name


@pytest.fixture(scope="module")
def namespaces(aiops_api: ClusterHandle) -> Iterator[Namespaces]:
    ns = Namespaces(aiops_api, f"charts-{uuid.uuid4().hex[:6]}")
    yield ns
    for name in ns.made:
        aiops_api.kubectl("delete", "namespace", name, "--wait=false")


def namespaced(values: dict[str, Any], p: str) -> dict[str, Any]:
    """The value set with its watched namespaces made unique to this run."""
    values = copy.deepcopy(values)
    watch = values.get("watch", {})
    if watch.get("namespaces"):
        watch["namespaces"] = [f"{p}-{n}" for n in watch["namespaces"]]
    return values


@pytest.fixture(scope="module")
def release_ns(namespaces: Namespaces) -> str:
    for n in ("team-a", "team-b"):  # the value sets' watched namespaces (see namespaced())
        namespaces.make(n)
    return namespaces.make("release")


@pytest.mark.parametrize(("chart", "values_name"), CASES, ids=[f"{c}-{v}" for c, v in CASES])
def test_api_server_accepts_every_rendered_object(
    aiops_api: ClusterHandle,
    namespaces: Namespaces,
    release_ns: str,
    chart: str,
    values_name: str,
) -> None:
    values = namespaced(value_sets(chart)[values_name], namespaces.prefix)
    rendered = template(chart, values, namespace=release_ns)
    # As helm does: an object that names no namespace goes to the release's (kubectl refuses
    # -n for objects that name another one, so those go on their own).
    explicit = [o for o in rendered if o["metadata"].get("namespace")]
    implicit = [o for o in rendered if not o["metadata"].get("namespace")]
    applied = 0
    for objs, scope in ((explicit, []), (implicit, ["-n", release_ns])):
        if not objs:
            continue
        proc = aiops_api.kubectl(
            "apply",
            "--dry-run=server",
            *scope,
            "-f",
            "-",
            input=yaml.safe_dump_all(objs),
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        applied += sum("(server dry run)" in line for line in proc.stdout.splitlines())
    assert applied == len(rendered.objects)


# --- a real install -------------------------------------------------------------------------


def helm_cmd(
    cluster: ClusterHandle, *args: str, values: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    return helm(*args, "--kubeconfig", str(cluster.kubeconfig), values=values, timeout=120)


def can(cluster: ClusterHandle, ns: str | None, *what: str, user: str) -> bool:
    scope = ["-n", ns] if ns else []
    proc = cluster.kubectl("auth", "can-i", *what, *scope, "--as", user)
    assert proc.stdout.strip() in ("yes", "no"), proc.stdout + proc.stderr
    return proc.stdout.strip() == "yes"


def get(cluster: ClusterHandle, ns: str, *what: str) -> dict[str, Any] | None:
    proc = cluster.kubectl("get", *what, "-n", ns, "-o", "json")
    if proc.returncode != 0:
        assert "NotFound" in proc.stderr, proc.stderr
        return None
    obj: dict[str, Any] = json.loads(proc.stdout)
    return obj


def switch(cluster: ClusterHandle, ns: str) -> str:
    cm = get(cluster, ns, "configmap", "aiops-switch")
    assert cm is not None
    return str(cm["data"]["actions"])


def test_operator_chart_installed_for_real(
    aiops_api: ClusterHandle, namespaces: Namespaces
) -> None:
    cluster = aiops_api
    ops, watched, other = (namespaces.make(n) for n in ("ops", "watched", "other"))
    user = f"system:serviceaccount:{ops}:{SA}"
    chart = str(CHARTS / "aiops-operator")
    # The CRDs, roles and admission policy are the aiops_api fixture's (applied with kubectl):
    # helm would refuse to adopt them, so this release leaves them alone.
    base = {"crds": {"install": False}, "watch": {"namespaces": [watched]}}
    try:
        proc = helm_cmd(cluster, "install", "aiops", chart, "-n", ops, values=base)
        assert proc.returncode == 0, proc.stderr
        assert f"kubectl -n {ops} rollout status deployment/aiops-operator" in proc.stdout

        dep = get(cluster, ops, "deployment", "aiops-operator")
        assert dep is not None
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        assert f"--namespace={watched}" in c["args"]
        assert get(cluster, ops, "pvc", "aiops-operator-audit") is not None
        assert get(cluster, ops, "serviceaccount", SA) is not None
        assert switch(cluster, ops) == "running"

        # What the loops need, where the operator watches.
        for verb, res in [
            ("list", "subjects.aiops.dev"),
            ("watch", "incidents.aiops.dev"),
            ("create", "incidents.aiops.dev"),
            ("list", "approvals.aiops.dev"),
            ("delete", "pods"),
            ("list", "pods"),
            ("get", "secrets"),
            ("create", "events"),
        ]:
            assert can(cluster, watched, verb, res, user=user), f"cannot {verb} {res}"
        assert can(
            cluster, watched, "patch", "incidents.aiops.dev", "--subresource=status", user=user
        )
        assert can(cluster, ops, "get", "configmap/aiops-switch", user=user)
        assert can(cluster, None, "list", "namespaces", user=user)  # kopf's discovery
        # Nothing elsewhere, and never an Approval.
        for ns in (other, ops):
            assert not can(cluster, ns, "list", "subjects.aiops.dev", user=user)
            assert not can(cluster, ns, "get", "secrets", user=user)
        assert not can(cluster, ops, "get", "configmap/other", user=user)
        for verb in ("create", "update", "patch"):
            assert not can(cluster, watched, verb, "approvals.aiops.dev", user=user)

        # An SRE stops actions; neither an upgrade nor its values turn them back on.
        cluster.kubectl(
            "-n",
            ops,
            "patch",
            "configmap",
            "aiops-switch",
            "--type",
            "merge",
            "-p",
            '{"data":{"actions":"stopped"}}',
            check=True,
        )
        up = {**base, "switch": {"actions": "running"}}
        proc = helm_cmd(cluster, "upgrade", "aiops", chart, "-n", ops, values=up)
        assert proc.returncode == 0, proc.stderr
        assert switch(cluster, ops) == "stopped"
        # Resumed with kubectl, stopped again through helm: helm may stop actions.
        cluster.kubectl(
            "-n",
            ops,
            "patch",
            "configmap",
            "aiops-switch",
            "--type",
            "merge",
            "-p",
            '{"data":{"actions":"running"}}',
            check=True,
        )
        down = {**base, "switch": {"actions": "stopped"}}
        assert helm_cmd(cluster, "upgrade", "aiops", chart, "-n", ops, values=down).returncode == 0
        assert switch(cluster, ops) == "stopped"

        # Cluster mode: everywhere, still no Approval.
        wide = {"crds": {"install": False}, "watch": {"mode": "cluster"}}
        proc = helm_cmd(cluster, "upgrade", "aiops", chart, "-n", ops, values=wide)
        assert proc.returncode == 0, proc.stderr
        assert can(cluster, other, "list", "subjects.aiops.dev", user=user)
        assert not can(cluster, other, "create", "approvals.aiops.dev", user=user)
        dep = get(cluster, ops, "deployment", "aiops-operator")
        assert dep is not None
        assert "--all-namespaces" in dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert get(cluster, watched, "rolebinding", SA) is None  # the old binding is gone
    finally:
        proc = helm_cmd(cluster, "uninstall", "aiops", "-n", ops, "--wait")
    assert proc.returncode == 0, proc.stderr
    # The audit log outlives the release; the cluster-wide grant does not.
    assert get(cluster, ops, "pvc", "aiops-operator-audit") is not None
    assert not can(cluster, other, "list", "subjects.aiops.dev", user=user)
    assert cluster.kubectl("get", "clusterrolebinding", f"{SA}-{ops}").returncode != 0
