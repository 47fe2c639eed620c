#!/usr/bin/env python
"""Benchmark: the whole loop through Chaos objects, N times per fault: TTD and TTR measured from
the Chaos' injection.

    .venv/bin/python hack/bench/chaos_ttr.py                  # 10 runs per fault, a table
    .venv/bin/python hack/bench/chaos_ttr.py --runs 3 --json  # quicker; machine-readable

What runs, all real: the API server KUBECONFIG points at (or a local kwokctl one started
here), the local rate limiter stack (Redis, toxiproxy, three nodes, Prometheus, the load
generator), and the whole operator (`aiops operator run`) as its own process, watching one
Subject under autonomy `execute` with the runbook agent, interval 1 s, default holds.

Each run applies a Chaos (the fault held 60 s), waits for the Incident the subject loop links
to it to be Resolved by the runbook's action, and for the Chaos to record the Subject healthy
again; then deletes the Chaos (which reverts it at once) and waits for the Subject to be
Healthy before the next run. Times come from the objects, on the operator's clock:

    TTD    = Incident.status.detectedAt - Chaos.status.injectedAt   (includes the hold)
    TTR    = Incident.status.resolvedAt - Chaos.status.injectedAt   (includes verification)
    healed = Chaos.status.healthyAt     - Chaos.status.injectedAt   (first healthy observation)

Not a test: numbers on a shared 2-core machine move with whatever else runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from aiops.cluster.tools import tools_bin_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ttd import api_server, kubectl_run, stack_up, subject_config, wait

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "aiops.dev", "v1alpha1"
SUBJECT = "ttr"


@dataclass(frozen=True)
class Fault:
    name: str
    invariant: str
    target: Callable[[int], str]  # run number -> target member or key


# The faults whose runbook fix is low risk, so that `execute` runs it without a person:
# kill_node's restart_node is medium risk and waits for an Approval (a person's time, not the
# loop's, would be measured).
FAULTS = (Fault("counter_drift", "counter_drift", lambda i: f"ttr-drift-{i}"),)


@dataclass
class Row:
    fault: str
    invariant: str
    runs: int
    ttd_median_s: float
    ttd_max_s: float
    ttr_median_s: float
    ttr_max_s: float
    healed_median_s: float
    recovered_by: dict[str, int]


def log(message: str) -> None:
    print(f"[chaos-ttr {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@contextlib.contextmanager
def operator(kubeconfig: Path, namespace: str, workdir: Path) -> Iterator[None]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "AIOPS_AUDIT_DIR": str(workdir / "audit"),
        "AIOPS_OPERATOR_NAMESPACE": namespace,
        "AIOPS_CHAOS_SETTLE_TIMEOUT": "2m",
    }
    env.pop("ANTHROPIC_API_KEY", None)  # the runbook: the loop is timed, not a model
    with (workdir / "operator.log").open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiops.cli.main", "operator", "run", "-n", namespace],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Bench:
    def __init__(self, custom: k8s.CustomObjectsApi, namespace: str) -> None:
        self.custom = custom
        self.namespace = namespace

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj: Any = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )
        except k8s.ApiException as err:
            if err.status == 404:
                return None
            raise
        return dict(obj)

    def status(self, plural: str, name: str) -> dict[str, Any]:
        return dict((self.get(plural, name) or {}).get("status") or {})

    def healthy(self) -> bool:
        return self.status("subjects", SUBJECT).get("health") == "Healthy"

    def run_once(self, f: Fault, i: int) -> tuple[float, float, float, str]:
        wait("the Subject Healthy", self.healthy, timeout=120, every=0.5)
        name = f"ttr-{f.name.replace('_', '-')}-{uuid.uuid4().hex[:5]}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Chaos",
            "metadata": {"name": name},
            "spec": {
                "subject": SUBJECT,
                "fault": f.name,
                "duration": "60s",
                "target": {"member": f.target(i)},
            },
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "chaos", body)
        try:
            (incident,) = wait(
                f"an Incident linked to {name}",
                lambda: self.status("chaos", name).get("incidents"),
                90,
            )
            inc = wait(
                f"{incident} Resolved",
                lambda: (
                    s
                    if (s := self.status("incidents", incident)).get("phase")
                    in ("Resolved", "Escalated", "AwaitingApproval")
                    else None
                ),
                120,
            )
            if inc["phase"] != "Resolved":
                raise SystemExit(
                    f"chaos-ttr: {incident} is {inc['phase']}: "
                    f"{inc.get('escalationReason') or 'a person must approve'}"
                )
            chaos = wait(
                f"{name} to record the Subject healthy",
                lambda: s if (s := self.status("chaos", name)).get("healthyAt") else None,
                90,
            )
        finally:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "chaos", name
            )
            wait(f"{name} reverted and gone", lambda: self.get("chaos", name) is None, 120)
        injected = ts(chaos["injectedAt"])
        assert ts(inc["faultAt"]) == injected, (inc["faultAt"], chaos["injectedAt"])
        return (
            (ts(inc["detectedAt"]) - injected).total_seconds(),
            (ts(inc["resolvedAt"]) - injected).total_seconds(),
            (ts(chaos["healthyAt"]) - injected).total_seconds(),
            str(chaos.get("recoveredBy")),
        )


def measure(bench: Bench, faults: list[Fault], runs: int) -> list[Row]:
    rows = []
    for f in faults:
        ttds: list[float] = []
        ttrs: list[float] = []
        healed: list[float] = []
        by: dict[str, int] = {}
        for i in range(runs):
            ttd, ttr, heal, who = bench.run_once(f, i)
            ttds.append(ttd)
            ttrs.append(ttr)
            healed.append(heal)
            by[who] = by.get(who, 0) + 1
            log(
                f"{f.name} run {i + 1}/{runs}: TTD {ttd:.2f} s, TTR {ttr:.2f} s, "
                f"healthy after {heal:.2f} s ({who})"
            )
        rows.append(
            Row(
                f.name,
                f.invariant,
                runs,
                statistics.median(ttds),
                max(ttds),
                statistics.median(ttrs),
                max(ttrs),
                statistics.median(healed),
                by,
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| fault | invariant | runs | TTD median | TTD max | TTR median | TTR max | "
        "healthy again (median) | recovered by |",
        "|" + "---|" * 9,
    ]
    for r in rows:
        by = ", ".join(f"{k} {v}" for k, v in sorted(r.recovered_by.items()))
        lines.append(
            f"| {r.fault} | {r.invariant} | {r.runs} | {r.ttd_median_s:.2f} s | "
            f"{r.ttd_max_s:.2f} s | {r.ttr_median_s:.2f} s | {r.ttr_max_s:.2f} s | "
            f"{r.healed_median_s:.2f} s | {by} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--runs", type=int, default=10, help="runs per fault (default 10)")
    parser.add_argument(
        "--faults",
        default=",".join(f.name for f in FAULTS),
        help="comma-separated faults (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    faults = [f for f in FAULTS if f.name in args.faults.split(",")]
    kubectl = tools_bin_dir() / "kubectl"
    workdir = Path(tempfile.mkdtemp(prefix="aiops-chaos-ttr-"))
    namespace = f"chaos-ttr-{uuid.uuid4().hex[:6]}"
    with api_server(kubectl) as kubeconfig, stack_up() as stack:
        for path in (REPO / "crds", REPO / "crds" / "rbac"):
            kubectl_run(
                kubectl, kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(path)
            )
        kubectl_run(kubectl, kubeconfig, "create", "namespace", namespace)
        try:
            subject = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Subject",
                "metadata": {"name": SUBJECT},
                "spec": {
                    "type": "ratelimiter",
                    "config": subject_config(stack),
                    "prometheus": {"url": stack.urls.prometheus},
                    "workload": {
                        "kind": "supervisor",
                        "supervisor": {"url": f"{stack.urls.supervisor}/RPC2"},
                    },
                    "interval": "1s",
                    "autonomy": "execute",
                    "cooldown": "0s",
                },
            }
            kubectl_run(
                kubectl, kubeconfig, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(subject)
            )
            custom = k8s.CustomObjectsApi(
                k8s_config.new_client_from_config(config_file=str(kubeconfig))
            )
            with operator(kubeconfig, namespace, workdir):
                try:
                    rows = measure(Bench(custom, namespace), faults, args.runs)
                finally:  # while the operator runs, so that its finalizers go with them
                    kubectl_run(
                        kubectl,
                        kubeconfig,
                        "delete",
                        "-n",
                        namespace,
                        "chaos,incidents,subjects",
                        "--all",
                        "--timeout=60s",
                    )
        finally:
            kubectl_run(kubectl, kubeconfig, "delete", "namespace", namespace, "--wait=false")
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(table(rows))


if __name__ == "__main__":
    main()
