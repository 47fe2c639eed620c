"""The transitions hub: one event per phase change, from the status writer, with what a
message needs; and a subscriber that fails never fails the loop."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from aiops.loops.incident import machine
from aiops.loops.incident.status import StatusWriter
from aiops.loops.transitions import Transition, TransitionHub, chaos_transition
from aiops.redact import Redactor
from aiops.vocabulary import Phase
from tests.unit.loops.test_incident_machine import Api


async def _audit(kind: str, data: dict[str, Any]) -> None:
    return None


def _writer(api: Api, hub: TransitionHub, status: dict[str, Any]) -> StatusWriter:
    obj = {
        "metadata": {"namespace": "ns", "name": "inc", "uid": "u1"},
        "spec": {"subject": "rl", "invariant": "node_down", "entity": "rl-node-2"},
        "status": status,
    }
    redactor = Redactor()
    redactor.register("sk-ant-verysecretkey-0123456789")
    return StatusWriter(api, obj, _audit, redactor, hub.publish)  # type: ignore[arg-type]


async def test_each_phase_change_is_published_once_with_the_plan_and_command() -> None:
    hub, seen = TransitionHub(), list[Transition]()
    hub.subscribe(seen.append)
    plan = [
        {"id": "a1", "action": "restart_node", "params": {"node": "rl-node-2"}, "risk": "medium"}
        | {"decision": "await-approval", "reason": "medium risk needs an Approval"}
    ]
    w = _writer(Api(), hub, {"phase": "Investigating", "proposedActions": plan})
    w.moves = machine.allowed(Phase.INVESTIGATING)
    await w.enter(Phase.AWAITING_APPROVAL, "1 action(s) wait, key sk-ant-verysecretkey-0123456789")
    await w.note("a note is no phase change")
    [t] = seen
    assert (t.kind, t.namespace, t.name, t.subject) == ("Incident", "ns", "inc", "rl")
    assert (t.from_phase, t.to_phase) == ("Investigating", "AwaitingApproval")
    assert t.approval_command == "aiops approve inc -n ns a1"
    assert t.plan[0].action == "restart_node" and t.plan[0].params == {"node": "rl-node-2"}
    assert "verysecret" not in t.model_dump_json()


async def test_a_failing_subscriber_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub, seen = TransitionHub(), list[Transition]()

    def broken(t: Transition) -> None:
        raise RuntimeError("listener bug")

    hub.subscribe(broken)
    hub.subscribe(seen.append)
    api = Api()
    w = _writer(api, hub, {"phase": "Open"})
    with caplog.at_level(logging.ERROR):
        await w.enter(Phase.INVESTIGATING, "investigation started")
    assert api.status["phase"] == "Investigating" and api.events  # the loop went on
    assert len(seen) == 1 and "listener bug" in caplog.text


def test_unsubscribe_and_chaos_events() -> None:
    hub, seen = TransitionHub(), list[Transition]()
    stop = hub.subscribe(seen.append)
    obj = {"metadata": {"namespace": "ns", "name": "c1"}, "spec": {"subject": "rl", "fault": "x"}}
    status = {"phase": "Injected", "message": "x injected", "targets": [{"name": "rl-node-1"}]}
    hub.publish(chaos_transition(obj, status, "Pending"))
    stop()
    hub.publish(chaos_transition(obj, status, "Pending"))
    [t] = seen
    assert (t.kind, t.to_phase, t.fault, t.targets) == ("Chaos", "Injected", "x", ("rl-node-1",))
