"""The Chaos loop's pure parts: choosing targets against holders, linking an Incident to the
Chaos behind it, what brought a subject back, settings, and when the daemon is done."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiops.api import Chaos, Incident
from aiops.loops.chaos import unfinished
from aiops.loops.chaos_driver import _credit, _story, _time_left
from aiops.loops.chaos_link import injecting, pick
from aiops.loops.chaos_targets import Candidates, choose, held_targets

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def chaos(name: str, fault: str = "kill_node", created: float = -10, **status: Any) -> Chaos:
    return Chaos.from_k8s(
        {
            "metadata": {"name": name, "creationTimestamp": at(created)},
            "spec": {"subject": "rl", "fault": fault, "target": {"member": "n1"}},
            "status": status,
        }
    )


def target(name: str, state: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "state": state, **more}


# -- holders and choice ---------------------------------------------------------------------


def test_a_target_is_held_by_another_chaos_of_the_same_fault_until_reverted() -> None:
    others = [
        chaos("a", targets=[target("n1", "Injected")]),
        chaos("b", targets=[target("n2", "Reverted")]),
        chaos("c", fault="counter_drift", targets=[target("n3", "Injected")]),
        chaos("d", targets=[target("n4", "RevertFailed"), target("n5", "Injecting")]),
        chaos("me", targets=[target("n6", "Injected")]),
    ]
    assert held_targets(others, "me", "kill_node") == {"n1": "a", "n4": "d", "n5": "d"}


def test_mode_one_picks_a_free_candidate_at_random() -> None:
    found = Candidates(("p1", "p2", "p3"), pick_one=True)
    picks = {choose(found, {"p2": "other"}, random.Random(seed)).targets for seed in range(40)}
    assert picks == {("p1",), ("p3",)}


def test_mode_one_waits_when_every_candidate_is_held() -> None:
    choice = choose(Candidates(("p1",), pick_one=True), {"p1": "holder"})
    assert (choice.targets, choice.holder, choice.held) == ((), "holder", "p1")


def test_mode_all_waits_for_any_held_candidate_and_names_the_holder() -> None:
    found = Candidates(("p1", "p2"))
    assert choose(found, {}).targets == ("p1", "p2")
    assert choose(found, {"p2": "x"}).holder == "x"


# -- the Incident link ----------------------------------------------------------------------


def test_an_incident_links_to_the_active_chaos_created_before_the_breach() -> None:
    active = chaos("a", phase="Injected", injectedAt=at(0))
    picked = pick(
        [active],
        T0 + timedelta(seconds=2),
        T0 + timedelta(seconds=5),
        timedelta(0),
        timedelta(seconds=1),
    )
    assert picked is active


def test_no_link_for_a_breach_older_than_the_chaos() -> None:
    late = chaos("a", created=10, phase="Injected", injectedAt=at(10))
    assert pick([late], T0, T0 + timedelta(seconds=12), timedelta(0), timedelta(seconds=1)) is None


def test_a_reverted_chaos_links_within_hold_plus_two_intervals_only() -> None:
    done = chaos("a", phase="Recovered", injectedAt=at(0), recoveredAt=at(10))
    since = T0 + timedelta(seconds=9)
    hold, interval = timedelta(seconds=3), timedelta(seconds=1)
    assert pick([done], since, T0 + timedelta(seconds=15), hold, interval) is done
    assert pick([done], since, T0 + timedelta(seconds=15.5), hold, interval) is None


def test_the_latest_injected_chaos_wins_and_uninjected_ones_never_link() -> None:
    older = chaos("old", phase="Injected", injectedAt=at(0))
    newer = chaos("new", phase="Injected", injectedAt=at(1))
    pending = chaos("pending", phase="Pending")
    picked = pick(
        [older, pending, newer],
        T0 + timedelta(seconds=2),
        T0 + timedelta(seconds=3),
        timedelta(0),
        timedelta(seconds=1),
    )
    assert picked is newer


def test_a_chaos_caught_mid_injection_is_waited_for_not_linked() -> None:
    claimed = chaos("a", phase="Pending", targets=[target("n1", "Injecting")])
    since, now = T0 + timedelta(seconds=1), T0 + timedelta(seconds=1)
    assert pick([claimed], since, now, timedelta(0), timedelta(seconds=1)) is None
    assert injecting([claimed], since) is claimed
    assert injecting([claimed], T0 - timedelta(seconds=20)) is None  # breach older than it
    done = chaos("b", phase="Injected", injectedAt=at(0), targets=[target("n1", "Injected")])
    assert injecting([done], since) is None


# -- what brought the subject back ----------------------------------------------------------


def incident(name: str, *actions: dict[str, Any]) -> Incident:
    return Incident.from_k8s(
        {
            "metadata": {"name": name},
            "spec": {"subject": "rl", "summary": "s", "source": "human"},
            "status": {"executedActions": list(actions)},
        }
    )


def action(result: str, started: float, finished: float | None = None) -> dict[str, Any]:
    return {
        "id": "a1",
        "action": "reset_counter",
        "idempotencyKey": "k",
        "startedAt": at(started),
        "result": result,
        **({"finishedAt": at(finished)} if finished is not None else {}),
    }


def test_credit_goes_to_the_operator_when_a_linked_action_succeeded_first() -> None:
    c = chaos("a", phase="Injected", injectedAt=at(0), targets=[target("n1", "Injected")])
    inc = incident("inc-1", action("Succeeded", 3, 4))
    assert _credit(c, c.status, [inc], T0 + timedelta(seconds=5)) == ("operator", "inc-1")


def test_credit_goes_to_a_restart_that_returned_just_after_the_subject_was_healthy() -> None:
    # restart_node waits for the node to serve: the subject is seen healthy at 5 s, a moment
    # before the call that healed it returns at 6 s. The operator healed it, not the subject.
    c = chaos("a", phase="Injected", injectedAt=at(0), targets=[target("n1", "Injected")])
    inc = incident("inc-1", action("Succeeded", 3, 6))
    assert _credit(c, c.status, [inc], T0 + timedelta(seconds=5)) == ("operator", "inc-1")


def test_credit_waits_while_a_linked_action_runs() -> None:
    c = chaos("a", phase="Injected", injectedAt=at(0), targets=[target("n1", "Injected")])
    assert (
        _credit(c, c.status, [incident("i", action("Running", 3))], T0 + timedelta(seconds=5))
        is None
    )


def test_credit_revert_or_self_by_when_the_fault_ended() -> None:
    c = chaos(
        "a",
        phase="Recovered",
        injectedAt=at(0),
        endsAt=at(10),
        recoveredAt=at(12),
        targets=[target("n1", "Reverted")],
    )
    # Healthy while the revert's call was still returning: the revert did it.
    assert _credit(c, c.status, [], T0 + timedelta(seconds=11)) == ("revert", None)
    assert _credit(c, c.status, [], T0 + timedelta(seconds=9)) == ("self", None)
    # An action from before the fault is not what healed it.
    old = incident("old", action("Succeeded", -5, -4))
    assert _credit(c, c.status, [old], T0 + timedelta(seconds=9)) == ("self", None)


def test_an_instant_fault_heals_by_itself_never_by_a_revert() -> None:
    c = chaos(
        "a",
        phase="Recovered",
        injectedAt=at(0),
        recoveredAt=at(0),
        targets=[target("p1", "Reverted", instant=True)],
    )
    assert _credit(c, c.status, [], T0 + timedelta(seconds=4)) == ("self", None)


def test_the_story_says_what_happened_in_order() -> None:
    c = chaos(
        "a",
        phase="Recovered",
        injectedAt=at(0),
        brokenAt=at(1),
        healthyAt=at(6),
        recoveredBy="operator",
        incident="inc-1",
        recoveredAt=at(60),
        targets=[target("n1", "Reverted")],
    )
    assert _story(c, c.status) == (
        "kill_node on n1: injected 12:00:00; subject broken 12:00:01; healthy again 12:00:06 "
        "by the operator (Incident inc-1); reverted 12:01:00"
    )
    quiet = chaos(
        "b",
        phase="Recovered",
        injectedAt=at(0),
        recoveredAt=at(60),
        targets=[target("n1", "Reverted")],
    )
    assert "never observed broken" in _story(quiet, quiet.status)


# -- settings, time left, and when the daemon is done ---------------------------------------


def test_time_left_is_written_in_five_second_steps() -> None:
    assert _time_left(timedelta(seconds=61)) == "1m5s"
    assert _time_left(timedelta(seconds=0.2)) == "5s"
    assert _time_left(timedelta(seconds=-3)) == "0s"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, True),
        ({"phase": "Pending"}, True),
        ({"phase": "Injected"}, True),
        ({"phase": "Failed", "targets": [target("n1", "RevertFailed")]}, True),
        ({"phase": "Failed", "targets": [target("n1", "Reverted")]}, False),
        ({"phase": "Recovered", "conditions": []}, True),
        (
            {
                "phase": "Recovered",
                "conditions": [{"type": "SubjectRecovered", "status": "Unknown"}],
            },
            True,
        ),
        (
            {"phase": "Recovered", "conditions": [{"type": "SubjectRecovered", "status": "False"}]},
            False,
        ),
    ],
)
def test_the_daemon_runs_while_anything_is_left(status: dict[str, Any], expected: bool) -> None:
    assert unfinished(status) is expected  # type: ignore[arg-type]
