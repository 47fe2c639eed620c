"""What the incident loop's audit records say, said again in the operator's log: every gate
decision, action and applied Approval is one line with the incident's names, so that a person
following the log (`--log-format json`) sees them without reading the audit log. The audit
log stays the record; these lines are its summary, redacted like every line."""

from __future__ import annotations

import logging
from typing import Any

from aiops.logs import fields

log = logging.getLogger("aiops.incident")

# Audit kinds worth a line, and the keys of their data that the line carries.
LOGGED: dict[str, tuple[str, ...]] = {
    "policy.decision": ("phase", "id", "action", "decision", "reason", "check"),
    "action.started": ("id", "action", "idempotencyKey", "approvedBy"),
    "action.finished": ("id", "action", "result", "message"),
    "action.resumed": ("id", "idempotencyKey"),
    "action.undone": ("id", "ok", "message"),
    "action.released": ("id", "ok", "message"),
    "approval": ("approval", "by", "decision", "actions", "applied", "stale"),
}


def audited(namespace: str, incident: str, kind: str, data: dict[str, Any]) -> None:
    """Logs the record `kind` of `incident` when it is one of LOGGED; never raises."""
    keys = LOGGED.get(kind)
    if keys is None:
        return
    said = {k: data[k] for k in keys if data.get(k) not in (None, "", [], {})}
    text = " ".join(f"{k}={v}" for k, v in said.items())
    log.info(
        "Incident %s/%s %s: %s",
        namespace,
        incident,
        kind,
        text,
        extra=fields(namespace=namespace, incident=incident, event=kind, **_safe(said)),
    )


def _safe(said: dict[str, Any]) -> dict[str, Any]:
    # LogRecord attributes may not be overwritten (`message` is one): prefix those.
    return {(f"record_{k}" if k in ("message", "msg", "args") else k): v for k, v in said.items()}
