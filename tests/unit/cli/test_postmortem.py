"""The postmortem as rendered from an Incident and its audit log (the real audit writer and
verifier): every section, times that agree with status, and nothing secret or able to drive a
terminal in it, even where the status itself held one (a hand-made status is not redacted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiops.api import Incident
from aiops.audit import AuditLog, verify
from aiops.postmortem import SECTIONS, Sources, render
from aiops.redact import Redactor

NS, NAME = "team-a", "rl-counter-drift-1a2b3c4d"
KEY = "sk-ant-api03-" + "Q" * 40 + "-planted"
T0 = datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def incident(phase: str = "Resolved", **status: Any) -> Incident:
    body: dict[str, Any] = {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": NAME, "namespace": NS, "uid": "u-1"},
        "spec": {
            "subject": "rl",
            "invariant": "counter_drift",
            "entity": "drift-key",
            "summary": "entries dated ahead",
            "source": "subject-loop",
        },
        "status": {
            "phase": phase,
            "chaos": "drift-1",
            "faultAt": at(0),
            "detectedAt": at(4.25),
            "lastSeenAt": at(9),
            "resolvedAt": at(17.5),
            "diagnosis": {
                "summary": f"Redis clock stepped back; the key was {KEY}",
                "alternatives": ["a restored snapshot", "a \x1b[2Jtool"],
            },
            "proposedActions": [
                {
                    "id": "a1",
                    "action": "reset_counter",
                    "params": {"key": "drift-key", "apiKey": "plain-secret-by-name"},
                    "risk": "low",
                    "decision": "run",
                    "reason": "autonomy execute runs low-risk actions",
                    "rationale": "clear it\x1b]0;owned\x07",
                }
            ],
            "executedActions": [
                {
                    "id": "a1",
                    "action": "reset_counter",
                    "params": {"key": "drift-key"},
                    "idempotencyKey": "u-1-a1",
                    "startedAt": at(12),
                    "finishedAt": at(12.5),
                    "result": "Succeeded",
                    "message": "removed 12 entries",
                }
            ],
            "agent": {
                "backend": "anthropic",
                "model": "claude-x",
                "turns": 3,
                "inputTokens": 300,
                "outputTokens": 60,
                "costUSD": 0.0123,
            },
            **status,
        },
    }
    return Incident.model_validate(body)


def write_log(tmp_path: Path) -> AuditLog:
    log = AuditLog(tmp_path)
    log.append(NS, NAME, "phase", {"from": "Open", "to": "Investigating", "message": "started"})
    log.append(NS, NAME, "tool.call", {"id": "t1", "name": "observe_subject", "input": {}})
    log.append(NS, NAME, "tool.result", {"id": "t1", "name": "observe_subject", "content": "ok"})
    log.append(NS, NAME, "action.started", {"id": "a1", "action": "reset_counter"})
    log.append(NS, NAME, "verify", {"holds": True, "step": True, "id": "a1"})
    return log


def sources(tmp_path: Path, inc: Incident, log: AuditLog | None) -> Sources:
    path = tmp_path / NS / f"{NAME}.jsonl"
    return Sources(
        incident=inc,
        records=log.read(NS, NAME) if log else [],
        verification=verify(path, incident=f"{NS}/{NAME}") if log else None,
        log=str(path),
        chaos={"spec": {"fault": "counter_drift"}},
        generated_at=T0 + timedelta(minutes=5),
    )


def test_every_section_times_from_status_and_nothing_secret_or_raw(tmp_path: Path) -> None:
    text = render(sources(tmp_path, incident(), write_log(tmp_path)), Redactor())
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings == list(SECTIONS)
    assert "**Audit log: verified.** 5 records" in text
    assert "- **Time to detect (TTD):** 4.2 s" in text  # detectedAt - faultAt = 4.25
    assert "- **Time to resolve (TTR):** 17.5 s" in text
    assert "| observe_subject |" in text and "$0.0123" in text and "300 in, 60 out" in text
    assert "fault counter_drift" in text and "a restored snapshot" in text
    assert "- **Verification:** the invariant held" in text
    assert KEY not in text and "plain-secret-by-name" not in text
    assert "\x1b" not in text and "\x07" not in text and "\\x1b" in text


def test_escalated_without_a_fault_or_a_log_says_what_it_cannot_know(tmp_path: Path) -> None:
    inc = incident(
        "Escalated",
        chaos=None,
        faultAt=None,
        resolvedAt=None,
        escalationReason="every proposed action was refused",
        timeline=[{"time": at(8), "phase": "Escalated", "message": "escalated"}],
    )
    text = render(sources(tmp_path, inc, None), Redactor())
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == list(SECTIONS)
    assert "**Audit log: not found**" in text
    assert "Escalated to a person: every proposed action was refused" in text
    assert "- **Time to detect (TTD):** unknown (no fault time" in text
    assert "- **Time to escalate:** 3.8 s (from detection)" in text  # 8 - 4.25


def test_a_tampered_log_is_said_to_fail_verification(tmp_path: Path) -> None:
    write_log(tmp_path)
    path = tmp_path / NS / f"{NAME}.jsonl"
    path.write_text(path.read_text().replace("started", "STARTED", 1))
    src = sources(tmp_path, incident(), None)
    src = Sources(
        **{**src.__dict__, "verification": verify(path, incident=f"{NS}/{NAME}")},
    )
    assert "**Audit log: FAILED verification**" in render(src, Redactor())
