"""Finds the Go-built binaries (kube-apiserver, etcd, kwokctl, ...), building them if needed."""

import shutil
import subprocess
from pathlib import Path

from aiops.cluster.errors import ClusterError
from aiops.settings import WorkstationSettings

# operator/aiops/cluster/tools.py -> the repository root is three folders above `aiops`.
REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "tools" / "build.sh"

CLUSTER_TOOLS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "etcd",
    "kwok",
    "kwokctl",
)


def _cached_bin_dir() -> Path:
    proc = subprocess.run(
        [str(BUILD_SCRIPT), "--bin-dir"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ClusterError(f"{BUILD_SCRIPT} --bin-dir failed: {proc.stderr.strip()}")
    return Path(proc.stdout.strip())


def tools_bin_dir(build: bool = True, required: tuple[str, ...] = CLUSTER_TOOLS) -> Path:
    """The directory holding the tool binaries.

    `AIOPS_TOOLS_BIN` wins (for installs without the repository); otherwise hack/tools/build.sh
    builds what is missing (a no-op once cached) and says where they are.
    """
    override = WorkstationSettings.from_env().tools_bin
    if override:
        bin_dir = override
    elif not BUILD_SCRIPT.exists():
        raise ClusterError(
            f"cannot find {BUILD_SCRIPT}: set AIOPS_TOOLS_BIN to a directory holding "
            "kube-apiserver, etcd, kwokctl and friends"
        )
    else:
        bin_dir = _cached_bin_dir()
        if build and not (bin_dir / ".complete").exists():
            if shutil.which("go") is None:
                raise ClusterError(
                    "the Go toolchain is missing and the tools are not built yet: install "
                    "Go 1.26+ and put 'go' on PATH, or set AIOPS_TOOLS_BIN to prebuilt binaries"
                )
            # The build's progress goes straight to the user's terminal (stderr).
            proc = subprocess.run(
                [str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
            )
            if proc.returncode != 0:
                raise ClusterError(
                    f"building the Go tools failed (exit {proc.returncode}): see the output "
                    "above, fix it, and run again (finished packages stay cached)"
                )
    missing = [name for name in required if not (bin_dir / name).exists()]
    if missing:
        raise ClusterError(
            f"{bin_dir} lacks {', '.join(missing)}: run hack/tools/build.sh or set AIOPS_TOOLS_BIN"
        )
    return bin_dir
