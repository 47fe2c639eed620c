"""Prepares a local system (`aiops up`) for hack/eval/ratelimiter.yaml: a twin rate limiter
stack beside the system's own, Subject `ratelimiter-b` on it (the same manifest as `aiops up`
applies, another name), both Subjects' latency invariant held 3 s instead of the demo's 10 s, at
300 ms instead of 200 ms (so a latency fault is detected within seconds, and the machine's own
load mostly is not), a per-key limit over a minute on bypass_limit's key, and the load
generator on both stacks (latency needs samples). The baseline runs on the twin while the
runbook runs on the original, so the campaign fits in 30 minutes.

.venv/bin/python hack/eval/twin.py --name eval --twin-port 35020 [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from aiops.cluster.local import default_state_dir
from aiops.cluster.tools import tools_bin_dir
from aiops.localsystem.layout import SUBJECT, load_record
from aiops.localsystem.subject import subject_manifest
from ratelimiter.localstack import LocalStack

TWIN = "ratelimiter-b"
# 300 ms: the latency faults add 400 ms to every Redis reply (below the nodes' 500 ms Redis
# timeout, above what a busy 2-core machine adds by itself to most checks).
LATENCY = [{"name": "high_latency", "threshold": 0.3, "for": "3s"}]
# bypass_limit's key gets a per-key limit over a minute, so that admissions written past it
# stay in the window long enough to be held (2 s) and become an Incident.
BYPASS_KEY, BYPASS_LIMIT = "eval-bypass", {"limit": 10, "window_ms": 60_000}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--name", default="eval")
    p.add_argument("--twin-port", type=int, default=35020)
    p.add_argument("--state-dir", type=Path, default=None)
    args = p.parse_args()
    record = load_record(args.name, args.state_dir or default_state_dir())
    if record is None:
        raise SystemExit(f"no local system {args.name}: run aiops up --name {args.name} first")
    ns = record.layout.namespace
    kubectl = [str(tools_bin_dir(build=False) / "kubectl"), "--kubeconfig", str(record.kubeconfig)]
    own = LocalStack.existing(record.layout.stack_dir)
    twin = LocalStack(record.layout.directory / "twin", args.twin_port, scrape_interval_s=1.0)
    twin.up()
    for stack in (own, twin):
        if stack.status()["loadgen"]["statename"] != "RUNNING":
            stack.start_program("loadgen")
        node = next(iter(stack.urls.nodes.values()))
        httpx.put(f"{node}/admin/limits/{BYPASS_KEY}", json=BYPASS_LIMIT).raise_for_status()
    manifest = subject_manifest(twin, ns)
    manifest["metadata"]["name"] = TWIN
    subprocess.run(
        [*kubectl, "apply", "-f", "-"], input=yaml.safe_dump(manifest), text=True, check=True
    )
    for name in (SUBJECT, TWIN):
        patch = json.dumps({"spec": {"invariants": LATENCY}})
        subprocess.run(
            [*kubectl, "-n", ns, "patch", "subject", name, "--type=merge", "-p", patch], check=True
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        out = subprocess.run(
            [*kubectl, "-n", ns, "get", "subjects", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
        )
        health = {
            s["metadata"]["name"]: (s.get("status") or {}).get("health")
            for s in json.loads(out.stdout)["items"]
        }
        if all(health.get(n) == "Healthy" for n in (SUBJECT, TWIN)):
            print(f"Subjects healthy: {health}")
            return
        time.sleep(1)
    raise SystemExit(f"Subjects not healthy within 90 s: {health}")


if __name__ == "__main__":
    main()
