"""End to end on this machine's real node: the users' path (`helm install`) with real pods,
without Docker and without pulling an image.

`hack/e2e.sh up` (run once for the module) builds the images with podman from a Debian base
made by mmdebstrap, starts a local cluster with a real node (`aiops cluster up --real-node`:
containerd, kubelet, kube-proxy, cluster DNS), and installs the operator and rate limiter charts
onto it. Then, in this order:
- every pod of both charts runs on the real node; the rate limiter's Subject sees its three
  nodes Up through their Services and DNS; the operator's logs come from its container and show
  no refusal; `helm test` passes for the operator chart;
- a pod-kill Chaos: the StatefulSet brings the node back within seconds, and the Chaos says
  the subject healed by itself (it never credits aiops for what the controller did);
- a pause Chaos (SIGSTOP from inside the pod) leaves a node frozen: the operator opens a
  node_down Incident linked to the Chaos, proposes restart_node, a person approves with
  `aiops approve`, the operator deletes the pod, the StatefulSet makes a new one, the Incident
  is Resolved and the Chaos credits the operator;
- the RBAC its ServiceAccount holds is the chart's role, no more, and the chart grants exactly
  what the operator used in all of the above (the API server's audit log of its ServiceAccount,
  less a commented list of what only a model, Secrets, partitions and cluster mode need).
Last, `hack/e2e.sh down` takes the cluster away and this machine's mounts, interfaces, network
namespaces, iptables rules, containers and processes are what they were before `up`
(AIOPS_E2E_KEEP=1 keeps the cluster for inspection instead).

A machine without root, podman, mmdebstrap, containerd, runc or the CNI plugins, or whose kernel
refuses to let runc run a container, skips these tests with one line naming what is missing;
where they are there (CI on this project's machine, after hack/setup.sh), a failure to bring
the node up fails them, with the script's last output.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def test_the_nodes_components_run_as_the_node_not_the_admin(real_node: Kube) -> None:
    node = LocalCluster(CLUSTER).real_node()
    creds = node.dir / "credentials"
    # What each component is started with: the kubelet and the DNS on their command lines,
    # kube-proxy in its config file.
    pids = node.pids()
    for component in ("kubelet", "dns"):
        argv = Path(f"/proc/{pids[component]}/cmdline").read_bytes().split(b"\0")
        assert str(creds / "kubelet.kubeconfig").encode() in argv, (component, argv)
    proxy = yaml.safe_load((node.dir / "kube-proxy.yaml").read_text())
    assert proxy["clientConnection"]["kubeconfig"] == str(creds / "kube-proxy.kubeconfig")
    for component, user, groups in (
        ("kubelet", f"system:node:{NODE}", {"system:nodes", "system:authenticated"}),
        ("kube-proxy", "system:kube-proxy", {"system:authenticated"}),
    ):
        as_it = Kube(creds / f"{component}.kubeconfig", real_node.kubectl_bin)
        who = json.loads(as_it.kubectl("auth", "whoami", "-o", "json", check=True).stdout)
        info = who["status"]["userInfo"]
        assert info["username"] == user and set(info["groups"]) == groups, info
        # Not the admin: no Secrets of other workloads, no namespaces deleted.
        for verb, what in (("list", "secrets"), ("delete", "namespaces")):
            proc = as_it.kubectl("auth", "can-i", verb, what, "-A")
            # "no", maybe with the authorizer's reason ("no - node: can only read ...").
            assert proc.stdout.split()[0] == "no", (component, verb, what, proc.stdout)


def test_helm_test_passes_for_the_operator_chart(real_node: Kube) -> None:
    # The chart's test pod (templates/tests/): the operator answers through its metrics
    # Service, from a pod on the real node.
    helm = tools_bin_dir() / "helm"
    proc = subprocess.run(
        [str(helm), "--kubeconfig", str(real_node.kubeconfig), "test", "aiops", "-n", OPS_NS,
         "--logs", "--timeout", "3m"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Phase:          Succeeded" in proc.stdout, proc.stdout
    assert "answers with the operator's metrics" in proc.stdout, proc.stdout
    pod = real_node.get(OPS_NS, "pod", "aiops-operator-test-metrics")
    assert pod["spec"]["nodeName"] == NODE, pod["spec"].get("nodeName")


@contextmanager
def applied(kube: Kube, manifest: dict[str, Any]) -> Iterator[None]:
    """The object applied, and deleted at the end whatever happened (a Chaos: reverted)."""
    proc = kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    assert proc.returncode == 0, proc.stderr
    try:
        yield
    finally:
        kind, name = manifest["kind"].lower(), manifest["metadata"]["name"]
        kube.kubectl("-n", RL_NS, "delete", kind, name, "--ignore-not-found", timeout=180)


def chaos(name: str, fault: str, member: str, duration: str) -> dict[str, Any]:
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Chaos",
        "metadata": {"name": name, "namespace": RL_NS},
        "spec": {
            "subject": "ratelimiter",
            "fault": fault,
            "target": {"member": member},
            "duration": duration,
        },
    }


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in status.get("conditions", []) if c["type"] == kind]
    return found[0] if found else {}


def chaos_when(
    kube: Kube, name: str, what: str, ok: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """The Chaos' status once `ok` holds of it."""

    def probe() -> dict[str, Any] | None:
        status: dict[str, Any] = kube.get(RL_NS, "chaos", name).get("status") or {}
        return status if ok(status) else None

    found: dict[str, Any] = wait_for(f"Chaos {name}: {what}", probe, timeout)
    return found


def members_up(kube: Kube) -> dict[str, Any] | None:
    status = observed(kube, RL_NS, "ratelimiter")
    up = [m for m in (status or {}).get("members", []) if m.get("state") == "Up"]
    return status if status and len(up) == 3 else None


def pod_uid(kube: Kube, name: str) -> str:
    return str(kube.get(RL_NS, "pod", name)["metadata"]["uid"])


def replaced_and_ready(kube: Kube, name: str, old_uid: str) -> dict[str, Any] | None:
    pod = kube.get(RL_NS, "pod", name)
    ready = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions", [])}
    if pod["metadata"]["uid"] != old_uid and ready.get("Ready") == "True":
        return pod
    return None


def test_a_pod_kill_is_healed_by_the_statefulset_and_the_chaos_credits_it(
    real_node: Kube,
) -> None:
    # On real pods a killed node is back in seconds: its controller, not aiops, heals it, and
    # the Chaos must say so rather than take credit.
    wait_for("the ratelimiter's 3 nodes Up", lambda: members_up(real_node), 300)
    target = "rl-ratelimiter-2"
    old = pod_uid(real_node, target)
    with applied(real_node, chaos("kill-rl-2", "kill_node", target, "1m")):
        status = chaos_when(
            real_node, "kill-rl-2", "SubjectRecovered",
            lambda st: condition(st, "SubjectRecovered").get("status") == "True", 300,
        )  # fmt: skip
        assert status["phase"] == "Recovered" and status["targets"][0]["instant"], status
        assert "deleted; its controller replaces it" in status["targets"][0]["message"], status
        # Never seen broken (back before the next observation), or back without an action.
        assert status.get("recoveredBy") in (None, "self"), status
        pod = wait_for(
            "a new rl-ratelimiter-2 Ready", lambda: replaced_and_ready(real_node, target, old), 120
        )
        assert pod["spec"]["nodeName"] == NODE
        wait_for("the 3 nodes Up again", lambda: members_up(real_node), 120)


def test_a_frozen_node_is_restarted_by_the_operator_once_approved(real_node: Kube) -> None:
    """pause_node freezes the node with SIGSTOP from inside its pod (the chart shares the pod's
    process namespace); it stays frozen and Down until someone acts. The operator opens a
    node_down Incident linked to the Chaos, proposes restart_node (the chart's autonomy is
    `propose`), a person approves with `aiops approve`, the operator deletes the pod, the
    StatefulSet makes a new one, and the Incident is Resolved on a fresh observation."""
    wait_for("the ratelimiter's 3 nodes Up", lambda: members_up(real_node), 300)
    target = "rl-ratelimiter-1"
    old = pod_uid(real_node, target)
    with applied(real_node, chaos("pause-rl-1", "pause_node", target, "10m")):
        made = chaos_when(
            real_node, "pause-rl-1", "Injected", lambda st: st.get("phase") == "Injected", 120
        )
        assert "stopped by SIGSTOP" in made["targets"][0]["message"], made

        def proposed() -> dict[str, Any] | None:
            for inc in real_node.get(RL_NS, "incidents")["items"]:
                st = inc.get("status") or {}
                if st.get("chaos") == "pause-rl-1" and st.get("phase") == "AwaitingApproval":
                    return inc
            return None

        incident = wait_for("a node_down Incident awaiting approval", proposed, 180)
        name = incident["metadata"]["name"]
        assert incident["spec"]["invariant"] == "node_down", incident["spec"]
        assert incident["spec"]["entity"] == target, incident["spec"]
        (step,) = incident["status"]["proposedActions"]
        assert step["action"] == "restart_node" and step["params"] == {"node": target}, step
        approve = subprocess.run(
            [str(REPO / ".venv" / "bin" / "aiops"), "approve", name, "-n", RL_NS, "--yes"],
            env={**os.environ, "KUBECONFIG": str(real_node.kubeconfig)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert approve.returncode == 0, approve.stdout + approve.stderr

        def ended() -> dict[str, Any] | None:
            inc = real_node.get(RL_NS, "incident", name)
            return (
                inc if (inc.get("status") or {}).get("phase") in ("Resolved", "Escalated") else None
            )

        final = wait_for("the Incident Resolved", ended, 300)["status"]
        assert final["phase"] == "Resolved", final
        (ran,) = final["executedActions"]
        assert ran["action"] == "restart_node" and ran["result"] == "Succeeded", ran
        assert ran["message"] == f"node {target} restarted, serving and reaching Redis", ran
        assert ran["approvedBy"], ran  # bound to the person's Approval
        # The StatefulSet's new pod, on the real node; the old one was not merely restarted in
        # place by kubelet's liveness probe.
        pod = wait_for(
            "the new rl-ratelimiter-1 Ready",
            lambda: replaced_and_ready(real_node, target, old),
            120,
        )
        assert pod["spec"]["nodeName"] == NODE
        wait_for("the 3 nodes Up again", lambda: members_up(real_node), 120)

        # While the fault is still held (its duration runs on): who brought it back.
        chaos_status = chaos_when(
            real_node, "pause-rl-1", "recoveredBy", lambda st: bool(st.get("recoveredBy")), 120
        )
        assert chaos_status["phase"] == "Injected", chaos_status
        assert chaos_status["recoveredBy"] == "operator", chaos_status
        assert chaos_status["incident"] == name, chaos_status
        # Deleting the Chaos reverts it: the frozen pod is gone, the new one has nothing to thaw.
        real_node.kubectl("-n", RL_NS, "delete", "chaos", "pause-rl-1", "--wait=true", check=True)
        events = real_node.kubectl(
            "-n",
            RL_NS,
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=pause-rl-1",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{'\\n'}{end}",
        ).stdout
        # The delete waited for the revert (a finalizer): it ran, against the new pod.
        assert f"Recovered: pause_node reverted on {target}" in events, events
        gone = real_node.kubectl("-n", RL_NS, "get", "chaos", "pause-rl-1")
        assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stdout


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
# needs it. Before the RBAC tests, the module has run a pod-kill and a pause Chaos, a node_down
# Incident through the runbook, an Approval and a restart_node action, in namespaced mode.
# Everything else granted must show in the audit log.
NOT_EXERCISED: dict[str, set[Access]] = {
    # The model's investigation tools (aiops.agent.tools: get and list of pods, logs, events,
    # services, configmaps, statefulsets, deployments): the chart configures no model here, and
    # the runbook agent reads only the Subject's observation.
    "investigation": _each("get", "", "pods pods/log")
    | _each("get list", "", "events services")
    | _each("list", "", "configmaps")
    | _each("get list", "apps", "statefulsets deployments"),
    # A Subject's spec.agent.apiKeySecretRef, or the notifier's webhook Secret: none here.
    "secrets": _each("get", "", "secrets"),
    # The partition fault (aiops.subjects.faults.netpolicy): the pod labelled, a NetworkPolicy
    # created (or one left by a crash replaced), deleted at the revert. Not run on this node:
    # the CNI bridge plugin does not enforce NetworkPolicy, so it would cut nothing.
    "partition": _each("patch", "", "pods")
    | _each("get create update delete", "networking.k8s.io", "networkpolicies"),
    # A websocket exec (the pause fault here) is checked for create as well as get since
    # Kubernetes 1.35, but the audit log records the request once, as get.
    "exec": _each("create", "", "pods/exec"),
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
    # What NOT_EXERCISED leaves out was done by the incident test, earlier in this module.
    resolved = [
        i
        for i in real_node.get(RL_NS, "incidents")["items"]
        if (i.get("status") or {}).get("executedActions")
    ]
    assert resolved, "run the whole module: this test reads what the Chaos and incident tests did"
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
