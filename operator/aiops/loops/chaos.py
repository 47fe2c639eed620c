"""kopf handlers of the Chaos loop: one daemon per unfinished Chaos, stepping it through
Pending → Injected → Recovered | Failed and then watching the Subject recover; and a delete
handler that reverts first (its finalizer stays until the revert succeeded).

kopf restarts the daemons of unfinished Chaos when an operator starts, so a fault injected by
a killed operator is reverted on time by the next one: everything needed is in the object.
"""

from __future__ import annotations

from typing import Any

import kopf

from aiops import logs, metrics
from aiops.api import GROUP, VERSION, Chaos
from aiops.loops.chaos_driver import ChaosDriver, ChaosRuntime, ChaosSettings
from aiops.settings import OperatorSettings
from aiops.shard import owns_subject_of
from aiops.vocabulary import ACTIVE_TARGETS, ChaosPhase, ConditionStatus, ConditionType

RETRY_AFTER_ERROR = 5.0
"""Seconds before kopf runs the daemon again after it raised (its `backoff`)."""


def runtime(memo: kopf.Memo) -> ChaosRuntime:
    """Built on first use: the startup handlers have run by then (memo.api, memo.runtime,
    and memo.settings, checked at start)."""
    rt: ChaosRuntime | None = getattr(memo, "chaos", None)
    if rt is None:
        settings: OperatorSettings = memo.settings
        rt = memo.chaos = ChaosRuntime(
            api=memo.api,
            actions_stopped=memo.runtime.actions_stopped,
            transitions=memo.runtime.transitions,
            settings=ChaosSettings(
                max_duration=settings.chaos_max_duration,
                settle_timeout=settings.chaos_settle_timeout,
            ),
        )
    return rt


def unfinished(status: kopf.Status, **_: Any) -> bool:
    """Anything left to do: to inject, to revert, or to watch the Subject recover."""
    targets = status.get("targets") or []
    if any(t.get("state") in ACTIVE_TARGETS for t in targets):
        return True
    phase = status.get("phase")
    if phase in (None, ChaosPhase.PENDING, ChaosPhase.INJECTED):
        return True
    if phase == ChaosPhase.RECOVERED:
        return not any(
            c.get("type") == ConditionType.SUBJECT_RECOVERED
            and c.get("status") in (ConditionStatus.TRUE, ConditionStatus.FALSE)
            for c in status.get("conditions") or []
        )
    return False


def _unfinished_and_owned(**kwargs: Any) -> bool:
    """Unfinished, and its Subject is this process's (AIOPS_SHARD, `aiops.shard`)."""
    return unfinished(**kwargs) and owns_subject_of(**kwargs)


# The daemon's own last status write flips `when` to false, and kopf then stops it: with a
# backoff, the step in flight finishes (its Event included) instead of being cancelled mid-way.
# A step that raises (the API server hiccuped, or a bug) ends this run of the daemon: kopf logs
# it with its traceback and runs the daemon again after `backoff` while the Chaos is
# unfinished; the new run reads everything it needs from the object, as after a restart.
@kopf.daemon(
    GROUP,
    VERSION,
    Chaos.PLURAL,
    when=_unfinished_and_owned,
    errors=kopf.ErrorsMode.TEMPORARY,
    backoff=RETRY_AFTER_ERROR,
    cancellation_backoff=30.0,
    cancellation_timeout=30.0,
)
async def drive_chaos(
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    spec: kopf.Spec | None = None,
    body: kopf.Body | None = None,
    **_: Any,
) -> None:
    assert namespace is not None  # Chaos is namespaced
    logs.bind(namespace=namespace, chaos=name, subject=spec.get("subject") if spec else None)
    rt = runtime(memo)
    driver = ChaosDriver(rt, namespace, name)
    if body is not None:  # kopf's live view: the active-faults gauge reads it at each scrape
        metrics.LIVE.add_chaos(namespace, name, body)
    try:
        while not stopped:
            async with rt.lock(namespace, name):
                delay = await driver.step()
            if delay is None:
                return
            if delay > 0:
                await stopped.wait(delay)
    finally:
        metrics.LIVE.drop_chaos(namespace, name)
        await driver.close()


@kopf.on.delete(GROUP, VERSION, Chaos.PLURAL, when=owns_subject_of)
async def revert_on_delete(
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    retry: int,
    spec: kopf.Spec | None = None,
    **_: Any,
) -> None:
    """Deleting a Chaos reverts it at once. A revert that fails keeps the finalizer: kopf
    retries with backoff, and the Chaos' status and Events say why."""
    assert namespace is not None
    logs.bind(namespace=namespace, chaos=name, subject=spec.get("subject") if spec else None)
    rt = runtime(memo)
    driver = ChaosDriver(rt, namespace, name)
    try:
        async with rt.lock(namespace, name):
            problem = await driver.revert_for_deletion()
    finally:
        await driver.close()
    if problem:
        raise kopf.TemporaryError(problem, delay=rt.backoff(retry + 1))
