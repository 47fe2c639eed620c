"""kopf handlers of the operator's metrics (`aiops.metrics`): serve `/metrics` when a port is
set (`aiops operator run` binds it before kopf starts; this covers `kopf run -m aiops.handlers`
and kopf's test runner), and count each Incident's end, with its time to resolve, from the
transitions hub: the one place a phase changes."""

from __future__ import annotations

from typing import Any

import kopf

from aiops import metrics
from aiops.loops.incident.status import timestamp
from aiops.loops.runtime import runtime_of
from aiops.loops.transitions import Transition
from aiops.settings import OperatorSettings
from aiops.vocabulary import TERMINAL


@kopf.on.startup()
async def start_metrics(memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    settings: OperatorSettings = memo.settings
    if settings.metrics_port is not None:
        try:
            metrics.serve(settings.metrics_address, settings.metrics_port)
        except metrics.MetricsServerError as err:
            raise kopf.PermanentError(str(err)) from err
    runtime.transitions.subscribe(incident_ended)


def incident_ended(t: Transition) -> None:
    """Counts an Incident that entered Resolved or Escalated, and a Resolved one's time from
    the fault. The fault's time is in the status the incident's daemon holds (kopf's live view,
    registered in `metrics.LIVE`): the transition says what changed, not when it began."""
    if t.kind != "Incident" or t.to_phase not in TERMINAL:
        return
    body = metrics.LIVE.incident(t.namespace, t.name)
    status = (body or {}).get("status") or {}
    fault_at = timestamp(status.get("faultAt"))
    metrics.incident_closed(
        metrics.subject_id(t.namespace, t.subject),
        t.invariant or "none",
        t.to_phase,
        "chaos" if status.get("chaos") else "breach",
        (t.time - fault_at).total_seconds() if fault_at is not None else None,
    )
