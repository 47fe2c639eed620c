"""Remediation plans through the whole incident loop, on the running rate limiter and the real
API server: a two-step plan whose first step restarts a node and is verified before the second
runs; a step that does not fix the incident, undone when verification fails; a proposal nobody
approves, escalated when the Subject's approval timeout runs out; the core `kubectl` action on
a live ConfigMap; one its server-side dry run refuses when it is proposed, and one whose
object went away between the approval and the run; and the Subject's cooldown between
two incidents' actions.

The model is the scripted Anthropic server, reached by the real SDK; the runbook investigates
where a Subject says `agent.backend: runbook`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import psutil
import pytest

from ratelimiter.localstack import LocalStack
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import (
    Drift,
    LoopEnv,
    awaiting,
    incident_of,
    one_incident,
    operator_with_model,
)
from tests.fixtures.ratelimiter_subject import repair, wait_for
from tests.fixtures.scripted_anthropic import ScriptedAnthropic, reply, tool_use

FAKE_KEY = "sk-ant-api03-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE-plans"
VERIFY_TIMEOUT = 8  # seconds a step has to show it worked (AIOPS_VERIFY_TIMEOUT)
NODE = "rl-node-1"  # node id in the registry and supervisord program name alike

PlanEnv = tuple[LoopEnv, ScriptedAnthropic]


@pytest.fixture(scope="module")
def plan_env(
    aiops_api: ClusterHandle,
    rl_stack: LocalStack,
    tmp_path_factory: pytest.TempPathFactory,
    _scripted_anthropic_server: ScriptedAnthropic,
) -> Iterator[PlanEnv]:
    server = _scripted_anthropic_server
    for env in operator_with_model(
        aiops_api,
        rl_stack,
        tmp_path_factory.mktemp("plans-audit"),
        "plans",
        server.base_url,
        FAKE_KEY,
        AIOPS_VERIFY_TIMEOUT=str(VERIFY_TIMEOUT),
        AIOPS_APPROVAL_TIMEOUT="120",
        AIOPS_KUBECTL=str(aiops_api.kubectl_bin),  # the cluster's own version
    ):
        yield env, server
    server.script([])


# -- helpers ------------------------------------------------------------------------------------


def approve(env: LoopEnv, name: str) -> None:
    """`aiops approve NAME -n NS --as bob`: every action waiting, approved by bob."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiops.cli.main",
            "approve",
            name,
            "-n",
            env.ns.namespace,
            "--as",
            "bob",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env.ns.cluster.env, "AIOPS_AUDIT_DIR": str(env.audit_dir)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def propose(action: str, params: dict[str, Any], why: str) -> dict[str, Any]:
    return tool_use("propose_action", {"action": action, "params": params, "rationale": why})


def resolve(summary: str) -> Any:
    return reply(tool_use("resolve", {"summary": summary}))


def audit(env: LoopEnv, name: str) -> list[dict[str, Any]]:
    path = env.audit_dir / env.ns.namespace / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def phases(incident: dict[str, Any]) -> list[str]:
    return [t["phase"] for t in incident["status"]["timeline"] if t.get("phase")]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Limits:
    """A key's per-key limit, read and written through the rate limiter's admin API."""

    def __init__(self, stack: LocalStack, key: str) -> None:
        self.url = f"{next(iter(stack.urls.nodes.values()))}/admin/limits/{key}"

    def get(self) -> dict[str, Any]:
        resp = httpx.get(self.url, timeout=5)
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    def put(self, limit: int, window_ms: int) -> None:
        httpx.put(
            self.url, json={"limit": limit, "window_ms": window_ms}, timeout=5
        ).raise_for_status()

    def delete(self) -> None:
        httpx.delete(self.url, timeout=5)


# -- 1. a multi-step plan, each step verified before the next ---------------------------------


def test_a_two_step_plan_runs_in_order_each_step_verified_before_the_next(
    plan_env: PlanEnv,
) -> None:
    env, server = plan_env
    drift = Drift(env.stack)
    server.script(
        [
            reply(
                propose("restart_node", {"node": NODE}, "a node may hold stale state"),
                propose("reset_counter", {"key": drift.key}, "entries dated ahead of Redis"),
            ),
            resolve(f"Key {drift.key} holds entries dated ahead of Redis's clock."),
        ]
    )
    subject = env.subject("rl-two-steps", "propose")
    pid_before = env.stack.pid(NODE)
    try:
        drift.cause()
        name = one_incident(env, subject, "counter_drift")
        inc = awaiting(env, name)
        assert [
            (p["action"], p["risk"], p["decision"]) for p in inc["status"]["proposedActions"]
        ] == [
            ("restart_node", "high", "await-approval"),
            ("reset_counter", "low", "await-approval"),
        ]
        assert env.stack.pid(NODE) == pid_before  # nothing ran before the approval
        approve(env, name)
        inc = env.wait_phase(name, "Resolved", "Escalated", timeout=90)
        st = inc["status"]
        assert st["phase"] == "Resolved", st.get("escalationReason")

        # Both ran, in order, and both succeeded.
        a1, a2 = st["executedActions"]
        assert (a1["id"], a1["action"], a1["result"]) == ("a1", "restart_node", "Succeeded")
        assert (a2["id"], a2["action"], a2["result"]) == ("a2", "reset_counter", "Succeeded")
        assert f"counter_drift/{drift.key}" in a1["brokenBefore"]
        # The node process really restarted, and the drift is really gone.
        pid_after = env.stack.pid(NODE)
        assert pid_after is not None and pid_after != pid_before
        assert drift.remaining() == 0

        # Each step was verified: Verifying twice, a1's by "nothing newly broken" (a step),
        # and a2 started only after that, with the restarted node already serving.
        assert phases(inc) == [
            "Open",
            "Investigating",
            "AwaitingApproval",
            "Remediating",
            "Verifying",
            "Remediating",
            "Verifying",
            "Resolved",
        ]
        records = audit(env, name)
        [step_verified] = [r for r in records if r["kind"] == "verify" and r["data"]["step"]]
        assert step_verified["data"] == {"holds": True, "step": True, "id": "a1"}
        assert [r["data"]["id"] for r in records if r["kind"] == "action.started"] == ["a1", "a2"]
        started_a2 = at(a2["startedAt"])
        assert started_a2 >= at(a1["finishedAt"])
        assert started_a2 >= at(step_verified["time"])
        node_back = datetime.fromtimestamp(psutil.Process(pid_after).create_time()).astimezone()
        assert started_a2 > node_back
    finally:
        drift.undo()
        env.delete_subject(subject)
        repair(env.stack)


# -- 2. a step that does not fix it is undone -------------------------------------------------


def bigger_limit(drift: Drift) -> list[Any]:
    """The model's plan: a bigger limit for the drifted key, which does not fix the drift."""
    return [
        reply(
            propose(
                "update_limit",
                {"key": drift.key, "limit": 5000, "window_ms": 60000},
                "a bigger limit lets the key's clients through",
            )
        ),
        resolve(f"Key {drift.key} is refused early; a bigger limit will do."),
    ]


def test_a_step_that_does_not_fix_it_is_undone_and_the_incident_escalates(
    plan_env: PlanEnv,
) -> None:
    env, server = plan_env
    drift = Drift(env.stack)
    limits = Limits(env.stack, drift.key)
    server.script(bigger_limit(drift))
    subject = env.subject("rl-undo", "propose")
    try:
        limits.put(1000, 60000)  # the limit in force before: what undo must put back
        drift.cause()
        name = one_incident(env, subject, "counter_drift")
        inc = awaiting(env, name)
        [p] = inc["status"]["proposedActions"]
        assert (p["action"], p["risk"], p["decision"]) == (
            "update_limit",
            "medium",
            "await-approval",
        )
        approve(env, name)
        # The step runs: the key's limit really changes...
        wait_for("the new limit in force", lambda: limits.get()["limit"] == 5000, 30)
        inc = env.wait_phase(name, "Escalated", "Resolved", timeout=30 + VERIFY_TIMEOUT)
        st = inc["status"]
        assert st["phase"] == "Escalated"
        reason = st["escalationReason"]
        assert "verification failed" in reason and "undid a1 update_limit" in reason, reason
        # ...and after the verify timeout it is undone: the limit is what it was.
        got = limits.get()
        assert (got["limit"], got["window_ms"], got["source"]) == (1000, 60000, "override")
        [done] = st["executedActions"]
        assert done["result"] == "Succeeded" and done["undone"] is True
        assert drift.remaining() == len(drift.members)  # the drift itself was not touched
        undone = [r["data"] for r in audit(env, name) if r["kind"] == "action.undone"]
        assert undone == [{"id": "a1", "ok": True, "message": undone[0]["message"]}]
        assert "1000 per 60000 ms again" in undone[0]["message"]
        phase_times = {t["phase"]: at(t["time"]) for t in st["timeline"] if t.get("phase")}
        waited = phase_times["Escalated"] - phase_times["Verifying"]
        assert waited >= timedelta(seconds=VERIFY_TIMEOUT)
    finally:
        drift.undo()
        limits.delete()
        env.delete_subject(subject)


def test_no_undo_once_the_subject_is_paused(plan_env: PlanEnv) -> None:
    """The undo is an action too: the gate judges it on live state, and a Subject paused
    while its step was being verified is left alone (the escalation says so)."""
    env, server = plan_env
    drift = Drift(env.stack)
    limits = Limits(env.stack, drift.key)
    server.script(bigger_limit(drift))
    subject = env.subject("rl-undo-paused", "propose")
    try:
        limits.put(1000, 60000)
        drift.cause()
        name = one_incident(env, subject, "counter_drift")
        awaiting(env, name)
        approve(env, name)
        wait_for("the new limit in force", lambda: limits.get()["limit"] == 5000, 30)
        paused = env.ns.kubectl(
            "patch",
            "subject",
            subject,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"paused": True}}),
        )
        assert paused.returncode == 0, paused.stderr
        inc = env.wait_phase(name, "Escalated", "Resolved", timeout=30 + VERIFY_TIMEOUT)
        st = inc["status"]
        assert st["phase"] == "Escalated"
        reason = st["escalationReason"]
        assert f"did not undo a1 update_limit: Subject {subject} is paused" in reason, reason
        assert limits.get()["limit"] == 5000  # left as it is: nothing ran on a paused Subject
        [done] = st["executedActions"]
        assert done["result"] == "Succeeded" and done.get("undone") is not True
    finally:
        drift.undo()
        limits.delete()
        env.delete_subject(subject)


# -- 3. nobody approves ---------------------------------------------------------------------


def test_no_approval_within_the_subjects_timeout_escalates(plan_env: PlanEnv) -> None:
    env, _ = plan_env
    drift = Drift(env.stack)
    subject = env.subject(
        "rl-no-approval", "propose", approvalTimeout="10s", agent={"backend": "runbook"}
    )
    try:
        drift.cause()
        name = one_incident(env, subject, "counter_drift")
        awaiting(env, name)
        inc = env.wait_phase(name, "Escalated", "Resolved", timeout=40)
        st = inc["status"]
        assert st["phase"] == "Escalated"
        assert "no approval for a1 within 10s" in st["escalationReason"]
        assert st.get("executedActions", []) == []
        assert drift.remaining() == len(drift.members)  # nothing mutated
        phase_times = {t["phase"]: at(t["time"]) for t in st["timeline"] if t.get("phase")}
        waited = phase_times["Escalated"] - phase_times["AwaitingApproval"]
        assert timedelta(seconds=10) <= waited < timedelta(seconds=20)
    finally:
        drift.undo()
        env.delete_subject(subject)


# -- 4. the core kubectl action on live objects ---------------------------------------------


def configmap(env: LoopEnv, name: str) -> dict[str, Any]:
    proc = env.ns.kubectl("get", "configmap", name, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    obj: dict[str, Any] = json.loads(proc.stdout)
    return obj


def kubectl_then_reset(argv: list[str], drift: Drift) -> list[Any]:
    """The model's plan: the kubectl command, then the reset that really fixes the drift."""
    return [
        reply(
            propose("kubectl", {"argv": argv}, "the config first"),
            propose("reset_counter", {"key": drift.key}, "entries dated ahead of Redis"),
        ),
        resolve(f"Key {drift.key} holds entries dated ahead of Redis's clock."),
    ]


def test_kubectl_annotates_a_live_configmap_then_the_plan_resolves(plan_env: PlanEnv) -> None:
    env, server = plan_env
    drift = Drift(env.stack)
    target = "plan-target"
    created = env.ns.kubectl("create", "configmap", target, "--from-literal=mode=normal")
    assert created.returncode == 0, created.stderr
    argv = ["annotate", "configmap", target, "aiops.dev/drained=true"]
    server.script(kubectl_then_reset(argv, drift))
    subject = env.subject("rl-kubectl", "propose")
    try:
        drift.cause()
        name = one_incident(env, subject, "counter_drift")
        inc = awaiting(env, name)
        assert [(p["action"], p["risk"]) for p in inc["status"]["proposedActions"]] == [
            ("kubectl", "high"),
            ("reset_counter", "low"),
        ]
        assert "aiops.dev/drained" not in (
            configmap(env, target)["metadata"].get("annotations") or {}
        )
        approve(env, name)
        inc = env.wait_phase(name, "Resolved", "Escalated", timeout=60)
        st = inc["status"]
        assert st["phase"] == "Resolved", st.get("escalationReason")
        assert [(a["action"], a["result"]) for a in st["executedActions"]] == [
            ("kubectl", "Succeeded"),
            ("reset_counter", "Succeeded"),
        ]
        assert st["executedActions"][0]["params"] == {"argv": argv}
        annotations = configmap(env, target)["metadata"].get("annotations") or {}
        assert annotations.get("aiops.dev/drained") == "true"
        assert drift.remaining() == 0
    finally:
        drift.undo()
        env.ns.kubectl("delete", "configmap", target, "--ignore-not-found")
        env.delete_subject(subject)


def test_kubectl_the_dry_run_refuses_goes_back_to_the_model_and_never_into_the_plan(
    plan_env: PlanEnv,
) -> None:
    env, server = plan_env
    drift = Drift(env.stack)
    server.script(
        [
            reply(
                propose(
                    "kubectl", {"argv": ["delete", "configmap", "does-not-exist"]}, "a stale config"
                )
            ),
            reply(propose("reset_counter", {"key": drift.key}, "entries dated ahead of Redis")),
            resolve(f"Key {drift.key} holds entries dated ahead of Redis's clock."),
        ]
    )
    subject = env.subject("rl-kubectl-dry", "propose")
    try:
        drift.cause()
        name = one_incident(env, subject, "counter_drift")
        inc = awaiting(env, name)
        # The API server's verdict reached the model as the answer to its proposal...
        answers = [
            json.dumps(b.get("content"))
            for req in server.requests
            for m in req.body.get("messages", [])
            if isinstance(m.get("content"), list)
            for b in m["content"]
            if b.get("type") == "tool_result"
        ]
        refusal = next(a for a in answers if "server-side dry run refused it" in a)
        assert "does-not-exist" in refusal and "not found" in refusal
        # ...and the step never entered the plan: only what the server would admit waits.
        assert [(p["action"], p["decision"]) for p in inc["status"]["proposedActions"]] == [
            ("reset_counter", "await-approval")
        ]
        refused = [
            r["data"]
            for r in audit(env, name)
            if r.get("kind") == "policy.decision" and r["data"].get("action") == "kubectl"
        ]
        assert refused and refused[0]["decision"] == "refused"
        assert refused[0]["dryRun"]["ok"] is False
        approve(env, name)
        inc = env.wait_phase(name, "Resolved", "Escalated", timeout=60)
        st = inc["status"]
        assert st["phase"] == "Resolved", st.get("escalationReason")
        assert [a["action"] for a in st["executedActions"]] == ["reset_counter"]
    finally:
        drift.undo()
        env.delete_subject(subject)


def test_kubectl_whose_object_went_away_after_approval_fails_its_dry_run_and_escalates(
    plan_env: PlanEnv,
) -> None:
    env, server = plan_env
    drift = Drift(env.stack)
    doomed, bystander = "plan-doomed", "plan-bystander"
    for cm in (doomed, bystander):
        created = env.ns.kubectl("create", "configmap", cm, "--from-literal=mode=normal")
        assert created.returncode == 0, created.stderr
    before = configmap(env, bystander)["metadata"]["resourceVersion"]
    server.script(kubectl_then_reset(["delete", "configmap", doomed], drift))
    subject = env.subject("rl-kubectl-gone", "propose")
    try:
        drift.cause()
        name = one_incident(env, subject, "counter_drift")
        inc = awaiting(env, name)
        a1 = inc["status"]["proposedActions"][0]
        assert (a1["decision"], a1["dryRun"]["ok"]) == ("await-approval", True), a1
        # The world moves on between the proposal and the approval: the dry run just before
        # the step runs is the one that counts.
        gone = env.ns.kubectl("delete", "configmap", doomed)
        assert gone.returncode == 0, gone.stderr
        approve(env, name)
        inc = env.wait_phase(name, "Escalated", "Resolved", timeout=60)
        st = inc["status"]
        assert st["phase"] == "Escalated"
        [failed] = st["executedActions"]  # a2 never ran
        assert (failed["action"], failed["result"]) == ("kubectl", "Failed")
        assert "server-side dry run refused it" in failed["message"]
        assert doomed in failed["message"] and "not found" in failed["message"]
        assert "a1 kubectl failed: server-side dry run refused it" in st["escalationReason"]
        # Nothing else changed: the drift is there, the other ConfigMap untouched.
        assert drift.remaining() == len(drift.members)
        assert configmap(env, bystander)["metadata"]["resourceVersion"] == before
    finally:
        drift.undo()
        env.ns.kubectl("delete", "configmap", doomed, bystander, "--ignore-not-found")
        env.delete_subject(subject)


# -- 5. the Subject's cooldown between incidents --------------------------------------------


def test_the_cooldown_spaces_two_incidents_actions(plan_env: PlanEnv) -> None:
    env, _ = plan_env
    cooldown = timedelta(seconds=15)
    first, second = Drift(env.stack), Drift(env.stack)
    subject = env.subject("rl-cooldown", "execute", cooldown="15s", agent={"backend": "runbook"})
    try:
        first.cause()
        one = incident_of(env, subject, first.key)
        inc1 = env.wait_phase(one, "Resolved", "Escalated", timeout=60)
        assert inc1["status"]["phase"] == "Resolved", inc1["status"].get("escalationReason")
        second.cause()
        two = incident_of(env, subject, second.key)
        inc2 = env.wait_phase(two, "Resolved", "Escalated", timeout=60)
        assert inc2["status"]["phase"] == "Resolved", inc2["status"].get("escalationReason")
        assert first.remaining() == 0 and second.remaining() == 0

        [done1] = inc1["status"]["executedActions"]
        [done2] = inc2["status"]["executedActions"]
        assert done1["action"] == done2["action"] == "reset_counter"
        assert at(done2["startedAt"]) - at(done1["finishedAt"]) >= cooldown
        notes = [t["message"] for t in inc2["status"]["timeline"] if not t.get("phase")]
        assert any("cooldown" in n and one in n for n in notes), inc2["status"]["timeline"]
        assert not any("cooldown" in t["message"] for t in inc1["status"]["timeline"])
    finally:
        first.undo()
        second.undo()
        env.delete_subject(subject)


def test_two_incidents_at_once_still_wait_out_the_cooldown(plan_env: PlanEnv) -> None:
    """Two drifts caused together open two incidents that reach Remediating together: the
    second's action still waits for the first's to end, plus the cooldown (both checked the
    cooldown before either recorded its action, once, and both ran at the same instant)."""
    env, _ = plan_env
    first, second = Drift(env.stack), Drift(env.stack)
    subject = env.subject(
        "rl-cooldown-race", "execute", cooldown="15s", agent={"backend": "runbook"}
    )
    try:
        first.cause()
        second.cause()
        names = [incident_of(env, subject, d.key) for d in (first, second)]
        done = []
        for name in names:
            inc = env.wait_phase(name, "Resolved", "Escalated", timeout=60)
            assert inc["status"]["phase"] == "Resolved", inc["status"].get("escalationReason")
            [action] = inc["status"]["executedActions"]
            done.append((at(action["startedAt"]), at(action["finishedAt"])))
        earlier, later = sorted(done)
        assert later[0] - earlier[1] >= timedelta(seconds=15), done
        assert first.remaining() == 0 and second.remaining() == 0
    finally:
        first.undo()
        second.undo()
        env.delete_subject(subject)
