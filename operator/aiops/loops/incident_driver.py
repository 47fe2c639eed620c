"""Drives one Incident through Open → Investigating → AwaitingApproval → Remediating →
Verifying → Resolved | Escalated.

Each call to `step()` reads the Incident fresh from the API server, does one step, writes the
outcome into its status, and says how long to wait before the next. All progress lives in
status (and the audit log), so an operator killed at any point resumes where it was: an action
is recorded as started *before* it runs, and a started-but-unfinished action found on resume is
checked against live state, never blindly repeated.

The status is a record, never an authority: a step runs only when the policy gate says so on
live state at that moment, and a step that needs a person's approval runs only under a live
Approval that matches it (`loops/approvals.py`), whatever the status says.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from aiops import actions
from aiops.actions import find_action
from aiops.agent.base import AgentResult, Investigation
from aiops.api import Approval, ApprovalStatus, Incident, Subject
from aiops.api.approval import step_digest
from aiops.api.common import ShortText
from aiops.api.durations import format_duration, to_timedelta
from aiops.crashpoints import crashpoint
from aiops.kube import is_not_found
from aiops.loops.approvals import mismatch
from aiops.loops.incident_status import StatusWriteError, StatusWriter, fit
from aiops.loops.runtime import Runtime
from aiops.policy.gate import Decision, GateInput, decide
from aiops.subjects.binding import Bound, SubjectProblem, bind
from aiops.subjects.contract import ActionResult, Observation, utcnow

log = logging.getLogger(__name__)

TERMINAL = ("Resolved", "Escalated")
IDLE = 2.0
MAX_ATTEMPTS = 3  # of a failing action that says a retry is safe
UNWRITABLE_RETRY = 60.0  # when not even the escalation of an unwritable status can be written
_SHORT_TEXT: TypeAdapter[str] = TypeAdapter(ShortText)


@dataclass
class IncidentDriver:
    rt: Runtime
    namespace: str
    name: str
    _bound: Bound | None = None
    _bound_for: tuple[str, int] | None = None
    _cooling_for: str | None = None

    # -- plumbing -------------------------------------------------------------------------

    async def audit(self, kind: str, data: dict[str, Any]) -> Any:
        """Appends a record; returns it (its seq and hash become the Incident's audit head)."""
        return await self.rt.audit(self.namespace, self.name, kind, data)

    async def _subject(self, incident: Incident) -> Subject | None:
        try:
            obj = await self.rt.api.get(Subject.PLURAL, self.namespace, incident.spec.subject)
        except Exception as err:
            if is_not_found(err):
                return None
            raise
        return Subject.from_k8s(obj)

    async def _plugin(self, subject: Subject) -> Bound:
        key = (subject.metadata.uid or "", subject.metadata.generation or 0)
        if self._bound is None or self._bound_for != key:
            await self.close()
            self._bound = bind(subject, self.rt.api.api_client)
            self._bound_for = key
        return self._bound

    async def close(self) -> None:
        if self._bound is not None:
            bound, self._bound = self._bound, None
            await bound.close()

    async def _observe(self, bound: Bound) -> Observation | None:
        try:
            return await asyncio.wait_for(bound.plugin.observe(), timeout=30)
        except Exception as err:
            await self.audit("note", {"observation_failed": f"{type(err).__name__}: {err}"})
            return None

    async def _gate_input(
        self, incident: Incident, subject: Subject, bound: Bound, obs: Observation | None,
        others: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> GateInput:
        """`others`: the subject's other incidents' actions, when the caller has just read
        them (listed here otherwise)."""
        if others is None:
            others = await self._others_actions(subject)
        executed = [a for a in incident.status.executed_actions if a.result != "Failed"]
        return GateInput(
            subject=subject,
            plugin=bound.plugin,
            observation=obs,
            actions_stopped=await self.rt.actions_stopped(),
            executed_in_incident=len(executed),
            disruptive_running=[
                f"{other}/{a.get('id')}"
                for other, a in others
                if a.get("result") == "Running"
                and (spec := find_action(bound.plugin, a.get("action", ""))) is not None
                and spec.disrupts_member
            ],
        )

    async def _others_actions(self, subject: Subject) -> list[tuple[str, dict[str, Any]]]:
        """(incident, executed action) of the subject's other incidents, from live state."""
        items = await self.rt.api.list(
            Incident.PLURAL, self.namespace,
            field_selector=f"spec.subject={subject.metadata.name}",
        )
        return [
            (obj["metadata"]["name"], a)
            for obj in items if obj["metadata"]["name"] != self.name
            for a in (obj.get("status") or {}).get("executedActions", [])
        ]

    def _cooldown_left(
        self, subject: Subject, others: list[tuple[str, dict[str, Any]]]
    ) -> tuple[float, str]:
        """Seconds until the subject's cooldown after another incident's action (`others`)
        ends, and which action it follows. A running action keeps the subject cooling."""
        cooldown = to_timedelta(subject.spec.cooldown)
        if not cooldown:
            return 0.0, ""
        now = utcnow()
        left, after = 0.0, ""
        for other, a in others:
            ended = _timestamp(a.get("finishedAt")) if a.get("result") != "Running" else now
            if ended is None:
                continue
            wait = (ended + cooldown - now).total_seconds()
            if wait > left:
                left, after = wait, f"{other}/{a.get('id')} {a.get('action')}"
        return left, after

    def _broken(self, bound: Bound, obs: Observation) -> list[str] | None:
        """The subject's broken invariants as `invariant/entity`, in the form the status
        records them (redacted, clipped), so that they compare with `brokenBefore`."""
        try:
            violations = bound.plugin.evaluate(obs, bound.invariants)
        except Exception:
            return None
        return sorted({self._as_recorded(f"{v.invariant}/{v.entity}") for v in violations})

    def _as_recorded(self, entry: str) -> str:
        recorded: str = fit(_SHORT_TEXT, self.rt.redactor.redact_text(entry))
        return recorded

    # -- the state machine ----------------------------------------------------------------

    async def step(self) -> float | None:
        """One step. Returns the delay before the next, or None when the incident is closed."""
        try:
            obj = await self.rt.api.get(Incident.PLURAL, self.namespace, self.name)
        except Exception as err:
            if is_not_found(err):
                return None
            raise
        incident = Incident.from_k8s(obj)
        writer = StatusWriter(self.rt.api, obj, self.audit, self.rt.redactor)
        if incident.status.phase is None and incident.spec.source == "subject-loop":
            # The subject loop writes the first status (phase Open, faultAt, detectedAt) just
            # after creating it; starting before that would race it for the same fields.
            return 0.5
        phase = incident.status.phase or "Open"
        if phase in TERMINAL:
            return None
        handler = {
            "Open": self._open,
            "Investigating": self._investigate,
            "AwaitingApproval": self._await_approval,
            "Remediating": self._remediate,
            "Verifying": self._verify,
        }[phase]
        try:
            return await handler(incident, writer)
        except StatusWriteError as err:
            return await self._unwritable(writer, err)

    async def _unwritable(self, w: StatusWriter, err: StatusWriteError) -> float | None:
        """A status write that can never succeed: escalate with the reason, rather than fail
        the same step again and again."""
        reason = f"the Incident's status could not be written: {err}"
        await self.audit("note", {"status_write_failed": str(err)})
        try:
            await self._escalate(w, reason)
        except StatusWriteError as again:
            log.error("incident %s/%s: %s; escalating failed too: %s", self.namespace,
                      self.name, reason, again)
            return UNWRITABLE_RETRY
        return 0

    async def _open(self, incident: Incident, w: StatusWriter) -> float:
        patch: dict[str, Any] = {}
        if incident.status.detected_at is None:
            patch["detectedAt"] = utcnow().isoformat()  # a person filed it: detected now
        await w.enter("Investigating", "investigation started", **patch)
        return 0

    async def _escalate(self, w: StatusWriter, reason: str) -> None:
        await self.rt.checkpoint_for(self.namespace, self.name).clear()
        await w.enter("Escalated", f"escalated: {reason}", escalationReason=reason)

    async def _investigate(self, incident: Incident, w: StatusWriter) -> float:
        subject = await self._subject(incident)
        if subject is None:
            await self._escalate(w, f"Subject {incident.spec.subject} does not exist")
            return 0
        try:
            bound = await self._plugin(subject)
            agent = await self.rt.agent_for(subject)
        except (SubjectProblem, ValueError) as err:
            await self._escalate(w, f"cannot investigate: {err}")
            return 0

        async def preview(action: str, params: dict[str, Any]) -> dict[str, Any]:
            obs = await self._observe(bound)
            d, dry = await self._judge(action, params,
                                       await self._gate_input(incident, subject, bound, obs))
            await self.audit("policy.decision", {"phase": "preview", "action": action,
                                                 "params": params, **d.as_dict(),
                                                 **({"dryRun": dry} if dry else {})})
            return {**d.as_dict(), **({"dryRun": dry} if dry else {})}

        now_obs = await self._observe(bound)
        violations = []
        if now_obs is not None:
            try:
                violations = bound.plugin.evaluate(now_obs, bound.invariants)
            except Exception as err:
                await self.audit("note", {"evaluate_failed": str(err)})
        inv = Investigation(
            incident=incident,
            subject=subject,
            plugin=type(bound.plugin),
            violations=violations,
            # The runbook reads nothing beyond the violations; a model gets the read-only tools.
            tools=(None if agent.name == "runbook"
                   else self.rt.tools_for(bound=bound, subject=subject, preview=preview)),
            audit=self.audit,
            checkpoint=self.rt.checkpoint_for(self.namespace, self.name),
        )
        await self.audit("agent.start", {"agent": agent.name})
        result: AgentResult = await agent.investigate(inv)
        await self.audit("agent.result", result.model_dump(mode="json"))
        usage = {
            "backend": result.usage.backend,
            "turns": result.usage.turns,
            "inputTokens": result.usage.input_tokens,
            "outputTokens": result.usage.output_tokens,
            "costUSD": result.usage.cost_usd,
            **({"model": result.usage.model} if result.usage.model else {}),
        }
        # Clipped to the model's bounds and redacted by the writer, like every status field.
        diagnosis = {
            "summary": result.diagnosis.summary or "(none)",
            "alternatives": list(result.diagnosis.alternatives),
            **({"rootCause": result.diagnosis.root_cause}
               if result.diagnosis.root_cause else {}),
            **({"confidence": result.diagnosis.confidence}
               if result.diagnosis.confidence is not None else {}),
        }
        if result.outcome == "escalate":
            await w.patch(diagnosis=diagnosis, agent=usage)
            await self._escalate(w, result.escalation_reason or "the agent escalated")
            return 0
        obs = await self._observe(bound)
        facts = await self._gate_input(incident, subject, bound, obs)
        proposed = []
        uid = incident.metadata.uid or ""
        for i, s in enumerate(result.steps[:20], start=1):
            d, dry = await self._judge(s.action, s.params, facts)
            await self.audit("policy.decision", {"phase": "plan", "id": f"a{i}",
                                                 "action": s.action, "params": s.params,
                                                 **d.as_dict(), **({"dryRun": dry} if dry else {})})
            proposed.append(_proposed(f"a{i}", s.action, s.params, s.rationale, d, dry, uid))
        await w.patch(diagnosis=diagnosis, agent=usage, proposedActions=proposed)
        crashpoint("after-plan-recorded")
        await self.rt.checkpoint_for(self.namespace, self.name).clear()
        verdicts = [p["decision"] for p in proposed]
        if not proposed:
            await w.enter("Verifying", "no action proposed: verifying the subject recovers")
        elif "await-approval" in verdicts:
            n = verdicts.count("await-approval")
            await w.enter("AwaitingApproval", f"{n} action(s) wait for an Approval")
        elif "run" in verdicts:
            await w.enter("Remediating", "remediation started")
        else:
            reasons = "; ".join(f"{p['id']} {p['action']}: {p['reason']}" for p in proposed)
            await self._escalate(w, f"every proposed action was refused ({reasons})")
        return 0

    async def _judge(
        self, action: str, params: Any, facts: GateInput
    ) -> tuple[Decision, dict[str, Any] | None]:
        """The gate's decision on a proposed step and, for a Kubernetes mutation the gate
        would let through, the API server's dry run of it (a refusal there refuses the step)."""
        if self.rt.redactor.redact(params) != params:
            # What runs is what the record says; a secret is never recorded, so never run.
            return Decision(
                "refused", "its parameters hold what looks like a secret: the operator records "
                "every step it runs, and never a secret; propose a step that refers to the "
                "secret (a Secret's name) instead of carrying it", check="params",
            ), None
        d = await decide(action, params, facts, self.rt.settings.gate)
        if d.verdict == "refused" or d.params is None:
            return d, None
        dry = await actions.dry_run(action, d.params, self.namespace)
        if dry is None:
            return d, None
        report = {"ok": dry.ok, "message": dry.message}
        if not dry.ok:
            return Decision("refused", dry.message, d.spec, d.params, "precondition"), report
        return d, report

    async def _await_approval(self, incident: Incident, w: StatusWriter) -> float:
        subject = await self._subject(incident)
        if subject is None:
            await self._escalate(w, f"Subject {incident.spec.subject} was deleted while the "
                                 "incident awaited approval")
            return 0
        proposed = [p.model_dump(mode="json", by_alias=True, exclude_none=True)
                    for p in incident.status.proposed_actions]
        waiting = {p["id"] for p in proposed if p.get("decision") == "await-approval"}
        approvals = await self.rt.api.list(
            Approval.PLURAL, self.namespace, field_selector=f"spec.incident={self.name}"
        )
        approvals.sort(key=lambda o: o["metadata"].get("creationTimestamp", ""))
        changed = False
        for obj in approvals:
            if (obj.get("status") or {}).get("phase") in ("Applied", "Stale"):
                continue
            hits, stale = self._apply_approval(incident, obj, proposed, waiting)
            waiting -= hits
            changed = changed or bool(hits)
            await self._mark_approval(obj, hits, stale)
        if changed:
            await w.patch(proposedActions=proposed)
        if not waiting:
            if any(p.get("decision") == "run" for p in proposed):
                await w.enter("Remediating", "approvals received: remediation started")
            else:
                await self._escalate(w, "every proposed action was rejected or refused")
            return 0
        since = w.entered_at("AwaitingApproval") or utcnow()
        timeout = self.rt.settings.approval_timeout
        if subject.spec.approval_timeout:
            timeout = to_timedelta(subject.spec.approval_timeout)
        if utcnow() - since > timeout:
            await self._escalate(
                w, f"no approval for {', '.join(sorted(waiting))} within "
                f"{format_duration(timeout)}"
            )
            return 0
        return min(IDLE, max((since + timeout - utcnow()).total_seconds(), 0.1))

    def _apply_approval(
        self, incident: Incident, obj: dict[str, Any], proposed: list[dict[str, Any]],
        waiting: set[str],
    ) -> tuple[set[str], str]:
        """Applies one Approval to the `proposed` steps (in place): the ids it decided, or
        none and why it is Stale. An Approval is applied whole or not at all."""
        try:
            ap = Approval.from_k8s(obj)
        except ValidationError as err:
            return set(), f"not a valid Approval: {err.errors()[0]['msg']}"
        uid = incident.metadata.uid or ""
        ids = set(ap.spec.actions) or (waiting if ap.spec.decision == "reject" else set())
        hits = ids & waiting
        if not hits:
            return set(), "names no action waiting for approval"
        steps = [p for p in proposed if p["id"] in hits]
        problems = [
            f"{p['id']}: {why}" for p in steps
            if (why := mismatch(ap, uid, p["id"], p["action"], p.get("params", {}),
                                _timestamp(p.get("proposedAt")))) is not None
        ]
        if problems:
            return set(), "; ".join(problems)
        who = ap.spec.approved_by
        for p in steps:
            if ap.spec.decision == "approve":
                p.update(decision="run", reason=f"approved by {who}",
                         approvalUid=ap.metadata.uid, approvedBy=who)
            else:
                why = f": {ap.spec.reason}" if ap.spec.reason else ""
                p.update(decision="refused", reason=f"rejected by {who}{why}")
        return hits, ""

    async def _mark_approval(self, obj: dict[str, Any], hits: set[str], stale: str) -> None:
        name = obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        await self.audit("approval", {
            "approval": name, "uid": obj["metadata"].get("uid"), "by": spec.get("approvedBy"),
            "decision": spec.get("decision"), "actions": spec.get("actions", []),
            "applied": sorted(hits), **({"stale": stale} if stale else {}),
        })
        status = fit(ApprovalStatus, self.rt.redactor.redact({
            "phase": "Applied" if hits else "Stale",
            "message": f"applied to {', '.join(sorted(hits))}" if hits else stale,
            "appliedAt": utcnow().isoformat(),
        }))
        await self.rt.api.patch_status(Approval.PLURAL, self.namespace, name, status)

    async def _live_approval(
        self, incident: Incident, step_id: str, action: str, params: dict[str, Any],
        approval_uid: str | None,
    ) -> tuple[Approval | None, str]:
        """The live Approval that approves this step as it is now, or None and why not."""
        if not approval_uid:
            return None, "no Approval is recorded for it"
        items = await self.rt.api.list(
            Approval.PLURAL, self.namespace, field_selector=f"spec.incident={self.name}"
        )
        obj = next((o for o in items if o["metadata"].get("uid") == approval_uid), None)
        if obj is None:
            return None, f"its Approval (uid {approval_uid}) no longer exists"
        try:
            ap = Approval.from_k8s(obj)
        except ValidationError as err:
            return None, f"its Approval is not valid: {err.errors()[0]['msg']}"
        step = next((p for p in incident.status.proposed_actions if p.id == step_id), None)
        why = ("it does not approve it" if ap.spec.decision != "approve"
               or step_id not in ap.spec.actions
               else mismatch(ap, incident.metadata.uid or "", step_id, action, params,
                             step.proposed_at if step is not None else None))
        if why is not None:
            return None, f"its Approval {ap.metadata.name} does not match: {why}"
        return ap, ""

    async def _remediate(self, incident: Incident, w: StatusWriter) -> float:
        executed = incident.status.executed_actions
        if any(a.result == "Running" for a in executed):
            return await self._resume_unfinished(incident, w)
        done = {a.id for a in executed if a.result == "Succeeded"}
        nxt = next((p for p in incident.status.proposed_actions
                    if p.decision == "run" and p.id not in done), None)
        if nxt is None:
            await self._resolve(w, "every action ran and was verified")
            return 0
        subject = await self._subject(incident)
        if subject is None:
            await self._escalate(w, f"Subject {incident.spec.subject} disappeared")
            return 0
        params = dict(nxt.params)
        # Checked and recorded under the Subject's lock: another incident's action that
        # passed the same checks a moment ago is on record (Running) before we look.
        async with self.rt.subject_lock(self.namespace, incident.spec.subject):
            others = await self._others_actions(subject)  # one read for both checks
            cooling, after = self._cooldown_left(subject, others)
            if cooling > 0:
                if self._cooling_for != nxt.id:  # one note per wait, not one per poll
                    self._cooling_for = nxt.id
                    await w.note(f"{nxt.id} {nxt.action} waits {cooling:.0f}s: the Subject's "
                                 f"cooldown after {after}")
                return min(cooling, 10.0)
            bound = await self._plugin(subject)
            obs = await self._observe(bound)
            facts = await self._gate_input(incident, subject, bound, obs, others)
            d, ap = await self._decide_approved(incident, facts, nxt.id, nxt.action, params,
                                                nxt.approval_uid)
            await self.audit("policy.decision", {"phase": "run", "id": nxt.id,
                                                 "action": nxt.action, **d.as_dict()})
            if d.verdict != "run" or d.spec is None or d.params is None:
                await self._escalate(w, f"{nxt.id} {nxt.action} refused at run time: "
                                     f"{d.reason}")
                return 0
            attempt = sum(1 for a in executed if a.id == nxt.id) + 1
            key = f"{(incident.metadata.uid or self.name)[:8]}-{nxt.id}"
            if attempt > 1:
                key = f"{key}-{attempt}"  # retry-safe by its own word; each attempt on record
            crashpoint("before-action-recorded")
            started: dict[str, Any] = {
                "id": nxt.id, "action": nxt.action, "params": params,
                "idempotencyKey": key, "startedAt": utcnow().isoformat(), "result": "Running",
            }
            if ap is not None:
                started.update(approvalUid=ap.metadata.uid, approvedBy=ap.spec.approved_by)
            broken = self._broken(bound, obs) if obs is not None else None
            if broken is not None:
                started["brokenBefore"] = broken[:50]
            await w.patch(executedActions=[*w.executed(), started])
        await self.audit("action.started", started)
        crashpoint("after-action-recorded")
        result = await self._execute(bound, nxt.action, d, key)
        crashpoint("after-action-executed")
        finished = {**w.executed()[-1], "finishedAt": utcnow().isoformat(),
                    "result": "Succeeded" if result.ok else "Failed", "message": result.message}
        # Audited before the status write: if the write is refused, the log still says what
        # the action did, and the incident escalates with the reason.
        await self.audit("action.finished", finished)
        await w.patch(executedActions=[*w.executed()[:-1], finished])
        crashpoint("after-action-finished")
        if not result.ok:
            failures = sum(1 for a in w.executed() if a["id"] == nxt.id and a["result"] == "Failed")
            if d.spec.retry_safe and failures < MAX_ATTEMPTS:
                delay = min(2.0 ** failures, 30.0)
                await self.audit("note", {"retry": nxt.id, "after_seconds": delay,
                                          "attempt": failures + 1})
                return delay  # the same step comes up again: it has not Succeeded
            await self._escalate(w, f"{nxt.id} {nxt.action} failed: {result.message}")
            return 0
        await w.enter("Verifying", f"{nxt.id} {nxt.action} ran: verifying")
        return 0

    async def _decide_approved(
        self, incident: Incident, facts: GateInput, step_id: str, action: str,
        params: dict[str, Any], approval_uid: str | None,
    ) -> tuple[Decision, Approval | None]:
        """The gate's decision on a step about to run (or be resumed, or undone), with the
        live Approval that approves it, if one does; a step that needs one and has none is
        refused, saying why."""
        ap, missing = await self._live_approval(incident, step_id, action, params, approval_uid)
        facts.approved = ap is not None
        d = await decide(action, params, facts, self.rt.settings.gate)
        if d.verdict == "await-approval":
            d = Decision("refused", f"{d.reason}, and {missing}", d.spec, d.params, d.check)
        return d, (ap if d.verdict == "run" and d.check == "approval" else None)

    async def _resume_unfinished(self, incident: Incident, w: StatusWriter) -> float:
        """An action recorded as started, then the operator died: did it run? Never guess.
        A retry-safe action is sent again under the same idempotency key (the subject makes
        the second one a no-op), if the gate, on live state and with its Approval still live,
        lets it run now; any other goes to verification, which decides on live state."""
        executed = w.executed()
        last = executed[-1]
        subject = await self._subject(incident)
        if subject is None:
            await self._escalate(w, f"Subject {incident.spec.subject} disappeared")
            return 0
        bound = await self._plugin(subject)
        spec = find_action(bound.plugin, last["action"])
        if spec is None or not spec.retry_safe:
            await w.enter("Verifying", f"resumed: {last['id']} {last['action']} may have run; "
                          "verifying on live state, not repeating it")
            return 0
        obs = await self._observe(bound)
        facts = await self._gate_input(incident, subject, bound, obs)
        facts.executed_in_incident -= 1  # the action resumed is counted already
        d, _ = await self._decide_approved(incident, facts, last["id"], last["action"],
                                           last.get("params", {}), last.get("approvalUid"))
        await self.audit("policy.decision", {"phase": "resume", "id": last["id"],
                                             "action": last["action"], **d.as_dict()})
        if d.verdict != "run" or d.params is None:
            if d.check == "precondition":
                # Expected when the first send did its work before the restart.
                await w.enter("Verifying", f"resumed: {last['id']} {last['action']} is not sent "
                              f"again ({d.reason}); it may have run: verifying on live state")
                return 0
            last.update(result="Unknown", finishedAt=utcnow().isoformat(),
                        message=f"interrupted by an operator restart; not sent again: {d.reason}")
            await w.patch(executedActions=executed)
            await self._escalate(w, f"{last['id']} {last['action']} was interrupted by an "
                                 f"operator restart and is not sent again: {d.reason}")
            return 0
        await self.audit("action.resumed", {"id": last["id"], "idempotencyKey":
                                            last["idempotencyKey"]})
        result = await self._execute(bound, last["action"], d, last["idempotencyKey"])
        last.update(finishedAt=utcnow().isoformat(),
                    result="Succeeded" if result.ok else "Failed",
                    message=f"resumed after a restart under the same idempotency key: "
                    f"{result.message}")
        await self.audit("action.finished", last)
        await w.patch(executedActions=executed)
        if not result.ok:
            await self._escalate(w, f"{last['id']} {last['action']} failed: {result.message}")
            return 0
        await w.enter("Verifying", f"{last['id']} {last['action']} finished: verifying")
        return 0

    async def _execute(self, bound: Bound, action: str, d: Decision, key: str) -> ActionResult:
        assert d.params is not None
        try:
            return await asyncio.wait_for(
                actions.execute(bound.plugin, action, d.params, key, self.namespace),
                timeout=self.rt.settings.action_timeout,
            )
        except Exception as err:
            return ActionResult(ok=False, message=f"{type(err).__name__}: {err}")

    async def _verify(self, incident: Incident, w: StatusWriter) -> float:
        subject = await self._subject(incident)
        if subject is None:
            await self._escalate(w, f"Subject {incident.spec.subject} disappeared")
            return 0
        bound = await self._plugin(subject)
        obs = await self._observe(bound)
        executed = w.executed()
        last = executed[-1] if executed else None
        remaining = [p for p in incident.status.proposed_actions
                     if p.decision == "run" and p.id not in {a["id"] for a in executed}]
        # A step before the plan's last need not fix the incident (it may only prepare the
        # fix); it is verified when the subject has settled: nothing broken that was not
        # broken before it ran. The last step is verified when the incident's invariant holds.
        step = remaining and last is not None
        if obs is None:
            holds, broken_now = False, []
        elif step:
            assert last is not None
            broken_now = self._newly_broken(incident, bound, obs, last)
            holds = not broken_now
        else:
            holds, broken_now = self._holds(incident, bound, obs), []
        if holds:
            await self.audit("verify", {"holds": True, "step": bool(step),
                                        **({"id": last["id"]} if last else {})})
            if last is not None and last.get("result") == "Running":
                last.update(result="Succeeded", finishedAt=utcnow().isoformat(),
                            message="finished before an operator restart; verified by observation")
                await w.patch(executedActions=executed)
            if remaining:
                await w.enter("Remediating", f"verified {last['id'] if last else 'the plan'}: "
                              "next action")
            else:
                await self._resolve(w, "verified: the invariant holds again")
            return 0
        since = w.entered_at("Verifying") or utcnow()
        timeout = self.rt.settings.verify_timeout
        if utcnow() - since < timeout:
            return self.rt.settings.verify_interval
        if step:
            assert last is not None
            reason = (f"verification failed: after {last['id']} {last['action']}, "
                      f"{', '.join(broken_now) or 'observation'} still broken after "
                      f"{format_duration(timeout)}; the rest of the plan did not run")
        else:
            what = incident.spec.invariant or "the reported symptom"
            reason = f"verification failed: {what} still broken after {format_duration(timeout)}"
        if last is not None and last.get("result") == "Running":
            last.update(result="Unknown", finishedAt=utcnow().isoformat(),
                        message="interrupted by an operator restart and not verified; not repeated")
            await w.patch(executedActions=executed)
            reason += f"; {last['id']} {last['action']} was interrupted and is not repeated"
        elif last is not None and last.get("result") == "Succeeded":
            spec = find_action(bound.plugin, last["action"])
            if spec is not None and spec.reversible and not last.get("undone"):
                reason += "; " + await self._undo(incident, subject, bound, obs, w, last)
        await self._escalate(w, reason)
        return 0

    async def _undo(
        self, incident: Incident, subject: Subject, bound: Bound, obs: Observation | None,
        w: StatusWriter, last: dict[str, Any],
    ) -> str:
        """Reverts `last` if the gate lets it (as it would the action itself, bar the
        action's own preconditions and the budget); says what happened."""
        facts = await self._gate_input(incident, subject, bound, obs)
        facts.undo = True
        d, _ = await self._decide_approved(incident, facts, last["id"], last["action"],
                                           last.get("params", {}), last.get("approvalUid"))
        await self.audit("policy.decision", {"phase": "undo", "id": last["id"],
                                             "action": last["action"], **d.as_dict()})
        if d.verdict != "run" or d.params is None:
            return f"did not undo {last['id']} {last['action']}: {d.reason}"
        try:
            result = await actions.undo(bound.plugin, last["action"], d.params,
                                        last["idempotencyKey"])
        except Exception as err:
            result = ActionResult(ok=False, message=f"{type(err).__name__}: {err}")
        await self.audit("action.undone", {"id": last["id"], "ok": result.ok,
                                           "message": result.message})
        executed = w.executed()
        executed[-1]["undone"] = result.ok
        await w.patch(executedActions=executed)
        if not result.ok:
            return f"could not undo {last['id']} {last['action']}: {result.message}"
        return f"undid {last['id']} {last['action']}: {result.message}"

    def _newly_broken(
        self, incident: Incident, bound: Bound, obs: Observation, last: dict[str, Any]
    ) -> list[str]:
        """What is broken now and was not when `last` started (the incident's own invariant
        counts as broken before, when no baseline was recorded)."""
        now = self._broken(bound, obs)
        if now is None:
            return ["evaluation"]
        before = set(last.get("brokenBefore") or [])
        if last.get("brokenBefore") is None and incident.spec.invariant:
            before.add(self._as_recorded(f"{incident.spec.invariant}/{incident.spec.entity or ''}"))
        return [b for b in now if b not in before]

    def _holds(self, incident: Incident, bound: Bound, obs: Observation) -> bool:
        try:
            violations = bound.plugin.evaluate(obs, bound.invariants)
        except Exception:
            return False
        if not incident.spec.invariant:
            return not violations  # a person's symptom: healthy means nothing is broken
        entity = incident.spec.entity or ""
        return not any(v.invariant == incident.spec.invariant and v.entity == entity
                       for v in violations)

    async def _resolve(self, w: StatusWriter, message: str) -> None:
        await w.enter("Resolved", message, resolvedAt=utcnow().isoformat())


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _proposed(
    id_: str, action: str, params: Any, rationale: str, d: Decision,
    dry_run: dict[str, Any] | None, incident_uid: str,
) -> dict[str, Any]:
    """A proposed step as the status records it (the writer redacts and clips it)."""
    params_obj = params if isinstance(params, dict) else {"value": params}
    action = action if _is_identifier(action) else "invalid-action"
    out = {
        "id": id_,
        "action": action,
        "params": params_obj,
        "risk": d.spec.risk.value if d.spec is not None else "high",
        # A real dry run where the subject's API has one (Kubernetes mutations); otherwise
        # the gate's checks on live state are the closest thing to it.
        "dryRun": dry_run or {"ok": d.verdict != "refused", "message": d.reason},
        "decision": d.verdict,
        "reason": d.reason,
        # An Approval created before this moment cannot have approved this step.
        "proposedAt": utcnow().isoformat(),
        "digest": step_digest(incident_uid, id_, action, params_obj),
    }
    if rationale:
        out["rationale"] = rationale
    return out


_IDENTIFIER = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _is_identifier(s: str) -> bool:
    """A model may name an action that is no identifier; the record must still be valid."""
    return len(s) <= 63 and bool(_IDENTIFIER.match(s))
