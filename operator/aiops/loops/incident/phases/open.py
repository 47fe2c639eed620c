"""Open: nothing done yet. A person's report is detected now; the investigation starts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiops.api import Incident
from aiops.loops.incident.status import StatusWriter
from aiops.subjects.contract import utcnow
from aiops.vocabulary import Phase

if TYPE_CHECKING:
    from aiops.loops.incident.driver import IncidentDriver


async def step(d: IncidentDriver, incident: Incident, w: StatusWriter) -> float:
    patch: dict[str, Any] = {}
    if incident.status.detected_at is None:
        patch["detected_at"] = utcnow().isoformat()  # a person filed it: detected now
    await w.enter(Phase.INVESTIGATING, "investigation started", **patch)
    return 0
