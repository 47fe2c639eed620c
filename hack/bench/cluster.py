"""Measures the local control plane: warm `cluster up` time (binaries built), time for a
Deployment's 3 pods to be Running, and the cluster's peak memory (sum of each process's peak
RSS, VmHWM). Uses its own cluster name and port; stops it at the end.

    .venv/bin/python hack/bench/cluster.py
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from aiops.cluster import LocalCluster
from aiops.cluster.tools import tools_bin_dir


def peak_rss_mib(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for component, pid in pids.items():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out[component] = int(line.split()[1]) / 1024
    return out


def main() -> None:
    kubectl = str(tools_bin_dir(build=True) / "kubectl")
    state = Path(tempfile.mkdtemp(prefix="aiops-bench-cluster-"))
    cluster = LocalCluster("aiops-bench", port=16600, state_dir=state)
    try:
        started = time.monotonic()
        cluster.up()
        up_s = time.monotonic() - started

        def k(*args: str) -> str:
            return subprocess.run(
                [kubectl, "--kubeconfig", str(cluster.kubeconfig), *args],
                capture_output=True,
                text=True,
                check=True,
            ).stdout

        k("create", "deployment", "web", "--image=example.invalid/web:1", "--replicas=3")
        started = time.monotonic()
        while time.monotonic() - started < 60:
            phases = k(
                "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.phase}"
            ).split()
            if phases == ["Running"] * 3:
                break
            time.sleep(0.05)
        pods_s = time.monotonic() - started
        time.sleep(5)  # let the controllers settle before reading peaks
        rss = peak_rss_mib(cluster.status().processes)
        print(f"cluster up (warm, to nodes Ready): {up_s:.1f} s")
        print(f"3 pods Running after the Deployment: {pods_s:.1f} s")
        for component, mib in sorted(rss.items()):
            print(f"  peak RSS {component:24} {mib:7.1f} MiB")
        print(f"peak memory of the cluster (sum): {sum(rss.values()):.0f} MiB")
    finally:
        cluster.down()


if __name__ == "__main__":
    main()
