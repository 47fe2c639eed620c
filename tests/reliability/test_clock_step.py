"""The operator's wall clock stepped an hour forward, then back, while an incident waits for
its Approval and a 20 s fault is injected: both are measured on the monotonic clock, so the
incident neither times out early (forward) nor hangs (back), and the fault is reverted neither
early nor late; the incident escalates once its 20 s are up, having run nothing.

The operator is a real process whose wall clock the test steps (tests/fixtures/clock_step: its
`time.time()` and `datetime.now()` shifted by a file's seconds); the machine's clock is not
touched, and neither is the monotonic one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from kubernetes import client as k8s

from ratelimiter.localstack import LocalStack
from tests.fixtures.aiops_api import api_namespace
from tests.fixtures.chaos_env import ChaosEnv, chaos_manifest, clean_up
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import Drift, LoopEnv, OperatorProcess, awaiting, one_incident
from tests.fixtures.ratelimiter_subject import repair

pytestmark = [pytest.mark.reliability, pytest.mark.cluster]

SHIM = Path(__file__).resolve().parents[1] / "fixtures" / "clock_step"
TIMEOUT = 20.0  # the Subject's approvalTimeout
HOUR = 3600


def test_a_clock_step_neither_times_out_early_nor_hangs(
    aiops_api: ClusterHandle, rl_stack: LocalStack, tmp_path: Path
) -> None:
    repair(rl_stack)
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    for ns in api_namespace(aiops_api, "relclock"):
        env = LoopEnv(ns, rl_stack, k8s.CustomObjectsApi(aiops_api.api_client()), tmp_path)
        python_path = os.pathsep.join(p for p in (str(SHIM), os.environ.get("PYTHONPATH")) if p)
        op = OperatorProcess(
            env,
            tmp_path,
            PYTHONPATH=python_path,
            AIOPS_TEST_CLOCK_OFFSET_FILE=str(offset),
            AIOPS_OPERATOR_NAMESPACE=ns.namespace,
        )
        op.start()
        drift = Drift(rl_stack)
        try:
            subject = env.subject("rl-clock", "propose", approvalTimeout=f"{TIMEOUT:.0f}s")
            drift.cause()
            name = one_incident(env, subject, "counter_drift", timeout=60)
            awaiting(env, name)
            seen = time.monotonic()  # the incident entered the phase before this
            chaos = ChaosEnv(ns, rl_stack, env.custom, tmp_path)
            chaos.apply(
                chaos_manifest(
                    "kill-3",
                    "kill_node",
                    {"member": "rl-node-3"},
                    duration=f"{TIMEOUT:.0f}s",
                    subject=subject,
                )
            )
            chaos.wait_phase("kill-3", "Injected", timeout=30)
            injected = time.monotonic()

            offset.write_text(str(HOUR))  # an hour forward: a wall-clock wait would end now
            while time.monotonic() - injected < TIMEOUT / 2:
                assert env.phase(name) == "AwaitingApproval", env.get("incidents", name)
                assert chaos.status("kill-3")["phase"] == "Injected", chaos.status("kill-3")
                assert chaos.program("rl-node-3") == "STOPPED"
                time.sleep(0.5)
            offset.write_text("0")  # an hour back: a wall-clock wait would last an hour more

            inc = env.wait_phase(name, "Escalated", "Resolved", timeout=TIMEOUT + 30)
            waited = time.monotonic() - seen
            st = inc["status"]
            assert st["phase"] == "Escalated", st
            assert f"within {TIMEOUT:.0f}s" in st["escalationReason"], st["escalationReason"]
            # Not before the 20 s measured from before the test saw the phase; not long after
            # (the phase is looked at every 2 s; room for a loaded machine).
            assert TIMEOUT / 2 <= waited < TIMEOUT + 20, waited
            assert st.get("executedActions", []) == []
            assert drift.remaining() == len(drift.members)  # nothing ran
            drifts = [
                i for i in env.incidents(subject) if i["spec"]["invariant"] == "counter_drift"
            ]
            assert len(drifts) == 1, drifts
            # The fault: reverted on time, by the monotonic clock (the test's), all of it.
            chaos.wait_phase("kill-3", "Recovered", timeout=TIMEOUT + 30)
            assert time.monotonic() - injected < TIMEOUT + 15
            assert chaos.program("rl-node-3") == "RUNNING"
        finally:
            offset.write_text("0")
            drift.undo()
            clean_up(ns)
            op.stop()
            op.print_log_tail(3000)
    repair(rl_stack)
