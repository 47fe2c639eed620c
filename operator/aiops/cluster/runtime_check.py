"""Does this kernel let the node's container runtime run a container? Asked before the real
node starts anything, so that a refusal is one clear line instead of a pod stuck in
ContainerCreating minutes later.

The check runs one throwaway container with the runtime itself (`runc run`, what containerd's
runc shim does for every pod): its own PID, IPC, UTS, mount and network namespaces, a cgroup
with a memory limit (kubelet gives each pod one), a read-only root with the host's /usr bound
in, and `echo` as its process. It passes only if the runtime exits 0 *and* the container's
output came back: a runtime that "succeeds" without running anything is a refusal too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

RUNTIME = "runc"
GREETING = "aiops-runtime-check-ok"
# Host directories bound read-only into the container (or copied as symlinks, on a merged-/usr
# system): enough for /usr/bin/echo and its loader.
HOST_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _config(rootfs: Path, cgroup: str) -> dict[str, object]:
    mounts: list[dict[str, object]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
    ]
    for name in HOST_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            (rootfs / name).symlink_to(os.readlink(host))
        elif host.is_dir():
            (rootfs / name).mkdir()
            mounts.append(
                {"destination": f"/{name}", "type": "bind", "source": str(host),
                 "options": ["rbind", "ro", "nosuid", "nodev"]}
            )  # fmt: skip
    for name in ("proc", "dev"):
        (rootfs / name).mkdir()
    return {
        "ociVersion": "1.0.2",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["/usr/bin/echo", GREETING],
            "env": ["PATH=/usr/bin:/bin"],
            "cwd": "/",
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": "aiops-runtime-check",
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
            "cgroupsPath": cgroup,
            "resources": {"memory": {"limit": 64 * 1024 * 1024}},
        },
    }


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def runtime_refusal(runtime: str = RUNTIME, timeout: float = 30.0) -> str | None:
    """One line saying how `runtime` (a command or path) fails to run a container here, or None
    when it ran one. Needs root, like the node itself."""
    exe = shutil.which(runtime)
    if exe is None:
        return f"the real node needs {runtime}: run hack/setup.sh as root"
    work = Path(tempfile.mkdtemp(prefix="aiops-runtime-check-"))
    name = f"aiops-runtime-check-{os.getpid()}"
    state = work / "state"
    try:
        bundle = work / "bundle"
        rootfs = bundle / "rootfs"
        rootfs.mkdir(parents=True)
        (bundle / "config.json").write_text(json.dumps(_config(rootfs, f"/{name}")))
        try:
            proc = subprocess.run(
                [exe, "--root", str(state), "run", "--bundle", str(bundle), name],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return (
                f"this kernel did not let {runtime} run a container: no answer in {timeout:.0f} s; "
                "the real node cannot run pods here"
            )
        except OSError as exc:
            return f"this machine could not start {runtime}: {exc}"
        if proc.returncode != 0:
            return (
                f"this kernel refuses {runtime}, so the real node cannot run pods here: "
                f"{_last_line(proc.stderr or proc.stdout)} (exit {proc.returncode})"
            )
        if GREETING not in proc.stdout:
            return (
                f"{runtime} exited 0 but ran no container (its output: "
                f"{_last_line(proc.stdout + proc.stderr)}): the real node cannot run pods here"
            )
        return None
    finally:
        # A container cut short by the timeout: its state and cgroup go with it.
        if state.exists():
            subprocess.run(
                [exe, "--root", str(state), "delete", "--force", name],
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(work, ignore_errors=True)
