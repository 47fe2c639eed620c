"""The operator as a local process (out of cluster): started detached, found again by its
recorded pid and start time, stopped by that pid only."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiops.localsystem.layout import Layout, OperatorRecord
from aiops.settings import WorkstationSettings


def start_time(pid: int) -> float | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or None
    when there is no such process or it is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if fields[0] == "Z":
        return None
    return float(fields[19])


def alive(rec: OperatorRecord | None) -> bool:
    """The recorded operator is still that process (not a later one with the same pid)."""
    return rec is not None and start_time(rec.pid) == rec.started


def healthy(layout: Layout, timeout: float = 1.0) -> bool:
    """kopf's liveness endpoint answers 200: the operator is up and its handlers run."""
    conn = http.client.HTTPConnection("127.0.0.1", layout.operator_port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wanted_agent() -> str:
    """The agent an operator started now would use (Subjects say backend auto)."""
    return WorkstationSettings.from_env().agent


def start(layout: Layout, kubeconfig: Path, kubectl: Path) -> OperatorRecord:
    """`aiops operator run -n NAMESPACE` in a session of its own, its output in
    operator.log; returns as soon as the process exists (see `healthy`)."""
    layout.directory.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "AIOPS_AUDIT_DIR": str(layout.audit_dir),
        "AIOPS_OPERATOR_NAMESPACE": layout.namespace,
        "AIOPS_KUBECTL": str(kubectl),
    }
    # A demo fault is reverted a few seconds after the fix; the Chaos then watches the Subject
    # this long for its recovery (the default, 5 minutes, is for game days) unless the caller
    # says otherwise.
    env.setdefault("AIOPS_CHAOS_SETTLE_TIMEOUT", "60s")
    with layout.operator_log.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiops.cli.main",
                "operator",
                "run",
                "-n",
                layout.namespace,
                "--liveness",
                layout.operator_health_url,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = None
    for _ in range(50):  # /proc has it at once; the loop only covers a slow fork
        started = start_time(proc.pid)
        if started is not None:
            break
        time.sleep(0.01)
    if started is None:
        raise OSError(
            f"the operator exited at once (exit {proc.poll()}): see {layout.operator_log}"
        )
    return OperatorRecord(pid=proc.pid, started=started, agent=wanted_agent())


def stop(rec: OperatorRecord, grace: float = 45.0) -> bool:
    """SIGTERM, then SIGKILL after `grace` seconds (kopf lets a daemon finish its step for up
    to 30 s). Returns whether there was a process to stop."""
    if not alive(rec):
        return False
    os.kill(rec.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(rec) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(rec):
        os.kill(rec.pid, signal.SIGKILL)
        while alive(rec):
            time.sleep(0.05)
    return True
