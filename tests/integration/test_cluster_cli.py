"""`aiops cluster up | down | status` as a user runs it: idempotent up, clean down, and one-line
errors for a busy port, a half-started cluster, a missing Go toolchain and a container runtime
the kernel refuses."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from aiops.cluster import LocalCluster
from aiops.cluster.realnode import missing_prerequisites
from aiops.cluster.runtime_check import RUNTIME
from aiops.cluster.tools import tools_bin_dir

PORT = int(os.environ.get("AIOPS_TEST_LIFECYCLE_PORT", "16460"))
NAME = "aiops-lifecycle"


def aiops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiops.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    tools_bin_dir(build=True)  # a cold build belongs to no single test's timing
    yield tmp_path
    LocalCluster(NAME, port=PORT, state_dir=tmp_path).down()


def gone(pid: int) -> bool:
    """Exited: no such process, or only a zombie entry its parent has not reaped yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def apiservers_of(state_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "kube-apiserver" in cmd and str(state_dir) in cmd and not gone(proc.pid):
            found.append(proc)
    return found


def test_up_twice_is_one_cluster_and_down_leaves_no_process(state_dir: Path) -> None:
    common = ["--name", NAME, "--port", str(PORT), "--state-dir", str(state_dir)]
    first = aiops("cluster", "up", *common)
    assert first.returncode == 0, first.stderr
    assert "export KUBECONFIG=" in first.stdout
    pids_first = LocalCluster(NAME, port=PORT, state_dir=state_dir).status().processes
    assert {"etcd", "kube-apiserver", "kwok-controller"} <= set(pids_first)

    second = aiops("cluster", "up", *common)
    assert second.returncode == 0, second.stderr
    st = LocalCluster(NAME, port=PORT, state_dir=state_dir).status()
    assert st.state == "running"
    assert st.processes == pids_first  # nothing restarted, nothing added
    assert len(apiservers_of(state_dir)) == 1
    assert len(st.nodes) >= 2

    status = aiops("cluster", "status", "--name", NAME, "--state-dir", str(state_dir))
    assert status.returncode == 0 and "running" in status.stdout

    down = aiops("cluster", "down", "--name", NAME, "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    for component, pid in pids_first.items():
        assert gone(pid), component
    assert apiservers_of(state_dir) == []
    after = aiops("cluster", "status", "--name", NAME, "--state-dir", str(state_dir))
    assert after.returncode == 1 and "absent" in after.stdout


def test_busy_port_is_one_line_and_starts_nothing(state_dir: Path) -> None:
    with socket.socket() as squatter:
        # A connection of the previous test's API server may linger in TIME_WAIT on the port:
        # that must not keep the squatter from listening.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", PORT))
        squatter.listen()
        proc = aiops(
            "cluster", "up", "--name", NAME, "--port", str(PORT), "--state-dir", str(state_dir)
        )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"port {PORT} is already in use" in lines[0] and "--port" in lines[0]
    assert LocalCluster(NAME, port=PORT, state_dir=state_dir).status().state == "absent"


def test_half_started_cluster_is_named_and_down_cleans_it(state_dir: Path) -> None:
    local = LocalCluster(NAME, port=PORT, state_dir=state_dir)
    local.up()
    pids = local.status().processes
    os.kill(pids["kube-apiserver"], signal.SIGKILL)
    time.sleep(0.5)
    proc = aiops(
        "cluster", "up", "--name", NAME, "--port", str(PORT), "--state-dir", str(state_dir)
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "half started (kube-apiserver is not running)" in lines[0]
    assert "aiops cluster down" in lines[0]
    down = aiops("cluster", "down", "--name", NAME, "--state-dir", str(state_dir))
    assert down.returncode == 0
    assert all(gone(pid) for pid in pids.values())


def test_missing_go_toolchain_is_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "AIOPS_CACHE_DIR": str(tmp_path / "empty-cache"),  # nothing built there
    }
    env.pop("AIOPS_TOOLS_BIN", None)
    if any(Path(d, "go").exists() for d in env["PATH"].split(":")):
        pytest.fail("this test needs a PATH without 'go'; /usr/bin/go exists here")
    proc = aiops("cluster", "up", "--name", NAME, "--state-dir", str(tmp_path / "state"), env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Go toolchain is missing" in lines[0]
    assert not (tmp_path / "state" / "clusters" / NAME / "kwok").exists()


def hybrid_cgroups() -> bool:
    """cgroup v1 controllers mounted beside a v2 hierarchy: systemd's "hybrid" layout."""
    root = Path("/sys/fs/cgroup")
    return (root / "memory").is_dir() and (root / "unified").is_dir()


def test_a_runtime_this_kernel_refuses_is_one_line_and_starts_nothing(state_dir: Path) -> None:
    # crun refuses hybrid cgroups outright; runc (the default) runs on them. The check runs a
    # container before anything of the cluster starts.
    rest = missing_prerequisites(tools_bin_dir(), RUNTIME)
    if rest is not None:
        pytest.skip(f"this machine cannot run the real node at all: {rest}")
    if shutil.which("crun") is not None and not hybrid_cgroups():
        pytest.skip("crun runs on this kernel's cgroups: no runtime here that the kernel refuses")
    common = ["--name", NAME, "--port", str(PORT), "--state-dir", str(state_dir)]
    proc = aiops("cluster", "up", *common, "--real-node", "--runtime", "crun")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    if shutil.which("crun") is None:
        assert "the real node needs crun" in lines[0], lines[0]
    else:
        assert "this kernel refuses crun, so the real node cannot run pods here" in lines[0]
        assert "hybrid" in lines[0], lines[0]  # crun's own words
    assert LocalCluster(NAME, port=PORT, state_dir=state_dir).status().state == "absent"
    assert apiservers_of(state_dir) == []
