#!/usr/bin/env python
"""Benchmark: time to detect each rate limiter fault, fault caused -> Incident exists.

    .venv/bin/python hack/bench/ttd.py                    # 10 runs per fault, a table
    .venv/bin/python hack/bench/ttd.py --runs 3 --json    # quicker; machine-readable

What runs, all real: the API server KUBECONFIG points at (or a local kwokctl one started
here), the local rate limiter stack (Redis, toxiproxy, three nodes, Prometheus scraping every
second, the load generator at 50 checks/s), and the operator's subject loop as its own process
(`kopf run -m aiops.loops.subjects`) watching one Subject: interval 1 s, latency window 5 s,
every hold set to 0 s, so what is timed is detection, not the policy of waiting.

Each fault is injected through the plugin's own chaos faults (what a Chaos resource does), and
its time to detect is the Incident's `status.detectedAt` (the operator's clock) minus the
moment the injection returned (the fault in place), on the same host. Then the fault is
reverted, and the next run starts once the breach has cleared and the Subject is Healthy.

Goal (issue #5): at most interval + 1 s for probes, plus the scrape interval for metrics.
Not a test: numbers on a shared 2-core machine move with whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from aiops.cluster import LocalCluster
from aiops.cluster.tools import tools_bin_dir
from aiops.subjects.context import PluginContext
from aiops.subjects.workload import SupervisorWorkload
from ratelimiter.localstack import LocalStack, find_free_base
from ratelimiter_subject.config import RateLimiterConfig
from ratelimiter_subject.plugin import RateLimiterPlugin

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "aiops.dev", "v1alpha1"
INTERVAL_S = 1.0
SCRAPE_S = 1.0
SUBJECT = "ttd"
DRIFT_KEY, BYPASS_KEY, GHOST_KEY = "ttd-drift", "ttd-bypass", "ttd-ghost"


@dataclass(frozen=True)
class Fault:
    name: str  # the plugin's chaos fault
    target: str
    invariant: str
    entity: str
    source: str  # probe or metrics: what the goal allows for


# Redis outage last: a restarted Redis comes back empty.
FAULTS = (
    Fault("kill_node", "rl-node-2", "node_down", "rl-node-2", "probe"),
    Fault("redis_latency", "", "high_latency", "all-nodes", "metrics"),
    Fault("counter_drift", DRIFT_KEY, "counter_drift", DRIFT_KEY, "probe"),
    Fault("bypass_limit", BYPASS_KEY, "over_limit", BYPASS_KEY, "probe"),
    Fault("ghost_limit", GHOST_KEY, "ghost_allowing", GHOST_KEY, "probe"),
    Fault("redis_outage", "", "redis_disconnected", "redis", "probe"),
)


@dataclass
class Row:
    fault: str
    invariant: str
    source: str
    runs: int
    median_s: float
    min_s: float
    max_s: float
    goal_s: float
    other_entities: int  # runs whose first Incident named another entity than expected
    extra_incidents: int  # Incidents beyond the one expected, over all runs


def log(message: str) -> None:
    print(f"[ttd {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise SystemExit(f"ttd: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the environment ---------------------------------------------------------------------------


@contextlib.contextmanager
def api_server(kubectl: Path) -> Iterator[Path]:
    """KUBECONFIG's cluster when it answers, else a local one of our own for the run."""
    existing = os.environ.get("KUBECONFIG")
    if (
        existing
        and Path(existing).is_file()
        and subprocess.run(
            [str(kubectl), "--kubeconfig", existing, "get", "--raw", "/readyz"],
            capture_output=True,
            timeout=10,
            check=False,
        ).returncode
        == 0
    ):
        yield Path(existing)
        return
    state = Path(tempfile.mkdtemp(prefix="aiops-ttd-"))
    local = LocalCluster("aiops-ttd", port=free_port(), state_dir=state)
    log("starting a local API server (kwokctl)")
    local.up()
    try:
        yield local.kubeconfig
    finally:
        local.down()
        shutil.rmtree(state, ignore_errors=True)


def kubectl_run(kubectl: Path, kubeconfig: Path, *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        text=True,
        capture_output=True,
        check=True,
        timeout=120,
    )


@contextlib.contextmanager
def stack_up() -> Iterator[LocalStack]:
    directory = Path(tempfile.mkdtemp(prefix="aiops-ttd-stack-"))
    stack = LocalStack(directory, find_free_base(), scrape_interval_s=SCRAPE_S)
    log("starting the rate limiter stack")
    stack.up(timeout=90)
    stack.start_program("loadgen")
    try:
        yield stack
    finally:
        stack.down()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def subject_loop(kubeconfig: Path, namespace: str, log_path: Path) -> Iterator[None]:
    """The operator's subject loop as a process of its own (the incident loop stays off: it
    would move each Incident on while we only time its opening)."""
    argv = [
        sys.executable,
        "-m",
        "kopf",
        "run",
        "--standalone",
        "--namespace",
        namespace,
        "-m",
        "aiops.loops.startup",
        "-m",
        "aiops.loops.subjects",
    ]
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def traffic(url: str, key: str, per_second: float = 20) -> Iterator[None]:
    """Checks for the ghost key, all the time: ghost_allowing is about a key being let through."""
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=2) as http:
            while not stop.wait(1 / per_second):
                with contextlib.suppress(httpx.HTTPError):
                    http.post(f"{url}/check", json={"key": key})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def subject_config(stack: LocalStack) -> dict[str, Any]:
    urls = stack.urls
    return {
        "adminUrls": list(urls.nodes.values()),
        "redisUrl": urls.redis,
        "latencyWindow": "5s",
        "toxiproxyUrl": urls.toxiproxy,
    }


def holds(latency_zero: bool) -> list[dict[str, str]]:
    """Every hold 0 s, so detection is what is timed. high_latency keeps its default hold
    except while its own fault is timed: with no hold, a loaded machine's p99 noise above
    50 ms would open Incidents in the other runs."""
    return [
        {"name": f.invariant, "for": "0s"}
        for f in FAULTS
        if latency_zero or f.invariant != "high_latency"
    ]


def subject_manifest(stack: LocalStack) -> dict[str, Any]:
    urls = stack.urls
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Subject",
        "metadata": {"name": SUBJECT},
        "spec": {
            "type": "ratelimiter",
            "config": subject_config(stack),
            "prometheus": {"url": urls.prometheus},
            "workload": {"kind": "supervisor", "supervisor": {"url": f"{urls.supervisor}/RPC2"}},
            "interval": f"{INTERVAL_S:.0f}s",
            "autonomy": "observe",
            "invariants": holds(latency_zero=False),
        },
    }


# -- one run -------------------------------------------------------------------------------


class Bench:
    def __init__(self, custom: k8s.CustomObjectsApi, namespace: str, stack: LocalStack) -> None:
        self.custom = custom
        self.namespace = namespace
        self.stack = stack
        urls = stack.urls
        self.ctx = PluginContext(
            f"{namespace}/{SUBJECT}", None, SupervisorWorkload(f"{urls.supervisor}/RPC2")
        )
        cfg = RateLimiterConfig.model_validate(subject_config(stack))
        self.plugin = RateLimiterPlugin(cfg, self.ctx)
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.run_until_complete(self.plugin.close())
        self.loop.run_until_complete(self.ctx.aclose())
        self.loop.close()

    def incidents(self) -> dict[str, dict[str, Any]]:
        listed: Any = self.custom.list_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "incidents",
            label_selector=f"aiops.dev/subject={SUBJECT}",
        )
        return {i["metadata"]["name"]: i for i in listed["items"]}

    def healthy(self) -> bool:
        obj: Any = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "subjects", SUBJECT
        )
        return bool((obj.get("status") or {}).get("health") == "Healthy")

    def use_holds(self, latency_zero: bool) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "subjects",
            SUBJECT,
            {"spec": {"invariants": holds(latency_zero)}},
        )

        def current() -> bool:
            obj: Any = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "subjects", SUBJECT
            )
            status = obj.get("status") or {}
            return bool(
                status.get("observedGeneration") == obj["metadata"]["generation"]
                and status.get("health") == "Healthy"
            )

        wait("the Subject to take its new holds", current, timeout=90, every=0.5)

    def fault(self, f: Fault, inject: bool) -> None:
        params = self.plugin.fault(f.name).params.model_validate({})
        call = self.plugin.inject if inject else self.plugin.revert
        result = self.loop.run_until_complete(call(f.name, params, f.target))
        if not result.ok:
            raise SystemExit(f"ttd: {f.name} {'inject' if inject else 'revert'}: {result}")

    def prepare(self, f: Fault) -> None:
        if f.name == "bypass_limit":  # a limit whose window outlasts the run
            node = self.stack.urls.nodes["rl-node-1"]
            httpx.put(
                f"{node}/admin/limits/{BYPASS_KEY}",
                json={"limit": 5, "window_ms": 600_000},
                timeout=5,
            ).raise_for_status()

    def run_once(self, f: Fault) -> tuple[float, str, int]:
        """(time to detect in s, the first new Incident's entity, Incidents opened)."""
        wait("the Subject Healthy", self.healthy, timeout=90, every=0.5)
        self.prepare(f)
        before = set(self.incidents())
        self.fault(f, inject=True)
        caused = datetime.now(UTC)
        try:
            new = wait(
                f"an Incident of {f.invariant} for {f.name}",
                lambda: [
                    i
                    for n, i in self.incidents().items()
                    if n not in before
                    and (i.get("status") or {}).get("detectedAt")
                    and i["spec"]["invariant"] == f.invariant
                ],
                timeout=60,
            )
        finally:
            self.fault(f, inject=False)
        first = min(new, key=lambda i: i["status"]["detectedAt"])
        detected = datetime.fromisoformat(first["status"]["detectedAt"])
        name = first["metadata"]["name"]

        def cleared() -> bool:
            conds = (self.incidents().get(name, {}).get("status") or {}).get("conditions", [])
            return any(c["type"] == "Breached" and c["status"] == "False" for c in conds)

        wait(f"{f.invariant} to clear", cleared, timeout=90, every=0.5)
        wait("the Subject Healthy", self.healthy, timeout=90, every=0.5)
        opened = {n: i for n, i in self.incidents().items() if n not in before}
        for n, i in opened.items():
            if n != name:
                log(
                    f"  also opened: {i['spec']['invariant']} on {i['spec'].get('entity')}: "
                    f"{i['spec']['summary'][:200]}"
                )
            # Closed, as the incident loop or a person would: the next run's breach is a new
            # episode, which opens a new Incident (an open one would be reused).
            self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                self.namespace,
                "incidents",
                n,
                {"status": {"phase": "Resolved", "resolvedAt": datetime.now(UTC).isoformat()}},
            )
        return (
            (detected - caused).total_seconds(),
            str(first["spec"].get("entity", "")),
            len(opened),
        )


def measure(bench: Bench, faults: list[Fault], runs: int) -> list[Row]:
    rows = []
    for f in faults:
        bench.use_holds(latency_zero=f.invariant == "high_latency")
        times: list[float] = []
        other = extra = 0
        for i in range(runs):
            ttd, entity, opened = bench.run_once(f)
            times.append(ttd)
            other += entity != f.entity
            extra += opened - 1
            log(
                f"{f.name} run {i + 1}/{runs}: {ttd:.2f} s ({f.invariant} on {entity}"
                + (f", {opened} Incidents" if opened != 1 else "")
                + ")"
            )
        goal = INTERVAL_S + 1 + (SCRAPE_S if f.source == "metrics" else 0)
        rows.append(
            Row(
                f.name,
                f.invariant,
                f.source,
                runs,
                statistics.median(times),
                min(times),
                max(times),
                goal,
                other,
                extra,
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    head = (
        "| fault | invariant | source | runs | median TTD | min | max | goal | "
        "other entity | extra Incidents |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r.fault} | {r.invariant} | {r.source} | {r.runs} | {r.median_s:.2f} s | "
            f"{r.min_s:.2f} s | {r.max_s:.2f} s | {r.goal_s:.0f} s | {r.other_entities} | "
            f"{r.extra_incidents} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--runs", type=int, default=10, help="runs per fault (default 10)")
    parser.add_argument(
        "--faults",
        default=",".join(f.name for f in FAULTS),
        help="comma-separated chaos faults to time (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    wanted = args.faults.split(",")
    faults = [f for f in FAULTS if f.name in wanted]
    if len(faults) != len(wanted):
        raise SystemExit(
            f"ttd: unknown fault in {args.faults!r}; known: {', '.join(f.name for f in FAULTS)}"
        )
    kubectl = tools_bin_dir(build=True) / "kubectl"
    namespace = f"ttd-{uuid.uuid4().hex[:6]}"
    with (
        api_server(kubectl) as kubeconfig,
        stack_up() as stack,
        tempfile.TemporaryDirectory(prefix="aiops-ttd-log-") as logs,
    ):
        for path in (REPO / "crds", REPO / "crds" / "rbac"):
            kubectl_run(
                kubectl, kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(path)
            )
        kubectl_run(kubectl, kubeconfig, "create", "namespace", namespace)
        try:
            kubectl_run(
                kubectl,
                kubeconfig,
                "-n",
                namespace,
                "apply",
                "-f",
                "-",
                stdin=yaml.safe_dump(subject_manifest(stack)),
            )
            custom = k8s.CustomObjectsApi(
                k8s_config.new_client_from_config(config_file=str(kubeconfig))
            )
            bench = Bench(custom, namespace, stack)
            try:
                with (
                    subject_loop(kubeconfig, namespace, Path(logs) / "operator.log"),
                    traffic(stack.urls.nodes["rl-node-3"], GHOST_KEY),
                ):
                    rows = measure(bench, faults, args.runs)
            finally:
                bench.close()
        finally:
            kubectl_run(kubectl, kubeconfig, "delete", "namespace", namespace, "--wait=false")
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(table(rows))


if __name__ == "__main__":
    main()
