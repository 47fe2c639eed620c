"""Writes an Incident's status: phase changes with a bounded timeline, an Event and an audit
record each; and plain patches. Reads the status it was built from (the driver builds one per
step from the object it just read)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiops.api import Incident
from aiops.api.incident import TIMELINE_MAX
from aiops.crashpoints import crashpoint
from aiops.kube import CustomResources
from aiops.subjects.contract import utcnow

WARNING_PHASES = ("Escalated", "AwaitingApproval")


class StatusWriter:
    def __init__(
        self,
        api: CustomResources,
        obj: dict[str, Any],
        audit: Callable[[str, dict[str, Any]], Awaitable[None]],
    ) -> None:
        self.api = api
        self.obj = obj
        self.status: dict[str, Any] = dict(obj.get("status") or {})
        self.audit = audit
        meta = obj["metadata"]
        self.namespace, self.name = meta["namespace"], meta["name"]

    async def patch(self, **fields: Any) -> None:
        self.status.update(fields)
        await self.api.patch_status(Incident.PLURAL, self.namespace, self.name, fields)

    def executed(self) -> list[dict[str, Any]]:
        return [dict(a) for a in self.status.get("executedActions", [])]

    def entered_at(self, phase: str) -> datetime | None:
        for entry in reversed(self.status.get("timeline", [])):
            if entry.get("phase") == phase:
                return datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
        return None

    async def note(self, message: str) -> None:
        """A timeline entry that changes no phase (a wait a person would want to see)."""
        entry = {"time": utcnow().isoformat(), "message": message[:4000]}
        await self.audit("note", {"timeline": message})
        await self.patch(timeline=[*self.status.get("timeline", []), entry][-TIMELINE_MAX:])

    async def enter(self, phase: str, message: str, **fields: Any) -> None:
        now = utcnow().isoformat()
        entry = {"time": now, "phase": phase, "message": message[:4000]}
        timeline = [*self.status.get("timeline", []), entry][-TIMELINE_MAX:]
        previous = self.status.get("phase") or "Open"
        await self.audit("phase", {"from": previous, "to": phase, "message": message, **fields})
        crashpoint(f"enter-{phase}")
        await self.patch(phase=phase, timeline=timeline, **fields)
        crashpoint(f"entered-{phase}")
        kind = "Warning" if phase in WARNING_PHASES else "Normal"
        # Posted and awaited here, not queued: the Event exists once the phase is written.
        await self.api.post_event(self.obj, kind, phase, message[:1000])
