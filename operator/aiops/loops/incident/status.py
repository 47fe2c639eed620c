"""Writes an Incident's status: phase changes with a bounded timeline, an Event and an audit
record each; and plain patches. Reads the status it was built from (the driver builds one per
step from the object it just read).

Every write goes through the API models first (`fit`): redacted, then clipped to the bounds
the CRD declares, then validated, so no write the operator makes can be refused by the API
server for a bound (a long key, a 100 KB message) and leave the incident stuck. What cannot be
made valid, and what the API server refuses anyway, raises `StatusWriteError`, and the driver
escalates the incident with that reason instead of retrying the same write forever.

What the driver writes it names through the models too (`aiops.api.common.wire`): a misspelt
field is an error at once, not a key the API server prunes in silence.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, TypeAdapter, ValidationError

from aiops.api import Incident, IncidentStatus, TimelineEntry
from aiops.api.common import wire
from aiops.api.incident import TIMELINE_MAX
from aiops.clock import elapsed_since
from aiops.crashpoints import crashpoint
from aiops.kube import CustomResources
from aiops.loops.transitions import Transition, incident_transition
from aiops.redact import Redactor, truncate
from aiops.subjects.contract import utcnow
from aiops.vocabulary import EventType, Phase

WARNING_PHASES = frozenset({Phase.ESCALATED, Phase.AWAITING_APPROVAL})
EVENT_MESSAGE_MAX = 1000
_FIT_ROUNDS = 8  # each round fixes every error pydantic reported; nesting needs a few
# API errors that no retry of the same write can fix: the object as written is refused.
_PERMANENT = (400, 413, 422)


class StatusWriteError(Exception):
    """A status write that cannot succeed as it is; the message says what and why."""


def fit(model: type[BaseModel] | TypeAdapter[Any], data: Any) -> Any:
    """`data` (wire form) clipped to the bounds `model` declares, validated, and dumped back
    to wire form (only the fields `data` sets). A string over its maxLength keeps its head and
    tail and says how much was cut; a list over its maxItems keeps its first items. Anything
    else invalid raises ValueError naming the field."""
    adapter = model if isinstance(model, TypeAdapter) else _adapter(model)
    data = copy.deepcopy(data)  # clipped in place below; the caller's data stays as it was
    for _ in range(_FIT_ROUNDS):
        try:
            valid = adapter.validate_python(data)
        except ValidationError as err:
            data = _clip(data, err)
            continue
        return adapter.dump_python(valid, mode="json", by_alias=True, exclude_unset=True)
    raise ValueError(f"still invalid after clipping {_FIT_ROUNDS} times")


@functools.cache
def _adapter(model: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def _clip(data: Any, err: ValidationError) -> Any:
    for e in err.errors():
        loc, limit = e["loc"], (e.get("ctx") or {}).get("max_length")
        where = ".".join(map(str, loc)) or "value"
        if e["type"] not in ("string_too_long", "too_long") or not isinstance(limit, int):
            raise ValueError(f"{where}: {e['msg']}")
        if not loc:
            data = _shorten(data, limit)
            continue
        parent = data
        for part in loc[:-1]:
            parent = parent[part]
        parent[loc[-1]] = _shorten(parent[loc[-1]], limit)
    return data


def _shorten(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return truncate(value, limit)
    return list(value)[:limit]


class StatusWriter:
    def __init__(
        self,
        api: CustomResources,
        obj: dict[str, Any],
        audit: Callable[[str, dict[str, Any]], Awaitable[Any]],
        redactor: Redactor | None = None,
        publish: Callable[[Transition], None] | None = None,
    ) -> None:
        self.api = api
        self.publish = publish  # told of each phase change once it is written
        self.obj = obj
        self.status: dict[str, Any] = dict(obj.get("status") or {})
        self.audit = audit
        self.redactor = redactor or Redactor()
        # The phases `enter` may move to (the state machine's moves from this one); None: any.
        self.moves: frozenset[Phase] | None = None
        meta = obj["metadata"]
        self.namespace, self.name = meta["namespace"], meta["name"]

    def clean(self, fields: dict[str, Any]) -> dict[str, Any]:
        """What a patch of `fields` writes: redacted, clipped to the CRD's bounds, valid.
        Raises StatusWriteError when it cannot be made valid."""
        redacted = self.redactor.redact(fields)
        try:
            fitted: dict[str, Any] = fit(IncidentStatus, redacted)
        except ValueError as err:
            raise StatusWriteError(
                f"status fields {', '.join(sorted(fields))} are invalid: {err}"
            ) from err
        return fitted

    async def patch(self, **fields: Any) -> None:
        """Writes `fields` of IncidentStatus, by their Python names (a None is left out)."""
        clean = self.clean(wire(IncidentStatus, **fields))
        try:
            await self.api.patch_status(Incident.PLURAL, self.namespace, self.name, clean)
        except ApiException as err:
            if err.status not in _PERMANENT:
                raise  # the API server or the network: the same write may succeed later
            raise StatusWriteError(
                f"the API server refused the status write ({', '.join(sorted(clean))}): "
                f"{err.status} {_api_message(err)}"
            ) from err
        self.status.update(clean)

    def executed(self) -> list[dict[str, Any]]:
        return [dict(a) for a in self.status.get("executedActions", [])]

    def entered_at(self, phase: Phase) -> datetime | None:
        for entry in reversed(self.status.get("timeline", [])):
            if entry.get("phase") == phase:
                return datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
        return None

    def in_phase_for(self, phase: Phase) -> timedelta:
        """How long the Incident has been in `phase` (its last entry), on the monotonic clock
        from this process's first look on (`aiops.clock`): a step of the wall clock neither
        ends a wait early nor stretches it."""
        since = self.entered_at(phase) or utcnow()
        return elapsed_since(f"incident/{self.namespace}/{self.name}/{phase}", since)

    async def note(self, message: str) -> None:
        """A timeline entry that changes no phase (a wait a person would want to see)."""
        entry = wire(TimelineEntry, time=utcnow().isoformat(), message=message)
        await self.audit("note", {"timeline": message})
        await self.patch(timeline=[*self.status.get("timeline", []), entry][-TIMELINE_MAX:])

    async def enter(self, phase: Phase, message: str, **fields: Any) -> None:
        previous = self.status.get("phase") or Phase.OPEN
        if self.moves is not None and phase not in self.moves:
            raise StatusWriteError(f"{previous} -> {phase} is not a move of the state machine")
        now = utcnow().isoformat()
        entry = wire(TimelineEntry, time=now, phase=phase, message=message)
        timeline = [*self.status.get("timeline", []), entry][-TIMELINE_MAX:]
        appended = await self.audit(
            "phase",
            {"from": previous, "to": phase, "message": message, **wire(IncidentStatus, **fields)},
        )
        # The log's head as of this phase change: `aiops audit verify` compares the log with
        # it, so records cut from the end of the log (which leave a valid chain) are caught.
        if appended is not None and hasattr(appended, "seq") and hasattr(appended, "hash"):
            fields["audit_head"] = {"seq": appended.seq, "hash": appended.hash}
        crashpoint(f"enter-{phase}")
        await self.patch(phase=phase, timeline=timeline, **fields)
        crashpoint(f"entered-{phase}")
        self.in_phase_for(phase)  # from now on, the time in it runs on the monotonic clock
        if self.publish is not None:
            text = self.redactor.redact_text(message)
            self.publish(incident_transition(self.obj, self.status, previous, phase, text))
        kind = EventType.WARNING if phase in WARNING_PHASES else EventType.NORMAL
        # Posted and awaited here, not queued: the Event exists once the phase is written.
        text = truncate(self.redactor.redact_text(message), EVENT_MESSAGE_MAX)
        await self.api.post_event(self.obj, kind, phase, text)


def _api_message(err: ApiException) -> str:
    """The API server's own message from an error body (a Status object), else its reason."""
    try:
        body = json.loads(err.body or "")
    except (TypeError, ValueError):
        return str(err.reason)
    return str(body.get("message") or err.reason) if isinstance(body, dict) else str(err.reason)


def timestamp(value: Any) -> datetime | None:
    """A time as the status writes it, or None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
