"""evaluate() on constructed observations: each invariant fires on what it is about, stays quiet
otherwise, and reports one breach for a cause every node shares."""

from __future__ import annotations

from typing import Any

import pytest

from aiops.api import InvariantOverride
from aiops.subjects.contract import Invariant, Member, MemberState, Observation, Severity
from aiops.subjects.detection import effective_invariants
from ratelimiter_subject.invariants import INVARIANTS, evaluate
from ratelimiter_subject.observation import (
    DRIFT,
    GHOST,
    LATENCY_MASKED,
    NODE_UP,
    OVER,
    P99,
    P99_RECENT_MAX,
    REDIS_OK,
    REDIS_PING,
)
from ratelimiter_subject.plugin import RateLimiterPlugin

NODES = ("rl-node-1", "rl-node-2", "rl-node-3")
ALL = {i.name: i for i in INVARIANTS}


def obs(
    down: tuple[str, ...] = (),
    redis_down: tuple[str, ...] = (),
    p99: dict[str, float] | None = None,
    masked: dict[str, float] | None = None,
    keys: list[dict[str, Any]] | None = None,
    metrics: dict[str, dict[str, float]] | None = None,
) -> Observation:
    members = [
        Member(
            name=n,
            state=MemberState.DOWN if n in down else MemberState.UP,
            address=f"http://127.0.0.1:900{i}",
            message="GET http://127.0.0.1/health: ConnectError" if n in down else "",
        )
        for i, n in enumerate(NODES)
    ]
    return Observation(
        members=members,
        metrics={
            NODE_UP: {n: 0.0 if n in down else 1.0 for n in NODES},
            REDIS_OK: {n: 0.0 if n in redis_down else 1.0 for n in NODES if n not in down},
            P99: p99 or {n: 0.004 for n in NODES},
            LATENCY_MASKED: masked or {},
            **(metrics or {}),
        },
        facts={
            "keys": keys or [],
            "redis_errors": {
                n: "reports Redis unreachable: Connection refused" for n in redis_down
            },
        },
    )


def found(o: Observation, invariants: dict[str, Invariant] = ALL) -> list[tuple[str, str, str]]:
    return [(v.invariant, v.entity, v.severity.value) for v in evaluate(o, invariants)]


def test_a_healthy_limiter_breaks_nothing() -> None:
    assert found(obs(metrics={DRIFT: {"k": 0.0}, OVER: {"k": -3.0}, GHOST: {}})) == []


def test_a_node_that_does_not_serve_is_node_down_and_says_why() -> None:
    (v,) = evaluate(obs(down=("rl-node-2",)), ALL)
    assert (v.invariant, v.entity, v.severity) == ("node_down", "rl-node-2", Severity.CRITICAL)
    assert "ConnectError" in v.summary and "http://127.0.0.1:9001" in v.summary


def test_one_node_cut_from_redis_is_reported_for_that_node() -> None:
    assert found(obs(redis_down=("rl-node-3",))) == [
        ("redis_disconnected", "rl-node-3", "critical")
    ]


def test_every_node_cut_from_redis_is_one_breach_for_redis() -> None:
    (v,) = evaluate(obs(redis_down=NODES), ALL)
    assert (v.invariant, v.entity) == ("redis_disconnected", "redis")
    assert all(n in v.summary for n in NODES) and len(v.evidence) == 3


def test_redis_down_for_the_only_node_that_answers_is_still_that_node() -> None:
    # Two nodes are dead: "every node" would be one node, which says nothing about Redis.
    got = found(obs(down=("rl-node-1", "rl-node-2"), redis_down=("rl-node-3",)))
    assert ("redis_disconnected", "rl-node-3", "critical") in got


def test_one_slow_node_is_high_latency_for_that_node() -> None:
    (v,) = evaluate(obs(p99={"rl-node-1": 0.004, "rl-node-2": 0.2, "rl-node-3": 0.01}), ALL)
    assert (v.invariant, v.entity, v.severity) == ("high_latency", "rl-node-2", Severity.WARNING)
    assert "200 ms" in v.summary and v.value == 0.2


def test_every_node_slow_is_one_breach() -> None:
    assert found(obs(p99={n: 0.25 for n in NODES})) == [("high_latency", "all-nodes", "warning")]


def test_one_node_slow_while_redis_answers_every_node_slowly_is_one_breach() -> None:
    # The other nodes' p99 lags a scrape behind; their PING to Redis, read now, does not.
    slowly = {REDIS_PING: {n: 0.1 for n in NODES}}
    p99 = {"rl-node-1": 0.25, "rl-node-2": 0.004, "rl-node-3": 0.004}
    (v,) = evaluate(obs(p99=p99, metrics=slowly), ALL)
    assert (v.invariant, v.entity) == ("high_latency", "all-nodes")
    assert "PING in 100 ms" in v.summary
    quick = {REDIS_PING: {n: 0.001 for n in NODES}}
    assert found(obs(p99=p99, metrics=quick)) == [("high_latency", "rl-node-1", "warning")]


def test_the_last_node_still_slow_after_a_shared_episode_is_its_tail() -> None:
    # Nodes are scraped apart, so they recover apart: within the window, all were slow.
    p99 = {"rl-node-1": 0.004, "rl-node-2": 0.09, "rl-node-3": 0.004}
    all_were = {P99_RECENT_MAX: {n: 0.25 for n in NODES}}
    assert found(obs(p99=p99, metrics=all_were)) == [("high_latency", "all-nodes", "warning")]
    only_it = {P99_RECENT_MAX: {"rl-node-1": 0.004, "rl-node-2": 0.09, "rl-node-3": 0.004}}
    assert found(obs(p99=p99, metrics=only_it)) == [("high_latency", "rl-node-2", "warning")]


def test_latency_is_not_judged_while_or_just_after_a_node_reports_redis_down() -> None:
    slow = {n: 0.3 for n in NODES}
    assert found(obs(p99=slow, redis_down=NODES)) == [("redis_disconnected", "redis", "critical")]
    assert found(obs(p99=slow, masked={n: 4.0 for n in NODES})) == []


def test_a_dead_node_does_not_count_as_slow() -> None:
    got = found(
        obs(down=("rl-node-1",), p99={"rl-node-1": 2.0, "rl-node-2": 0.004, "rl-node-3": 0.004})
    )
    assert got == [("node_down", "rl-node-1", "critical")]


def test_the_latency_threshold_is_the_subjects_to_tune() -> None:
    tuned = effective_invariants(
        INVARIANTS, [InvariantOverride.model_validate({"name": "high_latency", "threshold": 0.5})]
    )
    assert found(obs(p99={"rl-node-1": 0.3}), tuned) == []
    assert found(obs(p99={"rl-node-1": 0.6}), tuned) == [("high_latency", "rl-node-1", "warning")]


def drift_key(**over: Any) -> dict[str, Any]:
    return {
        "key": "k",
        "api_count": 12,
        "admitted": 0,
        "future_entries": 12,
        "newest_ahead_s": 3600.0,
        "limit": 100,
        "window_ms": 1000,
        "source": "node-default",
        "admitted_since_limit": 0,
        **over,
    }


def test_counts_the_api_reports_beyond_the_log_are_counter_drift() -> None:
    (v,) = evaluate(obs(keys=[drift_key()], metrics={DRIFT: {"k": 12.0}}), ALL)
    assert (v.invariant, v.entity, v.severity) == ("counter_drift", "k", Severity.WARNING)
    assert "reports 12 requests" in v.summary and "3600 s" in v.summary
    assert v.evidence and "future_entries" in v.evidence[0]


def test_drift_within_the_threshold_is_tolerated() -> None:
    tuned = effective_invariants(
        INVARIANTS, [InvariantOverride.model_validate({"name": "counter_drift", "threshold": 2})]
    )
    assert found(obs(metrics={DRIFT: {"k": 2.0}}), tuned) == []
    assert found(obs(metrics={DRIFT: {"k": -3.0}}), tuned) == [("counter_drift", "k", "warning")]


def test_admissions_past_the_limit_are_over_limit() -> None:
    key = drift_key(
        key="b",
        admitted=8,
        admitted_since_limit=8,
        limit=5,
        window_ms=60000,
        source="override",
        future_entries=0,
    )
    (v,) = evaluate(obs(keys=[key], metrics={OVER: {"b": 3.0}}), ALL)
    assert (v.invariant, v.entity, v.severity) == ("over_limit", "b", Severity.CRITICAL)
    assert "holds 8 admissions" in v.summary and "limit of 5" in v.summary
    assert found(obs(metrics={OVER: {"b": 0.0}})) == []  # at the limit is within it


def test_a_key_let_through_past_a_limit_on_record_is_ghost_allowing() -> None:
    key = drift_key(
        key="g",
        recorded_raw='{"limit": 5, "window_ms": 60000}',
        recorded_limit={"limit": 5, "window_ms": 60000},
        admitted_in_recorded_window=19,
    )
    (v,) = evaluate(obs(keys=[key], metrics={GHOST: {"g": 14.0}}), ALL)
    assert (v.invariant, v.entity, v.severity) == ("ghost_allowing", "g", Severity.CRITICAL)
    assert "5 per 60000 ms" in v.summary and "19 admissions" in v.summary


def test_a_disabled_invariant_is_not_judged() -> None:
    without = effective_invariants(
        INVARIANTS, [InvariantOverride.model_validate({"name": "node_down", "enabled": False})]
    )
    assert found(obs(down=("rl-node-1",)), without) == []


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_invariant_has_a_runbook_entry_and_is_known_to_the_plugin(name: str) -> None:
    assert RateLimiterPlugin.invariant(name).name == name
    assert any(e.invariant == name for e in RateLimiterPlugin.runbook)
