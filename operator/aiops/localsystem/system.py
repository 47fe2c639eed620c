"""`aiops up | down | status`: the whole local system, one step at a time.

up: the Go tools (built once, cached), the control plane (aiops.cluster), the aiops API (CRDs,
admission policy, roles) and the demo namespace, the rate limiter stack under supervisord
(ratelimiter.localstack), the operator out of cluster, and the example Subject, Healthy.
Every step finds what is already running and leaves it be, so `up` is idempotent.

down: the operator, the stack and the cluster, each by the pids it recorded; then checks that
no port of the system is still bound. Audit logs and the operator's log stay.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from aiops.cluster import ClusterError, LocalCluster
from aiops.cluster.local import PORT_OFFSETS
from aiops.cluster.tools import BUILD_SCRIPT, REPO_ROOT, tools_bin_dir
from aiops.localsystem import operator_proc
from aiops.localsystem.layout import SUBJECT, Layout, LocalSystemError, Record, load_record
from aiops.localsystem.subject import subject_manifest
from aiops.vocabulary import Health
from ratelimiter.localstack import PORT_SPAN, LocalStack, StackError
from ratelimiter.localstack.tools import ToolError

CRDS = REPO_ROOT / "crds"


class PreflightError(LocalSystemError):
    """`up` refused before starting anything."""


class Step(Protocol):
    def detail(self, text: str) -> None:
        """What the step is doing now (one line, replaced by the next)."""


class Reporter(Protocol):
    def step(self, title: str) -> contextlib.AbstractContextManager[Step]:
        """A step: timed from enter to exit; an exception marks it failed."""


@dataclass
class Component:
    """One line of `aiops status`."""

    name: str
    state: str  # running, stopped, down, absent...
    pid: int | None = None
    address: str = ""
    healthy: bool | None = None  # None: not checked (stopped on purpose, or no probe)
    detail: str = ""


def _ports(layout: Layout) -> list[int]:
    cluster = [layout.cluster_port + off for off in PORT_OFFSETS.values()]
    stack = list(range(layout.stack_port, layout.stack_port + PORT_SPAN))
    return [*cluster, *stack, layout.operator_port]


def listening_ports() -> set[int]:
    """The TCP ports some process listens on (IPv4 and IPv6), from /proc/net. Connections
    left in TIME_WAIT by a process that exited are not listeners, and block none of ours
    (they set SO_REUSEADDR): a bind test would count them."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def listened(port: int) -> bool:
    return port in listening_ports()


def busy_ports(layout: Layout, wait: float = 0) -> list[int]:
    """The system's ports something listens on, after up to `wait` seconds for them to go
    (a process just stopped may close its listener a moment after it was reaped)."""
    deadline = time.monotonic() + wait
    while True:
        busy = sorted(set(_ports(layout)) & listening_ports())
        if not busy or time.monotonic() >= deadline:
            return busy
        time.sleep(0.2)


class LocalSystem:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.cluster = LocalCluster(
            layout.name, port=layout.cluster_port, state_dir=layout.state_dir
        )
        self.stack = LocalStack(layout.stack_dir, layout.stack_port, scrape_interval_s=1.0)

    # -- up --------------------------------------------------------------------------------

    def up(self, report: Reporter) -> Record:
        record = self._record()
        with report.step("preflight (Debian tools, free ports)") as step:
            self._preflight(record, step)
        with report.step("Go tools (Kubernetes, kwok, toxiproxy)") as step:
            bin_dir = build_tools(step.detail)
        with report.step("control plane (kube-apiserver, etcd, scheduler, kwok)") as step:
            if self.cluster.status().state == "running":
                step.detail(f"already running at https://127.0.0.1:{self.layout.cluster_port}")
            else:
                step.detail(f"starting on 127.0.0.1:{self.layout.cluster_port}")
            st = self.cluster.up()
            step.detail(
                f"https://127.0.0.1:{self.layout.cluster_port}, {len(st.nodes)} nodes Ready"
            )
        record = Record(
            layout=self.layout,
            kubeconfig=self.cluster.kubeconfig,
            operator=record.operator if record else None,
        )
        record.save()
        kubectl = bin_dir / "kubectl"
        with report.step("aiops API (CRDs, admission policy, roles)") as step:
            self._install_api(kubectl, step)
        with report.step("rate limiter (Redis, toxiproxy, 3 nodes, Prometheus)") as step:
            if self.stack.running():
                step.detail("already running")
            else:
                self._wait_time_wait(step)
                step.detail(f"starting under supervisord on 127.0.0.1:{self.layout.stack_port}")
            try:
                urls = self.stack.up()
            except StackError as err:
                raise LocalSystemError(_stack_hint(str(err))) from err
            except ToolError as err:
                raise LocalSystemError(str(err)) from err
            step.detail(f"supervisord {urls.supervisor}, Prometheus {urls.prometheus}")
        with report.step("operator (out of cluster)") as step:
            self._operator(record, kubectl, step)
        with report.step(f"Subject {SUBJECT} in namespace {self.layout.namespace}") as step:
            self._kubectl(
                kubectl,
                "apply",
                "-f",
                "-",
                input=yaml.safe_dump(subject_manifest(self.stack, self.layout.namespace)),
            )
            step.detail("waiting for the operator to observe it Healthy")
            self._wait(
                "the Subject to be Healthy",
                lambda: self.subject_health() == Health.HEALTHY,
                90,
                hint=f"see {self.layout.operator_log}",
            )
            step.detail("Healthy")
        return record

    def _preflight(self, record: Record | None, step: Step) -> None:
        """Before anything starts: the Debian tools are there, and every port that nothing
        of this system holds yet is free (each busy one named, with the option that moves
        it)."""
        from ratelimiter.localstack import tools

        try:
            found = [tools.redis_server(), tools.prometheus()]
        except ToolError as err:
            raise PreflightError(f"{err} (hack/setup.sh installs it)") from err
        layout = self.layout
        wanted: dict[int, str] = {}
        if self.cluster.status().state == "absent":
            wanted |= {
                layout.cluster_port + off: f"{option} of the control plane; --port moves it"
                for option, off in PORT_OFFSETS.items()
            }
        if not self.stack.running():
            wanted |= {
                port: f"{role} of the rate limiter stack; --stack-port moves it"
                for role, port in self.stack.spec.ports.roles().items()
            }
        if not (record is not None and operator_proc.alive(record.operator)):
            wanted[layout.operator_port] = "the operator's health endpoint; --stack-port moves it"
        listening = listening_ports()
        busy = [(p, what) for p, what in sorted(wanted.items()) if p in listening]
        if busy:
            port, what = busy[0]
            raise PreflightError(
                f"port {port} is in use by another process ({what})"
                + (f"; {len(busy) - 1} more of its ports are too" if len(busy) > 1 else "")
                + ": stop what holds them, or choose other ports"
            )
        step.detail(
            f"{', '.join(p.name for p in found)} found; "
            + (f"{len(wanted)} ports free" if wanted else "every part already runs")
        )

    def _wait_time_wait(self, step: Step, most: float = 70) -> None:
        """Right after a `down`, the stack's ports hold connections in TIME_WAIT for up to a
        minute; nothing listens (the preflight checked), but the stack's own port check binds
        without SO_REUSEADDR and would refuse them. Wait them out, saying so."""
        from ratelimiter.localstack.ports import busy_ports as stack_busy

        deadline = time.monotonic() + most
        while (busy := stack_busy(self.stack.spec.ports)) and time.monotonic() < deadline:
            if any(port in listening_ports() for _, port in busy):
                return  # a real listener: the stack's own check says which, and how to fix
            step.detail(
                f"waiting for the last run's connections on port {busy[0][1]} to "
                "close (TIME_WAIT, a minute at most)"
            )
            time.sleep(1)

    def _record(self) -> Record | None:
        record = load_record(self.layout.name, self.layout.state_dir)
        if record is not None and record.layout != self.layout:
            raise LocalSystemError(
                f"system {self.layout.name!r} is up with other settings (cluster port "
                f"{record.layout.cluster_port}, stack port {record.layout.stack_port}, namespace "
                f"{record.layout.namespace}): 'aiops down --name {self.layout.name}' first, or "
                "run 'aiops up' with the same options"
            )
        return record

    def _install_api(self, kubectl: Path, step: Step) -> None:
        for path in (CRDS, CRDS / "rbac"):
            self._kubectl(kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(path))
        step.detail("waiting for the CRDs to be Established")
        self._kubectl(
            kubectl,
            "wait",
            "--for=condition=Established",
            "crd",
            "-l",
            "app.kubernetes.io/part-of=aiops",
            "--timeout=60s",
        )
        ns = self.layout.namespace
        if self._kubectl(kubectl, "get", "namespace", ns, check=False).returncode != 0:
            self._kubectl(kubectl, "create", "namespace", ns)
        step.detail(f"CRDs Established, namespace {ns}")

    def _operator(self, record: Record, kubectl: Path, step: Step) -> None:
        """The operator running and healthy, recorded (before its health is awaited, so that
        `down` finds one that never became healthy)."""
        layout = self.layout
        current = record.operator
        if current is not None and operator_proc.alive(current):
            if current.agent != operator_proc.wanted_agent():
                now = "set" if current.agent == "runbook" else "unset"
                step.detail(
                    f"ANTHROPIC_API_KEY is {now} now: restarting pid {current.pid} "
                    f"for the {operator_proc.wanted_agent()} agent"
                )
                operator_proc.stop(current)
            elif operator_proc.healthy(layout):
                step.detail(f"already running, pid {current.pid} ({current.agent} agent)")
                return
            else:
                step.detail(f"pid {current.pid} does not answer its health check: restarting")
                operator_proc.stop(current)
        if listened(layout.operator_port):
            raise LocalSystemError(
                f"port {layout.operator_port} (the operator's health endpoint) is in use by "
                f"another process: stop it, or choose other ports with 'aiops up --stack-port N'"
            )
        rec = record.operator = operator_proc.start(layout, self.cluster.kubeconfig, kubectl)
        record.save()
        step.detail(f"pid {rec.pid}, waiting for {layout.operator_health_url}")
        try:
            self._wait(
                "the operator's health endpoint",
                lambda: operator_proc.healthy(layout) or not operator_proc.alive(rec),
                60,
                hint=f"see {layout.operator_log}",
            )
        except LocalSystemError:
            operator_proc.stop(rec)  # a run again starts a fresh one
            raise
        if not operator_proc.alive(rec):
            raise LocalSystemError(f"the operator exited at start: see {layout.operator_log}")
        step.detail(f"pid {rec.pid}, healthy at {layout.operator_health_url} ({rec.agent} agent)")

    def _kubectl(
        self, kubectl: Path, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(kubectl), "--kubeconfig", str(self.cluster.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        if check and proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise LocalSystemError(f"kubectl {' '.join(args[:3])}: {last}")
        return proc

    @staticmethod
    def _wait(what: str, ready: Callable[[], bool], timeout: float, hint: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise LocalSystemError(
                    f"timed out after {timeout:.0f} s waiting for {what}"
                    + (f": {hint}" if hint else "")
                )
            time.sleep(0.25)

    def subject_health(self) -> str | None:
        from kubernetes import client, config

        try:
            api = client.CustomObjectsApi(
                config.new_client_from_config(config_file=str(self.cluster.kubeconfig))
            )
            obj: Any = api.get_namespaced_custom_object(
                "aiops.dev",
                "v1alpha1",
                self.layout.namespace,
                "subjects",
                SUBJECT,
                _request_timeout=5,
            )
        except Exception:
            return None
        return str(((obj or {}).get("status") or {}).get("health") or "") or None

    # -- down ------------------------------------------------------------------------------

    @classmethod
    def existing(cls, layout: Layout) -> LocalSystem:
        """The system `up` recorded under layout's name and state dir (its ports and namespace
        as they were then), else one with `layout`."""
        record = load_record(layout.name, layout.state_dir)
        return cls(record.layout if record is not None else layout)

    def down(self, report: Reporter) -> None:
        record = load_record(self.layout.name, self.layout.state_dir)
        layout = self.layout
        with report.step("operator") as step:
            if (
                record is not None
                and record.operator is not None
                and operator_proc.stop(record.operator)
            ):
                step.detail(f"stopped pid {record.operator.pid}")
            else:
                step.detail("not running")
        with report.step("rate limiter stack") as step:
            try:
                stopped = LocalStack.existing(layout.stack_dir).down()
            except StackError:
                stopped = []
            step.detail(f"stopped {len(stopped)} processes" if stopped else "not running")
        with report.step("control plane") as step:
            try:
                pids = self.cluster.down()
            except ClusterError as err:
                raise LocalSystemError(str(err)) from err
            step.detail(f"stopped {len(pids)} processes" if pids else "not running")
        with report.step("ports") as step:
            if record is None:
                # Without a record the ports are not known to be ours: another system may
                # hold them (the defaults, most likely). Nothing more to check.
                step.detail(f"no record of system {layout.name!r} (was it up?): ports not checked")
                return
            busy = busy_ports(layout, wait=10)
            if busy:
                raise LocalSystemError(
                    f"port(s) {', '.join(map(str, busy))} still in use after down: another "
                    "process holds them (see `ss -ltnp`)"
                )
            step.detail(f"{len(_ports(layout))} ports free; audit logs kept in {layout.audit_dir}")
        shutil.rmtree(layout.stack_dir, ignore_errors=True)
        layout.record_path.unlink(missing_ok=True)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> list[Component]:
        record = load_record(self.layout.name, self.layout.state_dir)
        out: list[Component] = []
        cst = self.cluster.status()
        server = f"https://127.0.0.1:{self.layout.cluster_port}"
        if cst.state == "absent":
            out.append(Component("control plane", "absent", address=server))
        for component, pid in sorted(cst.processes.items()):
            address = server if component == "kube-apiserver" else ""
            out.append(
                Component(
                    component,
                    "running",
                    pid,
                    address,
                    healthy=cst.state == "running",
                    detail="" if cst.state == "running" else cst.problem,
                )
            )
        out += [Component(c, "dead", healthy=False, detail=cst.problem) for c in cst.dead]
        out += self._stack_status()
        op = record.operator if record else None
        if operator_proc.alive(op):
            assert op is not None
            ok = operator_proc.healthy(self.layout)
            out.append(
                Component(
                    "operator",
                    "running",
                    op.pid,
                    self.layout.operator_health_url,
                    ok,
                    f"log {self.layout.operator_log}",
                )
            )
        else:
            out.append(
                Component(
                    "operator",
                    "stopped" if record else "absent",
                    address=self.layout.operator_health_url,
                    healthy=False if record else None,
                )
            )
        if cst.state == "running":
            health = self.subject_health()
            out.append(
                Component(
                    f"Subject {self.layout.namespace}/{SUBJECT}",
                    health or "absent",
                    healthy=health == Health.HEALTHY,
                    detail=f"KUBECONFIG={self.cluster.kubeconfig}",
                )
            )
        return out

    def _stack_status(self) -> list[Component]:
        try:
            stack = LocalStack.existing(self.layout.stack_dir)
        except StackError:
            return [Component("rate limiter stack", "absent")]
        sup = stack.supervisord_pid()
        urls = stack.urls
        out = [
            Component(
                "supervisord",
                "running" if sup else "stopped",
                sup,
                f"{urls.supervisor}/RPC2",
                healthy=stack.running(),
            )
        ]
        if not sup:
            return out
        try:
            programs = stack.status()
        except (OSError, xmlrpc.client.Error):
            return out
        p = stack.spec.ports
        address = {
            "redis": f"127.0.0.1:{p.redis}",
            "toxiproxy": urls.toxiproxy,
            "prometheus": urls.prometheus,
            **urls.nodes,
        }
        for name, info in programs.items():
            state = str(info["statename"]).lower()
            running = state == "running"
            probe = _probe(name, address.get(name, ""), urls.redis) if running else None
            # The load generator is stopped until a demo starts it: that is not unhealthy.
            healthy = probe if running else (None if name == "loadgen" else False)
            out.append(
                Component(name, state, int(info["pid"]) or None, address.get(name, ""), healthy)
            )
        return out


def _probe(name: str, address: str, redis_url: str) -> bool | None:
    """The program's own readiness: Redis PING, the nodes' /health, Prometheus /-/ready,
    toxiproxy's proxy. None for programs without one."""
    if name == "redis":
        import redis

        try:
            return bool(redis.Redis.from_url(redis_url, socket_timeout=1).ping())
        except Exception:
            return False
    path = {"prometheus": "/-/ready", "toxiproxy": "/proxies/redis"}.get(
        name, "/health" if name.startswith("rl-node-") else None
    )
    if path is None:
        return None
    try:
        return httpx.get(address + path, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _stack_hint(message: str) -> str:
    if "busy" in message and "--base-port" in message:
        return message.replace(
            "pick another --base-port",
            "stop what holds it, or choose other ports with 'aiops up --stack-port N'",
        )
    return message


def build_tools(detail: Callable[[str], None]) -> Path:
    """The Go tools' bin directory, building them first when they are not cached. The cold
    build takes minutes: each package `go build -v` reports becomes the step's detail."""
    cached = tools_bin_dir(build=False, required=())
    if (cached / ".complete").exists() or os.environ.get("AIOPS_TOOLS_BIN"):
        detail(f"cached in {cached}")
        return tools_bin_dir(build=False)
    if shutil.which("go") is None:
        raise LocalSystemError(
            "the Go toolchain is missing and the tools are not built yet: "
            "install Go 1.26+ and put 'go' on PATH (hack/setup.sh says how)"
        )
    detail("cold build: tens of minutes on 2 cores, once; cached afterwards")
    stream_build(BUILD_SCRIPT, detail)
    return tools_bin_dir(build=False)


def stream_build(script: Path, detail: Callable[[str], None]) -> None:
    """Runs the build script with `go build -v` (GOFLAGS), each line it writes becoming the
    step's detail with a count of the packages compiled so far."""
    env = {**os.environ, "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -v".strip()}
    proc = subprocess.Popen(
        [str(script)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    packages, tail = 0, list[str]()
    for line in proc.stderr:
        line = line.strip()
        tail = [*tail[-4:], line]
        if line and not line.startswith(("aiops:", "go: downloading")):
            packages += 1
        detail(f"{packages} packages compiled; {line[:90]}")
    if proc.wait() != 0:
        raise LocalSystemError(
            f"building the Go tools failed (exit {proc.returncode}): "
            f"{' | '.join(tail[-2:])}; run hack/tools/build.sh to see all"
        )
