"""The rules a rate limiter must keep, and `evaluate`: pure, over one Observation.

Node-level breaches that every node shows at once have one cause the nodes share (Redis, or
the way to it), so they are reported once, for that cause, instead of once per node: one
fault, one Incident. A single node breaching is reported for that node.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiops.subjects.checks import Rule, evaluate_rules, members_down, over_threshold, threshold
from aiops.subjects.contract import Invariant, MemberState, Observation, Severity, Violation
from ratelimiter_subject.observation import (
    DRIFT,
    GHOST,
    LATENCY_MASKED,
    OVER,
    P99,
    P99_RECENT_MAX,
    REDIS_OK,
    REDIS_PING,
)

NODE_DOWN = "node_down"
REDIS_DISCONNECTED = "redis_disconnected"
HIGH_LATENCY = "high_latency"
COUNTER_DRIFT = "counter_drift"
OVER_LIMIT = "over_limit"
GHOST_ALLOWING = "ghost_allowing"

# Entities of breaches every node shows at once.
REDIS_ENTITY = "redis"
ALL_NODES = "all-nodes"

INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        name=NODE_DOWN,
        description="Every node the registry or the config knows serves: its /health "
        "answers (a registry entry that says Down with /health failing counts too). A dead "
        "node stays listed as Down, never vanishes.",
        severity=Severity.CRITICAL,
        hold=timedelta(seconds=5),
    ),
    Invariant(
        name=REDIS_DISCONNECTED,
        description="Every serving node reaches Redis (its /health PINGs Redis live). A node "
        "that cannot answers every check with 503. Reported per node, or once for Redis "
        "when every node that answers reports it.",
        severity=Severity.CRITICAL,
        hold=timedelta(seconds=3),
    ),
    Invariant(
        name=HIGH_LATENCY,
        description="Each node's p99 time to answer a check (Prometheus, per node_id, over "
        "the config's latencyWindow) stays under the threshold, in seconds. Not judged for "
        "a node that reports Redis down, nor for two latency windows after it did: its "
        "failing checks are that outage's symptom, reported by redis_disconnected. Reported "
        "once for all nodes when every node is slow, or when Redis answers every node's "
        "live PING (their /health) slower than the threshold.",
        severity=Severity.WARNING,
        threshold=0.05,
        hold=timedelta(seconds=15),
        source="metrics",
    ),
    Invariant(
        name=COUNTER_DRIFT,
        description="For each key, the count the API reports equals the admissions its log "
        "in Redis holds for the same window at the same instant (entries dated after that "
        "instant are no request's: a Redis clock that stepped back, a restored snapshot). "
        "Threshold: how many requests of difference are tolerated.",
        severity=Severity.WARNING,
        threshold=0,
        hold=timedelta(seconds=5),
    ),
    Invariant(
        name=OVER_LIMIT,
        description="No key holds more admissions in its window than the limit in force "
        "(per Redis: the check script never admits past it, so more means admissions written "
        "around it). Admissions made before a limit came into force are not held against "
        "it. Threshold: admissions over the limit tolerated.",
        severity=Severity.CRITICAL,
        threshold=0,
        hold=timedelta(seconds=2),
    ),
    Invariant(
        name=GHOST_ALLOWING,
        description="No key is let through while exhausted by the limit Redis has on record "
        "for it: a limit in a form the check script cannot read is skipped, and the key runs "
        "on the default (per-key limits stored but not enforced). Threshold: admissions over "
        "the recorded limit tolerated.",
        severity=Severity.CRITICAL,
        threshold=0,
        hold=timedelta(seconds=2),
    ),
)


def node_down(obs: Observation, inv: Invariant) -> list[Violation]:
    return members_down(
        obs,
        inv,
        evidence=lambda m: f"{m.name}: {m.message}",
        summary=lambda m: (
            f"node {m.name} ({m.address}) is down: {m.message}"
            + (f"; last seen {m.last_seen.isoformat()}" if m.last_seen else "")
        ),
    )


def redis_disconnected(obs: Observation, inv: Invariant) -> list[Violation]:
    ok = obs.metrics.get(REDIS_OK, {})
    cut = sorted(n for n, v in ok.items() if v == 0.0)
    errors: dict[str, str] = obs.facts.get("redis_errors", {})
    evidence = [f"{n}: {errors.get(n, 'reports Redis unreachable')}" for n in cut]
    if len(ok) >= 2 and len(cut) == len(ok):
        return [
            Violation(
                invariant=inv.name,
                entity=REDIS_ENTITY,
                severity=inv.severity,
                value=float(len(cut)),
                summary=f"every node that answers ({', '.join(cut)}) reports Redis unreachable: "
                f"Redis itself, or the way to it, is down; every check fails with 503",
                evidence=evidence,
            )
        ]
    return [
        Violation(
            invariant=inv.name,
            entity=n,
            severity=inv.severity,
            summary=f"node {n} serves but cannot reach Redis (the other nodes can): "
            f"{errors.get(n, 'no detail')}",
            evidence=[e],
        )
        for n, e in zip(cut, evidence, strict=True)
    ]


def high_latency(obs: Observation, inv: Invariant) -> list[Violation]:
    limit = threshold(inv, 0.05)
    redis_ok = obs.metrics.get(REDIS_OK, {})
    masked = obs.metrics.get(LATENCY_MASKED, {})
    up = {m.name for m in obs.members if m.state is MemberState.UP}
    judged = {
        n: v
        for n, v in obs.metrics.get(P99, {}).items()
        if n in up and redis_ok.get(n) != 0.0 and n not in masked
    }
    slow = {n: v for n, v in sorted(judged.items()) if v > limit}
    if not slow:
        return []
    shown = ", ".join(f"{n} {v * 1000:.0f} ms" for n, v in slow.items())
    evidence = [
        f"ratelimiter_check_duration_seconds p99 for {n}: {v:.4f} s" for n, v in slow.items()
    ]
    # Redis answering every node's live PING slowly is the shared cause, seen now; the p99
    # of the other nodes may lag it by a scrape. Without it, all nodes slow says the same.
    ping = obs.metrics.get(REDIS_PING, {})
    pings_slow = len(ping) >= 2 and set(ping) >= set(judged) and min(ping.values()) > limit
    # Every node slow within the last two windows: the ones still slow are that episode's tail
    # (nodes are scraped apart, so they recover apart), not each a slowness of its own.
    recent = obs.metrics.get(P99_RECENT_MAX, {})
    all_were_slow = all(recent.get(n, 0.0) > limit for n in judged)
    if len(judged) >= 2 and (len(slow) == len(judged) or pings_slow or all_were_slow):
        pinged = (
            f"; Redis answers every node's PING in {min(ping.values()) * 1000:.0f} ms or more"
            if pings_slow
            else ""
        )
        return [
            Violation(
                invariant=inv.name,
                entity=ALL_NODES,
                severity=inv.severity,
                value=max(slow.values()),
                summary=f"every node answers checks slowly, p99 {shown} (threshold "
                f"{limit * 1000:.0f} ms){pinged}: a cause they share, such as a slow Redis",
                evidence=evidence
                + [f"Redis PING from {n}: {v * 1000:.1f} ms" for n, v in sorted(ping.items())],
            )
        ]
    return [
        Violation(
            invariant=inv.name,
            entity=n,
            severity=inv.severity,
            value=v,
            summary=f"node {n} answers checks slowly: p99 {v * 1000:.0f} ms "
            f"(threshold {limit * 1000:.0f} ms)",
            evidence=[e],
        )
        for (n, v), e in zip(slow.items(), evidence, strict=True)
    ]


def _per_key(
    obs: Observation,
    inv: Invariant,
    metric: str,
    breached: Callable[[float, float], bool],
    summary: Callable[[str, dict[str, Any]], str],
) -> list[Violation]:
    """One violation per key whose value of `metric` breaches the threshold; the key's facts
    (the API's view and Redis's, bounded in number) make the summary and the evidence."""
    facts = {f["key"]: f for f in obs.facts.get("keys", [])}
    return over_threshold(
        obs,
        inv,
        metric,
        default=0,
        breached=breached,
        summary=lambda key, _value, _limit: summary(key, facts.get(key, {})),
        evidence=lambda key, _value: [f"counters of {key!r}: {facts[key]}"] if key in facts else [],
    )


def _drift_summary(key: str, f: dict[str, Any]) -> str:
    future = (
        f" ({f['future_entries']} entries dated up to {f.get('newest_ahead_s', 0):.0f} s "
        f"after Redis's clock, which no check can have written)"
        if f.get("future_entries")
        else ""
    )
    return (
        f"the API reports {f.get('api_count', '?')} requests in the window of key {key!r}, its "
        f"log in Redis holds {f.get('admitted', '?')} admissions in that window{future}"
    )


def _over_summary(key: str, f: dict[str, Any]) -> str:
    return (
        f"key {key!r} holds {f.get('admitted_since_limit', '?')} admissions in its "
        f"{f.get('window_ms', '?')} ms window, over its limit of {f.get('limit', '?')} "
        f"({f.get('source', '?')}): something admits requests around the check script"
    )


def _ghost_summary(key: str, f: dict[str, Any]) -> str:
    rec = f.get("recorded_limit") or {}
    return (
        f"key {key!r} is exhausted by the limit Redis has on record for it "
        f"({rec.get('limit', '?')} per {rec.get('window_ms', '?')} ms, stored as "
        f"{f.get('recorded_raw', '?')!r}, a form the check script skips) yet is still let "
        f"through: {f.get('admitted_in_recorded_window', '?')} admissions in that window, "
        f"under the {f.get('limit', '?')} per {f.get('window_ms', '?')} ms "
        f"({f.get('source', '?')}) actually enforced"
    )


def counter_drift(obs: Observation, inv: Invariant) -> list[Violation]:
    return _per_key(obs, inv, DRIFT, lambda v, t: abs(v) > t, _drift_summary)


def over_limit(obs: Observation, inv: Invariant) -> list[Violation]:
    return _per_key(obs, inv, OVER, lambda v, t: v > t, _over_summary)


def ghost_allowing(obs: Observation, inv: Invariant) -> list[Violation]:
    return _per_key(obs, inv, GHOST, lambda v, t: v > t, _ghost_summary)


RULES: dict[str, Rule] = {
    NODE_DOWN: node_down,
    REDIS_DISCONNECTED: redis_disconnected,
    HIGH_LATENCY: high_latency,
    COUNTER_DRIFT: counter_drift,
    OVER_LIMIT: over_limit,
    GHOST_ALLOWING: ghost_allowing,
}


def evaluate(obs: Observation, invariants: dict[str, Invariant]) -> list[Violation]:
    return evaluate_rules(obs, invariants, RULES)
