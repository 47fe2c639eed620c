"""The operator is SIGKILLed at 10 points of a remediation: every incident still ends
Resolved, and no action ran twice — counted on the subject's side, by the rate limiter's own
`ratelimiter_admin_changes_total` (a reset replayed under its idempotency key is not a change).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ratelimiter.localstack import LocalStack
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import (
    Drift,
    LoopEnv,
    OperatorProcess,
    one_incident,
    operator_free_env,
    resets,
)

POINTS = [
    "entered-Investigating",
    "after-plan-recorded",
    "enter-Remediating",
    "entered-Remediating",
    "before-action-recorded",
    "after-action-recorded",
    "after-action-executed",
    "after-action-finished",
    "entered-Verifying",
    "enter-Resolved",
]


@pytest.fixture(scope="module")
def kill_env(
    aiops_api: ClusterHandle, rl_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopEnv]:
    yield from operator_free_env(aiops_api, rl_stack, tmp_path_factory.mktemp("kill-audit"), "kill")


def test_sigkill_at_ten_points_resolves_every_incident_and_runs_no_action_twice(
    kill_env: LoopEnv, tmp_path: Path
) -> None:
    op = OperatorProcess(kill_env, tmp_path)
    op.start()
    try:
        # Ten incidents in a row on one Subject: no cooldown between them, or the test waits.
        subject = kill_env.subject("rl-kill", "execute", cooldown="0s")
        op.stop()
        outcomes: dict[str, str] = {}
        for point in POINTS:
            drift = Drift(kill_env.stack)
            before = resets(kill_env.stack)
            try:
                op.start(crashpoint=point)
                drift.cause()
                code = op.wait_killed(timeout=90)
                assert code == -signal.SIGKILL, f"{point}: operator exited {code}, not killed"
                assert (tmp_path / f"crashed-at-{point}").exists()
                op.start()  # a fresh operator, as after a crash
                name = one_incident(kill_env, subject, "counter_drift", timeout=60)
                inc = kill_env.wait_phase(name, "Resolved", "Escalated", timeout=90)
                outcomes[point] = inc["status"]["phase"]
                assert inc["status"]["phase"] == "Resolved", (
                    point,
                    inc["status"].get("escalationReason"),
                )
                assert drift.remaining() == 0
                ran = [a for a in inc["status"]["executedActions"] if a["result"] == "Succeeded"]
                assert [a["action"] for a in ran] == ["reset_counter"], point
                assert resets(kill_env.stack) - before == 1, f"{point}: the reset ran twice"
                op.stop()
                kill_env.ns.kubectl("delete", "incident", name)
            finally:
                drift.undo()
        assert outcomes == dict.fromkeys(POINTS, "Resolved")
        verified = subprocess.run(
            [
                sys.executable,
                "-m",
                "aiops.cli.main",
                "audit",
                "verify",
                "--audit-dir",
                str(kill_env.audit_dir),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        op.stop()
        if os.environ.get("AIOPS_TEST_SHOW_LOGS"):
            op.print_log_tail(5000)
