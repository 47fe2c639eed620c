"""The numbers of one Incident for its trial record: TTD and TTR from the Chaos' injection,
time in approval (from the timeline), actions with their risk and result, proposals and
refusals, the agent's usage, and tool calls (from the audit log, when it can be read)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from aiops.api import Incident
from aiops.audit import AuditError, AuditLog
from aiops.eval.records import ActionRecord
from aiops.vocabulary import Phase, Verdict


def seconds(later: datetime | None, start: datetime | None) -> float | None:
    if later is None or start is None:
        return None
    return round((later - start).total_seconds(), 3)


def approval_seconds(incident: Incident) -> float:
    """Time spent in AwaitingApproval: each entry into it, to the next phase entered."""
    total = 0.0
    entered: datetime | None = None
    for entry in incident.status.timeline:
        if entry.phase is None:
            continue
        if entry.phase == Phase.AWAITING_APPROVAL:
            entered = entered or entry.time
        elif entered is not None:
            total += (entry.time - entered).total_seconds()
            entered = None
    return round(total, 3)


def actions(incident: Incident) -> list[ActionRecord]:
    risk = {p.id: p.risk.value for p in incident.status.proposed_actions}
    return [
        ActionRecord(
            id=a.id,
            action=a.action,
            risk=risk.get(a.id, "unknown"),
            result=a.result.value,
            undone=a.undone,
            approved_by=a.approved_by,
            started_at=a.started_at,
            finished_at=a.finished_at,
        )
        for a in incident.status.executed_actions
    ]


def tool_calls(audit_dir: Path | None, incident: Incident) -> int | None:
    """The `tool.call` records of the incident's audit log; None when it cannot be read
    (no --audit-dir, or the log is elsewhere)."""
    if audit_dir is None or not audit_dir.is_dir():
        return None
    ns, name = incident.metadata.namespace or "default", incident.metadata.name or ""
    log = AuditLog(audit_dir)
    if not log.path(ns, name).exists():
        return None
    try:
        return sum(1 for r in log.read(ns, name) if r.kind == "tool.call")
    except (AuditError, OSError):
        return None


def incident_fields(
    incident: Incident, injected_at: datetime | None, audit_dir: Path | None
) -> dict[str, Any]:
    """The TrialRecord fields an Incident gives."""
    st = incident.status
    usage = st.agent
    return {
        "incident": incident.metadata.name,
        "incident_uid": incident.metadata.uid,
        "incident_phase": st.phase.value if st.phase else None,
        "invariant": incident.spec.invariant,
        "audit_seq": st.audit_head.seq if st.audit_head else None,
        "audit_hash": st.audit_head.hash if st.audit_head else None,
        "ttd_s": seconds(st.detected_at, injected_at),
        "ttr_s": seconds(st.resolved_at, injected_at) if st.phase == Phase.RESOLVED else None,
        "approval_s": approval_seconds(incident),
        "actions": actions(incident),
        "proposed": len(st.proposed_actions),
        "refused": sum(1 for p in st.proposed_actions if p.decision == Verdict.REFUSED),
        "tool_calls": tool_calls(audit_dir, incident),
        "model_turns": usage.turns if usage else 0,
        "tokens_in": usage.input_tokens if usage else 0,
        "tokens_out": usage.output_tokens if usage else 0,
        "cost_usd": usage.cost_usd if usage else 0.0,
    }
