"""An operator SIGKILLed while a fault is injected: the next one reverts it on time, from what
the Chaos' status and spec hold (nothing was in the dead process's memory only)."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from pathlib import Path

from kubernetes import client as k8s

from aiops.subjects.contract import utcnow
from ratelimiter.localstack import LocalStack
from tests.fixtures.aiops_api import api_namespace
from tests.fixtures.chaos_env import (
    SUBJECT,
    ChaosEnv,
    chaos_manifest,
    clean_up,
    operator_env,
    ts,
    wait_for,
)
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import LoopEnv, OperatorProcess
from tests.fixtures.ratelimiter_subject import repair, subject_manifest


def test_a_killed_operator_is_replaced_and_the_fault_reverted_on_time(
    aiops_api: ClusterHandle,
    rl_stack: LocalStack,
    tmp_path: Path,
) -> None:
    repair(rl_stack)
    for ns in api_namespace(aiops_api, "chaoskill"):
        custom = k8s.CustomObjectsApi(aiops_api.api_client())
        env = ChaosEnv(ns, rl_stack, custom, tmp_path)
        op = OperatorProcess(
            LoopEnv(ns, rl_stack, custom, tmp_path),
            tmp_path,
            # variables only (names like AIOPS_*), never `cwd`: mypy cannot tell from the type
            **operator_env(ns, tmp_path),  # type: ignore[arg-type]
        )
        op.start()
        try:
            env.apply(subject_manifest(SUBJECT, rl_stack, autonomy="observe"))
            wait_for("Subject rl Healthy", env.healthy, timeout=90)
            env.apply(
                chaos_manifest("kill-3", "kill_node", {"member": "rl-node-3"}, duration="25s")
            )
            st = env.wait_phase("kill-3", "Injected", timeout=30)
            ends = ts(st["endsAt"])
            assert env.program("rl-node-3") == "STOPPED"

            assert op.proc is not None
            op.proc.send_signal(signal.SIGKILL)  # mid-duration: no shutdown handler runs
            assert op.wait_killed(timeout=10) == -signal.SIGKILL
            op.start()  # a fresh operator, knowing nothing but what the API server holds
            # Not reverted early by the restart...
            while utcnow() < ends - timedelta(seconds=2):
                assert env.program("rl-node-3") == "STOPPED"
                assert env.status("kill-3")["phase"] == "Injected"
                time.sleep(0.5)
            # ...and reverted on time: within one tick (1 s) of the end, plus the start of
            # the program, with room for a loaded machine.
            st = env.wait_phase("kill-3", "Recovered", timeout=60)
            late = (ts(st["recoveredAt"]) - ends).total_seconds()
            assert 0 <= late < 6, late
            assert env.program("rl-node-3") == "RUNNING"
            assert [t["state"] for t in st["targets"]] == ["Reverted"]
        finally:
            if op.proc is None or op.proc.poll() is not None:
                op.start()
            clean_up(ns)
            op.stop()
            op.print_log_tail(3000)
    repair(rl_stack)
