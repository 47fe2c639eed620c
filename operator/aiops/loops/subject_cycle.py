"""One observation cycle of one Subject: observe, evaluate, open or refresh Incidents, and write
what was seen into the Subject's status.

Everything that must survive an operator restart (breaches being held, when observation began
failing, which incident belongs to which breach) is read from and written to status; the only
thing kept in memory is the plugin instance, rebuilt whenever the spec changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiops import metrics
from aiops.api import (
    Chaos,
    Incident,
    IncidentStatus,
    Subject,
    SubjectStatus,
    TimelineEntry,
    to_timedelta,
)
from aiops.api.common import NULL, wire
from aiops.api.subject import Member as StatusMember
from aiops.conditions import set_condition
from aiops.kube import CustomResources, is_conflict
from aiops.loops.chaos_link import LABEL_CHAOS, linked_chaos
from aiops.subjects.binding import Bound, SubjectProblem, bind
from aiops.subjects.contract import (
    Observation,
    Severity,
    Violation,
    utcnow,
)
from aiops.subjects.detection import (
    OBSERVATION_FAILED,
    DetectionState,
    Pending,
    breach_key,
    incident_name,
    step,
)
from aiops.vocabulary import (
    TERMINAL,
    ConditionType,
    EventType,
    Health,
    MemberState,
    Phase,
    Reason,
)

log = logging.getLogger(__name__)

LABEL_SUBJECT = "aiops.dev/subject"
LABEL_INVARIANT = "aiops.dev/invariant"
LABEL_ENTITY = "aiops.dev/entity-hash"
MAX_EVIDENCE = 10
CHAOS_WAIT = timedelta(seconds=10)
"""How long a due breach waits for a Chaos caught mid-injection to record its injectedAt."""


def entity_hash(entity: str) -> str:
    return hashlib.sha256(entity.encode()).hexdigest()[:16]


@dataclass
class Events:
    """Where Events go; kopf's posting in the operator, a list in unit tests."""

    post: Any = None  # callable(type, reason, message)

    def __call__(self, type_: str, reason: str, message: str) -> None:
        if self.post is not None:
            self.post(type_, reason, message)


@dataclass
class SubjectCycle:
    """Runs cycles for one Subject; keeps the bound plugin between cycles."""

    api: CustomResources
    namespace: str
    name: str
    events: Events = field(default_factory=Events)
    bound: Bound | None = None

    @property
    def metrics_id(self) -> str:
        return metrics.subject_id(self.namespace, self.name)

    # -- binding --------------------------------------------------------------------------

    async def _bind(self, subject: Subject) -> Bound:
        generation = subject.metadata.generation or 0
        if self.bound is not None and self.bound.generation == generation:
            return self.bound
        await self.close()
        self.bound = bind(subject, self.api.api_client)
        metrics.subject_bound(self.metrics_id, [*self.bound.invariants, OBSERVATION_FAILED])
        return self.bound

    async def close(self) -> None:
        if self.bound is not None:
            bound, self.bound = self.bound, None
            await bound.close()

    # -- one cycle ------------------------------------------------------------------------

    async def run(self, subject: Subject) -> timedelta:
        """One cycle. Never raises for a problem of this Subject: it lands in its status."""
        interval = to_timedelta(subject.spec.interval)
        now = utcnow()
        if subject.spec.paused:
            await self._not_ready(subject, Health.PAUSED, "Paused", "spec.paused is true", now)
            return interval
        try:
            bound = await self._bind(subject)
        except SubjectProblem as problem:
            await self._not_ready(subject, Health.UNKNOWN, problem.reason, problem.message, now)
            return interval

        timeout = max(1.0, min(interval.total_seconds(), 30.0))
        try:
            with metrics.observation(self.metrics_id):
                obs = await asyncio.wait_for(bound.plugin.observe(), timeout=timeout)
        except Exception as err:  # any failure to observe is "don't know", never "all clear"
            message = (
                f"observation timed out after {timeout:.0f} s"
                if isinstance(err, TimeoutError)
                else f"{type(err).__name__}: {err}"
            )
            await self._observation_failed(subject, message, now)
            return interval
        await self._observed(subject, bound, obs, now)
        return interval

    async def _observation_failed(self, subject: Subject, message: str, now: datetime) -> None:
        status = subject.status
        gen = subject.metadata.generation
        detection = _detection(subject)
        since = status.observation_failing_since or now
        grace = to_timedelta(subject.spec.observation_grace_period)
        conditions = set_condition(
            status.conditions,
            ConditionType.OBSERVATION_FAILING,
            True,
            Reason.OBSERVATION_FAILED,
            message,
            now,
            gen,
        )
        conditions = set_condition(
            conditions, ConditionType.READY, False, Reason.OBSERVATION_FAILED, message, now, gen
        )
        if now - since >= grace:
            v = Violation(
                invariant=OBSERVATION_FAILED,
                severity=Severity.CRITICAL,
                summary=f"{subject.metadata.name} cannot be observed since {since.isoformat()}: "
                f"{message}",
                evidence=[message],
            )
            key = breach_key(OBSERVATION_FAILED, "")
            prev = detection.pending.get(key)
            pending = Pending(
                invariant=OBSERVATION_FAILED,
                since=since,
                last_seen=now,
                incident=prev.incident if prev else "",
            )
            detection.pending[key] = pending
            # Persist the breach before the incident exists: a restart recomputes its name.
            await self._write_status(
                subject,
                health=Health.UNKNOWN,
                conditions=conditions,
                detection=detection,
                failing_since=since,
                count_open=False,
            )
            pending.incident = await self._ensure_incident(subject, v, pending, now)
        await self._write_status(
            subject,
            health=Health.UNKNOWN,
            conditions=conditions,
            detection=detection,
            failing_since=since,
        )

    async def _observed(
        self, subject: Subject, bound: Bound, obs: Observation, now: datetime
    ) -> None:
        status = subject.status
        gen = subject.metadata.generation
        detection = _detection(subject)
        previous = DetectionState(
            pending={
                k: p for k, p in detection.pending.items() if p.invariant != OBSERVATION_FAILED
            }
        )
        recovered = [p for p in detection.pending.values() if p.invariant == OBSERVATION_FAILED]
        try:
            violations = bound.plugin.evaluate(obs, bound.invariants)
        except Exception as err:  # a plugin bug must not stop the other Subjects
            message = f"the {subject.spec.type} plugin failed to evaluate: {err}"
            await self._not_ready(subject, Health.UNKNOWN, "EvaluationFailed", message, now)
            return
        result = step(previous, violations, bound.invariants, now)
        if result.due:
            # Persist held breaches before opening their incidents, so incident names survive
            # a crash between the steps. Only then: this write in every cycle was half of the
            # API writes of the subject loop (and of the watch events every process reads back),
            # and with no incident to open the cycle's last write says the same (docs/scale.md).
            await self._write_status(
                subject,
                health=None,
                conditions=status.conditions,
                detection=result.state,
                failing_since=None,
                count_open=False,
            )
        for v, pending in result.due:
            pending.incident = await self._ensure_incident(subject, v, pending, now)
        for p in [*result.cleared, *recovered]:
            if p.incident:
                await self._mark_cleared(p, now)
        health = Health.DEGRADED if violations else Health.HEALTHY
        summary = "; ".join(v.summary for v in violations[:5]) or "every invariant holds"
        conditions = set_condition(
            status.conditions,
            ConditionType.READY,
            True,
            Reason.OBSERVED,
            "observation succeeded",
            now,
            gen,
        )
        conditions = set_condition(
            conditions,
            ConditionType.OBSERVATION_FAILING,
            False,
            Reason.OBSERVED,
            "observation succeeded",
            now,
            gen,
        )
        conditions = set_condition(
            conditions,
            ConditionType.DEGRADED,
            bool(violations),
            "InvariantsBroken" if violations else "InvariantsHold",
            summary,
            now,
            gen,
        )
        await self._write_status(
            subject,
            health=health,
            conditions=conditions,
            detection=result.state,
            failing_since=None,
            members=obs,
            observed_at=obs.observed_at,
        )

    # -- incidents ------------------------------------------------------------------------

    async def _ensure_incident(
        self, subject: Subject, v: Violation, pending: Pending, now: datetime
    ) -> str:
        """Open the incident of this breach, or refresh it if it is open already."""
        name = (
            pending.incident
            or await self._open_incident_for(v)
            or incident_name(self.name, v.invariant, v.entity, pending.since)
        )
        # A new episode may be a Chaos' doing: then it counts from the real injection.
        chaos = None
        if not pending.incident:
            chaos, injecting = await self._chaos_for(subject, v, pending, now)
            if chaos is None and injecting is not None and now - pending.since < CHAOS_WAIT:
                return ""  # opened at the next cycle, linked, once its injection is recorded
        body = {
            "apiVersion": Incident.API_VERSION,
            "kind": Incident.KIND,
            "metadata": {
                "name": name,
                "labels": {
                    LABEL_SUBJECT: self.name,
                    LABEL_INVARIANT: v.invariant.replace("_", "-"),
                    LABEL_ENTITY: entity_hash(v.entity),
                    **({LABEL_CHAOS: chaos.metadata.name} if chaos else {}),
                },
            },
            "spec": {
                "subject": self.name,
                "invariant": v.invariant,
                "severity": v.severity.value,
                "summary": v.summary[:4000],
                "source": "subject-loop",
                "evidence": [
                    {"kind": "observation", "text": e[:2000], "at": now.isoformat()}
                    for e in v.evidence[:MAX_EVIDENCE]
                ],
                **({"entity": v.entity} if v.entity else {}),
            },
        }
        created = False
        try:
            obj = await self.api.create(Incident.PLURAL, self.namespace, body)
            created = True
        except Exception as err:
            if not is_conflict(err):
                raise
            obj = await self.api.get(Incident.PLURAL, self.namespace, name)
        status = obj.get("status") or {}
        if status.get("phase") == Phase.RESOLVED:
            # Verified fixed, yet broken again: a new episode, held and opened anew.
            pending.since, pending.incident = now, ""
            return ""
        if created or not status.get("phase"):
            self.events(EventType.WARNING, "IncidentOpened", f"{name}: {v.summary}"[:1000])
            fault_at = pending.since
            opened = f"opened by the subject loop: {v.summary}"
            link: str | None = None
            if chaos is not None and chaos.status.injected_at is not None:
                fault_at = chaos.status.injected_at
                link = chaos.metadata.name
                opened = f"{opened} (during Chaos {chaos.metadata.name})"
            await self.api.patch_status(
                Incident.PLURAL,
                self.namespace,
                name,
                wire(
                    IncidentStatus,
                    phase=Phase.OPEN,
                    fault_at=fault_at.isoformat(),
                    chaos=link,
                    detected_at=now.isoformat(),
                    last_seen_at=now.isoformat(),
                    count=1,
                    timeline=[
                        wire(
                            TimelineEntry,
                            time=now.isoformat(),
                            phase=Phase.OPEN,
                            message=opened[:1000],
                        )
                    ],
                ),
            )
            # Counted once the Incident says it is open: a failed write is tried again.
            origin = "chaos" if link else "breach"
            ttd = (now - fault_at).total_seconds()
            metrics.incident_opened(self.metrics_id, v.invariant, origin, ttd)
        else:
            # Still broken: tell whoever holds the incident (an Escalated one included).
            await self.api.patch_status(
                Incident.PLURAL,
                self.namespace,
                name,
                wire(
                    IncidentStatus,
                    last_seen_at=now.isoformat(),
                    count=int(status.get("count") or 0) + 1,
                ),
            )
        return name

    async def _chaos_for(
        self, subject: Subject, v: Violation, pending: Pending, now: datetime
    ) -> tuple[Chaos | None, Chaos | None]:
        """The Chaos behind this breach, and one still injecting (see aiops.loops.chaos_link);
        a failure to tell never stops the Incident from opening."""
        invariant = self.bound.invariants.get(v.invariant) if self.bound else None
        try:
            return await linked_chaos(
                self.api,
                self.namespace,
                self.name,
                pending.since,
                now,
                invariant.hold if invariant else timedelta(0),
                to_timedelta(subject.spec.interval),
            )
        except Exception as err:  # a failure to tell never stops the Incident from opening
            log.warning(
                "%s/%s: cannot look for a Chaos behind %s: %s",
                self.namespace,
                self.name,
                v.invariant,
                err,
            )
            return None, None

    async def _open_incident_for(self, v: Violation) -> str:
        """An open incident of this (invariant, entity) from an earlier episode or a lost
        status (the labels say whose it is)."""
        selector = (
            f"{LABEL_SUBJECT}={self.name},{LABEL_INVARIANT}={v.invariant.replace('_', '-')},"
            f"{LABEL_ENTITY}={entity_hash(v.entity)}"
        )
        for obj in await self.api.list(Incident.PLURAL, self.namespace, selector):
            if (obj.get("status") or {}).get("phase") not in TERMINAL:
                return str(obj["metadata"]["name"])
        return ""

    async def _mark_cleared(self, p: Pending, now: datetime) -> None:
        """The breach is gone: say so on the incident (the incident loop decides its fate)."""
        try:
            obj = await self.api.get(Incident.PLURAL, self.namespace, p.incident)
        except Exception:  # best effort: gone or unreadable, the incident's own verification
            return  # decides its fate; the breach is already off this Subject's status
        incident = Incident.from_k8s(obj)
        # In every phase: whoever holds the incident learns the breach is gone (a Resolved
        # one too: the subject loop's word beside the verification's).
        conditions = set_condition(
            incident.status.conditions,
            ConditionType.BREACHED,
            False,
            "InvariantHolds",
            f"{p.invariant} holds again for {p.entity or 'the subject'}",
            now,
        )
        await self.api.patch_status(
            Incident.PLURAL,
            self.namespace,
            p.incident,
            wire(
                IncidentStatus,
                conditions=[
                    c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conditions
                ],
            ),
        )
        self.events(EventType.NORMAL, "InvariantHolds", f"{p.incident}: {p.invariant} holds again")

    # -- status ---------------------------------------------------------------------------

    async def _not_ready(
        self, subject: Subject, health: Health, reason: str, message: str, now: datetime
    ) -> None:
        """Ready=False with why: paused, a plugin that cannot bind or evaluate."""
        conditions = set_condition(
            subject.status.conditions,
            ConditionType.READY,
            False,
            reason,
            message,
            now,
            subject.metadata.generation,
        )
        await self._write_status(subject, health=health, conditions=conditions)

    async def _write_status(
        self,
        subject: Subject,
        *,
        health: Health | None,
        conditions: list[Any],
        detection: DetectionState | None = None,
        failing_since: datetime | bool | None = False,
        members: Observation | None = None,
        observed_at: datetime | None = None,
        count_open: bool = True,
    ) -> None:
        """`count_open=False` for the early write of a cycle (the breaches, before incidents
        are opened): the cycle's last write counts them, once."""
        patch = wire(
            SubjectStatus,
            conditions=[
                c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conditions
            ],
            observed_generation=NULL
            if subject.metadata.generation is None
            else subject.metadata.generation,
            health=health,
        )
        if health is not None and health != subject.status.health:
            kind = (
                EventType.NORMAL if health in (Health.HEALTHY, Health.PAUSED) else EventType.WARNING
            )
            self.events(
                kind, f"Health{health}", f"health {subject.status.health or 'unset'} -> {health}"
            )
            subject.status.health = health
        if detection is not None:
            patch.update(wire(SubjectStatus, detection=detection.to_status()))
        if failing_since is not False:
            patch.update(
                wire(
                    SubjectStatus,
                    observation_failing_since=(
                        failing_since.isoformat() if isinstance(failing_since, datetime) else NULL
                    ),
                )
            )
        if members is not None:
            patch.update(
                wire(
                    SubjectStatus,
                    members=[
                        StatusMember.model_validate(
                            {
                                "name": m.name,
                                "state": m.state.value,
                                "role": m.role or None,
                                "message": _member_message(m),
                            }
                        ).model_dump(mode="json", by_alias=True, exclude_none=True)
                        for m in members.members
                    ],
                )
            )
        if observed_at is not None:
            patch.update(wire(SubjectStatus, last_observation_time=observed_at.isoformat()))
        if count_open:
            patch.update(wire(SubjectStatus, open_incidents=await self._count_open()))
        await self.api.patch_status(Subject.PLURAL, self.namespace, self.name, patch)

    async def _count_open(self) -> int:
        # By spec.subject (a selectable field), so incidents people filed count too.
        items = await self.api.list(
            Incident.PLURAL, self.namespace, field_selector=f"spec.subject={self.name}"
        )
        return sum(1 for o in items if (o.get("status") or {}).get("phase") not in TERMINAL)


def _detection(subject: Subject) -> DetectionState:
    return DetectionState.from_status(subject.status.detection)


def _member_message(m: Any) -> str | None:
    parts = [m.message] if m.message else []
    if m.last_seen is not None and m.state != MemberState.UP:
        parts.append(f"last seen {m.last_seen.isoformat()}")
    return "; ".join(parts) or None
