"""kopf handlers of the subject loop: one daemon per Subject, running observation cycles at
`spec.interval` until the Subject is deleted or the operator stops."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from aiops import logs
from aiops.api import GROUP, VERSION, Subject
from aiops.loops.subject_cycle import Events, SubjectCycle
from aiops.shard import owns_subject

RETRY_AFTER_ERROR = 5.0
"""Seconds before a Subject that does not match the API, or a cycle that raised, is tried
again."""


# A cycle that raises (the API server hiccuped writing status, or a bug) ends this run of the
# daemon: kopf logs it with its traceback and runs the daemon again after `backoff`, with a
# fresh plugin binding; everything the cycles keep is in status. A problem of the Subject
# itself (observation failed, a bad config) never raises: it lands in its status.
@kopf.daemon(
    GROUP,
    VERSION,
    Subject.PLURAL,
    when=owns_subject,  # AIOPS_SHARD: only the Subjects this process owns (aiops.shard)
    errors=kopf.ErrorsMode.TEMPORARY,
    backoff=RETRY_AFTER_ERROR,
    cancellation_timeout=10.0,
)
async def observe_subject(
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str | None,
    body: kopf.Body,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    def post(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message)

    assert namespace is not None  # Subjects are namespaced
    logs.bind(namespace=namespace, subject=name)  # on every line this daemon logs
    cycle = SubjectCycle(api=memo.api, namespace=namespace, name=name, events=Events(post))
    try:
        while not stopped:
            try:
                # `body` is kopf's live view: each cycle sees the latest spec and status.
                subject = Subject.from_k8s(body)
            except ValidationError as err:
                # Not a crash, not a traceback: the object is wrong until someone edits it.
                raise kopf.TemporaryError(
                    f"Subject {namespace}/{name} does not match this operator's API: "
                    f"{err.error_count()} errors; first: {err.errors()[0]['msg']}",
                    delay=RETRY_AFTER_ERROR,
                ) from err
            delay = (await cycle.run(subject)).total_seconds()
            await stopped.wait(delay)
    finally:
        await cycle.close()
