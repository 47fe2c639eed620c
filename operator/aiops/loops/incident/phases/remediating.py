"""Remediating: the plan's next approved step runs, then Verifying decides whether it worked.

The step waits out the Subject's `cooldown` if another incident's action ended (or is running)
on the same subject within it (a timeline note says how long and after what), is judged again
on live state (a step that needs an approval only with its live Approval, which must still
match the step's digest; "approved" in status counts for nothing), is recorded as `Running`
with an idempotency key, its approval and what was broken at that moment (`brokenBefore`)
*before* it runs, runs, and is recorded with its result. A failure is retried only when the
action says a retry is safe; otherwise the incident escalates. With every step done: Resolved.

A step found `Running` (the operator died while it ran) is resumed (`_resume_unfinished`): a
retry-safe action is sent again only if the gate, asked again with its live Approval, lets it
run now; refused on its preconditions (it may have done its work already) it goes to
verification, refused on anything else (paused, observe, switch, blast radius, its Approval
gone) it is marked `Unknown` and the incident escalates with the reason. Any other goes to
verification, which decides on live state. An action that is not sent again first has the
plugin release what it held while it ran (`SubjectPlugin.release`: a TiKV eviction), judged
by the gate like an undo, so nothing of it outlives the incident unowned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiops import actions
from aiops.actions import find_action
from aiops.api import ExecutedAction, Incident, Subject
from aiops.api.common import wire
from aiops.crashpoints import crashpoint
from aiops.loops.incident.phases.verifying import judge_take_back
from aiops.loops.incident.status import StatusWriter
from aiops.subjects.binding import Bound
from aiops.subjects.contract import ActionResult, Observation, SubjectPlugin, utcnow
from aiops.vocabulary import Check, Outcome, Phase, Verdict

if TYPE_CHECKING:
    from aiops.loops.incident.driver import IncidentDriver

MAX_ATTEMPTS = 3  # of a failing action that says a retry is safe
COOLING_POLL = 10.0  # the longest wait between two looks while the Subject cools down


async def step(d: IncidentDriver, incident: Incident, w: StatusWriter) -> float:
    executed = incident.status.executed_actions
    if any(a.result == Outcome.RUNNING for a in executed):
        return await _resume_unfinished(d, incident, w)
    done = {a.id for a in executed if a.result == Outcome.SUCCEEDED}
    nxt = next(
        (
            p
            for p in incident.status.proposed_actions
            if p.decision == Verdict.RUN and p.id not in done
        ),
        None,
    )
    if nxt is None:
        await d.resolve(w, "every action ran and was verified")
        return 0
    subject = await d.subject(incident)
    if subject is None:
        await d.escalate(w, f"Subject {incident.spec.subject} disappeared")
        return 0
    params = dict(nxt.params)
    # Checked and recorded under the Subject's lock: another incident's action that passed
    # the same checks a moment ago is on record (Running) before we look.
    async with d.rt.subject_lock(d.namespace, incident.spec.subject):
        others = await d.others_actions(subject)  # one read for both checks
        cooling, after = d.cooldown_left(subject, others)
        if cooling > 0:
            if d.cooling_for != nxt.id:  # one note per wait, not one per poll
                d.cooling_for = nxt.id
                await w.note(
                    f"{nxt.id} {nxt.action} waits {cooling:.0f}s: the Subject's "
                    f"cooldown after {after}"
                )
            return min(cooling, COOLING_POLL)
        bound = await d.plugin(subject)
        obs = await d.observe(bound)
        facts = await d.gate_input(incident, subject, bound, obs, others)
        decision, ap = await d.decide_approved(
            incident, facts, nxt.id, nxt.action, params, nxt.approval_uid
        )
        await d.audit(
            "policy.decision",
            {"phase": "run", "id": nxt.id, "action": nxt.action, **decision.as_dict()},
        )
        if decision.verdict != Verdict.RUN or decision.spec is None or decision.params is None:
            await d.escalate(w, f"{nxt.id} {nxt.action} refused at run time: {decision.reason}")
            return 0
        attempt = sum(1 for a in executed if a.id == nxt.id) + 1
        key = f"{(incident.metadata.uid or d.name)[:8]}-{nxt.id}"
        if attempt > 1:
            key = f"{key}-{attempt}"  # retry-safe by its own word; each attempt on record
        crashpoint("before-action-recorded")
        broken = d.broken(bound, obs) if obs is not None else None
        started = wire(
            ExecutedAction,
            id=nxt.id,
            action=nxt.action,
            params=params,
            idempotency_key=key,
            started_at=utcnow().isoformat(),
            result=Outcome.RUNNING,
            approval_uid=ap.metadata.uid if ap is not None else None,
            approved_by=ap.spec.approved_by if ap is not None else None,
            broken_before=broken[:50] if broken is not None else None,
        )
        await w.patch(executed_actions=[*w.executed(), started])
    await d.audit("action.started", started)
    crashpoint("after-action-recorded")
    result = await d.execute(bound, nxt.action, decision, key)
    crashpoint("after-action-executed")
    finished = {
        **w.executed()[-1],
        **wire(
            ExecutedAction,
            finished_at=utcnow().isoformat(),
            result=Outcome.SUCCEEDED if result.ok else Outcome.FAILED,
            message=result.message,
        ),
    }
    # Audited before the status write: if the write is refused, the log still says what the
    # action did, and the incident escalates with the reason.
    await d.audit("action.finished", finished)
    await w.patch(executed_actions=[*w.executed()[:-1], finished])
    crashpoint("after-action-finished")
    if not result.ok:
        failures = sum(
            1 for a in w.executed() if a["id"] == nxt.id and a["result"] == Outcome.FAILED
        )
        if decision.spec.retry_safe and failures < MAX_ATTEMPTS:
            delay = min(2.0**failures, 30.0)
            await d.audit(
                "note", {"retry": nxt.id, "after_seconds": delay, "attempt": failures + 1}
            )
            return delay  # the same step comes up again: it has not Succeeded
        await d.escalate(w, f"{nxt.id} {nxt.action} failed: {result.message}")
        return 0
    await w.enter(Phase.VERIFYING, f"{nxt.id} {nxt.action} ran: verifying")
    return 0


async def _resume_unfinished(d: IncidentDriver, incident: Incident, w: StatusWriter) -> float:
    """An action recorded as started, then the operator died: did it run? Never guess. A
    retry-safe action is sent again under the same idempotency key (the subject makes the
    second one a no-op), if the gate, on live state and with its Approval still live, lets it
    run now; any other goes to verification, which decides on live state."""
    executed = w.executed()
    last = executed[-1]
    subject = await d.subject(incident)
    if subject is None:
        await d.escalate(w, f"Subject {incident.spec.subject} disappeared")
        return 0
    bound = await d.plugin(subject)
    spec = find_action(bound.plugin, last["action"])
    if spec is None or not spec.retry_safe:
        released = await _release(d, incident, subject, bound, None, last)
        await w.enter(
            Phase.VERIFYING,
            f"resumed: {last['id']} {last['action']} may have run; "
            f"verifying on live state, not repeating it{released}",
        )
        return 0
    obs = await d.observe(bound)
    facts = await d.gate_input(incident, subject, bound, obs)
    facts.executed_in_incident -= 1  # the action resumed is counted already
    decision, _ = await d.decide_approved(
        incident, facts, last["id"], last["action"], last.get("params", {}), last.get("approvalUid")
    )
    await d.audit(
        "policy.decision",
        {"phase": "resume", "id": last["id"], "action": last["action"], **decision.as_dict()},
    )
    if decision.verdict != Verdict.RUN or decision.params is None:
        released = await _release(d, incident, subject, bound, obs, last)
        if decision.check == Check.PRECONDITION:
            # Expected when the first send did its work before the restart.
            await w.enter(
                Phase.VERIFYING,
                f"resumed: {last['id']} {last['action']} is not "
                f"sent again ({decision.reason}); it may have run: verifying on live "
                f"state{released}",
            )
            return 0
        last.update(
            wire(
                ExecutedAction,
                result=Outcome.UNKNOWN,
                finished_at=utcnow().isoformat(),
                message=f"interrupted by an operator restart; not sent again: {decision.reason}",
            )
        )
        await w.patch(executed_actions=executed)
        await d.escalate(
            w,
            f"{last['id']} {last['action']} was interrupted by an operator "
            f"restart and is not sent again: {decision.reason}{released}",
        )
        return 0
    await d.audit("action.resumed", {"id": last["id"], "idempotencyKey": last["idempotencyKey"]})
    result = await d.execute(bound, last["action"], decision, last["idempotencyKey"])
    last.update(
        wire(
            ExecutedAction,
            finished_at=utcnow().isoformat(),
            result=Outcome.SUCCEEDED if result.ok else Outcome.FAILED,
            message=f"resumed after a restart under the same idempotency key: {result.message}",
        )
    )
    await d.audit("action.finished", last)
    await w.patch(executed_actions=executed)
    if not result.ok:
        await d.escalate(w, f"{last['id']} {last['action']} failed: {result.message}")
        return 0
    await w.enter(Phase.VERIFYING, f"{last['id']} {last['action']} finished: verifying")
    return 0


async def _release(
    d: IncidentDriver,
    incident: Incident,
    subject: Subject,
    bound: Bound,
    obs: Observation | None,
    last: dict[str, Any],
) -> str:
    """Has the plugin release what `last`, interrupted and not sent again, held while it ran,
    if the gate lets it (as an undo); says what happened ("; ..."), or nothing for a plugin
    that holds nothing between calls (it does not override `release`). Never raises."""
    if type(bound.plugin).release is SubjectPlugin.release or actions.is_core(last["action"]):
        return ""
    if obs is None:
        obs = await d.observe(bound)
    decision = await judge_take_back(d, incident, subject, bound, obs, last, "release")
    if decision.verdict != Verdict.RUN or decision.params is None:
        return f"; did not release what it held: {decision.reason}"
    try:
        result = await actions.release(
            bound.plugin, last["action"], decision.params, last["idempotencyKey"]
        )
    except Exception as err:  # a failed release is said in the record, never fatal
        result = ActionResult(ok=False, message=f"{type(err).__name__}: {err}")
    await d.audit("action.released", {"id": last["id"], "ok": result.ok, "message": result.message})
    return ("; released: " if result.ok else "; could not release what it held: ") + result.message
