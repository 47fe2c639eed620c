"""AwaitingApproval: Approvals naming the incident are applied, oldest first, each whole or not
at all, and marked `Applied` or `Stale` (one that names another incident uid, predates a step
it names, or carries a digest that does not match is Stale, with the reason); an applied
approval records its uid and approver on the step. Once no step waits: on to Remediating if a
step may run, else Escalated. No approval within the Subject's `approvalTimeout` (or the
operator's default), or the Subject deleted meanwhile: Escalated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from aiops.api import Approval, ApprovalStatus, Incident, ProposedAction
from aiops.api.common import wire
from aiops.api.durations import format_duration, to_timedelta
from aiops.loops.incident.approvals import mismatch
from aiops.loops.incident.status import StatusWriter, fit, timestamp
from aiops.subjects.contract import utcnow
from aiops.vocabulary import HANDLED, ApprovalDecision, ApprovalPhase, Phase, Verdict

if TYPE_CHECKING:
    from aiops.loops.incident.driver import IncidentDriver

IDLE = 2.0  # the longest wait between two looks for new Approvals


async def step(d: IncidentDriver, incident: Incident, w: StatusWriter) -> float:
    subject = await d.subject(incident)
    if subject is None:
        await d.escalate(
            w, f"Subject {incident.spec.subject} was deleted while the incident awaited approval"
        )
        return 0
    proposed = [
        p.model_dump(mode="json", by_alias=True, exclude_none=True)
        for p in incident.status.proposed_actions
    ]
    waiting = {p["id"] for p in proposed if p.get("decision") == Verdict.AWAIT_APPROVAL}
    approvals = await d.rt.api.list(
        Approval.PLURAL, d.namespace, field_selector=f"spec.incident={d.name}"
    )
    approvals.sort(key=lambda o: o["metadata"].get("creationTimestamp", ""))
    changed = False
    for obj in approvals:
        if (obj.get("status") or {}).get("phase") in HANDLED:
            continue
        hits, stale = _apply(incident, obj, proposed, waiting)
        waiting -= hits
        changed = changed or bool(hits)
        await _mark(d, obj, hits, stale)
    if changed:
        await w.patch(proposed_actions=proposed)
    if not waiting:
        if any(p.get("decision") == Verdict.RUN for p in proposed):
            await w.enter(Phase.REMEDIATING, "approvals received: remediation started")
        else:
            await d.escalate(w, "every proposed action was rejected or refused")
        return 0
    timeout = d.rt.settings.approval_timeout
    if subject.spec.approval_timeout:
        timeout = to_timedelta(subject.spec.approval_timeout)
    # Monotonic from the first look on: a wall clock stepped forward must not time it out.
    waited = w.in_phase_for(Phase.AWAITING_APPROVAL)
    if waited > timeout:
        await d.escalate(
            w, f"no approval for {', '.join(sorted(waiting))} within {format_duration(timeout)}"
        )
        return 0
    return min(IDLE, max((timeout - waited).total_seconds(), 0.1))


def _apply(
    incident: Incident,
    obj: dict[str, Any],
    proposed: list[dict[str, Any]],
    waiting: set[str],
) -> tuple[set[str], str]:
    """Applies one Approval to the `proposed` steps (in place): the ids it decided, or none
    and why it is Stale. An Approval is applied whole or not at all."""
    try:
        ap = Approval.from_k8s(obj)
    except ValidationError as err:
        return set(), f"not a valid Approval: {err.errors()[0]['msg']}"
    uid = incident.metadata.uid or ""
    ids = set(ap.spec.actions) or (
        waiting if ap.spec.decision == ApprovalDecision.REJECT else set()
    )
    hits = ids & waiting
    if not hits:
        return set(), "names no action waiting for approval"
    steps = [p for p in proposed if p["id"] in hits]
    problems = [
        f"{p['id']}: {why}"
        for p in steps
        if (
            why := mismatch(
                ap, uid, p["id"], p["action"], p.get("params", {}), timestamp(p.get("proposedAt"))
            )
        )
        is not None
    ]
    if problems:
        return set(), "; ".join(problems)
    who = ap.spec.approved_by
    for p in steps:
        if ap.spec.decision == ApprovalDecision.APPROVE:
            p.update(
                wire(
                    ProposedAction,
                    decision=Verdict.RUN,
                    reason=f"approved by {who}",
                    approval_uid=ap.metadata.uid,
                    approved_by=who,
                )
            )
        else:
            why = f": {ap.spec.reason}" if ap.spec.reason else ""
            p.update(
                wire(ProposedAction, decision=Verdict.REFUSED, reason=f"rejected by {who}{why}")
            )
    return hits, ""


async def _mark(d: IncidentDriver, obj: dict[str, Any], hits: set[str], stale: str) -> None:
    name = obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    await d.audit(
        "approval",
        {
            "approval": name,
            "uid": obj["metadata"].get("uid"),
            "by": spec.get("approvedBy"),
            "decision": spec.get("decision"),
            "actions": spec.get("actions", []),
            "applied": sorted(hits),
            **({"stale": stale} if stale else {}),
        },
    )
    status = fit(
        ApprovalStatus,
        d.rt.redactor.redact(
            wire(
                ApprovalStatus,
                phase=ApprovalPhase.APPLIED if hits else ApprovalPhase.STALE,
                message=f"applied to {', '.join(sorted(hits))}" if hits else stale,
                applied_at=utcnow().isoformat(),
            )
        ),
    )
    await d.rt.api.patch_status(Approval.PLURAL, d.namespace, name, status)
