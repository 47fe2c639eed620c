"""kopf handlers of the subject loop: one daemon per Subject, running observation cycles at
`spec.interval` until the Subject is deleted or the operator stops."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from aiops.api import GROUP, VERSION, Subject
from aiops.loops.subject_cycle import Events, SubjectCycle

RETRY_AFTER_ERROR = 5.0


@kopf.daemon(GROUP, VERSION, Subject.PLURAL, cancellation_timeout=10.0)
async def observe_subject(
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str | None,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    def post(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message)

    assert namespace is not None  # Subjects are namespaced
    cycle = SubjectCycle(api=memo.api, namespace=namespace, name=name, events=Events(post))
    try:
        while not stopped:
            delay = RETRY_AFTER_ERROR
            try:
                # `body` is kopf's live view: each cycle sees the latest spec and status.
                subject = Subject.from_k8s(body)
                delay = (await cycle.run(subject)).total_seconds()
            except ValidationError as err:
                logger.error(f"Subject {namespace}/{name} does not match this operator's "
                             f"API: {err.error_count()} errors; first: {err.errors()[0]['msg']}")
            except Exception as err:  # the API server hiccuped; the next cycle retries
                logger.exception(f"observation cycle of {namespace}/{name} failed: {err}")
            await stopped.wait(delay)
    finally:
        await cycle.close()
