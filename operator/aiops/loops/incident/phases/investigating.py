"""Investigating: the agent (the plugin's runbook, or a model with read-only tools) returns a
diagnosis and a plan; each step is judged by the gate and recorded as a proposed action with
its decision and reason, the time it was proposed and its digest. Where the plan goes next
depends on those decisions: a step waiting for an Approval, a step that may run, or none."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiops import metrics
from aiops.agent.base import AgentResult, Investigation
from aiops.api import AgentUsage, Diagnosis, DryRun, Incident, ProposedAction
from aiops.api.approval import step_digest
from aiops.api.common import wire
from aiops.crashpoints import crashpoint
from aiops.loops.incident.status import StatusWriter
from aiops.policy.gate import Decision
from aiops.subjects.binding import SubjectProblem
from aiops.subjects.contract import utcnow
from aiops.vocabulary import Phase, Risk, Verdict

if TYPE_CHECKING:
    from aiops.loops.incident.driver import IncidentDriver

MAX_STEPS = 20  # proposedActions' bound: a longer plan is cut, not refused


async def step(d: IncidentDriver, incident: Incident, w: StatusWriter) -> float:
    subject = await d.subject(incident)
    if subject is None:
        await d.escalate(w, f"Subject {incident.spec.subject} does not exist")
        return 0
    try:
        bound = await d.plugin(subject)
        agent = await d.rt.agent_for(subject)
    except (SubjectProblem, ValueError) as err:
        await d.escalate(w, f"cannot investigate: {err}")
        return 0

    async def preview(action: str, params: dict[str, Any]) -> dict[str, Any]:
        obs = await d.observe(bound)
        decision, dry = await d.judge(
            action, params, await d.gate_input(incident, subject, bound, obs)
        )
        metrics.proposal_judged(decision.verdict, decision.check)
        await d.audit(
            "policy.decision",
            {
                "phase": "preview",
                "action": action,
                "params": params,
                **decision.as_dict(),
                **({"dryRun": dry} if dry else {}),
            },
        )
        return {**decision.as_dict(), **({"dryRun": dry} if dry else {})}

    now_obs = await d.observe(bound)
    violations = []
    if now_obs is not None:
        try:
            violations = bound.plugin.evaluate(now_obs, bound.invariants)
        except Exception as err:  # a plugin bug: the agent investigates without violations
            await d.audit("note", {"evaluate_failed": str(err)})
    inv = Investigation(
        incident=incident,
        subject=subject,
        plugin=type(bound.plugin),
        violations=violations,
        # The runbook reads nothing beyond the violations; a model gets the read-only tools.
        tools=(
            None
            if agent.name == "runbook"
            else d.rt.tools_for(bound=bound, subject=subject, preview=preview)
        ),
        audit=d.audit,
        checkpoint=d.rt.checkpoint_for(d.namespace, d.name),
    )
    # At most max_concurrent_sessions investigations at once; the others wait here, in
    # Investigating, and start in turn (a flood of Incidents is not a flood of sessions).
    async with d.rt.sessions:
        await d.audit("agent.start", {"agent": agent.name})
        result: AgentResult = await agent.investigate(inv)
        await d.audit("agent.result", result.model_dump(mode="json"))
    metrics.agent_investigated(result.usage.backend, result.usage.model, result.outcome)
    usage = wire(
        AgentUsage,
        backend=result.usage.backend,
        turns=result.usage.turns,
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        cost_usd=result.usage.cost_usd,
        model=result.usage.model or None,
    )
    # Clipped to the model's bounds and redacted by the writer, like every status field.
    diagnosis = wire(
        Diagnosis,
        summary=result.diagnosis.summary or "(none)",
        alternatives=list(result.diagnosis.alternatives),
        root_cause=result.diagnosis.root_cause or None,
        confidence=result.diagnosis.confidence,
    )
    if result.outcome == "escalate":
        await w.patch(diagnosis=diagnosis, agent=usage)
        await d.escalate(w, result.escalation_reason or "the agent escalated")
        return 0
    obs = await d.observe(bound)
    facts = await d.gate_input(incident, subject, bound, obs)
    proposed = []
    uid = incident.metadata.uid or ""
    for i, s in enumerate(result.steps[:MAX_STEPS], start=1):
        decision, dry = await d.judge(s.action, s.params, facts)
        metrics.proposal_judged(decision.verdict, decision.check)
        await d.audit(
            "policy.decision",
            {
                "phase": "plan",
                "id": f"a{i}",
                "action": s.action,
                "params": s.params,
                **decision.as_dict(),
                **({"dryRun": dry} if dry else {}),
            },
        )
        proposed.append(_proposed(f"a{i}", s.action, s.params, s.rationale, decision, dry, uid))
    await w.patch(diagnosis=diagnosis, agent=usage, proposed_actions=proposed)
    crashpoint("after-plan-recorded")
    await d.rt.checkpoint_for(d.namespace, d.name).clear()
    verdicts = [p["decision"] for p in proposed]
    if not proposed:
        await w.enter(Phase.VERIFYING, "no action proposed: verifying the subject recovers")
    elif Verdict.AWAIT_APPROVAL in verdicts:
        n = verdicts.count(Verdict.AWAIT_APPROVAL)
        await w.enter(Phase.AWAITING_APPROVAL, f"{n} action(s) wait for an Approval")
    elif Verdict.RUN in verdicts:
        await w.enter(Phase.REMEDIATING, "remediation started")
    else:
        reasons = "; ".join(f"{p['id']} {p['action']}: {p['reason']}" for p in proposed)
        await d.escalate(w, f"every proposed action was refused ({reasons})")
    return 0


def _proposed(
    id_: str,
    action: str,
    params: Any,
    rationale: str,
    d: Decision,
    dry_run: dict[str, Any] | None,
    incident_uid: str,
) -> dict[str, Any]:
    """A proposed step as the status records it (the writer redacts and clips it)."""
    params_obj = params if isinstance(params, dict) else {"value": params}
    action = action if _is_identifier(action) else "invalid-action"
    return wire(
        ProposedAction,
        id=id_,
        action=action,
        params=params_obj,
        risk=d.spec.risk if d.spec is not None else Risk.HIGH,
        # A real dry run where the subject's API has one (Kubernetes mutations); otherwise
        # the gate's checks on live state are the closest thing to it.
        dry_run=dry_run or wire(DryRun, ok=d.verdict != Verdict.REFUSED, message=d.reason),
        decision=d.verdict,
        reason=d.reason,
        # An Approval created before this moment cannot have approved this step.
        proposed_at=utcnow().isoformat(),
        digest=step_digest(incident_uid, id_, action, params_obj),
        rationale=rationale or None,
    )


_IDENTIFIER = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _is_identifier(s: str) -> bool:
    """A model may name an action that is no identifier; the record must still be valid."""
    return len(s) <= 63 and bool(_IDENTIFIER.match(s))
