"""A namespace with the aiops API installed, and people and an operator to act in it.

The CRDs, the admission policy and the ClusterRoles are cluster-wide: they are applied (server
side, idempotent) and left in place, since they are the product's own and other tests may be
using them. Everything else lives in a namespace of this run's own, deleted at the end.
"""

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.api import Approval
from aiops.api.access import OPERATOR_ROLE, SRE_ROLE
from tests.fixtures.cluster import ClusterHandle

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"
EXAMPLES = REPO / "examples"
PEOPLE = ("alice", "bob")
OPERATOR_SA = "aiops-operator"


@dataclass
class ApiNamespace:
    """The cluster, seen from one namespace where the aiops API is installed."""

    cluster: ClusterHandle
    namespace: str

    @property
    def operator(self) -> str:
        """The username of the operator's ServiceAccount in this namespace."""
        return f"system:serviceaccount:{self.namespace}:{OPERATOR_SA}"

    def kubectl(
        self,
        *args: str,
        as_user: str | None = None,
        input: str | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(
            "-n", self.namespace, *args, as_user=as_user, input=input, check=check
        )

    def apply(
        self, manifest: dict[str, Any], *args: str, as_user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.kubectl(
            "apply", "-f", "-", *args, as_user=as_user, input=yaml.safe_dump(manifest)
        )

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        proc = self.kubectl("get", plural, name, "-o", "json")
        if proc.returncode != 0:
            assert "NotFound" in proc.stderr, proc.stderr
            return None
        obj: dict[str, Any] = json.loads(proc.stdout)
        return obj


def _wait(what: str, ready: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="package")
def api_ns(cluster: ClusterHandle) -> Iterator[ApiNamespace]:
    for path in (CRDS, CRDS / "rbac"):
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path), check=True)
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=aiops",
        "--timeout=60s",
        check=True,
    )
    env = ApiNamespace(cluster, f"aiops-api-{uuid.uuid4().hex[:8]}")
    cluster.kubectl("create", "namespace", env.namespace, check=True)
    try:
        people = [f"--user={p}" for p in PEOPLE]
        env.kubectl(
            "create", "rolebinding", "people", f"--clusterrole={SRE_ROLE}", *people, check=True
        )
        env.kubectl("create", "serviceaccount", OPERATOR_SA, check=True)
        env.kubectl(
            "create",
            "rolebinding",
            "operator",
            f"--clusterrole={OPERATOR_ROLE}",
            f"--serviceaccount={env.namespace}:{OPERATOR_SA}",
            check=True,
        )
        _wait_for_policy(env)
        yield env
    finally:
        cluster.kubectl("delete", "namespace", env.namespace, "--wait=false")


def _wait_for_policy(env: ApiNamespace) -> None:
    """A new admission policy takes a moment to be enforced; a dry run tells when it is."""
    probe = yaml.safe_load((EXAMPLES / "approval.yaml").read_text())
    probe["spec"]["approvedBy"] = "bob"

    def enforced() -> bool:
        proc = env.apply(probe, "--dry-run=server", as_user="alice")
        return proc.returncode != 0 and "cannot approve as bob" in proc.stderr

    _wait(f"the {Approval.KIND} admission policy", enforced)
