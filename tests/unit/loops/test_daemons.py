"""The daemons leave retrying to kopf: a step that raises ends the daemon's run, what it holds
is closed, and kopf runs it again after the handler's backoff (`errors=TEMPORARY`). Nothing of
ours swallows the error, and a Subject that does not match the API is a `TemporaryError`."""

from __future__ import annotations

from typing import Any, cast

import kopf
import pytest
from kopf._core.intents.stoppers import DaemonStopper
from kubernetes.client.exceptions import ApiException

from aiops import handlers
from aiops.kube import CustomResources
from aiops.loops import chaos, incidents, subjects
from aiops.loops.chaos_driver import ChaosRuntime
from aiops.loops.runtime import Runtime


class HiccupApi:
    """An API server that answers 503 to every read, as one does while restarting."""

    api_client = None

    def __init__(self) -> None:
        self.reads = 0

    async def get(self, *_: Any, **__: Any) -> dict[str, Any]:
        self.reads += 1
        raise ApiException(status=503, reason="Service Unavailable")

    list = get


async def never(*_: Any, **__: Any) -> Any:
    raise AssertionError("not reached: the step failed first")


def runtime(api: HiccupApi) -> Runtime:
    return Runtime(
        api=cast(CustomResources, api),
        audit=never,
        agent_for=never,
        tools_for=never,
        checkpoint_for=never,
        actions_stopped=never,
    )


def daemon(fn: Any) -> Any:
    """The handler as a plain coroutine function (kopf types it as its full protocol): called
    here with the keyword arguments it reads, as kopf calls it."""
    return fn


def registered(handler_id: str) -> Any:
    assert handlers  # registers the handlers
    (h,) = [
        h for h in kopf.get_default_registry()._spawning.get_all_handlers() if h.id == handler_id
    ]
    return h


@pytest.mark.parametrize(
    ("handler_id", "backoff"),
    [
        ("drive_incident", incidents.RETRY_AFTER_ERROR),
        ("drive_chaos", chaos.RETRY_AFTER_ERROR),
        ("observe_subject", subjects.RETRY_AFTER_ERROR),
    ],
)
def test_kopf_retries_a_daemon_that_raised_after_its_backoff(
    handler_id: str, backoff: float
) -> None:
    h = registered(handler_id)
    assert h.errors is kopf.ErrorsMode.TEMPORARY and h.backoff == backoff == 5.0
    assert h.retries is None and h.timeout is None  # for as long as the object needs it


async def test_a_failed_incident_step_reaches_kopf() -> None:
    api = HiccupApi()
    with pytest.raises(ApiException) as err:
        await daemon(incidents.drive_incident)(
            stopped=DaemonStopper().async_waiter,
            name="inc-1",
            namespace="ns",
            memo=kopf.Memo(runtime=runtime(api)),
        )
    assert err.value.status == 503 and api.reads == 1  # one try; the next is kopf's


async def test_a_failed_chaos_step_reaches_kopf() -> None:
    api = HiccupApi()
    rt = ChaosRuntime(api=cast(CustomResources, api), actions_stopped=never)
    with pytest.raises(ApiException):
        await daemon(chaos.drive_chaos)(
            stopped=DaemonStopper().async_waiter,
            name="c-1",
            namespace="ns",
            memo=kopf.Memo(chaos=rt),
        )
    assert not rt.lock("ns", "c-1").locked()  # released for the next run and the delete handler


async def test_a_subject_that_does_not_match_the_api_is_a_temporary_error() -> None:
    body = {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Subject",
        "metadata": {"name": "s", "namespace": "ns"},
        "spec": {"type": 7},
    }
    with pytest.raises(kopf.TemporaryError, match="does not match this operator's API") as err:
        await daemon(subjects.observe_subject)(
            stopped=DaemonStopper().async_waiter,
            name="s",
            namespace="ns",
            body=body,
            memo=kopf.Memo(api=HiccupApi()),
        )
    assert err.value.delay == subjects.RETRY_AFTER_ERROR
