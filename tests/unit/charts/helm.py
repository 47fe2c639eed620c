"""The charts as helm renders them, with the project's own helm (hack/tools), for the chart tests
here and in tests/integration/charts."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from aiops.cluster.tools import tools_bin_dir

REPO = Path(__file__).resolve().parents[3]
CHARTS = REPO / "charts"
# The Kubernetes that kind's node image runs (kind 0.33: v1.37). helm's built-in default (what
# `helm template` assumes without a cluster) is older than the charts' kubeVersion allows.
KUBE_VERSION = "1.37.0"
RELEASE = "aiops"
NAMESPACE = "aiops-system"

ALL_CHARTS = sorted(p.name for p in CHARTS.iterdir() if (p / "Chart.yaml").is_file())

# A few value sets per chart, beside the defaults; a chart not named here is checked with its
# defaults only.
VALUE_SETS: dict[str, dict[str, dict[str, Any]]] = {
    "aiops-operator": {
        "defaults": {},
        "cluster-mode": {"watch": {"mode": "cluster"}, "prometheus": {"enabled": True}},
        "namespaced-two": {
            "watch": {"namespaces": ["team-a", "team-b"]},
            "rbac": {"sre": {"users": ["alice"], "groups": ["sre"]}},
            "prometheus": {"enabled": True},
        },
        "no-persistence-anthropic": {
            "replicas": 1,  # an emptyDir is each pod's own: one replica only
            "peering": {"enabled": False},
            "audit": {"persistence": {"enabled": False}},
            "anthropic": {"existingSecret": "anthropic", "existingSecretKey": "key"},
            "liveness": {"enabled": False},
            "verbose": True,
        },
        "metrics-dashboard": {"metrics": {"port": 9300, "dashboard": {"enabled": True}}},
        "no-crds-existing-claim": {
            "crds": {"install": False},
            "audit": {"persistence": {"enabled": True, "existingClaim": "audit-log"}},
        },
    },
    "tikv": {
        "defaults": {},
        "subject-and-pvcs": {"subject": {"enabled": True}, "storage": {"size": "1Gi"}},
    },
    "ratelimiter": {
        "defaults": {},
        "no-toxiproxy": {"toxiproxy": {"enabled": False}},
        "real-node-subject": {
            "subject": {"enabled": True, "prometheusUrl": "http://prometheus:9090"},
            "nodeSelector": {"aiops.dev/real-node": "true"},
            "tolerations": [{"key": "aiops.dev/real-node", "operator": "Exists"}],
        },
    },
}


def value_sets(chart: str) -> dict[str, dict[str, Any]]:
    return VALUE_SETS.get(chart, {"defaults": {}})


def chart_cases() -> list[tuple[str, str]]:
    """(chart, value set name) for every chart in charts/."""
    return [(chart, name) for chart in ALL_CHARTS for name in value_sets(chart)]


@cache
def helm_bin() -> Path:
    return tools_bin_dir(build=True, required=("helm",)) / "helm"


def helm(
    *args: str, values: dict[str, Any] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run helm, with `values` (if any) as a values file."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(values or {}, f)
        f.flush()
        return subprocess.run(
            [str(helm_bin()), *args, *(["--values", f.name] if values is not None else [])],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass
class Rendered:
    text: str
    objects: list[dict[str, Any]]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for o in self.all(kind):
            meta = o["metadata"]
            if meta["name"] == name and (namespace is None or meta.get("namespace") == namespace):
                return o
        return None

    def one(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        found = self.get(kind, name, namespace)
        assert found is not None, f"no {kind} {name} rendered; have: {self.names()}"
        return found

    def names(self) -> list[str]:
        return [f"{o['kind']}/{o['metadata']['name']}" for o in self.objects]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.objects)


def template(
    chart: str,
    values: dict[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> Rendered:
    proc = helm(
        "template",
        release,
        str(CHARTS / chart),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        values=values,
    )
    assert proc.returncode == 0, f"helm template {chart} failed:\n{proc.stderr}"
    objects = [o for o in yaml.safe_load_all(proc.stdout) if o]
    return Rendered(proc.stdout, objects)


def template_error(chart: str, values: dict[str, Any]) -> str:
    """helm's error for values the chart must refuse (fails the test if it renders)."""
    proc = helm(
        "template",
        RELEASE,
        str(CHARTS / chart),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        values=values,
    )
    assert proc.returncode != 0, f"helm rendered {chart} with {values}; it must refuse them"
    return proc.stderr
