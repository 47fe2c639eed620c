"""The operator image pins every run-time dependency to the version the suite runs with:
operator/constraints.txt (hack/constraints.py) matches this environment, and the Dockerfile and
hack/setup.sh both install with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_constraints_are_what_this_environment_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "hack" / "constraints.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    pins = [
        line
        for line in (REPO / "operator" / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all("==" in line for line in pins), pins
    names = {line.split("==")[0] for line in pins}
    # What the operator imports at run time is there; our own distributions are not.
    assert {"kopf", "kubernetes", "anthropic", "pydantic", "redis"} <= names, names
    assert not names & {"aiops", "aiops-ratelimiter", "aiops-tikv"}
    # The server extra of the rate limiter plugin stays out of the operator image.
    assert not names & {"uvicorn", "starlette"}, names


def test_the_image_and_the_setup_install_with_them() -> None:
    dockerfile = (REPO / "operator" / "Dockerfile").read_text()
    assert dockerfile.count("-c operator/constraints.txt") == 2  # the dependencies, then ours
    assert "-c operator/constraints.txt" in (REPO / "hack" / "setup.sh").read_text()
