"""Where the stack's binaries are: Debian's redis-server and prometheus from PATH, and
toxiproxy-server built from the Go module proxy by hack/tools/build.sh."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path


class ToolError(RuntimeError):
    pass


# localstack/tools.py -> localstack -> ratelimiter -> subjects/ratelimiter -> subjects -> root
_REPO_ROOT = Path(__file__).resolve().parents[4]
_BUILD_SCRIPT = _REPO_ROOT / "hack" / "tools" / "build.sh"


@functools.cache
def go_tools_bin() -> Path:
    """`AIOPS_TOOLS_BIN` if set; else what hack/tools/build.sh prints last (it builds the
    tools on first use and answers from its cache afterwards)."""
    override = os.environ.get("AIOPS_TOOLS_BIN")
    if override:
        return Path(override)
    if not _BUILD_SCRIPT.is_file():
        raise ToolError(
            f"no {_BUILD_SCRIPT.relative_to(_REPO_ROOT)} here (installed without the "
            "repository?): set AIOPS_TOOLS_BIN to a directory holding toxiproxy-server"
        )
    # stderr passes through: a cold build takes minutes and says what it is doing.
    proc = subprocess.run([str(_BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ToolError(f"{_BUILD_SCRIPT.name} failed (exit {proc.returncode})")
    return Path(lines[-1])


def toxiproxy_server() -> Path:
    path = go_tools_bin() / "toxiproxy-server"
    if not os.access(path, os.X_OK):
        raise ToolError(f"toxiproxy-server not found at {path}")
    return path


def system_binary(name: str, package: str) -> Path:
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} not found on PATH: apt-get install {package}")
    return Path(found)


def redis_server() -> Path:
    return system_binary("redis-server", "redis-server")


def prometheus() -> Path:
    return system_binary("prometheus", "prometheus")
