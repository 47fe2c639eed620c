"""End to end on kind: the users' path, with Docker and a network.

hack/kind-up.sh builds the images, creates (or reuses) the kind cluster and installs the charts;
then: the operator is up and its ServiceAccount is never refused by the API server, both
Subjects are observed (TiKV with its stores Up), and a fault opens an Incident: an evict-leader
scheduler that no action owns, added through PD's API (what the `leave_evict_leader` Chaos
fault does), must become an `evict_leader_leftover` Incident of the tikv Subject.

    pytest -m e2e tests/e2e          # deselected otherwise (addopts: -m "not e2e")

Without a Docker engine these tests FAIL, saying so: they never skip. The cluster is left up
for inspection and fast reruns; hack/kind-down.sh deletes it. AIOPS_KIND_CLUSTER and
AIOPS_KIND_KUBECONFIG choose another one (see hack/kind-up.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiops.cluster.tools import tools_bin_dir
from tests.fixtures.e2e_cluster import Kube, observed, port_forward, refused_lines, wait_for

REPO = Path(__file__).resolve().parents[2]
OPS_NS, TIKV_NS, RL_NS = "aiops-system", "tikv", "ratelimiter"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]


Kind = Kube


class KindUp:
    """hack/kind-up.sh, run once for the module by the first test that needs it. Its failure
    (no Docker above all) fails every test that asks, as a test failure, not a setup error."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.result: Kind | str | None = None

    def __call__(self) -> Kind:
        if self.result is None:
            self.result = self._up()
        if isinstance(self.result, str):
            pytest.fail(self.result)
        return self.result

    def _up(self) -> Kind | str:
        docker = shutil.which("docker")
        if docker is None:
            return "the kind e2e tests need Docker: no docker command on PATH"
        proc = subprocess.run(
            [docker, "info"], capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
            return "the kind e2e tests need a running Docker engine: `docker info` failed: " + (
                lines[-1] if lines else f"exit {proc.returncode}"
            )
        cluster = os.environ.get("AIOPS_KIND_CLUSTER", "aiops")
        kubeconfig = Path(
            os.environ.get("AIOPS_KIND_KUBECONFIG")
            or REPO / ".work" / "kind" / f"{cluster}.kubeconfig"
        )
        log = self.log_dir / "kind-up.log"
        with log.open("w") as out:
            up = subprocess.run(
                [str(REPO / "hack" / "kind-up.sh")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=2700,
                check=False,
                env={
                    **os.environ,
                    "AIOPS_KIND_CLUSTER": cluster,
                    "AIOPS_KIND_KUBECONFIG": str(kubeconfig),
                },
            )
        if up.returncode != 0:
            return (
                f"hack/kind-up.sh failed (exit {up.returncode}); its last output:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        return Kind(kubeconfig, tools_bin_dir(build=True, required=("kubectl",)) / "kubectl")


@pytest.fixture(scope="module")
def kind_up(tmp_path_factory: pytest.TempPathFactory) -> KindUp:
    return KindUp(tmp_path_factory.mktemp("kind"))


def test_operator_is_up_and_never_refused(kind_up: KindUp) -> None:
    kind = kind_up()
    proc = kind.kubectl(
        "-n",
        OPS_NS,
        "rollout",
        "status",
        "deployment/aiops-operator",
        "--timeout=300s",
        timeout=330,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pods = kind.get(OPS_NS, "pods", "-l", "app.kubernetes.io/name=aiops-operator")["items"]
    # Two replicas (kopf peering): one active, one standing by; both up and ready.
    live = [p for p in pods if p["metadata"].get("deletionTimestamp") is None]
    assert len(live) == 2, [p["metadata"]["name"] for p in live]
    for pod in live:
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True"  # readiness is kopf's /healthz
        (status,) = pod["status"]["containerStatuses"]
        assert status["restartCount"] == 0, "the operator restarted: see its previous logs"
    # Give the loops a few cycles, then read what the API server said to them.
    time.sleep(30)
    for pod in live:
        logs = kind.kubectl("-n", OPS_NS, "logs", pod["metadata"]["name"], check=True).stdout
        refused = refused_lines(logs)
        assert not refused, "the operator's RBAC refused it:\n" + "\n".join(refused[:20])


def test_subjects_are_observed(kind_up: KindUp) -> None:
    kind = kind_up()

    def tikv_up() -> dict[str, Any] | None:
        status = observed(kind, TIKV_NS, "tikv")
        members = (status or {}).get("members", [])
        stores = [m for m in members if m.get("state") == "Up"]
        return status if status and len(stores) >= 3 else None

    status = wait_for("the tikv Subject observed with 3 stores Up", tikv_up, timeout=600)
    assert status["health"] in ("Healthy", "Degraded"), status
    wait_for(
        "the ratelimiter Subject observed",
        lambda: observed(kind, RL_NS, "ratelimiter"),
        timeout=300,
    )


def test_a_leftover_evict_leader_scheduler_opens_an_incident(kind_up: KindUp) -> None:
    kind = kind_up()
    wait_for("the tikv Subject observed", lambda: observed(kind, TIKV_NS, "tikv"), timeout=600)
    with port_forward(kind, TIKV_NS, "service/tikv-pd", 2379) as pd:
        api = f"{pd}/pd/api/v1"
        stores = httpx.get(f"{api}/stores", timeout=10).json()["stores"]
        store_id = min(s["store"]["id"] for s in stores)
        before = {i["metadata"]["name"] for i in kind.get(TIKV_NS, "incidents")["items"]}
        r = httpx.post(
            f"{api}/schedulers",
            json={"name": "evict-leader-scheduler", "store_id": store_id},
            timeout=10,
        )
        assert r.status_code < 300, r.text
        try:

            def opened() -> list[dict[str, Any]]:
                return [
                    i
                    for i in kind.get(TIKV_NS, "incidents")["items"]
                    if i["metadata"]["name"] not in before
                    and i["spec"]["subject"] == "tikv"
                    and i["spec"].get("invariant") == "evict_leader_leftover"
                ]

            (incident, *_) = wait_for("an evict_leader_leftover Incident", opened, timeout=300)
            assert str(store_id) in (incident["spec"].get("entity") or ""), incident["spec"]
            assert incident["spec"]["source"] == "subject-loop"
        finally:
            httpx.delete(f"{api}/schedulers/evict-leader-scheduler-{store_id}", timeout=10)
