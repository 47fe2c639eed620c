"""Drives one Incident through its phases (`machine.py` has the table: each phase, the module
that handles it, and where it may go next).

Each call to `step()` reads the Incident fresh from the API server, does one step of its
phase, writes the outcome into its status, and says how long to wait before the next. All
progress lives in status (and the audit log), so an operator killed at any point resumes where
it was: an action is recorded as started *before* it runs, and a started-but-unfinished action
found on resume is checked against live state, never blindly repeated.

The status is a record, never an authority: a step runs only when the policy gate says so on
live state at that moment, and a step that needs a person's approval runs only under a live
Approval that matches it (`approvals.py`), whatever the status says.

This module is the plumbing every phase shares: the Subject and its plugin, observation, the
gate's facts and decisions, live Approvals, running an action, escalating and resolving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from aiops import actions, metrics
from aiops.actions import find_action
from aiops.api import Approval, Incident, Subject
from aiops.api.common import ShortText
from aiops.api.durations import to_timedelta
from aiops.audit import AuditUnwritable
from aiops.kube import is_not_found
from aiops.loops.incident.approvals import mismatch
from aiops.loops.incident.machine import MACHINE, allowed
from aiops.loops.incident.status import StatusWriteError, StatusWriter, fit, timestamp
from aiops.loops.runtime import Runtime
from aiops.policy.gate import Decision, GateInput, decide
from aiops.subjects.binding import Bound, bind
from aiops.subjects.contract import ActionResult, Observation, utcnow
from aiops.vocabulary import TERMINAL, ApprovalDecision, Check, Outcome, Phase, Source, Verdict

log = logging.getLogger(__name__)

UNWRITABLE_RETRY = 60.0  # when not even the escalation of an unwritable status can be written
_SHORT_TEXT: TypeAdapter[str] = TypeAdapter(ShortText)

Others = list[tuple[str, dict[str, Any]]]
"""(incident, executed action as on the wire) of the Subject's other incidents."""


@dataclass
class IncidentDriver:
    rt: Runtime
    namespace: str
    name: str
    _bound: Bound | None = None
    _bound_for: tuple[str, int] | None = None
    cooling_for: str | None = None  # the step whose cooldown wait has its timeline note

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
        writer = StatusWriter(
            self.rt.api, obj, self.audit, self.rt.redactor, self.rt.transitions.publish
        )
        if incident.status.phase is None and incident.spec.source == Source.SUBJECT_LOOP:
            # The subject loop writes the first status (phase Open, faultAt, detectedAt) just
            # after creating it; starting before that would race it for the same fields.
            return 0.5
        phase = incident.status.phase or Phase.OPEN
        if phase in TERMINAL:
            return None
        writer.moves = allowed(phase)
        try:
            return await MACHINE[phase].handler(self, incident, writer)
        except StatusWriteError as err:
            return await self._unwritable(writer, err)
        except AuditUnwritable as err:
            return await self._unaudited(writer, err)

    async def _unwritable(self, w: StatusWriter, err: StatusWriteError) -> float | None:
        """A status write that can never succeed: escalate with the reason, rather than fail
        the same step again and again."""
        reason = f"the Incident's status could not be written: {err}"
        await self.audit("note", {"status_write_failed": str(err)})
        try:
            await self.escalate(w, reason)
        except StatusWriteError as again:
            log.error(
                "incident %s/%s: %s; escalating failed too: %s",
                self.namespace,
                self.name,
                reason,
                again,
            )
            return UNWRITABLE_RETRY
        return 0

    async def _unaudited(self, w: StatusWriter, err: AuditUnwritable) -> float | None:
        """The audit log refused a record: nothing more of this incident may run (every step
        is recorded before it is taken), so a person takes over, told why. The escalation
        itself cannot be recorded either; it is in status, the Event and the operator's log.
        Retried as any failed step while even the status write fails."""
        reason = f"{err}; no action runs unaudited"
        log.error("incident %s/%s: %s", self.namespace, self.name, reason)

        async def unrecorded(_kind: str, _data: dict[str, Any]) -> None:
            return None

        w.audit = unrecorded
        await self.escalate(w, reason)
        return 0

    async def escalate(self, w: StatusWriter, reason: str) -> None:
        """Enters Escalated: a person must act, and `reason` says why."""
        try:
            await self.rt.checkpoint_for(self.namespace, self.name).clear()
        except OSError as err:
            # A leftover checkpoint is harmless (a closed incident never resumes its agent);
            # a read-only audit directory refuses even to unlink a missing file, and that
            # must not stop the escalation that says so.
            log.warning(
                "incident %s/%s: checkpoint not removed: %s", self.namespace, self.name, err
            )
        await w.enter(Phase.ESCALATED, f"escalated: {reason}", escalation_reason=reason)

    async def resolve(self, w: StatusWriter, message: str) -> None:
        """Enters Resolved: the subject was observed healthy again."""
        await w.enter(Phase.RESOLVED, message, resolved_at=utcnow().isoformat())

    # -- plumbing -------------------------------------------------------------------------

    @property
    def where(self) -> actions.Where:
        """Where a core action of this incident runs: the namespace, the settings' kubectl."""
        return actions.Where(self.namespace, self.rt.settings.kubectl)

    async def audit(self, kind: str, data: dict[str, Any]) -> Any:
        """Appends a record; returns it (its seq and hash become the Incident's audit head)."""
        return await self.rt.audit(self.namespace, self.name, kind, data)

    async def subject(self, incident: Incident) -> Subject | None:
        try:
            obj = await self.rt.api.get(Subject.PLURAL, self.namespace, incident.spec.subject)
        except Exception as err:
            if is_not_found(err):
                return None
            raise
        return Subject.from_k8s(obj)

    async def plugin(self, subject: Subject) -> Bound:
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

    async def observe(self, bound: Bound) -> Observation | None:
        try:
            return await asyncio.wait_for(bound.plugin.observe(), timeout=30)
        except Exception as err:  # any failure is "no observation": the gate then fails closed
            await self.audit("note", {"observation_failed": f"{type(err).__name__}: {err}"})
            return None

    async def gate_input(
        self,
        incident: Incident,
        subject: Subject,
        bound: Bound,
        obs: Observation | None,
        others: Others | None = None,
    ) -> GateInput:
        """`others`: the subject's other incidents' actions, when the caller has just read
        them (listed here otherwise)."""
        if others is None:
            others = await self.others_actions(subject)
        executed = [a for a in incident.status.executed_actions if a.result != Outcome.FAILED]
        return GateInput(
            subject=subject,
            plugin=bound.plugin,
            observation=obs,
            actions_stopped=await self.rt.actions_stopped(),
            executed_in_incident=len(executed),
            disruptive_running=[
                f"{other}/{a.get('id')}"
                for other, a in others
                if a.get("result") == Outcome.RUNNING
                and (spec := find_action(bound.plugin, a.get("action", ""))) is not None
                and spec.disrupts_member
            ],
        )

    async def others_actions(self, subject: Subject) -> Others:
        """(incident, executed action) of the subject's other incidents, from live state."""
        items = await self.rt.api.list(
            Incident.PLURAL,
            self.namespace,
            field_selector=f"spec.subject={subject.metadata.name}",
        )
        return [
            (obj["metadata"]["name"], a)
            for obj in items
            if obj["metadata"]["name"] != self.name
            for a in (obj.get("status") or {}).get("executedActions", [])
        ]

    def cooldown_left(self, subject: Subject, others: Others) -> tuple[float, str]:
        """Seconds until the subject's cooldown after another incident's action (`others`)
        ends, and which action it follows. A running action keeps the subject cooling."""
        cooldown = to_timedelta(subject.spec.cooldown)
        if not cooldown:
            return 0.0, ""
        now = utcnow()
        left, after = 0.0, ""
        for other, a in others:
            ended = timestamp(a.get("finishedAt")) if a.get("result") != Outcome.RUNNING else now
            if ended is None:
                continue
            wait = (ended + cooldown - now).total_seconds()
            if wait > left:
                left, after = wait, f"{other}/{a.get('id')} {a.get('action')}"
        return left, after

    def broken(self, bound: Bound, obs: Observation) -> list[str] | None:
        """The subject's broken invariants as `invariant/entity`, in the form the status
        records them (redacted, clipped), so that they compare with `brokenBefore`."""
        try:
            violations = bound.plugin.evaluate(obs, bound.invariants)
        except Exception:  # a plugin bug: no baseline, which verification reads as "unknown"
            return None
        return sorted({self.as_recorded(f"{v.invariant}/{v.entity}") for v in violations})

    def as_recorded(self, entry: str) -> str:
        recorded: str = fit(_SHORT_TEXT, self.rt.redactor.redact_text(entry))
        return recorded

    # -- the gate, approvals, actions -----------------------------------------------------

    async def judge(
        self, action: str, params: Any, facts: GateInput
    ) -> tuple[Decision, dict[str, Any] | None]:
        """The gate's decision on a proposed step and, for an action whose API has a real dry
        run (a Kubernetes mutation) that the gate would let through, that dry run's report (a
        refusal there refuses the step)."""
        if self.rt.redactor.redact(params) != params:
            # What runs is what the record says; a secret is never recorded, so never run.
            return Decision(
                Verdict.REFUSED,
                "its parameters hold what looks like a secret: the operator "
                "records every step it runs, and never a secret; propose a step that refers to "
                "the secret (a Secret's name) instead of carrying it",
                check=Check.PARAMS,
            ), None
        d = await decide(action, params, facts, self.rt.settings.gate)
        if d.verdict == Verdict.REFUSED or d.params is None:
            return d, None
        dry = await actions.dry_run(action, d.params, self.where)
        if dry is None:
            return d, None
        report = {"ok": dry.ok, "message": dry.message}
        if not dry.ok:
            return Decision(
                Verdict.REFUSED, dry.message, d.spec, d.params, Check.PRECONDITION
            ), report
        return d, report

    async def decide_approved(
        self,
        incident: Incident,
        facts: GateInput,
        step_id: str,
        action: str,
        params: dict[str, Any],
        approval_uid: str | None,
    ) -> tuple[Decision, Approval | None]:
        """The gate's decision on a step about to run (or be resumed, or undone), with the
        live Approval that approves it, if one does; a step that needs one and has none is
        refused, saying why."""
        ap, missing = await self.live_approval(incident, step_id, action, params, approval_uid)
        facts.approved = ap is not None
        d = await decide(action, params, facts, self.rt.settings.gate)
        if d.verdict == Verdict.AWAIT_APPROVAL:
            d = Decision(Verdict.REFUSED, f"{d.reason}, and {missing}", d.spec, d.params, d.check)
        return d, (ap if d.verdict == Verdict.RUN and d.check == Check.APPROVAL else None)

    async def live_approval(
        self,
        incident: Incident,
        step_id: str,
        action: str,
        params: dict[str, Any],
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
        why = (
            "it does not approve it"
            if ap.spec.decision != ApprovalDecision.APPROVE or step_id not in ap.spec.actions
            else mismatch(
                ap,
                incident.metadata.uid or "",
                step_id,
                action,
                params,
                step.proposed_at if step is not None else None,
            )
        )
        if why is not None:
            return None, f"its Approval {ap.metadata.name} does not match: {why}"
        return ap, ""

    async def execute(self, bound: Bound, action: str, d: Decision, key: str) -> ActionResult:
        """Runs an action the gate let run, within the action timeout; never raises."""
        assert d.params is not None
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(
                actions.execute(bound.plugin, action, d.params, key, self.where),
                timeout=self.rt.settings.action_timeout,
            )
        except Exception as err:  # whatever the plugin raised is this action's failure, on record
            result = ActionResult(ok=False, message=f"{type(err).__name__}: {err}")
        risk = d.spec.risk if d.spec is not None else None
        metrics.action_ran(action, risk, result.ok, time.monotonic() - started)
        return result
