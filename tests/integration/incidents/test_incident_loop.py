"""Full loops on the running rate limiter: counter drift → diagnosis → reset_counter →
verified → Resolved under `execute`; the same waiting for a person's Approval under `propose`;
and under `observe`, nothing mutates. The audit log of each incident verifies."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from tests.fixtures.incident_loop import Drift, LoopEnv, aiops, one_incident, settle
from tests.fixtures.ratelimiter_subject import wait_for


@dataclass
class TerminalRun:
    returncode: int
    output: str


def aiops_on_a_terminal(env: LoopEnv, answer: str, *args: str) -> TerminalRun:
    """Runs `aiops ARGS` with a pseudo-terminal as its stdin and stdout (so it may ask), and
    types `answer` once it has asked."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiops.cli.main", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env={**env.ns.cluster.env, "AIOPS_AUDIT_DIR": str(env.audit_dir)},
    )
    os.close(child)
    out = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"?" in out.rsplit(b"\n", 1)[-1]:
                os.write(main, answer.encode())
                answered = True
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=30)
    os.close(main)
    return TerminalRun(code, out.decode(errors="replace"))


def phases(incident: dict[str, Any]) -> list[str]:
    return [t["phase"] for t in incident["status"]["timeline"] if t.get("phase")]


def test_execute_resets_the_drifted_counter_and_resolves(loop_env: LoopEnv) -> None:
    subject = loop_env.subject("rl-exec", "execute")
    drift = Drift(loop_env.stack)
    try:
        drift.cause()
        name = one_incident(loop_env, subject, "counter_drift")
        inc = loop_env.wait_phase(name, "Resolved", "Escalated", timeout=90)
        assert inc["status"]["phase"] == "Resolved", inc["status"].get("escalationReason")
        assert drift.remaining() == 0  # the forged entries are gone: the reset really ran
        st = inc["status"]
        assert phases(inc) == ["Open", "Investigating", "Remediating", "Verifying", "Resolved"]
        assert st["diagnosis"]["summary"]
        assert [(p["action"], p["params"], p["decision"]) for p in st["proposedActions"]] == [
            ("reset_counter", {"key": drift.key}, "run")
        ]
        [done] = st["executedActions"]
        assert done["result"] == "Succeeded" and done["idempotencyKey"]
        assert st["resolvedAt"] >= st["detectedAt"] >= st["faultAt"]
        assert st["agent"]["backend"] == "runbook"
    finally:
        drift.undo()
        loop_env.delete_subject(subject)
    shown = aiops(loop_env, "audit", "show", name, "-n", loop_env.ns.namespace)
    assert shown.returncode == 0, shown.stderr
    for kind in ("phase", "policy.decision", "action.started", "action.finished"):
        assert kind in shown.stdout
    verified = aiops(loop_env, "audit", "verify", name, "-n", loop_env.ns.namespace)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The Incident records the log's head at each phase change; verify, reaching the API
    # server, checks the log against it, so cutting records from the end is caught too.
    path = loop_env.audit_dir / loop_env.ns.namespace / f"{name}.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    head = st["auditHead"]
    resolved = json.loads(lines[head["seq"]])
    assert (resolved["kind"], resolved["data"]["to"], resolved["hash"]) == (
        "phase",
        "Resolved",
        head["hash"],
    )
    path.write_bytes(b"".join(lines[: head["seq"]]))  # a chain still, one record short
    cut = aiops(loop_env, "audit", "verify", name, "-n", loop_env.ns.namespace)
    assert cut.returncode == 1, cut.stdout + cut.stderr
    assert f"is not in the log, which ends at seq {head['seq'] - 1}: records were cut" in cut.stdout
    wanted = {"Investigating", "Remediating", "Verifying", "Resolved"}

    def reasons() -> set[str]:
        return set(
            loop_env.ns.kubectl(
                "get",
                "events",
                f"--field-selector=involvedObject.name={name}",
                "-o",
                "jsonpath={.items[*].reason}",
            ).stdout.split()
        )

    # The loop posts each phase's Event right after writing the phase, so the last one may
    # land a moment after the status write that the wait above saw.
    seen: set[str] = set()

    def complete() -> bool:
        seen.update(reasons())
        return wanted <= seen

    try:
        wait_for(f"Events {sorted(wanted)} on {name}", complete, 15)
    except AssertionError as err:
        raise AssertionError(f"{err}; Events seen: {sorted(seen)}") from None


def test_propose_waits_for_a_persons_approval(loop_env: LoopEnv) -> None:
    subject = loop_env.subject("rl-propose", "propose")
    drift = Drift(loop_env.stack)
    try:
        drift.cause()
        name = one_incident(loop_env, subject, "counter_drift")
        inc = loop_env.wait_phase(name, "AwaitingApproval", "Escalated", "Resolved")
        assert inc["status"]["phase"] == "AwaitingApproval", inc["status"]
        [proposed] = inc["status"]["proposedActions"]
        assert proposed["decision"] == "await-approval" and proposed["risk"] == "low"
        settle(3)  # waiting means waiting: nothing runs without the Approval
        assert drift.remaining() == len(drift.members)
        assert loop_env.phase(name) == "AwaitingApproval"

        # On a terminal, `aiops approve` shows the step and asks; "n" creates nothing.
        declined = aiops_on_a_terminal(
            loop_env, "n\n", "approve", name, "-n", loop_env.ns.namespace, "--as", "bob"
        )
        assert declined.returncode == 1, declined.output
        assert "reset_counter" in declined.output and "Approve a1" in declined.output
        assert "no Approval was created" in declined.output
        assert loop_env.ns.kubectl("get", "approvals", "-o", "name").stdout.strip() == ""

        # `aiops approve` as bob: the Approval names bob, who asked (the API server refuses
        # any other name; tests/integration/api shows that refusal).
        approved = aiops(loop_env, "approve", name, "-n", loop_env.ns.namespace, "--as", "bob")
        assert approved.returncode == 0, approved.stderr
        assert "as bob" in approved.stdout
        approvals = loop_env.ns.kubectl(
            "get", "approvals", "-o", "jsonpath={.items[*].spec.approvedBy}"
        ).stdout.split()
        assert approvals == ["bob"]
        inc = loop_env.wait_phase(name, "Resolved", "Escalated", timeout=60)
        assert inc["status"]["phase"] == "Resolved", inc["status"].get("escalationReason")
        assert drift.remaining() == 0
        assert inc["status"]["proposedActions"][0]["reason"] == "approved by bob"
        ap = loop_env.ns.kubectl(
            "get", "approvals", "-o", "jsonpath={.items[0].status.phase}"
        ).stdout
        assert ap == "Applied"
    finally:
        drift.undo()
        loop_env.delete_subject(subject)


def test_observe_mutates_nothing(loop_env: LoopEnv) -> None:
    subject = loop_env.subject("rl-observe", "observe")
    drift = Drift(loop_env.stack)
    try:
        drift.cause()
        name = one_incident(loop_env, subject, "counter_drift")
        inc = loop_env.wait_phase(name, "Escalated", "Resolved", timeout=60)
        st = inc["status"]
        assert st["phase"] == "Escalated"
        assert "refused" in st["escalationReason"] and "observe" in st["escalationReason"]
        assert st.get("executedActions", []) == []
        assert [p["decision"] for p in st["proposedActions"]] == ["refused"]
        settle(2)
        assert drift.remaining() == len(drift.members)  # nothing touched the subject
    finally:
        drift.undo()
        loop_env.delete_subject(subject)


def test_the_global_switch_stops_every_action(loop_env: LoopEnv) -> None:
    ns = loop_env.ns.namespace
    stopped = aiops(loop_env, "actions", "stop", "-n", ns)
    assert stopped.returncode == 0, stopped.stderr
    subject = loop_env.subject("rl-switch", "execute")
    drift = Drift(loop_env.stack)
    try:
        drift.cause()
        name = one_incident(loop_env, subject, "counter_drift")
        inc = loop_env.wait_phase(name, "Escalated", "Resolved", timeout=60)
        assert inc["status"]["phase"] == "Escalated"
        assert "global switch" in inc["status"]["escalationReason"]
        assert drift.remaining() == len(drift.members)
    finally:
        drift.undo()
        loop_env.delete_subject(subject)
        resumed = aiops(loop_env, "actions", "resume", "-n", ns)
    assert resumed.returncode == 0, resumed.stderr
    assert aiops(loop_env, "actions", "status", "-n", ns).stdout.strip() == "actions running"
