"""The rules a TiKV cluster must keep, and `evaluate`: pure, over one Observation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiops.subjects.checks import below, evaluate_rules, members_down, over_threshold, threshold
from aiops.subjects.contract import Invariant, MemberState, Observation, Severity, Violation
from tikv_subject.observation import (
    DISK_AVAILABLE,
    EVICTING,
    LEADER_WEIGHT,
    LEADERS,
    P99,
    SCRAPED,
    STORE_UP,
    UNHEALTHY_REGIONS,
)

STORE_DOWN = "store_down"
NO_LIVE_STORE = "no_live_store"
HIGH_LATENCY = "high_latency"
LOW_DISK_SPACE = "low_disk_space"
REGION_HEALTH = "region_health"
LEADER_IMBALANCE = "leader_imbalance"
EVICT_LEADER_LEFTOVER = "evict_leader_leftover"
METRICS_MISSING = "metrics_missing"

INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        name=STORE_DOWN,
        description="Every store PD knows (not removed) is heartbeating: PD reports none "
        "Disconnected (no heartbeat for 20 s; a warning, as in PD's alert rules) or Down, and "
        "no Offline store (being removed) has gone 20 s without a heartbeat.",
        severity=Severity.CRITICAL,
        hold=timedelta(seconds=30),
    ),
    Invariant(
        name=NO_LIVE_STORE,
        description="PD lists at least one store that heartbeats (Up, or Offline and alive): "
        "a cluster with none, or an empty store list, is down, not healthy.",
        severity=Severity.CRITICAL,
        hold=timedelta(seconds=30),
    ),
    Invariant(
        name=HIGH_LATENCY,
        description="Each store's p99 gRPC message duration (Prometheus, TiKV's status port) "
        "stays under the threshold, in seconds.",
        severity=Severity.WARNING,
        threshold=0.5,
        hold=timedelta(minutes=2),
        source="metrics",
    ),
    Invariant(
        name=LOW_DISK_SPACE,
        description="Each store keeps at least the threshold fraction of its capacity "
        "available (PD's store status).",
        severity=Severity.WARNING,
        threshold=0.2,
        hold=timedelta(minutes=1),
    ),
    Invariant(
        name=REGION_HEALTH,
        description="PD's region checks find no more than the threshold regions missing "
        "a peer, with a down peer, or with a pending peer (one breach per check).",
        severity=Severity.WARNING,
        threshold=0,
        hold=timedelta(minutes=1),
    ),
    Invariant(
        name=LEADER_IMBALANCE,
        description="Each Up store's leader count (per unit of leader weight) is within the "
        "threshold fraction of the mean; stores evicting leaders are left out.",
        severity=Severity.WARNING,
        threshold=0.5,
        hold=timedelta(minutes=10),
    ),
    Invariant(
        name=EVICT_LEADER_LEFTOVER,
        description="No evict-leader scheduler runs that no running action of this operator "
        "owns: one left behind keeps a store's leaders away for good.",
        severity=Severity.WARNING,
        hold=timedelta(minutes=2),
    ),
    Invariant(
        name=METRICS_MISSING,
        description="Prometheus scrapes every Up store's status port (the job and port of the "
        "config); without it high_latency cannot be judged for that store.",
        severity=Severity.WARNING,
        hold=timedelta(minutes=2),
        source="metrics",
    ),
)


def _addresses(obs: Observation) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in obs.facts.get("stores", [])}


def store_down(obs: Observation, inv: Invariant) -> list[Violation]:
    found = members_down(
        obs,
        inv,
        evidence=lambda m: f"PD /pd/api/v1/stores: {m.name} {m.message}",
        summary=lambda m: (
            f"{m.name} ({m.address}) is not heartbeating: {m.message}"
            + (f"; last heartbeat {m.last_seen.isoformat()}" if m.last_seen else "")
        ),
    )
    # As PD's own alert rules rate them: Disconnected (silent 20 s; a restart looks so too) a
    # warning, Down (silent past max-store-down-time) the invariant's severity.
    states = {s["name"]: s.get("state") for s in obs.facts.get("stores", [])}
    return [
        v.model_copy(update={"severity": Severity.WARNING})
        if states.get(v.entity) == "Disconnected" and inv.severity is Severity.CRITICAL
        else v
        for v in found
    ]


def no_live_store(obs: Observation, inv: Invariant) -> list[Violation]:
    alive = [m for m in obs.members if m.state in (MemberState.UP, MemberState.DEGRADED)]
    if alive:
        return []
    listed = ", ".join(f"{m.name} {m.message or m.state}" for m in obs.members) or "none"
    removed = obs.facts.get("removed_stores", [])
    return [
        Violation(
            invariant=inv.name,
            entity="cluster",
            severity=inv.severity,
            value=0,
            summary=f"PD lists no store that heartbeats ({len(obs.members)} store(s) not "
            f"removed, {len(removed)} removed): the cluster serves nothing",
            evidence=[
                f"PD /pd/api/v1/stores: {listed}",
                f"removed stores: {', '.join(removed) or 'none'}",
            ],
        )
    ]


def high_latency(obs: Observation, inv: Invariant) -> list[Violation]:
    return over_threshold(
        obs,
        inv,
        P99,
        default=0.5,
        summary=lambda name, p99, limit: (
            f"{name} p99 gRPC latency is {p99 * 1000:.0f} ms (threshold {limit * 1000:.0f} ms)"
        ),
        evidence=lambda name, p99: [f"tikv_grpc_msg_duration_seconds p99 for {name}: {p99:.3f} s"],
    )


def low_disk_space(obs: Observation, inv: Invariant) -> list[Violation]:
    return over_threshold(
        obs,
        inv,
        DISK_AVAILABLE,
        default=0.2,
        breached=below,
        summary=lambda name, ratio, limit: (
            f"{name} has {ratio:.0%} of its disk available (threshold {limit:.0%})"
        ),
        evidence=lambda _name, ratio: [f"PD store status: available/capacity = {ratio:.3f}"],
    )


def region_health(obs: Observation, inv: Invariant) -> list[Violation]:
    limit = threshold(inv, 0)
    checks = obs.facts.get("region_checks", {})
    out = []
    for check, count in sorted(obs.metrics.get(UNHEALTHY_REGIONS, {}).items()):
        if count <= limit:
            continue
        sample = checks.get(check, {}).get("regions", [])
        stores = sorted({s for r in sample for s in (r.get("down", []) + r.get("pending", []))})
        where = f"; unhealthy peers on {', '.join(stores)}" if stores else ""
        out.append(
            Violation(
                invariant=inv.name,
                entity=check,
                severity=inv.severity,
                value=count,
                summary=f"PD's {check} check lists {count:.0f} region(s){where}",
                evidence=[
                    f"region {r['id']}: peers {r['peers']}, leader {r['leader']}, "
                    f"down {r['down']}, pending {r['pending']}"
                    for r in sample
                ],
            )
        )
    return out


def leader_imbalance(obs: Observation, inv: Invariant, min_leaders: int) -> list[Violation]:
    limit = threshold(inv, 0.5)
    evicting = obs.metrics.get(EVICTING, {})
    leaders, weights = obs.metrics.get(LEADERS, {}), obs.metrics.get(LEADER_WEIGHT, {})
    # Only stores in PD state Up take part: an Offline store is being emptied, one evicting
    # leaders has none on purpose, and a leader weight of 0 asks for none.
    scores = {
        name: leaders.get(name, 0.0) / weights[name]
        for name, fact in _addresses(obs).items()
        if fact.get("state") == "Up" and evicting.get(name) != 1.0 and weights.get(name, 0.0) > 0
    }
    total = sum(leaders.get(name, 0.0) for name in scores)
    if len(scores) < 2 or total < min_leaders:
        return []
    mean = sum(scores.values()) / len(scores)
    if mean <= 0:
        return []
    out = []
    for name, score in sorted(scores.items()):
        deviation = (score - mean) / mean
        if abs(deviation) > limit:
            out.append(
                Violation(
                    invariant=inv.name,
                    entity=name,
                    severity=inv.severity,
                    value=deviation,
                    summary=f"{name} holds {leaders.get(name, 0.0):.0f} leaders, {deviation:+.0%} "
                    f"from the mean of {mean:.1f} per unit of weight (threshold ±{limit:.0%})",
                    evidence=[
                        "leaders per store: "
                        + ", ".join(f"{n}={leaders.get(n, 0.0):.0f}" for n in sorted(scores))
                    ],
                )
            )
    return out


def evict_leader_leftover(obs: Observation, inv: Invariant) -> list[Violation]:
    out = []
    for e in obs.facts.get("evict_leader", []):
        owner, until = e.get("owner"), e.get("owned_until")
        if owner and until and datetime.fromisoformat(until) > obs.observed_at:
            continue
        why = (
            f"its owner ({owner}) let it lapse at {until}"
            if owner
            else "no running action of this operator owns it"
        )
        out.append(
            Violation(
                invariant=inv.name,
                entity=e["store"],
                severity=inv.severity,
                summary=f"an evict-leader scheduler keeps leaders off {e['store']}, and {why}",
                evidence=[f"PD schedulers: {', '.join(obs.facts.get('schedulers', []))}"],
            )
        )
    return out


def metrics_missing(obs: Observation, inv: Invariant) -> list[Violation]:
    if obs.facts.get("prometheus") != "ok":
        return []
    scraped = obs.metrics.get(SCRAPED, {})
    stores = _addresses(obs)
    unmatched = obs.facts.get("unmatched_series", [])
    out = []
    for name, up in sorted(obs.metrics.get(STORE_UP, {}).items()):
        if up != 1.0 or scraped.get(name) == 1.0:
            continue
        endpoint = stores.get(name, {}).get("status_address", "?")
        state = "failing" if name in scraped else "absent"
        out.append(
            Violation(
                invariant=inv.name,
                entity=name,
                severity=inv.severity,
                summary=f"Prometheus has no successful scrape of {name}'s status port "
                f"({endpoint}): its scrape is {state}, so its latency cannot be judged",
                evidence=[f"series that matched no store: {', '.join(unmatched)}"]
                if unmatched
                else [],
            )
        )
    return out


def evaluate(
    obs: Observation, invariants: dict[str, Invariant], min_leaders: int
) -> list[Violation]:
    return evaluate_rules(
        obs,
        invariants,
        {
            STORE_DOWN: store_down,
            NO_LIVE_STORE: no_live_store,
            HIGH_LATENCY: high_latency,
            LOW_DISK_SPACE: low_disk_space,
            REGION_HEALTH: region_health,
            LEADER_IMBALANCE: lambda o, i: leader_imbalance(o, i, min_leaders),
            EVICT_LEADER_LEFTOVER: evict_leader_leftover,
            METRICS_MISSING: metrics_missing,
        },
    )
