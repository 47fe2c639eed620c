"""The audit directory full, then read-only: no action runs unaudited, the incident escalates
saying why, and the operator keeps observing; once the directory is writable again, the next
incident is remediated as usual.

The directory is a tiny tmpfs of the test's own (mounting needs root, which CI has; without it
the test is skipped, saying so), unmounted at the end.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from ratelimiter.localstack import LocalStack
from tests.fixtures.aiops_api import api_namespace
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import Drift, LoopEnv, one_incident, resets
from tests.fixtures.ratelimiter_subject import repair, wait_for
from tests.fixtures.subject_loop import running_operator

pytestmark = [pytest.mark.reliability, pytest.mark.cluster]


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


class TinyFs:
    """A 1 MiB tmpfs: filled up with one file, or remounted read-only, and back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / ".filler"

    def fill(self) -> None:
        with self.filler.open("wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError as err:
                assert err.errno == errno.ENOSPC, err

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def read_only(self, on: bool) -> None:
        proc = _mount("-o", f"remount,{'ro' if on else 'rw'}", str(self.path))
        assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def tiny_fs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyFs]:
    path = tmp_path_factory.mktemp("tiny-audit")
    proc = _mount("-t", "tmpfs", "-o", "size=1m,mode=0750", "tmpfs", str(path))
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the audit directory (needs root): {proc.stderr}")
    fs = TinyFs(path)
    try:
        yield fs
    finally:
        _mount("-o", "remount,rw", str(path))
        fs.free()
        subprocess.run(["umount", str(path)], check=False)


@pytest.fixture(scope="module")
def audit_env(aiops_api: ClusterHandle, rl_stack: LocalStack, tiny_fs: TinyFs) -> Iterator[LoopEnv]:
    """The operator in-process in a namespace of its own, its audit log on the tiny
    filesystem; the runbook investigates."""
    repair(rl_stack)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOPS_AUDIT_DIR", str(tiny_fs.path))
        mp.setenv("AIOPS_VERIFY_TIMEOUT", "20")
        mp.delenv("ANTHROPIC_API_KEY", raising=False)
        for ns in api_namespace(aiops_api, "relaudit"):
            mp.setenv("AIOPS_OPERATOR_NAMESPACE", ns.namespace)
            custom = k8s.CustomObjectsApi(aiops_api.api_client())
            with running_operator(ns, mp):
                yield LoopEnv(ns, rl_stack, custom, tiny_fs.path)
                ns.kubectl("delete", "incidents,subjects", "--all", "--timeout=60s")
    repair(rl_stack)


def _escalated_for_audit(env: LoopEnv, subject: str, broken: str) -> None:
    drift = Drift(env.stack)
    before = resets(env.stack)
    try:
        drift.cause()
        name = one_incident(env, subject, "counter_drift", timeout=60)
        inc = env.wait_phase(name, "Escalated", "Resolved", timeout=60)
        st = inc["status"]
        assert st["phase"] == "Escalated", st
        assert "audit log" in st["escalationReason"], st["escalationReason"]
        assert broken in st["escalationReason"], st["escalationReason"]
        # No action ran unaudited: the counter is as the fault left it, no reset was made.
        assert [a for a in st.get("executedActions", []) if a["result"] != "Failed"] == []
        assert drift.remaining() == len(drift.members)
        assert resets(env.stack) == before
        # The operator keeps observing: the Subject's status is refreshed still.
        seen = env.get("subjects", subject)["status"]["lastObservationTime"]
        wait_for(
            "the Subject observed again",
            lambda: env.get("subjects", subject)["status"]["lastObservationTime"] != seen,
            30,
        )
    finally:
        drift.undo()
    env.ns.kubectl("delete", "incidents", "--all")


def test_audit_full_or_read_only_escalates_and_runs_nothing(
    audit_env: LoopEnv, tiny_fs: TinyFs
) -> None:
    subject = audit_env.subject("rl-audit", "execute", cooldown="0s")
    tiny_fs.fill()
    try:
        _escalated_for_audit(audit_env, subject, "No space left on device")
    finally:
        tiny_fs.free()
    tiny_fs.read_only(True)
    try:
        _escalated_for_audit(audit_env, subject, "Read-only file system")
    finally:
        tiny_fs.read_only(False)

    # Writable again: the next incident is remediated, audited as ever.
    drift = Drift(audit_env.stack)
    try:
        drift.cause()
        name = one_incident(audit_env, subject, "counter_drift", timeout=60)
        inc = audit_env.wait_phase(name, "Resolved", "Escalated", timeout=90)
        assert inc["status"]["phase"] == "Resolved", inc["status"].get("escalationReason")
        assert drift.remaining() == 0
    finally:
        drift.undo()
