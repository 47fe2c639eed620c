"""Hold times, deduplication and stable incident names (pure logic of the subject loop)."""

from datetime import UTC, datetime, timedelta

import pytest

from aiops.api import InvariantOverride
from aiops.subjects.contract import Invariant, Severity, Violation
from aiops.subjects.detection import (
    DetectionState,
    effective_invariants,
    incident_name,
    step,
)

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NODE_DOWN = Invariant(
    name="node_down",
    description="a node is down",
    severity=Severity.CRITICAL,
    hold=timedelta(seconds=5),
)
LATENCY = Invariant(
    name="high_latency",
    description="p99 too high",
    severity=Severity.WARNING,
    threshold=0.05,
)


def down(entity: str) -> Violation:
    return Violation(
        invariant="node_down", entity=entity, severity=Severity.CRITICAL, summary=f"{entity} down"
    )


def test_a_breach_is_due_only_after_its_hold() -> None:
    invs = {"node_down": NODE_DOWN}
    s = step(DetectionState(), [down("n1")], invs, T0)
    assert s.due == []
    s = step(s.state, [down("n1")], invs, T0 + timedelta(seconds=4))
    assert s.due == []
    s = step(s.state, [down("n1")], invs, T0 + timedelta(seconds=5))
    assert [(v.entity, p.since) for v, p in s.due] == [("n1", T0)]


def test_a_breach_that_clears_resets_its_hold() -> None:
    invs = {"node_down": NODE_DOWN}
    s = step(DetectionState(), [down("n1")], invs, T0)
    s = step(s.state, [], invs, T0 + timedelta(seconds=3))
    assert [p.entity for p in s.cleared] == ["n1"]
    s = step(s.state, [down("n1")], invs, T0 + timedelta(seconds=6))
    assert s.due == []  # held again from 6 s, not from 0 s


def test_duplicate_violations_are_one_breach_and_entities_are_separate() -> None:
    invs = {"node_down": NODE_DOWN.model_copy(update={"hold": timedelta(0)})}
    s = step(DetectionState(), [down("n1"), down("n1"), down("n2")], invs, T0)
    assert sorted(v.entity for v, _ in s.due) == ["n1", "n2"]


def test_incident_remembered_in_state_survives_a_round_trip_through_json() -> None:
    invs = {"node_down": NODE_DOWN}
    s = step(DetectionState(), [down("n1")], invs, T0)
    s.state.pending["node_down/n1"].incident = "rl-node-down-abc"
    restored = DetectionState.model_validate_json(s.state.model_dump_json())
    s2 = step(restored, [down("n1")], invs, T0 + timedelta(seconds=9))
    assert s2.due[0][1].incident == "rl-node-down-abc"
    assert s2.due[0][1].since == T0


def test_overrides_disable_retune_and_reject_unknown_names() -> None:
    got = effective_invariants(
        (NODE_DOWN, LATENCY),
        [
            InvariantOverride.model_validate(
                {"name": "high_latency", "threshold": 0.2, "severity": "critical", "for": "1m"}
            ),
            InvariantOverride.model_validate({"name": "node_down", "enabled": False}),
        ],
    )
    assert set(got) == {"high_latency"}
    assert got["high_latency"].threshold == 0.2
    assert got["high_latency"].severity is Severity.CRITICAL
    assert got["high_latency"].hold == timedelta(minutes=1)
    with pytest.raises(ValueError, match=r"unknown invariant.*nope"):
        effective_invariants((NODE_DOWN,), [InvariantOverride(name="nope")])


def test_incident_names_are_stable_per_episode_and_dns_safe() -> None:
    a = incident_name("Rate_Limiter", "node_down", "rl-node-1", T0)
    assert a == incident_name("Rate_Limiter", "node_down", "rl-node-1", T0)
    assert a != incident_name("Rate_Limiter", "node_down", "rl-node-1", T0 + timedelta(1))
    assert a != incident_name("Rate_Limiter", "node_down", "rl-node-2", T0)
    assert a.startswith("rate-limiter-node-down-")
    assert all(c.isalnum() or c == "-" for c in a) and a == a.lower()
