"""One trial, phase by phase: reset the Subject to healthy → apply the variant → create the
Chaos → find *its* Incident → wait for it to end and for the Subject to be healthy again →
record → make sure the Chaos is reverted and gone → cool down.

Its Incident is the one the subject loop linked to this trial's Chaos (label and
`status.chaos`), on the same Subject, created no earlier than the injection: each Chaos has a
name of its own (run, trial, attempt), so an Incident of an earlier trial, or of an earlier
attempt of this one, is never matched.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aiops.api import Chaos, ChaosStatus, Incident, Subject
from aiops.eval import measure
from aiops.eval.approve import approve_waiting, whoami
from aiops.eval.campaign import API_KEY_ENV, Campaign, FaultEntry, Variant
from aiops.eval.cluster import LABEL_RUN, LABEL_TRIAL, EvalApi
from aiops.eval.outcome import Verdict, decide
from aiops.eval.records import Backend, TrialOutcome, TrialRecord
from aiops.subjects.contract import utcnow
from aiops.vocabulary import (
    TERMINAL,
    ChaosPhase,
    ConditionStatus,
    ConditionType,
    Health,
    Phase,
)
from aiops.vocabulary import Verdict as GateVerdict

POLL = 0.5
LABEL_CHAOS = "aiops.dev/chaos"
KEY_SECRET, KEY_SECRET_KEY = "aiops-eval-anthropic", "apiKey"
INJECT_TIMEOUT = 60.0
GONE_TIMEOUT = 90.0


@dataclass(frozen=True)
class TrialPlan:
    seq: int
    subject: str  # namespace/name
    fault: FaultEntry
    variant: Variant
    trial: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.subject, self.fault.name, self.variant.name, self.trial)

    @property
    def namespace(self) -> str:
        return self.subject.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.subject.split("/", 1)[1]


Report = Callable[[str], None]
"""Told each phase as it starts, for the progress display."""


class TrialError(Exception):
    """The trial could not be run as planned; recorded as `error` with this message."""


@dataclass
class TrialRunner:
    api: EvalApi
    campaign: Campaign
    run_id: str
    audit_dir: Path | None
    api_key: str | None = None
    stop: threading.Event | None = None
    _user: str | None = None

    def user(self) -> str:
        """Who approves: the kubeconfig's user, as the API server knows it."""
        if self._user is None:
            self._user = whoami(self.api.custom.api_client)
        return self._user

    def run(self, plan: TrialPlan, report: Report) -> TrialRecord:
        started = utcnow()
        fields: dict[str, Any] = {}
        chaos_name: str | None = None
        try:
            report("reset: waiting for the Subject to be healthy")
            self._reset(plan)
            report("applying the variant")
            self._apply_variant(plan)
            chaos_name = f"{self.run_id}-{plan.seq}-{secrets.token_hex(2)}"
            report("injecting")
            verdict = self._inject_and_follow(plan, chaos_name, fields, report)
        except TrialError as err:
            verdict = Verdict(TrialOutcome.ERROR, str(err))
        finally:
            if chaos_name is not None:
                report("reverting the fault")
                self.remove_chaos(plan.namespace, chaos_name)
        record = TrialRecord(
            run_id=self.run_id,
            seq=plan.seq,
            subject=plan.subject,
            fault=plan.fault.name,
            plugin_fault=plan.fault.plugin_fault,
            variant=plan.variant.name,
            baseline=plan.variant.info().baseline,
            trial=plan.trial,
            outcome=verdict.outcome,
            detail=verdict.detail,
            chaos=chaos_name,
            started_at=started,
            finished_at=utcnow(),
            **fields,
        )
        return record

    # -- phases -----------------------------------------------------------------------------

    def _reset(self, plan: TrialPlan) -> None:
        """Healthy, with no open Incident (an open one of the same key would be refreshed
        instead of a new one opening), observed after this call began."""
        since = utcnow()
        limit = self.campaign.seconds(self.campaign.timeouts.healthy)
        last: list[str] = ["no status"]

        def ready() -> bool:
            obj = self.api.get(Subject.PLURAL, plan.namespace, plan.name)
            if obj is None:
                raise TrialError(f"Subject {plan.subject} is gone")
            st = Subject.from_k8s(obj).status
            last[0] = f"health {st.health}, {st.open_incidents} open incident(s)"
            seen = st.last_observation_time
            return (
                st.health == Health.HEALTHY
                and st.open_incidents == 0
                and seen is not None
                and seen >= since
            )

        if not poll(ready, limit, self.stop):
            raise TrialError(
                f"the Subject was not healthy within {limit:g} s before injection ({last[0]})"
            )

    def _apply_variant(self, plan: TrialPlan) -> None:
        v = plan.variant
        agent: dict[str, Any] = {
            "backend": v.backend.value,
            "model": v.model,
            "maxTurns": v.max_turns,
            "apiKeySecretRef": None,
        }
        if v.prompt_addendum is not None:
            agent["systemPromptAddendum"] = v.prompt_addendum
        if v.backend == Backend.ANTHROPIC:
            if v.api_key_secret is not None:
                ref = {"name": v.api_key_secret.name, "key": v.api_key_secret.key}
            else:
                if not self.api_key:
                    raise TrialError(f"variant {v.name}: no {API_KEY_ENV}")
                self.api.put_secret(plan.namespace, KEY_SECRET, KEY_SECRET_KEY, self.api_key)
                ref = {"name": KEY_SECRET, "key": KEY_SECRET_KEY}
            agent["apiKeySecretRef"] = ref
        patch = {"spec": {"autonomy": v.effective_autonomy.value, "agent": agent}}
        self.api.patch(Subject.PLURAL, plan.namespace, plan.name, patch)

    def _inject_and_follow(
        self, plan: TrialPlan, name: str, fields: dict[str, Any], report: Report
    ) -> Verdict:
        f = plan.fault
        spec: dict[str, Any] = {
            "subject": plan.name,
            "fault": f.plugin_fault,
            "duration": f.duration,
            "params": f.params,
        }
        if f.target is not None:
            spec["target"] = f.target
        body = {
            "apiVersion": Chaos.API_VERSION,
            "kind": Chaos.KIND,
            "metadata": {
                "name": name,
                "labels": {LABEL_RUN: self.run_id, LABEL_TRIAL: str(plan.seq)},
            },
            "spec": spec,
        }
        self.api.create(Chaos.PLURAL, plan.namespace, body)
        chaos = self._wait_injected(plan, name)
        injected = chaos.injected_at
        fields.update(injected_at=injected)
        if chaos.phase == ChaosPhase.FAILED or injected is None:
            fields.update(recovered_by=None)
            return decide(chaos, None, ended=False)

        timings = self.campaign.timings()
        report("waiting for its Incident")
        incident = self._find_incident(plan, name, injected, timings["detect_s"])
        if incident is None:
            chaos = self._chaos(plan, name) or chaos
            fields.update(_chaos_fields(chaos))
            return decide(chaos, None, ended=False, waited_s=timings["detect_s"])

        report(f"{incident.metadata.name}: following")
        incident, ended = self._follow(plan, incident, injected, timings["trial_s"], report)
        chaos = self._await_health(plan, name, incident, ended, timings["healthy_s"], report)
        fields.update(_chaos_fields(chaos))
        fields.update(measure.incident_fields(incident, injected, self.audit_dir))
        return decide(
            chaos,
            incident,
            ended=ended,
            broke_again=self._broke_again(plan, name, incident),
            waited_s=timings["trial_s"],
        )

    def _wait_injected(self, plan: TrialPlan, name: str) -> ChaosStatus:
        found: list[ChaosStatus] = []

        def injected() -> bool:
            st = self._chaos(plan, name)
            if st is None:
                raise TrialError(f"Chaos {name} disappeared before it was injected")
            found[:] = [st]
            return st.phase == ChaosPhase.FAILED or st.injected_at is not None

        if not poll(injected, INJECT_TIMEOUT, self.stop):
            why = found[0].message if found else None
            raise TrialError(f"Chaos {name} not injected within {INJECT_TIMEOUT:g} s ({why})")
        return found[0]

    def _find_incident(
        self, plan: TrialPlan, chaos: str, injected: datetime, limit: float
    ) -> Incident | None:
        """The first Incident linked to this Chaos on this Subject, created at or after the
        injection (creationTimestamp has whole seconds), waited for until `limit` seconds
        after the injection. Gives up early once the Chaos knows the Subject recovered."""
        floor = injected.replace(microsecond=0)
        deadline = injected + timedelta(seconds=limit)
        found: list[Incident] = []

        def linked() -> bool:
            items = self.api.list(Incident.PLURAL, plan.namespace, f"{LABEL_CHAOS}={chaos}")
            ours = [
                i
                for i in _incidents(items)
                if i.spec.subject == plan.name
                and i.status.chaos == chaos
                and i.metadata.creation_timestamp is not None
                and i.metadata.creation_timestamp >= floor
                and i.status.phase is not None
            ]
            if ours:
                found[:] = sorted(ours, key=lambda i: i.status.detected_at or injected)[:1]
                return True
            st = self._chaos(plan, chaos)
            return st is None or settled(st)

        poll(linked, max(0.0, (deadline - utcnow()).total_seconds()), self.stop)
        return found[0] if found else None

    def _follow(
        self,
        plan: TrialPlan,
        incident: Incident,
        injected: datetime,
        limit: float,
        report: Report,
    ) -> tuple[Incident, bool]:
        name = incident.metadata.name or ""
        current = [incident]
        approved: set[str] = set()

        def ended() -> bool:
            obj = self.api.get(Incident.PLURAL, plan.namespace, name)
            if obj is None:
                raise TrialError(f"Incident {name} was deleted during the trial")
            current[0] = Incident.from_k8s(obj)
            st = current[0].status
            report(f"{name}: {st.phase}")
            if plan.variant.approve and st.phase == Phase.AWAITING_APPROVAL:
                waiting = sorted(
                    p.id for p in st.proposed_actions if p.decision == GateVerdict.AWAIT_APPROVAL
                )
                if waiting and ",".join(waiting) not in approved:
                    approved.add(",".join(waiting))
                    approve_waiting(self.api, self.user(), current[0], f"aiops eval {self.run_id}")
            return st.phase in TERMINAL

        left = (injected + timedelta(seconds=limit) - utcnow()).total_seconds()
        done = poll(ended, max(0.0, left), self.stop)
        return current[0], done

    def _await_health(
        self,
        plan: TrialPlan,
        chaos: str,
        incident: Incident,
        ended: bool,
        limit: float,
        report: Report,
    ) -> ChaosStatus:
        """The Chaos once it knows the Subject is healthy again (or gives up). A baseline
        waits for the fault's own end, to see whether the Subject heals by itself; an
        escalated Incident of an acting variant does not (its fault is reverted now)."""
        phase = incident.status.phase
        baseline = plan.variant.info().baseline
        last: list[ChaosStatus | None] = [None]

        def healthy() -> bool:
            st = self._chaos(plan, chaos)
            last[0] = st
            return st is None or st.healthy_at is not None or settled(st)

        if ended and (phase == Phase.RESOLVED or baseline):
            report(f"{incident.metadata.name}: {phase}; waiting for the Subject to be healthy")
            st = last[0] = self._chaos(plan, chaos)
            wait = limit
            if baseline and st is not None and st.ends_at is not None:
                wait += max(0.0, (st.ends_at - utcnow()).total_seconds())
            poll(healthy, wait, self.stop)
        return last[0] or self._chaos(plan, chaos) or ChaosStatus()

    def _broke_again(self, plan: TrialPlan, chaos: str, incident: Incident) -> str | None:
        resolved = incident.status.resolved_at
        if resolved is None:
            return None
        items = self.api.list(Incident.PLURAL, plan.namespace, f"{LABEL_CHAOS}={chaos}")
        for other in _incidents(items):
            created = other.metadata.creation_timestamp
            if (
                other.metadata.name != incident.metadata.name
                and other.spec.invariant == incident.spec.invariant
                and other.spec.entity == incident.spec.entity
                and created is not None
                and created >= resolved.replace(microsecond=0)
            ):
                return other.metadata.name
        return None

    # -- the Chaos --------------------------------------------------------------------------

    def _chaos(self, plan: TrialPlan, name: str) -> ChaosStatus | None:
        obj = self.api.get(Chaos.PLURAL, plan.namespace, name)
        if obj is None:
            return None
        try:
            return Chaos.from_k8s(obj).status
        except ValidationError as err:
            raise TrialError(f"Chaos {name} does not match the API: {err}") from err

    def remove_chaos(self, namespace: str, name: str) -> bool:
        """Deletes the Chaos (the operator reverts it first) and waits until it is gone."""
        self.api.delete(Chaos.PLURAL, namespace, name)
        return poll(lambda: self.api.get(Chaos.PLURAL, namespace, name) is None, GONE_TIMEOUT)


def settled(st: ChaosStatus) -> bool:
    """The Chaos knows what became of the Subject (or failed)."""
    if st.phase == ChaosPhase.FAILED:
        return True
    return any(
        c.type == ConditionType.SUBJECT_RECOVERED and c.status != ConditionStatus.UNKNOWN
        for c in st.conditions
    )


def _chaos_fields(st: ChaosStatus) -> dict[str, Any]:
    return {
        "recovered_by": st.recovered_by.value if st.recovered_by else None,
        "healthy_s": measure.seconds(st.healthy_at, st.injected_at),
    }


def _incidents(items: list[dict[str, Any]]) -> list[Incident]:
    out = []
    for obj in items:
        try:
            out.append(Incident.from_k8s(obj))
        except ValidationError:
            continue
    return out


class Interrupted(Exception):
    """The run is stopping (Ctrl-C, a failure elsewhere): the trial ends unrecorded."""


def poll(probe: Callable[[], bool], limit: float, stop: threading.Event | None = None) -> bool:
    """Calls `probe` every POLL seconds until it is true (True) or `limit` passed (False);
    raises Interrupted once `stop` is set."""
    deadline = time.monotonic() + limit
    while True:
        if stop is not None and stop.is_set():
            raise Interrupted
        if probe():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
