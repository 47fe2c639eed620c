"""The incident loop against the holes a security review found, on the real API server and the
running rate limiter:

- an approval forged into the Incident's status runs nothing; a step whose params are changed
  in status after its Approval does not run; Approvals for another incident, written before
  the step existed, or carrying another step's digest are Stale and say why;
- an action found Running after a restart is not sent again when the gate now refuses it;
- a key long enough to break a status bound no longer wedges an incident;
- an incident awaiting approval escalates when its Subject is deleted; a pods workload in
  another namespace is refused when the Subject binds.

Where the operator must be stopped at a precise point, it runs as a real process killed at a
crash point (`AIOPS_CRASHPOINTS`) and started again, as after a crash."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.api.approval import step_digest
from ratelimiter.localstack import LocalStack
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import (
    GROUP,
    VERSION,
    Drift,
    LoopEnv,
    OperatorProcess,
    aiops,
    awaiting,
    incident_of,
    one_incident,
    operator_free_env,
)
from tests.fixtures.ratelimiter_subject import (
    condition,
    subject_manifest,
    wait_for,
)


@pytest.fixture(scope="module")
def proc_env(
    aiops_api: ClusterHandle, rl_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopEnv]:
    yield from operator_free_env(
        aiops_api, rl_stack, tmp_path_factory.mktemp("safety-audit"), "safety"
    )


@pytest.fixture
def operator(proc_env: LoopEnv, tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(proc_env, tmp_path, AIOPS_APPROVAL_TIMEOUT="300")
    try:
        yield op
    finally:
        op.stop()


def patch_status(env: LoopEnv, name: str, status: dict[str, Any]) -> None:
    """What anyone who may patch incidents/status can do (here: the cluster's admin)."""
    env.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, env.ns.namespace, "incidents", name, {"status": status}
    )


def create_approval(env: LoopEnv, name: str, incident: str, spec: dict[str, Any]) -> None:
    """An Approval as alice writes one by hand (the admission policy checks approvedBy)."""
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Approval",
        "metadata": {"name": name},
        "spec": {
            "incident": incident,
            "actions": ["a1"],
            "decision": "approve",
            "approvedBy": "alice",
            **spec,
        },
    }
    proc = env.ns.kubectl("apply", "-f", "-", as_user="alice", input=yaml.safe_dump(manifest))
    assert proc.returncode == 0, proc.stderr


def approval_status(env: LoopEnv, name: str) -> dict[str, Any]:
    return wait_for(
        f"Approval {name} handled",
        lambda: (
            (env.get("approvals", name).get("status") or {}).get("phase")
            and env.get("approvals", name)["status"]
        ),
        30,
    )


# -- forged and stale approvals ------------------------------------------------------------------


def test_an_approval_forged_into_status_runs_nothing(loop_env: LoopEnv) -> None:
    subject = loop_env.subject("rl-forged", "propose")
    drift = Drift(loop_env.stack)
    try:
        drift.cause()
        name = one_incident(loop_env, subject, "counter_drift")
        [step] = awaiting(loop_env, name)["status"]["proposedActions"]
        # The review's forgery: the step marked approved in status, no Approval anywhere.
        forged = {
            **step,
            "decision": "run",
            "reason": "approved by alice",
            "approvedBy": "alice",
            "approvalUid": "7d4e5f60-0000-4000-8000-000000000000",
        }
        patch_status(loop_env, name, {"proposedActions": [forged]})
        inc = loop_env.wait_phase(name, "Escalated", "Resolved", timeout=60)
        st = inc["status"]
        assert st["phase"] == "Escalated"
        assert "a1 reset_counter refused at run time" in st["escalationReason"]
        assert "needs an Approval, and its Approval (uid 7d4e5f60" in st["escalationReason"]
        assert "no longer exists" in st["escalationReason"]
        assert st.get("executedActions", []) == []
        assert drift.remaining() == len(drift.members)  # nothing ran
    finally:
        drift.undo()
        loop_env.delete_subject(subject)


def test_params_changed_in_status_after_the_approval_do_not_run(
    proc_env: LoopEnv, operator: OperatorProcess
) -> None:
    drift = Drift(proc_env.stack)
    # Another key, drifted too, so that a reset of it would pass every other check.
    victim = Drift(proc_env.stack, key=f"victim-{drift.key}")
    # Killed right after the approval is applied and the incident enters Remediating.
    operator.start(crashpoint="entered-Remediating")
    subject = proc_env.subject("rl-tampered", "propose", cooldown="0s")
    try:
        victim.cause()
        drift.cause()
        name = incident_of(proc_env, subject, drift.key)
        awaiting(proc_env, name)
        approved = aiops(proc_env, "approve", name, "-n", proc_env.ns.namespace, "--as", "bob")
        assert approved.returncode == 0, approved.stderr
        # What a person approves is shown: the step, its params, its risk, its digest.
        assert "reset_counter  risk low" in approved.stdout and drift.key in approved.stdout
        assert operator.wait_killed(timeout=60) < 0
        [step] = proc_env.get("incidents", name)["status"]["proposedActions"]
        assert (step["decision"], step["approvedBy"]) == ("run", "bob") and step["approvalUid"]
        # Between the approval and the run, the step's params are rewritten in status.
        patch_status(proc_env, name, {"proposedActions": [{**step, "params": {"key": victim.key}}]})
        operator.start()
        inc = proc_env.wait_phase(name, "Escalated", "Resolved", timeout=60)
        st = inc["status"]
        assert st["phase"] == "Escalated"
        assert (
            "does not match the step: the action or its params are not what was approved"
            in (st["escalationReason"])
        )
        assert st.get("executedActions", []) == []
        assert victim.remaining() == len(victim.members)  # the tampered step never ran
        assert drift.remaining() == len(drift.members)
    finally:
        drift.undo()
        victim.undo()
        proc_env.delete_subject(subject)


def test_approvals_for_another_incident_too_early_or_of_another_step_are_stale(
    proc_env: LoopEnv, operator: OperatorProcess
) -> None:
    drift = Drift(proc_env.stack)
    operator.start(crashpoint="entered-Investigating")  # stopped before anything is proposed
    subject = proc_env.subject("rl-stale", "propose", cooldown="0s")
    try:
        drift.cause()
        name = one_incident(proc_env, subject, "counter_drift")
        assert operator.wait_killed(timeout=60) < 0
        uid = proc_env.get("incidents", name)["metadata"]["uid"]
        exact = step_digest(uid, "a1", "reset_counter", {"key": drift.key})
        # Written before the step exists, with the very digest it will have: still Stale.
        create_approval(proc_env, "too-early", name, {"incidentUid": uid, "digests": {"a1": exact}})
        created = time.time()
        wait_for(
            "a second later (creationTimestamp has seconds)", lambda: time.time() > created + 1.2, 5
        )
        operator.start()
        awaiting(proc_env, name)
        early = approval_status(proc_env, "too-early")
        assert early["phase"] == "Stale"
        assert "before a1 was proposed" in early["message"], early
        other = step_digest(uid, "a1", "reset_counter", {"key": "some-other-key"})
        create_approval(
            proc_env,
            "other-incident",
            name,
            {"incidentUid": "0b1c2d3e-0000-4000-8000-000000000000", "digests": {"a1": exact}},
        )
        create_approval(
            proc_env, "other-step", name, {"incidentUid": uid, "digests": {"a1": other}}
        )
        wrong_uid = approval_status(proc_env, "other-incident")
        assert wrong_uid["phase"] == "Stale"
        assert "is for incident uid 0b1c2d3e" in wrong_uid["message"]
        wrong_step = approval_status(proc_env, "other-step")
        assert wrong_step["phase"] == "Stale" and "does not match the step" in wrong_step["message"]
        # The API server itself refuses an approval that carries no digest.
        bare = proc_env.ns.kubectl(
            "apply",
            "-f",
            "-",
            as_user="alice",
            input=yaml.safe_dump(
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Approval",
                    "metadata": {"name": "no-digest"},
                    "spec": {
                        "incident": name,
                        "incidentUid": uid,
                        "actions": ["a1"],
                        "decision": "approve",
                        "approvedBy": "alice",
                    },
                }
            ),
        )
        assert bare.returncode != 0 and "carries the digest of each action" in bare.stderr
        assert proc_env.phase(name) == "AwaitingApproval"
        assert drift.remaining() == len(drift.members)  # none of them ran anything

        approved = aiops(proc_env, "approve", name, "-n", proc_env.ns.namespace, "--as", "bob")
        assert approved.returncode == 0, approved.stderr
        inc = proc_env.wait_phase(name, "Resolved", "Escalated", timeout=60)
        st = inc["status"]
        assert st["phase"] == "Resolved", st.get("escalationReason")
        assert drift.remaining() == 0
        listed: Any = proc_env.custom.list_namespaced_custom_object(
            GROUP, VERSION, proc_env.ns.namespace, "approvals"
        )
        [ap] = [
            a
            for a in listed["items"]
            if a["spec"]["approvedBy"] == "bob" and a["spec"]["incident"] == name
        ]
        assert ap["status"]["phase"] == "Applied"
        [done] = st["executedActions"]
        assert (done["approvedBy"], done["approvalUid"]) == ("bob", ap["metadata"]["uid"])
    finally:
        drift.undo()
        proc_env.delete_subject(subject)


# -- resume after a restart honours the gate ---------------------------------------------------


def test_an_action_found_running_after_a_restart_is_not_sent_when_the_subject_is_paused(
    proc_env: LoopEnv, operator: OperatorProcess
) -> None:
    drift = Drift(proc_env.stack)
    operator.start(crashpoint="after-action-recorded")  # recorded Running, not yet sent
    subject = proc_env.subject("rl-resume-paused", "execute", cooldown="0s")
    try:
        drift.cause()
        name = one_incident(proc_env, subject, "counter_drift")
        assert operator.wait_killed(timeout=60) < 0
        [running] = proc_env.get("incidents", name)["status"]["executedActions"]
        assert running["result"] == "Running"
        # While the operator is down, a person pauses the Subject.
        paused = proc_env.ns.kubectl(
            "patch",
            "subject",
            subject,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"paused": True}}),
        )
        assert paused.returncode == 0, paused.stderr
        operator.start()
        inc = proc_env.wait_phase(name, "Escalated", "Resolved", timeout=60)
        st = inc["status"]
        assert st["phase"] == "Escalated", st
        reason = st["escalationReason"]
        assert "interrupted by an operator restart and is not sent again" in reason
        assert f"Subject {subject} is paused" in reason
        [action] = st["executedActions"]
        assert action["result"] == "Unknown"
        assert drift.remaining() == len(drift.members)  # the reset was never sent
    finally:
        drift.undo()
        proc_env.delete_subject(subject)


# -- a long key, a deleted Subject, a workload elsewhere ---------------------------------------


def test_a_key_longer_than_a_status_bound_does_not_wedge_the_incident(loop_env: LoopEnv) -> None:
    # 250 characters: a valid key and entity, but "counter_drift/<key>" is 264, over the 256
    # of a brokenBefore entry. The status write was refused and retried forever in Remediating.
    drift = Drift(loop_env.stack, key="long-" + "k" * 245)
    subject = loop_env.subject("rl-long-key", "execute", cooldown="0s")
    try:
        drift.cause()
        name = one_incident(loop_env, subject, "counter_drift")
        inc = loop_env.wait_phase(name, "Resolved", "Escalated", timeout=90)
        st = inc["status"]
        assert st["phase"] == "Resolved", st.get("escalationReason")
        assert drift.remaining() == 0
        [done] = st["executedActions"]
        assert done["params"] == {"key": drift.key}  # the action ran on the whole key
        assert all(len(b) <= 256 for b in done["brokenBefore"])
        assert any(b.startswith("counter_drift/long-kkk") for b in done["brokenBefore"])
    finally:
        drift.undo()
        loop_env.delete_subject(subject)


def test_an_incident_awaiting_approval_escalates_when_its_subject_is_deleted(
    loop_env: LoopEnv,
) -> None:
    subject = loop_env.subject("rl-deleted", "propose")
    drift = Drift(loop_env.stack)
    try:
        drift.cause()
        name = one_incident(loop_env, subject, "counter_drift")
        awaiting(loop_env, name)
        loop_env.delete_subject(subject)
        # The approval timeout is 120 s here: escalating well before it is the deletion's doing.
        inc = loop_env.wait_phase(name, "Escalated", "Resolved", timeout=30)
        assert inc["status"]["phase"] == "Escalated"
        assert (
            f"Subject {subject} was deleted while the incident awaited approval"
            == inc["status"]["escalationReason"]
        )
        assert drift.remaining() == len(drift.members)
    finally:
        drift.undo()
        loop_env.delete_subject(subject)


def test_a_pods_workload_in_another_namespace_is_refused(loop_env: LoopEnv) -> None:
    workload = {
        "kind": "pods",
        "namespace": "kube-system",
        "selector": {"matchLabels": {"component": "kube-apiserver"}},
    }
    loop_env.apply(
        subject_manifest("rl-elsewhere", loop_env.stack, autonomy="execute", workload=workload)
    )
    try:
        ready = wait_for(
            "the Subject's Ready condition",
            lambda: condition(loop_env.get("subjects", "rl-elsewhere"), "Ready"),
            30,
        )
        assert (ready["status"], ready["reason"]) == ("False", "WorkloadNamespace"), ready
        assert "kube-system" in ready["message"] and "its own namespace" in ready["message"]
    finally:
        loop_env.delete_subject("rl-elsewhere")
