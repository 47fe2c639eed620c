"""kopf handlers of notifications: start the sink when a webhook Secret is configured
(AIOPS_NOTIFY_SECRET), subscribe it to the transitions hub, offer at start what objects show
is due but not sent (a notice lost by a crash), and give the queue a moment at shutdown."""

from __future__ import annotations

from typing import Any

import kopf

from aiops.api import GROUP, VERSION, Chaos, Incident
from aiops.loops.runtime import runtime_of
from aiops.notify.sink import WebhookSink, secret_url
from aiops.settings import OperatorSettings
from aiops.shard import owns_subject_of


@kopf.on.startup()
async def start_notifications(memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    settings: OperatorSettings = memo.settings
    if not settings.notify_secret:
        return
    sink = WebhookSink(
        secret_url(
            memo.api,
            settings.operator_namespace,
            settings.notify_secret,
            settings.notify_secret_key,
        ),
        settings.notify_format,
        memo.api,
        runtime.redactor,
        timeout=settings.notify_timeout.total_seconds(),
        backoff_max=settings.notify_retry_max.total_seconds(),
    )
    sink.start()
    runtime.transitions.subscribe(sink.offer)
    memo.notifier = sink


@kopf.on.cleanup()
async def stop_notifications(memo: kopf.Memo, **_: Any) -> None:
    sink: WebhookSink | None = getattr(memo, "notifier", None)
    if sink is not None:
        await sink.stop()


def _catch_up(kind: str, type_: str | None, body: kopf.Body, memo: kopf.Memo) -> None:
    sink: WebhookSink | None = getattr(memo, "notifier", None)
    # type None: the listing at start (and after a watch is re-established), not a change;
    # changes reach the sink through the transitions hub.
    if sink is not None and type_ is None:
        sink.catch_up(kind, dict(body))


@kopf.on.event(GROUP, VERSION, Incident.PLURAL, when=owns_subject_of)
async def catch_up_incident(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _catch_up("Incident", type, body, memo)


@kopf.on.event(GROUP, VERSION, Chaos.PLURAL, when=owns_subject_of)
async def catch_up_chaos(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _catch_up("Chaos", type, body, memo)
