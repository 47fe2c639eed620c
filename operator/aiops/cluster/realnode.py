"""A real node beside kwok's simulated ones: containerd (with runc and the CNI bridge), kubelet,
kube-proxy and a small cluster DNS on this machine, registered into the local control plane.

Only our own workloads land on it: it is registered with the taint and label
`aiops.dev/real-node=true` (NoSchedule), and kwok manages only the nodes annotated
`kwok.x-k8s.io/node=fake` (`LocalCluster` starts it so). The kubelet settings this kernel needs
are documented in docs/deploy.md; each is explained where it is set below.

`down` stops every process it started and removes what they leave behind: containers are
stopped before containerd, then mounts under the node's directories, the pods' network
namespaces, the bridge, and the iptables rules of kube-proxy and of the bridge plugin. It works
from the pid files and directories alone, so it also cleans up after a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from aiops.cluster.errors import ClusterError
from aiops.cluster.node_identity import KUBE_PROXY, Identity, kubeconfig_for, kubelet_identity
from aiops.cluster.runtime_check import RUNTIME, runtime_refusal

TAINT_KEY = "aiops.dev/real-node"
BRIDGE = "aiops0"
CNI_NETWORK = "aiops-real-node"
POD_CIDR = "10.244.0.0/24"
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
NETNS_DIR = Path("/run/netns")
# The ports the node's components serve on, fixed: one real node per machine.
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
PROXY_METRICS_PORT = 10249
PROXY_HEALTHZ_PORT = 10256
COMPONENTS = ("containerd", "dns", "kube-proxy", "kubelet")
# Set while the node runs, each put back as it was by `down`: pods' traffic is routed through
# the host (forwarding), and a pod that reaches a Service whose endpoint is on the same bridge
# gets its reply un-NATed only if bridged packets pass iptables.
SYSCTLS = {
    "/proc/sys/net/ipv4/ip_forward": "1",
    "/proc/sys/net/bridge/bridge-nf-call-iptables": "1",
}


def node_ip() -> str:
    """This machine's own address (the interface of its default route): pods must reach the
    API server and the DNS through it, and loopback inside a pod is the pod itself. Found
    without sending anything: connect() on UDP only picks a route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("198.51.100.1", 9))  # TEST-NET-2: routed like anything non-local
            ip: str = sock.getsockname()[0]
        except OSError as exc:
            raise ClusterError(f"the real node needs a non-loopback IPv4 address: {exc}") from exc
    if ip.startswith("127."):
        raise ClusterError("the real node needs a non-loopback IPv4 address, and found none")
    return ip


def _cni_bin_dir() -> Path | None:
    for d in CNI_BIN_DIRS:
        if all((d / p).exists() for p in CNI_PLUGINS):
            return d
    return None


def missing_prerequisites(bin_dir: Path, runtime: str = RUNTIME) -> str | None:
    """One line saying what this machine lacks for a real node, or None. Last, it runs one
    container with `runtime`: a kernel that refuses it is named here, not by a stuck pod."""
    missing = [
        cmd
        for cmd in ("containerd", "ctr", runtime, "iptables", "ip", "openssl")
        if not shutil.which(cmd)
    ]
    if _cni_bin_dir() is None:
        missing.append(f"the CNI plugins {', '.join(CNI_PLUGINS)} (containernetworking-plugins)")
    missing += [
        f"{name} (hack/tools/build.sh)"
        for name in ("kubelet", "kube-proxy")
        if not (bin_dir / name).exists()
    ]
    if missing:
        return "the real node needs " + ", ".join(missing) + ": run hack/setup.sh as root"
    if os.geteuid() != 0:
        return "the real node needs root (containerd, kubelet and iptables run as root)"
    if (
        not Path("/sys/fs/cgroup/memory").exists()
        and not Path("/sys/fs/cgroup/cgroup.controllers").exists()
    ):
        return "the real node needs the memory cgroup, and this kernel mounts none"
    return runtime_refusal(runtime)


@dataclass
class RealNode:
    """The real node of one local cluster; its files live in `<cluster state>/node`."""

    name: str
    dir: Path
    kubeconfig: Path
    pki_dir: Path
    bin_dir: Path
    # The OCI runtime containerd's runc shim runs (`aiops cluster up --runtime`).
    runtime: str = RUNTIME

    @property
    def kept_logs(self) -> Path:
        """Where `down` leaves the node's logs."""
        return self.dir.parent.parent / f"{self.name}-logs"

    @property
    def sock(self) -> Path:
        return self.dir / "run" / "containerd.sock"

    def _pid_file(self, component: str) -> Path:
        return self.dir / "pids" / f"{component}.pid"

    def recorded(self) -> list[str]:
        """Components with a pid file (started, whether or not they still run)."""
        return [c for c in COMPONENTS if self._pid_file(c).exists()]

    def pids(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for component in COMPONENTS:
            with contextlib.suppress(OSError, ValueError):
                pid = int(self._pid_file(component).read_text())
                # Still ours, not a reused pid: each runs in the node's directory.
                if Path(f"/proc/{pid}/cwd").resolve() == self.dir.resolve():
                    found[component] = pid
        return found

    # -- up -------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Raise, in one line, what keeps this machine from running the node (the runtime
        check included); `LocalCluster.up` asks before it starts anything."""
        problem = missing_prerequisites(self.bin_dir, self.runtime)
        if problem:
            raise ClusterError(problem)

    def up(self, images: Path, wait: float = 120.0) -> None:
        """Start what is not running and wait for the node to be Ready (after `preflight`).
        On failure nothing is left running; the logs stay in `kept_logs`, which the error
        names."""
        try:
            self._up(images, wait)
        except BaseException:
            self.down(keep_logs=True)
            raise

    def _up(self, images: Path, wait: float) -> None:
        sandbox_file = images / "sandbox-image"
        if not sandbox_file.exists():
            raise ClusterError(
                f"{sandbox_file} is missing: build the images first with hack/images.sh {images}"
            )
        ip = node_ip()
        running = self.pids()
        for d in ("pids", "logs", "run", "cni/net.d", "cni/ipam"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        self._snapshot_host()
        self._set_sysctls()
        node_config = self._kubeconfig_of(kubelet_identity(self.name), "kubelet")
        proxy_config = self._kubeconfig_of(KUBE_PROXY, "kube-proxy")
        if "containerd" not in running:
            self._start_containerd(sandbox_file.read_text().strip())
        self._import_images(images)
        if "dns" not in running:
            self._spawn(
                "dns",
                [
                    sys.executable,
                    "-m",
                    "aiops.cluster.dns",
                    "--kubeconfig",
                    str(node_config),  # it reads Services and pods, as a kubelet does
                    "--listen",
                    ip,
                    "--node",
                    self.name,
                ],
            )
        if "kube-proxy" not in running:
            self._start_kube_proxy(proxy_config)
        if "kubelet" not in running:
            self._start_kubelet(ip, node_config)
        self._wait_ready(wait)

    def _set_sysctls(self) -> None:
        saved = self.dir / "sysctls.json"
        if not saved.exists():
            before = {}
            for path in SYSCTLS:
                with contextlib.suppress(OSError):
                    before[path] = Path(path).read_text().strip()
            saved.write_text(json.dumps(before))
        for path, value in SYSCTLS.items():
            try:
                Path(path).write_text(value)
            except OSError as exc:
                raise ClusterError(f"the real node needs {path} = {value}: {exc}") from exc

    def _restore_sysctls(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for path, value in json.loads((self.dir / "sysctls.json").read_text()).items():
                with contextlib.suppress(OSError):
                    Path(path).write_text(value)

    def _spawn(self, component: str, argv: list[str]) -> None:
        log = (self.dir / "logs" / f"{component}.log").open("ab")
        # A session of its own: a Ctrl-C in the terminal that ran `up` does not reach it.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.dir,
        )
        self._pid_file(component).write_text(str(proc.pid))
        time.sleep(0.5)
        if proc.poll() is not None:
            tail = (self.dir / "logs" / f"{component}.log").read_text(errors="replace")
            last = (tail.strip().splitlines() or ["(no output)"])[-1]
            raise ClusterError(f"{component} exited at once (exit {proc.returncode}): {last}")

    def _start_containerd(self, sandbox_image: str) -> None:
        cni_bin = _cni_bin_dir()
        root = self.dir / "containerd"
        config = f"""version = 2
root = "{root / "root"}"
state = "{self.dir / "run" / "containerd-state"}"
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # Without it every sandbox fails ("can't get final child's PID from pipe"): runc may not
  # lower a child's oom_score_adj below containerd's own on this kernel.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{shutil.which(self.runtime) or self.runtime}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{self.dir / "cni" / "net.d"}"
"""
        (self.dir / "containerd.toml").write_text(config)
        cni = {
            "cniVersion": "0.4.0",
            "name": CNI_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.dir / "cni" / "ipam"),
                        "ranges": [[{"subnet": POD_CIDR}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (self.dir / "cni" / "net.d" / "10-aiops.conflist").write_text(json.dumps(cni, indent=2))
        self._spawn("containerd", ["containerd", "--config", str(self.dir / "containerd.toml")])
        deadline = time.monotonic() + 30
        while not self.sock.exists():
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"containerd did not open {self.sock} in 30 s: see {self.kept_logs}"
                )
            time.sleep(0.2)

    def _ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", str(self.sock), "--namespace", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _import_images(self, images: Path) -> None:
        """images.tar (hack/images.sh) into containerd's k8s.io namespace, unless containerd
        has every image images.list names already."""
        listed = images / "images.list"
        want = set(listed.read_text().split()) if listed.exists() else set()
        have = set(self._ctr("images", "ls", "-q").stdout.split())
        if want and want <= have:
            return
        archive = images / "images.tar"
        if not archive.exists():
            raise ClusterError(f"{archive} is missing: build the images with hack/images.sh")
        proc = self._ctr("images", "import", str(archive), timeout=600)
        if proc.returncode != 0:
            raise ClusterError(f"ctr could not import {archive}: {proc.stderr.strip()}")

    def _kubeconfig_of(self, identity: Identity, component: str) -> Path:
        """The component's own credentials (node_identity), not the admin's."""
        return kubeconfig_for(
            identity, component, self.kubeconfig, self.pki_dir, self.dir / "credentials"
        )

    def _start_kube_proxy(self, kubeconfig: Path) -> None:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": self.name,
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "metricsBindAddress": f"127.0.0.1:{PROXY_METRICS_PORT}",
            "healthzBindAddress": f"127.0.0.1:{PROXY_HEALTHZ_PORT}",
            # Leave the host's conntrack sysctls as they are (a VM may refuse to change them).
            "conntrack": {
                "maxPerCore": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
        }
        path = self.dir / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config))
        self._spawn("kube-proxy", [str(self.bin_dir / "kube-proxy"), "--config", str(path)])

    def _start_kubelet(self, ip: str, kubeconfig: Path) -> None:
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # This kernel mounts cgroup v1 controllers with only an empty v2 hierarchy beside
            # them (hybrid): kubelet 1.35+ refuses v1 unless told not to fail.
            "failCgroupV1": False,
            # cgroupfs, not systemd: there is no systemd (PID 1) to delegate cgroups to.
            "cgroupDriver": "cgroupfs",
            # No QoS cgroup tree (kubepods/burstable/...): on the hybrid hierarchy kubelet cannot
            # create it with every v1 controller; pods' cgroups sit under the runtime's.
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            # The machine may have swap; the node must still start.
            "failSwapOn": False,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                # kube-apiserver shows itself with the admin client certificate
                # (--kubelet-client-certificate), signed by the cluster's CA: `kubectl logs`.
                "x509": {"clientCAFile": str(self.pki_dir / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "clusterDNS": [ip],
            "clusterDomain": "cluster.local",
            "containerRuntimeEndpoint": f"unix://{self.sock}",
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": KUBELET_HEALTHZ_PORT,
            "registerWithTaints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
            "resolvConf": "/etc/resolv.conf",
            # Not /var/log/pods: the containers' logs go with the node.
            "podLogsDir": str(self.dir / "pod-logs"),
            # No eviction or image garbage collection on a shared workstation disk: the node
            # runs a handful of test pods.
            "evictionHard": {"memory.available": "100Mi"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
        }
        path = self.dir / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config))
        self._spawn(
            "kubelet",
            [
                str(self.bin_dir / "kubelet"),
                "--config",
                str(path),
                "--kubeconfig",
                str(kubeconfig),
                "--hostname-override",
                self.name,
                "--node-ip",
                ip,
                "--node-labels",
                f"{TAINT_KEY}=true",
                "--root-dir",
                str(self.dir / "kubelet"),
                "--cert-dir",
                str(self.dir / "kubelet-pki"),
            ],
        )

    def _kubectl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _wait_ready(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            proc = self._kubectl(
                "get",
                "node",
                self.name,
                "-o",
                'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            )
            if proc.stdout.strip() == "True":
                return
            dead = [c for c in COMPONENTS if c not in self.pids()]
            if dead:
                raise ClusterError(
                    f"the real node's {', '.join(dead)} stopped: see {self.kept_logs}"
                )
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"node {self.name} was not Ready in {wait:.0f} s: see {self.kept_logs}"
                )
            time.sleep(1)

    # -- down -----------------------------------------------------------------------------

    def down(self, grace: float = 20.0, keep_logs: bool = False) -> list[int]:
        """Stop everything; return the pids stopped. Safe to run in any state, and twice.
        `keep_logs` (a failed `up`) leaves the node's logs in `kept_logs`."""
        if not self.dir.exists():
            return []
        pids = self.pids()
        # Pods first, while kubelet and containerd run: their sandboxes are torn down the
        # proper way (CNI DEL releases the address and the bridge plugin's rules).
        if "kubelet" in pids and "containerd" in pids:
            self._kubectl(
                "delete",
                "pods",
                "--all-namespaces",
                "--field-selector",
                f"spec.nodeName={self.name}",
                "--force",
                "--grace-period=0",
                "--wait=false",
            )
            self._wait_no_sandboxes(grace)
        for component in ("kubelet", "kube-proxy", "dns"):
            if component in pids:
                _stop(pids[component], grace)
        if "containerd" in pids and self.sock.exists():
            self._kill_tasks()
            _stop(pids["containerd"], grace)
        self._stop_shims(grace)
        if (self.bin_dir / "kube-proxy").exists():
            # Removes the KUBE-* chains and rules kube-proxy made.
            subprocess.run(
                [str(self.bin_dir / "kube-proxy"), "--cleanup"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        self._restore_host()
        self._unmount_all()
        self._remove_netns()
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
        self._restore_sysctls()
        with contextlib.suppress(ValueError):
            self._kubectl("delete", "node", self.name, "--wait=false", timeout=15)
        # The logs outlive the node (a failed `up` removes it): beside the cluster's state.
        if keep_logs and (self.dir / "logs").exists():
            subprocess.run(["rm", "-rf", str(self.kept_logs)], check=False)
            shutil.move(self.dir / "logs", self.kept_logs)
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)
        return sorted(pids.values())

    def _wait_no_sandboxes(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            tasks = self._ctr("tasks", "ls", "-q", timeout=10).stdout.split()
            if not tasks:
                return
            time.sleep(0.5)

    def _kill_tasks(self) -> None:
        for task in self._ctr("tasks", "ls", "-q", timeout=10).stdout.split():
            self._ctr("tasks", "kill", "--signal", "SIGKILL", task, timeout=10)
        time.sleep(0.5)
        for task in self._ctr("tasks", "ls", "-q", timeout=10).stdout.split():
            self._ctr("tasks", "delete", "--force", task, timeout=10)

    def _stop_shims(self, grace: float) -> None:
        """A containerd shim outlives containerd; ours are those whose command line names our
        socket (containerd passes its address to each shim). Their tasks are gone already:
        they are stopped all at once."""
        marker = str(self.sock).encode()
        shims = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    if marker in (proc / "cmdline").read_bytes():
                        shims.append(int(proc.name))
        _stop_all(shims, min(grace, 5.0))

    def _unmount_all(self) -> None:
        """Every mount under the node's directory (container root filesystems, shm, volumes),
        deepest first."""
        prefix = str(self.dir) + "/"
        for _ in range(3):
            mounts = [
                line.split()[4]
                for line in Path("/proc/self/mountinfo").read_text().splitlines()
                if line.split()[4].startswith(prefix)
            ]
            if not mounts:
                return
            for target in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", target], capture_output=True, check=False)

    def _remove_netns(self) -> None:
        """containerd's CRI names its pods' network namespaces cni-<uuid> under /run/netns
        (podman's are netns-<uuid>); those on our pod network, or empty, are ours to remove."""
        for ns in sorted(NETNS_DIR.glob("cni-*")) if NETNS_DIR.exists() else []:
            if self._netns_is_ours(ns):
                subprocess.run(["umount", str(ns)], capture_output=True, check=False)
                with contextlib.suppress(OSError):
                    ns.unlink()

    def _netns_is_ours(self, ns: Path) -> bool:
        # A namespace still holding our bridge's veth peer, or an empty one nobody runs in.
        proc = subprocess.run(
            ["ip", "netns", "exec", ns.name, "ip", "-4", "-o", "addr"],
            capture_output=True,
            text=True,
            check=False,
        )
        return POD_CIDR.rsplit(".", 2)[0] in proc.stdout or "inet " not in proc.stdout.replace(
            "inet 127.", ""
        )

    # -- what the node leaves on the host -------------------------------------------------

    def _snapshot_host(self) -> None:
        """Before the node's first start: the iptables chains and the host paths that exist,
        so that `down` removes exactly what the node added (kubelet's KUBE-FIREWALL and canary
        chains, kube-proxy's, the bridge plugin's CNI-*), and leaves anything older alone."""
        path = self.dir / "host-before.json"
        if path.exists():
            return
        chains = {family: sorted(_chains(family)) for family in IPTABLES}
        paths = [p for p in HOST_PATHS if Path(p).exists()]
        path.write_text(json.dumps({"chains": chains, "paths": paths}))

    def _restore_host(self) -> None:
        try:
            before = json.loads((self.dir / "host-before.json").read_text())
        except (OSError, ValueError):
            before = {"chains": {}, "paths": list(HOST_PATHS)}
        for family in IPTABLES:
            old = {tuple(c) for c in before["chains"].get(family, [])}
            _remove_chains(family, {c for c in _chains(family) if c not in old})
        # containerd keeps its shims' sockets and runc's state under /run/containerd whatever
        # its configured state directory; the CNI library caches results under /var/lib/cni;
        # kubelet's device plugin socket is in /var/lib/kubelet whatever its --root-dir.
        for p in HOST_PATHS:
            if p not in before["paths"]:
                subprocess.run(["rm", "-rf", p], check=False)
        results = Path("/var/lib/cni/results")
        for cached in results.glob(f"{CNI_NETWORK}-*") if results.exists() else []:
            cached.unlink(missing_ok=True)


IPTABLES = ("iptables", "ip6tables")
HOST_PATHS = ("/run/containerd", "/var/lib/cni", "/var/lib/kubelet")
NODE_CHAIN_PREFIXES = ("KUBE-", "CNI-")


def _chains(family: str) -> set[tuple[str, str]]:
    """(table, chain) of every KUBE-* and CNI-* chain there is now."""
    save = subprocess.run([f"{family}-save"], capture_output=True, text=True, check=False).stdout
    found: set[tuple[str, str]] = set()
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":") and line[1:].startswith(NODE_CHAIN_PREFIXES):
            found.add((table, line[1:].split()[0]))
    return found


def _remove_chains(family: str, chains: set[tuple[str, str]]) -> None:
    """Deletes every rule that jumps to one of `chains`, then the chains."""
    if not chains:
        return
    save = subprocess.run([f"{family}-save"], capture_output=True, text=True, check=False).stdout
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A "):
            words = shlex.split(line)
            target = words[words.index("-j") + 1] if "-j" in words else ""
            if (table, target) in chains and (table, words[1]) not in chains:
                subprocess.run(
                    [family, "-t", table, "-D", *words[1:]], capture_output=True, check=False
                )
    for table, chain in chains:
        subprocess.run([family, "-t", table, "-F", chain], capture_output=True, check=False)
    for table, chain in chains:
        subprocess.run([family, "-t", table, "-X", chain], capture_output=True, check=False)


def _stop(pid: int, grace: float) -> None:
    _stop_all([pid], grace)


def _alive(pid: int) -> bool:
    # Reap it if it is our child (a test that ran `up` in-process), so that it can go.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_all(pids: list[int], grace: float) -> None:
    """SIGTERM each, SIGKILL what is left after `grace` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    left = [pid for pid in pids if _alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [pid for pid in left if _alive(pid)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
