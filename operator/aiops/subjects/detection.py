"""From instant breaches to incidents: hold times, deduplication and stable incident names.

Pure functions over a small state that the subject loop keeps in `Subject.status.detection`
(not in memory), so an operator restart neither forgets a breach that was being held nor opens
a second incident for one already open.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from aiops.api import InvariantOverride, to_timedelta
from aiops.api.subject import Detection, PendingBreach
from aiops.subjects.contract import Invariant, Severity, Violation

OBSERVATION_FAILED = "observation_failed"


def effective_invariants(
    defaults: tuple[Invariant, ...], overrides: list[InvariantOverride]
) -> dict[str, Invariant]:
    """The plugin's invariants with the Subject's overrides (`spec.invariants`) applied;
    disabled ones left out. An override naming no invariant is an error for the Subject."""
    by_name = {inv.name: inv for inv in defaults}
    unknown = [o.name for o in overrides if o.name not in by_name]
    if unknown:
        raise ValueError(
            f"spec.invariants names unknown invariant(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(by_name))})"
        )
    for o in overrides:
        if o.enabled is False:
            by_name.pop(o.name, None)
            continue
        changes: dict[str, Any] = {}
        if o.threshold is not None:
            changes["threshold"] = o.threshold
        if o.for_ is not None:
            changes["hold"] = to_timedelta(o.for_)
        if o.severity is not None:
            changes["severity"] = Severity(o.severity)
        by_name[o.name] = by_name[o.name].model_copy(update=changes)
    return by_name


class Pending(BaseModel):
    """A breach being held: first and last seen. Keyed by `breach_key(invariant, entity)`."""

    invariant: str
    entity: str = ""
    since: datetime
    last_seen: datetime
    incident: str = ""  # set once the incident exists


class DetectionState(BaseModel):
    """Persisted in `Subject.status.detection` (as a list: a merge patch replaces lists whole,
    while it would keep map keys that were dropped)."""

    pending: dict[str, Pending] = {}
    observation_failing_since: datetime | None = None

    @classmethod
    def from_status(cls, detection: Detection | None) -> DetectionState:
        if detection is None:
            return cls()
        return cls(
            pending={
                breach_key(p.invariant, p.entity): Pending(
                    invariant=p.invariant,
                    entity=p.entity,
                    since=p.since,
                    last_seen=p.last_seen,
                    incident=p.incident,
                )
                for p in detection.pending
            }
        )

    def to_status(self) -> dict[str, Any]:
        return Detection(
            pending=[
                PendingBreach(
                    invariant=p.invariant,
                    entity=p.entity,
                    since=p.since,
                    last_seen=p.last_seen,
                    incident=p.incident,
                )
                for p in self.pending.values()
            ]
        ).model_dump(mode="json", by_alias=True)


def breach_key(invariant: str, entity: str) -> str:
    return f"{invariant}/{entity}"


class Step(BaseModel):
    """What one evaluation decided."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    state: DetectionState
    due: list[tuple[Violation, Pending]] = []  # held long enough: open or refresh an incident
    cleared: list[Pending] = []  # no longer breached


def step(
    state: DetectionState,
    violations: list[Violation],
    invariants: dict[str, Invariant],
    now: datetime,
) -> Step:
    """Advance the detection state by one observation's violations."""
    pending: dict[str, Pending] = {}
    due: list[tuple[Violation, Pending]] = []
    seen: set[str] = set()
    for v in violations:
        inv = invariants.get(v.invariant)
        if inv is None:
            continue  # disabled by the Subject
        key = breach_key(v.invariant, v.entity)
        if key in seen:
            continue  # a plugin reporting the same breach twice is still one breach
        seen.add(key)
        prev = state.pending.get(key)
        p = Pending(
            invariant=v.invariant,
            entity=v.entity,
            since=prev.since if prev else now,
            last_seen=now,
            incident=prev.incident if prev else "",
        )
        pending[key] = p
        if now - p.since >= inv.hold:
            due.append((v, p))
    cleared = [p for key, p in state.pending.items() if key not in pending]
    return Step(
        state=DetectionState(
            pending=pending, observation_failing_since=state.observation_failing_since
        ),
        due=due,
        cleared=cleared,
    )


_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def incident_name(subject: str, invariant: str, entity: str, since: datetime) -> str:
    """A stable name for the incident of one breach episode: the same breach held across an
    operator restart maps to the same name (so creating it twice is a harmless conflict),
    a later episode of the same breach to a new one."""
    digest = hashlib.sha256(f"{entity}\0{since.isoformat()}".encode()).hexdigest()[:8]
    base = _NOT_DNS.sub("-", f"{subject}-{invariant}".lower().replace("_", "-")).strip("-")
    return f"{base[:200]}-{digest}"
