"""The webhook sink against a real local HTTP receiver: one delivery per notice, however often
it is offered and across a restart (the annotation); retried while the receiver is down,
answers 500 or hangs, and `offer` never waits; nothing secret in a payload or a log line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from aiops import logs
from aiops.loops.transitions import Transition, incident_transition
from aiops.notify.sink import SENT, WebhookSink
from aiops.redact import Redactor
from tests.fixtures.polling import wait_for
from tests.fixtures.webhook_receiver import Receiver, receiver

__all__ = ["receiver"]

KEY = "sk-ant-api03-notinapayload-0123456789abcdef"


class Objects:
    """Incidents by name, in memory: what the sink reads and annotates."""

    def __init__(self) -> None:
        self.objs: dict[str, dict[str, Any]] = {}

    async def get(self, plural: str, ns: str, name: str) -> dict[str, Any]:
        if name not in self.objs:
            raise ApiException(status=404)
        return self.objs[name]

    async def patch(self, plural: str, ns: str, name: str, body: dict[str, Any]) -> None:
        annotations = self.objs[name]["metadata"].setdefault("annotations", {})
        annotations.update(body["metadata"]["annotations"])


def incident(name: str, timeline: list[tuple[str, str]]) -> dict[str, Any]:
    now = "2099-01-01T00:00:00+00:00"  # in the catch-up window whenever the test runs
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}"},
        "spec": {"subject": "rl", "invariant": "counter_drift", "entity": "k"},
        "status": {
            "phase": timeline[-1][0],
            "timeline": [{"phase": p, "message": m, "time": now} for p, m in timeline],
            "escalationReason": "the step failed",
        },
    }


def moved(obj: dict[str, Any], before: str, after: str, why: str = "") -> Transition:
    return incident_transition(obj, obj["status"], before, after, why or f"to {after}")


World = tuple[Receiver, "Objects", Callable[[], WebhookSink]]


@pytest.fixture
async def world(receiver: Receiver) -> AsyncIterator[World]:
    objects = Objects()
    sinks: list[WebhookSink] = []
    redactor = Redactor()
    redactor.register(KEY)

    def new_sink() -> WebhookSink:
        async def url() -> str:
            return receiver.url

        sink = WebhookSink(
            url,
            "generic",
            objects,  # type: ignore[arg-type]
            redactor,
            timeout=0.5,
            backoff_first=0.05,
            backoff_max=0.3,
        )
        sink.start()
        sinks.append(sink)
        return sink

    yield receiver, objects, new_sink
    for s in sinks:
        await s.stop(drain=0.1)


def notices(r: Receiver) -> list[tuple[str, str]]:
    return [(b["name"], b["notice"]) for b in r.delivered()]


async def eventually(what: str, probe: Callable[[], Any], within: float = 10) -> Any:
    return await asyncio.to_thread(wait_for, what, probe, within, 0.05)


async def test_one_delivery_per_notice_however_often_offered(world: Any) -> None:
    receiver, objects, new_sink = world
    obj = objects.objs["inc"] = incident("inc", [("Investigating", "x"), ("Resolved", "ok")])
    sink = new_sink()
    opened, resolved = moved(obj, "Open", "Investigating"), moved(obj, "Verifying", "Resolved")
    for t in [opened, opened, moved(obj, "Investigating", "Verifying"), resolved, opened]:
        sink.offer(t)
    await eventually("two notices", lambda: len(receiver.delivered()) == 2)
    await sink.stop(drain=1)
    assert notices(receiver) == [("inc", "opened"), ("inc", "resolved")]
    assert obj["metadata"]["annotations"][SENT] == "opened,resolved"

    # A restart: the catch-up offers what status shows, and the annotation says it was sent.
    again = new_sink()
    again.catch_up("Incident", obj)
    assert again.queue.qsize() == 0  # nothing due: both are recorded as sent
    again.offer(resolved)  # a second publication of the same transition is read, not sent
    await asyncio.wait_for(again.queue.join(), timeout=5)
    assert len(receiver.delivered()) == 2


async def test_a_notice_lost_by_a_restart_is_sent_by_the_catch_up(world: Any) -> None:
    receiver, objects, new_sink = world
    obj = objects.objs["inc"] = incident("inc", [("Investigating", "x"), ("Escalated", "no")])
    obj["metadata"]["annotations"] = {SENT: "opened"}
    new_sink().catch_up("Incident", obj)
    await eventually("the escalation", lambda: notices(receiver) == [("inc", "escalated")])
    assert receiver.delivered()[0]["outcome"] == "the step failed"


@pytest.mark.parametrize("trouble", ["down", 500, "hang"])
async def test_a_failing_receiver_never_holds_up_offer_and_gets_it_once_when_back(
    world: Any, trouble: int | str
) -> None:
    receiver, objects, new_sink = world
    obj = objects.objs["inc"] = incident("inc", [("Investigating", "x")])
    if trouble == "down":
        receiver.down()
    else:
        receiver.answer(trouble)
    sink = new_sink()
    began = time.monotonic()
    for _ in range(50):  # as many phase changes as a busy loop makes
        sink.offer(moved(obj, "Open", "Investigating"))
    assert time.monotonic() - began < 0.05  # offer only queues
    if trouble != "down":
        await eventually("a failed attempt", lambda: len(receiver.requests) >= 2)
    else:
        await asyncio.sleep(0.5)  # a few refused attempts
    receiver.answer(200)
    receiver.up()
    await eventually("the notice after recovery", lambda: receiver.delivered())
    await sink.stop(drain=1)
    assert notices(receiver) == [("inc", "opened")]


async def test_a_payload_the_receiver_refuses_is_not_sent_again(world: Any) -> None:
    receiver, objects, new_sink = world
    obj = objects.objs["inc"] = incident("inc", [("Investigating", "x")])
    receiver.answer(400)
    sink = new_sink()
    sink.offer(moved(obj, "Open", "Investigating"))
    await eventually("one attempt", lambda: receiver.count(400) == 1)
    await sink.stop(drain=1)
    assert receiver.count(400) == 1
    assert obj["metadata"]["annotations"][SENT] == "opened"  # handled: a restart won't repeat it


async def test_nothing_secret_in_a_payload_or_a_log_line(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    receiver, objects, new_sink = world
    obj = objects.objs["inc"] = incident("inc", [("Investigating", "x")])
    receiver.answer(500)
    logs.install()
    for handler in logging.getLogger().handlers:  # caplog's handler too
        handler.addFilter(logs.FILTER)
    sink = new_sink()
    logs.redact_with(sink.redactor)
    with caplog.at_level(logging.INFO):
        sink.offer(moved(obj, "Open", "Investigating", f"started; key={KEY} at {receiver.url}"))
        await eventually("a failed attempt", lambda: receiver.count(500) >= 1)
        receiver.answer(200)
        await eventually("the notice", lambda: receiver.delivered())
        await sink.stop(drain=1)
    [body] = receiver.delivered()
    assert KEY not in str(body) and "started" in body["reason"]
    assert "opened of Incident ns/inc: failed (attempt 1): the receiver answered 500" in caplog.text
    assert KEY not in caplog.text and receiver.url not in caplog.text  # the URL is a secret
    for handler in logging.getLogger().handlers:
        handler.removeFilter(logs.FILTER)
