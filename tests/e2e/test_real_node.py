"""End to end on this machine's real node: the users' path (`helm install`) with real pods,
without Docker and without pulling an image.

`hack/e2e.sh up` (run once for the module) builds the images with podman from a Debian base
made by mmdebstrap, starts a local cluster with a real node (`aiops cluster up --real-node`:
containerd, kubelet, kube-proxy, cluster DNS), and installs the operator and rate limiter charts
onto it. Then: every pod of both charts runs on the real node; the operator's logs come from its
container and show no refusal; the RBAC its ServiceAccount holds is the chart's role, no more;
the rate limiter's Subject sees its three nodes Up through their Services and DNS; the chart
grants exactly what the operator used (the API server's audit log of its ServiceAccount, against
the chart's roles, less a commented list of what only incidents and faults need). Last,
`hack/e2e.sh down` takes the cluster away and this machine's mounts, interfaces, network
namespaces, iptables rules, containers and processes are what they were before `up`
(AIOPS_E2E_KEEP=1 keeps the cluster for inspection instead).

A machine without root, podman, mmdebstrap, containerd, runc or the CNI plugins skips these
tests with one line naming what is missing; where they are there (CI on this project's machine,
after hack/setup.sh), a failure to bring the node up fails them, with the script's last output.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiops.cluster.local import LocalCluster
from aiops.cluster.realnode import missing_prerequisites
from aiops.cluster.tools import tools_bin_dir
from tests.fixtures import host_state
from tests.fixtures.e2e_cluster import Kube, observed, refused_lines, wait_for

REPO = Path(__file__).resolve().parents[2]
OPS_NS, RL_NS = "aiops-system", "ratelimiter"
CLUSTER = "aiops-e2e"
NODE = f"{CLUSTER}-real-node"
OPERATOR_SA = f"system:serviceaccount:{OPS_NS}:aiops-operator"

pytestmark = [pytest.mark.real_node, pytest.mark.timeout(1800)]


def missing() -> str | None:
    """One line naming what this machine lacks for the real node, or None."""
    lacking = [cmd for cmd in ("podman", "mmdebstrap") if shutil.which(cmd) is None]
    if lacking:
        return f"the real-node e2e tests need {', '.join(lacking)}: run hack/setup.sh as root"
    return missing_prerequisites(tools_bin_dir(build=True))


def free_port_base(span: int = 6) -> int:
    """A base port with `span` free ports after it (the local cluster's components)."""
    for base in range(17443, 30000, 16):
        ok = True
        for port in range(base, base + span):
            with socket.socket() as sock:
                try:
                    sock.bind(("0.0.0.0", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free ports for the e2e cluster")


SCRIPT = str(REPO / "hack" / "e2e.sh")
# Every process of the cluster names its state directory on its command line.
CLUSTER_MARKER = f"clusters/{CLUSTER}/"


@pytest.fixture(scope="module")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    problem = missing()
    if problem:
        pytest.skip(problem)
    log_dir = tmp_path_factory.mktemp("real-node")
    return {
        **os.environ,
        "AIOPS_E2E_CLUSTER": CLUSTER,
        "AIOPS_E2E_PORT": str(free_port_base()),
        "AIOPS_E2E_TIMES": str(log_dir / "times"),
        "AIOPS_E2E_LOG_DIR": str(log_dir),
    }


@pytest.fixture(scope="module")
def host_before(e2e_env: dict[str, str]) -> host_state.Listing:
    """This machine before `up`: what `down` must bring it back to."""
    return host_state.snapshot(CLUSTER_MARKER)


@pytest.fixture(scope="module")
def real_node(e2e_env: dict[str, str], host_before: host_state.Listing) -> Iterator[Kube]:
    env = e2e_env
    log_dir = Path(env["AIOPS_E2E_LOG_DIR"])
    script = SCRIPT
    log = log_dir / "e2e-up.log"
    try:
        with log.open("w") as err:
            up = subprocess.run(
                [script, "up"],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
                timeout=1500,
                check=False,
                env=env,
            )
        if up.returncode != 0:
            pytest.fail(
                f"hack/e2e.sh up failed (exit {up.returncode}); its last output:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        times = (log_dir / "times").read_text()
        print("e2e step times (s):\n" + times)
        yield Kube(Path(up.stdout.strip().splitlines()[-1]), tools_bin_dir() / "kubectl")
    finally:
        if not os.environ.get("AIOPS_E2E_KEEP"):
            subprocess.run([script, "down"], env=env, timeout=300, check=False)


def pods(kube: Kube, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube.get(ns, "pods")["items"]
    return [p for p in items if p["metadata"].get("deletionTimestamp") is None]


def test_every_pod_of_both_charts_runs_on_the_real_node(real_node: Kube) -> None:
    wide = real_node.kubectl("get", "pods", "-A", "-o", "wide", check=True).stdout
    print(wide)
    for ns, want in ((OPS_NS, 1), (RL_NS, 5)):  # operator; 3 nodes, Redis, toxiproxy
        found = pods(real_node, ns)
        assert len(found) == want, [p["metadata"]["name"] for p in found]
        for pod in found:
            name = pod["metadata"]["name"]
            assert pod["spec"]["nodeName"] == NODE, (name, pod["spec"].get("nodeName"))
            assert pod["status"]["phase"] == "Running", (name, pod["status"])
            ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
            assert ready["Ready"] == "True", (name, pod["status"])
            # A real container: containerd's id, not kwok's pretence.
            (status,) = pod["status"]["containerStatuses"]
            assert status["containerID"].startswith("containerd://"), (name, status)


def test_the_subject_sees_every_node_up_through_services_and_dns(real_node: Kube) -> None:
    def all_up() -> dict[str, Any] | None:
        status = observed(real_node, RL_NS, "ratelimiter")
        members = (status or {}).get("members", [])
        up = [m for m in members if m.get("state") == "Up"]
        return status if status and len(up) == 3 else None

    status = wait_for("the ratelimiter Subject with its 3 nodes Up", all_up, timeout=300)
    names = sorted(m["name"] for m in status["members"])
    assert names == [f"rl-ratelimiter-{i}" for i in range(3)], status["members"]


def test_operator_logs_come_from_its_container_and_show_no_refusal(real_node: Kube) -> None:
    # After the Subject was observed: the loops have read and written through the API.
    wait_for("the Subject observed", lambda: observed(real_node, RL_NS, "ratelimiter"), 300)
    (pod,) = pods(real_node, OPS_NS)
    logs = real_node.kubectl(
        "-n", OPS_NS, "logs", pod["metadata"]["name"], "-c", "operator", check=True
    ).stdout
    assert "kopf" in logs.lower() or "aiops" in logs.lower(), logs[-2000:]
    refused = refused_lines(logs)
    assert not refused, "the operator's RBAC refused it:\n" + "\n".join(refused[:20])
    (status,) = pod["status"]["containerStatuses"]
    assert status["restartCount"] == 0, "the operator restarted: see its previous logs"


def can_i(kube: Kube, verb: str, resource: str, group: str, ns: str) -> bool:
    """`kubectl auth can-i` as the operator's ServiceAccount; `resource` may name a
    subresource (incidents/status)."""
    name, _, sub = resource.partition("/")
    what = f"{name}.{group}" if group else name
    args = ["auth", "can-i", verb, what, "--as", OPERATOR_SA, "-n", ns]
    proc = kube.kubectl(*args, *(["--subresource", sub] if sub else []))
    return proc.stdout.strip() == "yes"


def test_the_operator_holds_exactly_the_charts_role(real_node: Kube) -> None:
    role = json.loads(
        real_node.kubectl("get", "clusterrole", "aiops-operator", "-o", "json", check=True).stdout
    )
    granted: set[tuple[str, str, str]] = set()
    for rule in role["rules"]:
        for group in rule.get("apiGroups", [""]):
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    granted.add((verb, resource, group))
                    assert can_i(real_node, verb, resource, group, RL_NS), (
                        f"the chart's role grants {verb} {resource} ({group or 'core'}), "
                        f"the operator cannot in {RL_NS}"
                    )
    # Namespaced mode: the role is bound in the watched namespace only.
    assert not can_i(real_node, "list", "pods", "", "default")
    # And nothing beyond the table: a sample of what the operator never does.
    for verb, resource, group in (
        ("create", "secrets", ""),
        ("delete", "namespaces", ""),
        ("create", "clusterrolebindings", "rbac.authorization.k8s.io"),
        ("escalate", "roles", "rbac.authorization.k8s.io"),
        ("delete", "subjects", "aiops.dev"),
        ("create", "approvals", "aiops.dev"),  # only people approve
    ):
        assert (verb, resource, group) not in granted
        assert not can_i(real_node, verb, resource, group, RL_NS), (
            f"granted beyond the role: {verb} {resource} ({group or 'core'})"
        )


Access = tuple[str, str, str]  # (verb, API group, resource[/subresource])


def _each(verbs: str, group: str, resources: str) -> set[Access]:
    return {(v, group, r) for v in verbs.split() for r in resources.split()}


# What the chart grants the operator and this run does not exercise, by the code path that
# needs it. The run sees a healthy Subject observed, in namespaced mode: no incident, no
# fault, no action, no Approval. Everything else granted must show in the audit log.
NOT_EXERCISED: dict[str, set[Access]] = {
    # aiops.loops.subject_cycle opens an Incident and re-reads it; aiops.loops.incident reads
    # its Incident and Subject, patches their status and metadata, lists Approvals by incident
    # and records on one what it did (approvals/status); Events it posts are read back by the
    # agent's tools (aiops.agent.tools: get and list of pods, logs, events, services,
    # configmaps, statefulsets, deployments), which only run in an investigation.
    "incidents": _each("create get patch", "aiops.dev", "incidents")
    | _each("get", "aiops.dev", "subjects")
    | _each("patch", "aiops.dev", "incidents/status approvals/status")
    | _each("list", "aiops.dev", "approvals")
    | _each("get list", "", "events services configmaps pods")
    | _each("get", "", "pods/log")
    | _each("get list", "apps", "statefulsets deployments"),
    # aiops.loops.runtime reads the global switch (the chart's switch Role) before an action,
    # and a Subject's spec.agent.apiKeySecretRef (or the notifier's webhook Secret).
    "actions": _each("get", "", "secrets configmaps"),
    # aiops.loops.chaos_driver and the faults (aiops.subjects.faults): a Chaos' status, a
    # pod-kill (delete pods), a partition (label the pod, a NetworkPolicy: create, replace one
    # left by a crash, delete at the revert), a fault run inside a pod (websocket exec: get,
    # and create since Kubernetes 1.35).
    "chaos": _each("get patch", "aiops.dev", "chaos")
    | _each("patch", "aiops.dev", "chaos/status")
    | _each("delete patch", "", "pods")
    | _each("get create update delete", "networking.k8s.io", "networkpolicies")
    | _each("get create", "", "pods/exec"),
    # watch.mode=cluster: the peering object is cluster-wide (aiops.loops.peering).
    "cluster mode": _each("list watch create patch", "kopf.dev", "clusterkopfpeerings"),
}


def granted_to_operator(kube: Kube) -> set[Access]:
    """Every (verb, group, resource) in the chart's roles bound to the operator: the generated
    ClusterRole (bound in the watched namespace), kopf's discovery role and the switch's Role."""
    roles = [
        ("clusterrole", "aiops-operator", ""),
        ("clusterrole", f"aiops-operator-discovery-{OPS_NS}", ""),
        ("role", "aiops-operator-switch", OPS_NS),
    ]
    granted: set[Access] = set()
    for kind, name, ns in roles:
        args = ["get", kind, name, "-o", "json", *(["-n", ns] if ns else [])]
        role = json.loads(kube.kubectl(*args, check=True).stdout)
        for rule in role["rules"]:
            for group in rule.get("apiGroups", [""]):
                for resource in rule["resources"]:
                    granted |= {(verb, group, resource) for verb in rule["verbs"]}
    return granted


def audited(path: Path) -> tuple[set[Access], list[str]]:
    """What the operator's ServiceAccount asked of the API server (the audit log of a cluster
    with a real node: `aiops.cluster.local.AUDIT_POLICY`), and every request it was refused."""
    used: set[Access] = set()
    refused: list[str] = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef")
        if event["user"]["username"] != OPERATOR_SA or not ref:
            continue  # someone else, or discovery (/api, /apis: every account may)
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        access = (event["verb"], ref.get("apiGroup", ""), resource)
        if event.get("responseStatus", {}).get("code") == 403:
            refused.append(f"{access} in {ref.get('namespace', '(cluster)')}")
        else:
            used.add(access)
    return used, refused


def test_the_chart_grants_exactly_what_the_operator_used(real_node: Kube) -> None:
    # After the Subject was observed (the loops have read and written) and its nodes are Up.
    wait_for("the Subject observed", lambda: observed(real_node, RL_NS, "ratelimiter"), 300)
    log = LocalCluster(CLUSTER).audit_log
    assert log.exists(), f"no audit log at {log}: the cluster was started without --real-node?"
    used, refused = audited(log)
    assert not refused, "the API server refused the operator:\n" + "\n".join(refused[:20])
    granted = granted_to_operator(real_node)
    assert used <= granted  # else refused, above
    not_exercised = set().union(*NOT_EXERCISED.values())
    unused = granted - used - not_exercised
    assert not unused, (
        "the chart grants what the operator never used in this run: remove it, or say in "
        f"NOT_EXERCISED which code path needs it: {sorted(unused)}"
    )
    # The list stays honest: nothing in it that the run did use, or that the chart dropped.
    assert not not_exercised & used, sorted(not_exercised & used)
    assert not_exercised <= granted, sorted(not_exercised - granted)


# Last in the module: it takes the cluster down (the fixture's own `down` then finds nothing).
def test_down_leaves_nothing_behind(
    real_node: Kube, e2e_env: dict[str, str], host_before: host_state.Listing
) -> None:
    if os.environ.get("AIOPS_E2E_KEEP"):
        pytest.skip("AIOPS_E2E_KEEP=1 keeps the cluster up")
    down = subprocess.run(
        [SCRIPT, "down"], env=e2e_env, capture_output=True, text=True, timeout=300, check=False
    )
    assert down.returncode == 0, down.stderr[-2000:]
    left = host_state.left_behind(host_before, host_state.snapshot(CLUSTER_MARKER))
    assert not left, "`aiops cluster down` left behind:\n" + "\n".join(
        f"  {what}: {sorted(lines)}" for what, lines in left.items()
    )
