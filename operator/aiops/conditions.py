"""Kubernetes-style conditions: set one, keeping lastTransitionTime when the status is unchanged."""

from __future__ import annotations

from datetime import datetime

from aiops.api import Condition


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """A new list with condition `type_` set; True/False/Unknown from True/False/None."""
    text = {True: "True", False: "False", None: "Unknown"}[status]
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == text else now
    new = Condition(
        type=type_,
        status=text,  # type: ignore[arg-type]
        reason=reason,
        message=message[:1024],
        last_transition_time=since,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type != type_] + [new]


def condition_is(conditions: list[Condition], type_: str, status: str) -> bool:
    return any(c.type == type_ and c.status == status for c in conditions)
