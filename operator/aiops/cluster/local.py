"""`aiops cluster up | down | status`: a local control plane run by kwokctl's binary runtime.

Every binary comes from hack/tools (built from the Go module proxy); kwokctl is never allowed to
download anything. State lives under one directory per cluster, so `down` can find and stop every
process that `up` started, even after a crash.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from aiops.cluster.errors import ClusterError
from aiops.cluster.realnode import RealNode
from aiops.cluster.runtime_check import RUNTIME
from aiops.cluster.tools import tools_bin_dir
from aiops.settings import WorkstationSettings

KUBE_VERSION = "v1.37.2"
DEFAULT_NAME = "aiops"
DEFAULT_PORT = 16443
# Every component gets a port derived from the API server's, so two clusters with different
# --port values never collide (kwokctl would otherwise pick ports of its own near 32767).
PORT_OFFSETS = {
    "kubeApiserverPort": 0,
    "etcdPort": 1,
    "etcdPeerPort": 2,
    "kubeControllerManagerPort": 3,
    "kubeSchedulerPort": 4,
    "kwokControllerPort": 5,
}
DEFAULT_NODES = 2
KUBERNETES_SERVICE_IP = "10.0.0.1"  # kube-apiserver's default --service-cluster-ip-range
# A cluster with a real node records what every workload's ServiceAccount did (who, verb,
# resource; Metadata level, no bodies) in kwok's logs/audit.log: the e2e tests compare it with
# the RBAC the charts grant. The control plane's own accounts (kube-system) are left out.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "userGroups": ["system:serviceaccounts:kube-system"]},
        {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
        {"level": "None"},
    ],
}

State = Literal["absent", "running", "broken"]


def default_images_dir() -> Path:
    """Where hack/images.sh writes the image archives a real node imports (its default)."""
    cache = os.environ.get("AIOPS_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aiops"
    )
    return Path(cache) / "images" / "out"


def default_state_dir() -> Path:
    """Where clusters keep their kubeconfig, kwok work dir, pids and logs: AIOPS_STATE_DIR,
    else $XDG_STATE_HOME/aiops, else ~/.local/state/aiops (`aiops.settings`)."""
    return WorkstationSettings.from_env().state_dir


@dataclass
class ClusterStatus:
    name: str
    state: State
    kubeconfig: Path
    server: str
    processes: dict[str, int] = field(default_factory=dict)  # component -> live pid
    dead: list[str] = field(default_factory=list)  # components whose process is gone
    nodes: list[str] = field(default_factory=list)
    problem: str = ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; only its entry is left until the parent reaps it.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


class LocalCluster:
    """One named local cluster. Methods are idempotent and safe to call in any state."""

    def __init__(
        self,
        name: str = DEFAULT_NAME,
        *,
        port: int = DEFAULT_PORT,
        nodes: int = DEFAULT_NODES,
        state_dir: Path | None = None,
    ) -> None:
        if not name.replace("-", "").isalnum() or not name.islower():
            raise ClusterError(f"cluster name {name!r} must be lower-case letters, digits and '-'")
        self.name = name
        self.port = port
        self.nodes = nodes
        self.state_dir = (state_dir or default_state_dir()) / "clusters" / name
        self.kwok_workdir = self.state_dir / "kwok"
        self.kwok_cluster_dir = self.kwok_workdir / "clusters" / name
        self.kubeconfig = self.state_dir / "kubeconfig"
        # Written by the API server of a cluster started with a real node (AUDIT_POLICY).
        self.audit_log = self.kwok_cluster_dir / "logs" / "audit.log"

    def real_node(self, runtime: str = RUNTIME) -> RealNode:
        """This cluster's real node (`up --real-node`), whether it runs or not."""
        return RealNode(
            name=f"{self.name}-real-node",
            dir=self.state_dir / "node",
            kubeconfig=self.kubeconfig,
            pki_dir=self.kwok_cluster_dir / "pki",
            bin_dir=tools_bin_dir(build=False, required=()),
            runtime=runtime,
        )

    # -- inspection -----------------------------------------------------------------------

    def _recorded_pids(self) -> dict[str, int]:
        pids: dict[str, int] = {}
        for pid_file in sorted((self.kwok_cluster_dir / "pids").glob("*.pid")):
            try:
                pids[pid_file.stem] = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
        return pids

    def _owned_pids(self) -> dict[str, int]:
        """Recorded pids that are still this cluster's processes (a stale pid file may name a
        pid the system has since given to something else: that one is never ours to stop)."""
        marker = str(self.kwok_cluster_dir)
        return {
            component: pid
            for component, pid in self._recorded_pids().items()
            if _pid_alive(pid) and marker in _cmdline(pid)
        }

    def _kubectl(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        kubectl = tools_bin_dir(build=False) / "kubectl"
        return subprocess.run(
            [str(kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def status(self) -> ClusterStatus:
        st = ClusterStatus(
            name=self.name,
            state="absent",
            kubeconfig=self.kubeconfig,
            server=f"https://127.0.0.1:{self.port}",
        )
        if not self.kwok_cluster_dir.exists():
            return st
        owned = self._owned_pids()
        node = self.real_node()
        if node.dir.exists():
            running = node.pids()
            st.processes.update({f"real node {c}": pid for c, pid in running.items()})
            st.dead += [f"real node {c}" for c in node.recorded() if c not in running]
        for component in self._recorded_pids():
            if component in owned:
                st.processes[component] = owned[component]
            else:
                st.dead.append(component)
        if "kube-apiserver" not in st.processes:
            st.state = "broken"
            st.problem = "kube-apiserver is not running"
            return st
        try:
            ready = self._kubectl("get", "--raw", "/readyz", timeout=5)
        except subprocess.TimeoutExpired:
            ready = None
        if ready is None or ready.returncode != 0:
            st.state = "broken"
            st.problem = "kube-apiserver does not answer /readyz"
            return st
        if st.dead:
            st.state = "broken"
            st.problem = f"{', '.join(st.dead)} not running"
            return st
        nodes = self._kubectl("get", "nodes", "-o", "name")
        st.nodes = [n.removeprefix("node/") for n in nodes.stdout.split()]
        st.state = "running"
        return st

    # -- lifecycle ------------------------------------------------------------------------

    def up(
        self,
        wait: float = 120.0,
        real_node: bool = False,
        images: Path | None = None,
        runtime: str = RUNTIME,
    ) -> ClusterStatus:
        current = self.status()
        if current.state == "running":
            self._ensure_nodes(wait)
            if real_node:
                node = self.real_node(runtime)
                node.preflight()
                node.up(images or default_images_dir(), wait)
            return self.status()
        if current.state == "broken":
            raise ClusterError(
                f"cluster {self.name!r} was left half started ({current.problem}): "
                f"run 'aiops cluster down --name {self.name}' to clean it up, then 'up' again"
            )
        bin_dir = tools_bin_dir(build=True)
        if real_node:
            # Before anything starts: a machine or kernel that cannot run the node says so in
            # one line, and no control plane is left behind for nothing.
            self.real_node(runtime).preflight()
        busy = [self.port + off for off in PORT_OFFSETS.values() if _port_in_use(self.port + off)]
        if busy:
            span = f"{self.port}-{self.port + max(PORT_OFFSETS.values())}"
            raise ClusterError(
                f"port {busy[0]} is already in use by another process (the cluster needs {span}): "
                "stop it, or choose another base with 'aiops cluster up --port N'"
            )
        try:
            self._create(bin_dir, wait, audit=real_node)
            self._ensure_nodes(wait)
            if real_node:
                self.real_node(runtime).up(images or default_images_dir(), wait)
        except BaseException:
            # Nothing is left half running: whatever was started goes (but the real node's
            # logs, which say why).
            self.down(keep_node_logs=True)
            raise
        return self.status()

    def _config(self, bin_dir: Path, audit_policy: Path | None = None) -> dict[str, object]:
        pki = self.kwok_cluster_dir / "pki"
        audit = {"kubeAuditPolicy": str(audit_policy)} if audit_policy else {}
        return {
            "kind": "KwokctlConfiguration",
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "options": {
                "runtime": "binary",
                "kubeVersion": KUBE_VERSION,
                **{option: self.port + off for option, off in PORT_OFFSETS.items()},
                "kubeAuthorization": True,
                "kubeAdmission": True,
                "kubeApiserverBinary": str(bin_dir / "kube-apiserver"),
                "kubeControllerManagerBinary": str(bin_dir / "kube-controller-manager"),
                "kubeSchedulerBinary": str(bin_dir / "kube-scheduler"),
                "kubectlBinary": str(bin_dir / "kubectl"),
                "etcdBinary": str(bin_dir / "etcd"),
                "kwokControllerBinary": str(bin_dir / "kwok"),
                # Pods reach the API server through the `kubernetes` Service (the first address
                # of the default service range): its certificate must name that address too.
                "kubeApiserverCertSANs": [KUBERNETES_SERVICE_IP],
                **audit,
            },
            "componentsPatches": [
                {
                    # kwok fakes only its own nodes (kwokctl annotates them so): a real node
                    # beside them (`--real-node`) keeps its kubelet's status and pods.
                    "name": "kwok-controller",
                    "extraArgs": [
                        {"key": "manage-all-nodes", "value": "false", "override": True},
                        {
                            "key": "manage-nodes-with-annotation-selector",
                            "value": "kwok.x-k8s.io/node=fake",
                        },
                    ],
                },
                {
                    # The API server shows itself to a real kubelet with the admin client
                    # certificate (`kubectl logs`, `exec`); kwok's fake kubelets ignore it.
                    "name": "kube-apiserver",
                    "extraArgs": [
                        {"key": "kubelet-client-certificate", "value": str(pki / "admin.crt")},
                        {"key": "kubelet-client-key", "value": str(pki / "admin.key")},
                        # By address: no DNS on this machine knows the node's name.
                        {"key": "kubelet-preferred-address-types", "value": "InternalIP"},
                    ],
                },
            ],
        }

    def _kwokctl(
        self, bin_dir: Path, *args: str, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        # kwokctl runs the first `kubectl` on PATH: make it ours, of the cluster's version.
        env = {
            **os.environ,
            "KWOK_WORKDIR": str(self.kwok_workdir),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        try:
            return subprocess.run(
                [str(bin_dir / "kwokctl"), "--name", self.name, *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(
                f"kwokctl {' '.join(args[:2])} did not finish in {timeout:.0f} s: "
                f"see the logs under {self.kwok_cluster_dir / 'logs'}"
            ) from exc

    def _create(self, bin_dir: Path, wait: float, audit: bool = False) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        policy: Path | None = None
        if audit:
            policy = self.state_dir / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
        config_path = self.state_dir / "kwokctl.yaml"
        config_path.write_text(yaml.safe_dump(self._config(bin_dir, policy), sort_keys=False))
        proc = self._kwokctl(
            bin_dir,
            "create",
            "cluster",
            "--config",
            str(config_path),
            "--kubeconfig",
            str(self.kubeconfig),
            "--wait",
            f"{int(wait)}s",
            timeout=wait + 60,
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ClusterError(f"kwokctl could not create cluster {self.name!r}: {last}")

    def _ensure_nodes(self, wait: float) -> None:
        have = self._kubectl("get", "nodes", "-o", "name").stdout.split()
        if len(have) < self.nodes:
            proc = self._kwokctl(
                tools_bin_dir(build=False),
                "scale",
                "node",
                "--replicas",
                str(self.nodes),
                timeout=60,
            )
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise ClusterError(f"kwokctl could not add nodes: {last}")
        proc = self._kubectl(
            "wait",
            "--for=condition=Ready",
            "node",
            "--all",
            f"--timeout={int(wait)}s",
            timeout=wait + 10,
        )
        if proc.returncode != 0:
            raise ClusterError(f"nodes did not become Ready in {wait:.0f} s: {proc.stderr.strip()}")

    def down(self, grace: float = 10.0, keep_node_logs: bool = False) -> list[int]:
        """Stop every process of the cluster and remove its state. Returns the pids stopped."""
        # The real node first: its kubelet deletes its pods through the API server.
        node = self.real_node()
        node_pids = node.down(keep_logs=keep_node_logs) if node.dir.exists() else []
        pids = self._owned_pids()
        if self.kwok_cluster_dir.exists():
            # If kwokctl fails, the pids below are stopped by hand either way.
            with contextlib.suppress(ClusterError):
                self._kwokctl(tools_bin_dir(build=False), "delete", "cluster", timeout=60)
        # kwokctl stops what it recorded; anything that survived (a crash mid-create, a
        # process that ignored SIGTERM) is stopped here, by the pids this cluster recorded.
        survivors = [pid for pid in pids.values() if _pid_alive(pid)]
        for pid in survivors:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while survivors and time.monotonic() < deadline:
            survivors = [pid for pid in survivors if _pid_alive(pid)]
            time.sleep(0.1)
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        if self.state_dir.exists():
            subprocess.run(["rm", "-rf", str(self.state_dir)], check=False)
        return sorted([*pids.values(), *node_pids])
