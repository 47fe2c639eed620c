"""The API server restarted (etcd kept) while an incident waits for its Approval and a fault
is injected: the operator, a real process, stays up and reconnects; the fault is reverted on
time; the incident is finished after the restart, its action run once; a Subject created after
the restart is picked up (the watch did not silently stop); no incident is opened twice.

The cluster is the test's own (`private_cluster`): the session's is shared and never restarted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client as k8s

from ratelimiter.localstack import LocalStack
from tests.fixtures.aiops_api import api_namespace
from tests.fixtures.chaos_env import ChaosEnv, chaos_manifest, clean_up, operator_env, ts
from tests.fixtures.incident_loop import (
    Drift,
    LoopEnv,
    OperatorProcess,
    aiops,
    awaiting,
    one_incident,
    resets,
)
from tests.fixtures.private_cluster import PrivateCluster
from tests.fixtures.ratelimiter_subject import repair

pytestmark = [pytest.mark.reliability, pytest.mark.cluster]

FAULT_SECONDS = 30  # long enough for the API server to be down and back within it


def test_apiserver_restart_mid_incident_and_mid_chaos(
    private_cluster: PrivateCluster, rl_stack: LocalStack, tmp_path: Path
) -> None:
    repair(rl_stack)
    cluster = private_cluster.handle
    for ns in api_namespace(cluster, "relapi"):
        custom = k8s.CustomObjectsApi(cluster.api_client())
        loop = LoopEnv(ns, rl_stack, custom, tmp_path)
        chaos = ChaosEnv(ns, rl_stack, custom, tmp_path)
        op = OperatorProcess(
            loop,
            tmp_path,
            AIOPS_APPROVAL_TIMEOUT="300",
            **operator_env(ns, tmp_path),  # type: ignore[arg-type]
        )
        op.start()
        drift = Drift(rl_stack)
        try:
            subject = loop.subject("rl", "propose", cooldown="0s")
            drift.cause()
            name = one_incident(loop, subject, "counter_drift", timeout=60)
            awaiting(loop, name)
            before = resets(rl_stack)

            chaos.apply(
                chaos_manifest(
                    "kill-3", "kill_node", {"member": "rl-node-3"}, duration=f"{FAULT_SECONDS}s"
                )
            )
            ends = ts(chaos.wait_phase("kill-3", "Injected", timeout=30)["endsAt"])
            assert chaos.program("rl-node-3") == "STOPPED"

            argv, cwd = private_cluster.stop_apiserver()
            assert not private_cluster.ready()
            private_cluster.start_apiserver(argv, cwd)
            assert op.proc is not None and op.proc.poll() is None, "the operator exited"

            # The fault is reverted on time: within a few seconds of its end, as without the
            # restart (the revert needs the API server only to record it).
            st = chaos.wait_phase("kill-3", "Recovered", timeout=FAULT_SECONDS + 60)
            late = (ts(st["recoveredAt"]) - ends).total_seconds()
            assert 0 <= late < 8, late
            assert chaos.program("rl-node-3") == "RUNNING"
            assert [t["state"] for t in st["targets"]] == ["Reverted"]

            # The incident is finished after the restart: approved, the reset runs once.
            approved = aiops(loop, "approve", name, "-n", ns.namespace, "--as", "bob")
            assert approved.returncode == 0, approved.stdout + approved.stderr
            inc = loop.wait_phase(name, "Resolved", "Escalated", timeout=90)
            assert inc["status"]["phase"] == "Resolved", inc["status"].get("escalationReason")
            assert drift.remaining() == 0
            assert resets(rl_stack) - before == 1, "the reset ran other than once"

            # The watch did not silently stop: a Subject created now is observed.
            loop.subject("rl-after", "observe")
            # No incident opened twice for one breach (a re-listed watch must not re-open it).
            invariants = [i["spec"]["invariant"] for i in loop.incidents(subject)]
            assert invariants.count("counter_drift") == 1, invariants
            assert invariants.count("node_down") <= 1, invariants
            assert op.proc.poll() is None, "the operator exited"
            verified = subprocess.run(
                [sys.executable, "-m", "aiops.cli.main", "audit", "verify"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env={**cluster.env, "AIOPS_AUDIT_DIR": str(tmp_path)},
            )
            assert verified.returncode == 0, verified.stdout + verified.stderr
        finally:
            drift.undo()
            clean_up(ns)
            op.stop()
            op.print_log_tail(4000)
    repair(rl_stack)
