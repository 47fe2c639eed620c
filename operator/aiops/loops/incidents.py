"""kopf handlers of the incident loop: one daemon per open Incident, stepping it through its
phases until Resolved or Escalated. kopf restarts the daemons of open incidents when an
operator starts, so a killed operator's incidents resume from their status."""

from __future__ import annotations

from typing import Any

import kopf

from aiops import logs, metrics
from aiops.api import GROUP, VERSION, Incident
from aiops.loops.incident import IncidentDriver
from aiops.shard import owns_subject_of
from aiops.vocabulary import TERMINAL

RETRY_AFTER_ERROR = 5.0
"""Seconds before kopf runs a daemon again after it raised (its `backoff`)."""


def _open(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL


def _open_and_owned(**kwargs: Any) -> bool:
    """Open, and its Subject is this process's (AIOPS_SHARD, `aiops.shard`)."""
    return _open(**kwargs) and owns_subject_of(**kwargs)


# A daemon is stopped as soon as its Incident no longer matches `when` — that is, by the very
# status write that enters Resolved or Escalated. Without a backoff kopf cancels it at once,
# mid-step: the rest of that step (the phase's Event) was lost in about one CI run in three.
# With it, the `stopped` flag is set first and the step in flight finishes; only a step still
# running after the backoff is cancelled (and resumes from status, like after a crash).
#
# A step that raises (the API server hiccuped, or a bug) ends this run of the daemon: kopf
# logs it with its traceback (and posts it as an Event) and runs the daemon again after
# `backoff`, for as long as the Incident is open; the new run resumes from status, as after a
# restart. No catch-all of our own is needed for that.
@kopf.daemon(
    GROUP,
    VERSION,
    Incident.PLURAL,
    when=_open_and_owned,
    errors=kopf.ErrorsMode.TEMPORARY,
    backoff=RETRY_AFTER_ERROR,
    cancellation_backoff=10.0,
    cancellation_timeout=10.0,
)
async def drive_incident(
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    spec: kopf.Spec | None = None,
    body: kopf.Body | None = None,
    **_: Any,
) -> None:
    assert namespace is not None  # Incidents are namespaced
    logs.bind(namespace=namespace, incident=name, subject=spec.get("subject") if spec else None)
    driver = IncidentDriver(memo.runtime, namespace, name)
    if body is not None:  # kopf's live view: the open-incident gauges read it at each scrape
        metrics.LIVE.add_incident(namespace, name, body)
    try:
        while not stopped:
            delay = await driver.step()
            if delay is None:
                return
            if delay > 0:
                await stopped.wait(delay)
    finally:
        metrics.LIVE.drop_incident(namespace, name)
        await driver.close()
