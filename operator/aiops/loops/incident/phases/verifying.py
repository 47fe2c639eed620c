"""Verifying: observation decides, after every step.

A step before the plan's last need not fix the incident (it may prepare the fix: drain, then
restart): it is verified when the subject has settled, nothing broken that was not broken
before it ran; then the next step runs (Remediating). The last step (or no step at all) is
verified when the incident's invariant holds: Resolved. Not verified within the window: the
step is undone if reversible and the gate lets the undo run (the escalation says why not, e.g.
the Subject was paused), the rest of the plan does not run, and the incident is Escalated with
the reason. A `Running` action that was not sent again after a restart is marked Succeeded if
observation shows recovery, Unknown (and escalated) otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiops import actions
from aiops.actions import find_action
from aiops.api import ExecutedAction, Incident, Subject
from aiops.api.common import wire
from aiops.api.durations import format_duration
from aiops.loops.incident.status import StatusWriter
from aiops.policy.gate import Decision
from aiops.subjects.binding import Bound
from aiops.subjects.contract import ActionResult, Observation, utcnow
from aiops.vocabulary import Outcome, Phase, Verdict

if TYPE_CHECKING:
    from aiops.loops.incident.driver import IncidentDriver


async def step(d: IncidentDriver, incident: Incident, w: StatusWriter) -> float:
    subject = await d.subject(incident)
    if subject is None:
        await d.escalate(w, f"Subject {incident.spec.subject} disappeared")
        return 0
    bound = await d.plugin(subject)
    obs = await d.observe(bound)
    executed = w.executed()
    last = executed[-1] if executed else None
    remaining = [
        p
        for p in incident.status.proposed_actions
        if p.decision == Verdict.RUN and p.id not in {a["id"] for a in executed}
    ]
    # A step before the plan's last need not fix the incident (it may only prepare the fix);
    # it is verified when the subject has settled: nothing broken that was not broken before
    # it ran. The last step is verified when the incident's invariant holds.
    a_step = remaining and last is not None
    if obs is None:
        holds, broken_now = False, []
    elif a_step:
        assert last is not None
        broken_now = _newly_broken(d, incident, bound, obs, last)
        holds = not broken_now
    else:
        holds, broken_now = _holds(incident, bound, obs), []
    if holds:
        await d.audit(
            "verify", {"holds": True, "step": bool(a_step), **({"id": last["id"]} if last else {})}
        )
        if last is not None and last.get("result") == Outcome.RUNNING:
            last.update(
                wire(
                    ExecutedAction,
                    result=Outcome.SUCCEEDED,
                    finished_at=utcnow().isoformat(),
                    message="finished before an operator restart; verified by observation",
                )
            )
            await w.patch(executed_actions=executed)
        if remaining:
            await w.enter(
                Phase.REMEDIATING, f"verified {last['id'] if last else 'the plan'}: next action"
            )
        else:
            await d.resolve(w, "verified: the invariant holds again")
        return 0
    timeout = d.rt.settings.verify_timeout
    # Monotonic: a wall clock stepped forward must not fail it early.
    if w.in_phase_for(Phase.VERIFYING) < timeout:
        return d.rt.settings.verify_interval
    if a_step:
        assert last is not None
        reason = (
            f"verification failed: after {last['id']} {last['action']}, "
            f"{', '.join(broken_now) or 'observation'} still broken after "
            f"{format_duration(timeout)}; the rest of the plan did not run"
        )
    else:
        what = incident.spec.invariant or "the reported symptom"
        reason = f"verification failed: {what} still broken after {format_duration(timeout)}"
    if last is not None and last.get("result") == Outcome.RUNNING:
        last.update(
            wire(
                ExecutedAction,
                result=Outcome.UNKNOWN,
                finished_at=utcnow().isoformat(),
                message="interrupted by an operator restart and not verified; not repeated",
            )
        )
        await w.patch(executed_actions=executed)
        reason += f"; {last['id']} {last['action']} was interrupted and is not repeated"
    elif last is not None and last.get("result") == Outcome.SUCCEEDED:
        spec = find_action(bound.plugin, last["action"])
        if spec is not None and spec.reversible and not last.get("undone"):
            reason += "; " + await _undo(d, incident, subject, bound, obs, w, last)
    await d.escalate(w, reason)
    return 0


async def _undo(
    d: IncidentDriver,
    incident: Incident,
    subject: Subject,
    bound: Bound,
    obs: Observation | None,
    w: StatusWriter,
    last: dict[str, Any],
) -> str:
    """Reverts `last` if the gate lets it (as it would the action itself, bar the action's
    own preconditions and the budget); says what happened."""
    decision = await judge_take_back(d, incident, subject, bound, obs, last, "undo")
    if decision.verdict != Verdict.RUN or decision.params is None:
        return f"did not undo {last['id']} {last['action']}: {decision.reason}"
    try:
        result = await actions.undo(
            bound.plugin, last["action"], decision.params, last["idempotencyKey"]
        )
    except Exception as err:  # a failed undo is recorded and escalated, never fatal
        result = ActionResult(ok=False, message=f"{type(err).__name__}: {err}")
    await d.audit("action.undone", {"id": last["id"], "ok": result.ok, "message": result.message})
    executed = w.executed()
    executed[-1].update(wire(ExecutedAction, undone=result.ok))
    await w.patch(executed_actions=executed)
    if not result.ok:
        return f"could not undo {last['id']} {last['action']}: {result.message}"
    return f"undid {last['id']} {last['action']}: {result.message}"


async def judge_take_back(
    d: IncidentDriver,
    incident: Incident,
    subject: Subject,
    bound: Bound,
    obs: Observation | None,
    last: dict[str, Any],
    phase: str,
) -> Decision:
    """The gate's decision on taking `last` back (an undo, or a release of what an interrupted
    action held): judged as the action itself, bar its own preconditions and the budget, with
    its recorded Approval; audited under `phase`."""
    facts = await d.gate_input(incident, subject, bound, obs)
    facts.undo = True
    decision, _ = await d.decide_approved(
        incident, facts, last["id"], last["action"], last.get("params", {}), last.get("approvalUid")
    )
    await d.audit(
        "policy.decision",
        {"phase": phase, "id": last["id"], "action": last["action"], **decision.as_dict()},
    )
    return decision


def _newly_broken(
    d: IncidentDriver, incident: Incident, bound: Bound, obs: Observation, last: dict[str, Any]
) -> list[str]:
    """What is broken now and was not when `last` started (the incident's own invariant
    counts as broken before, when no baseline was recorded)."""
    now = d.broken(bound, obs)
    if now is None:
        return ["evaluation"]
    before = set(last.get("brokenBefore") or [])
    if last.get("brokenBefore") is None and incident.spec.invariant:
        before.add(d.as_recorded(f"{incident.spec.invariant}/{incident.spec.entity or ''}"))
    return [b for b in now if b not in before]


def _holds(incident: Incident, bound: Bound, obs: Observation) -> bool:
    try:
        violations = bound.plugin.evaluate(obs, bound.invariants)
    except Exception:  # cannot evaluate = not verified (fail closed)
        return False
    if not incident.spec.invariant:
        return not violations  # a person's symptom: healthy means nothing is broken
    entity = incident.spec.entity or ""
    return not any(
        v.invariant == incident.spec.invariant and v.entity == entity for v in violations
    )
