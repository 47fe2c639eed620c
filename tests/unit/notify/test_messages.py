"""Which transitions make a notice, and the payloads: Slack's (text and mrkdwn sections within
its limits) with the plan and the `aiops approve` command, and the generic JSON."""

from __future__ import annotations

from typing import Any

from aiops.loops.transitions import chaos_transition, incident_transition
from aiops.notify.messages import NoticeKind, generic, notices, slack
from aiops.redact import Redactor

OBJ = {
    "metadata": {"namespace": "team-a", "name": "rl-drift-1", "uid": "u"},
    "spec": {"subject": "rl", "invariant": "counter_drift", "entity": "user-42"},
}
PLAN = {
    "proposedActions": [
        {
            "id": "a1",
            "action": "reset_counter",
            "params": {"key": "user-42"},
            "risk": "low",
            "decision": "await-approval",
            "reason": "autonomy propose: every step waits for an Approval",
        }
    ]
}


def test_only_the_transitions_a_person_acts_on_make_a_notice() -> None:
    def kinds(before: str, after: str, status: dict[str, Any] | None = None) -> list[str]:
        return [str(k) for k in notices(incident_transition(OBJ, status or {}, before, after, ""))]

    assert kinds("Open", "Investigating") == ["opened"]
    assert kinds("Investigating", "AwaitingApproval", PLAN) == ["approval-needed"]
    assert kinds("Investigating", "Remediating") == []
    assert kinds("Remediating", "Verifying") == kinds("Verifying", "Remediating") == []
    assert kinds("Verifying", "Resolved") == ["resolved"]
    assert kinds("Open", "Escalated") == ["opened", "escalated"]
    chaos = {"metadata": {"namespace": "n", "name": "c"}, "spec": {"subject": "rl"}}
    inst = chaos_transition(chaos, {"phase": "Recovered", "targets": [{"name": "x"}]}, "Pending")
    assert notices(inst) == [NoticeKind.CHAOS_INJECTED, NoticeKind.CHAOS_RECOVERED]
    failed = chaos_transition(chaos, {"phase": "Failed"}, "Pending")
    assert notices(failed) == []


def test_the_approval_notice_carries_the_plan_and_the_command_and_no_secret() -> None:
    redactor = Redactor()
    t = incident_transition(
        OBJ, PLAN, "Investigating", "AwaitingApproval", "1 step waits; password=hunter2hunter2"
    )
    g = generic(NoticeKind.APPROVAL_NEEDED, t, redactor)
    assert g["approve"] == "aiops approve rl-drift-1 -n team-a a1"
    assert g["plan"][0]["action"] == "reset_counter" and "hunter2" not in str(g)
    s = slack(NoticeKind.APPROVAL_NEEDED, t, redactor)
    assert isinstance(s["text"], str) and "Approval needed" in s["text"]
    assert "aiops approve rl-drift-1 -n team-a a1" in s["text"]
    texts = [b["text"]["text"] for b in s["blocks"]]
    assert all(b["type"] == "section" and b["text"]["type"] == "mrkdwn" for b in s["blocks"])
    assert all(len(x) <= 3000 for x in texts)
    assert any("reset_counter" in x and "user-42" in x for x in texts)
    assert any("```aiops approve rl-drift-1 -n team-a a1```" in x for x in texts)
    assert "hunter2" not in str(s)


def test_a_huge_reason_stays_within_slacks_limits() -> None:
    t = incident_transition(
        OBJ, {"escalationReason": "x" * 50_000}, "Verifying", "Escalated", "y" * 50_000
    )
    s = slack(NoticeKind.ESCALATED, t, Redactor())
    assert all(len(b["text"]["text"]) <= 3000 for b in s["blocks"]) and len(s["text"]) <= 500
