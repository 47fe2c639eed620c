"""Phase changes of Incidents and Chaos, as typed events, for whoever listens: the structured
log, notifications, metrics.

Published from the one place each phase changes (`StatusWriter.enter` for an Incident,
`ChaosDriver._write` for a Chaos), after the new phase is written: an event says what the API
server already holds. A subscriber is a plain callable that must return at once (enqueue, count,
log); the hub calls each in turn and logs whatever one raises, so a listener can never block or
fail a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aiops.logs import fields
from aiops.subjects.contract import utcnow
from aiops.vocabulary import Phase, Verdict

log = logging.getLogger(__name__)

Kind = Literal["Incident", "Chaos"]


class PlanStep(BaseModel):
    """A proposed step as a message shows it (the status' ProposedAction, as recorded)."""

    model_config = ConfigDict(frozen=True)

    id: str
    action: str
    params: Mapping[str, Any] = Field(default_factory=dict)
    risk: str | None = None
    decision: str | None = None
    reason: str | None = None


class Transition(BaseModel):
    """One phase change of one object. Every text in it comes from what the operator wrote
    into status (redacted there), never from anything it did not write."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    namespace: str
    name: str
    uid: str = ""
    subject: str
    from_phase: str | None = Field(description="The phase before; None for a Chaos' first.")
    to_phase: str
    reason: str = Field(description="Why, as the timeline (Incident) or message (Chaos) says.")
    time: datetime = Field(default_factory=utcnow)
    # Incident only
    invariant: str | None = None
    entity: str | None = None
    plan: tuple[PlanStep, ...] = ()
    approval_command: str | None = Field(
        default=None, description="The `aiops approve` command, when steps wait for one."
    )
    # Chaos only
    fault: str | None = None
    targets: tuple[str, ...] = ()
    outcome: str | None = Field(
        default=None, description="Resolution or escalation reason; a Chaos' last message."
    )


Subscriber = Callable[[Transition], None]


class TransitionHub:
    """Fan-out of transitions to subscribers; never raises, never waits."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Adds `fn`; returns what removes it again."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def publish(self, transition: Transition) -> None:
        t = transition
        log.info(
            "%s %s/%s: %s -> %s: %s",
            t.kind,
            t.namespace,
            t.name,
            t.from_phase or "-",
            t.to_phase,
            t.reason,
            extra=fields(
                event="phase",
                namespace=t.namespace,
                subject=t.subject,
                **{t.kind.lower(): t.name},
                from_phase=t.from_phase,
                to_phase=t.to_phase,
            ),
        )
        for fn in list(self._subscribers):
            try:
                fn(transition)
            except Exception:  # a listener's bug is logged, and the loop goes on
                log.exception("a transition subscriber failed on %s", _said(transition))


def _said(t: Transition) -> str:
    return f"{t.kind} {t.namespace}/{t.name} {t.from_phase} -> {t.to_phase}"


def incident_transition(
    obj: Mapping[str, Any],
    status: Mapping[str, Any],
    from_phase: str | None,
    to_phase: str,
    reason: str,
) -> Transition:
    """An Incident's transition, from the object and the status as just written."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    plan = tuple(
        PlanStep(
            id=str(p.get("id", "")),
            action=str(p.get("action", "")),
            params=dict(p.get("params") or {}),
            risk=p.get("risk"),
            decision=p.get("decision"),
            reason=p.get("reason"),
        )
        for p in status.get("proposedActions") or []
    )
    waiting = [p.id for p in plan if p.decision == Verdict.AWAIT_APPROVAL]
    command = None
    if to_phase == Phase.AWAITING_APPROVAL and waiting:
        command = f"aiops approve {name} -n {namespace} {' '.join(waiting)}"
    outcome = status.get("escalationReason") if to_phase == Phase.ESCALATED else None
    if to_phase == Phase.RESOLVED:
        outcome = reason
    return Transition(
        kind="Incident",
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid") or ""),
        subject=str(spec.get("subject") or ""),
        from_phase=from_phase,
        to_phase=to_phase,
        reason=reason,
        invariant=spec.get("invariant"),
        entity=spec.get("entity"),
        plan=plan,
        approval_command=command,
        outcome=outcome,
    )


def chaos_transition(
    obj: Mapping[str, Any], status: Mapping[str, Any], from_phase: str | None
) -> Transition:
    """A Chaos' transition, from the object and the status as just written."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    message = str(status.get("message") or "")
    return Transition(
        kind="Chaos",
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        subject=str(spec.get("subject") or ""),
        from_phase=from_phase,
        to_phase=str(status.get("phase") or ""),
        reason=message,
        fault=spec.get("fault"),
        targets=tuple(str(t.get("name", "")) for t in status.get("targets") or []),
        outcome=message,
    )
