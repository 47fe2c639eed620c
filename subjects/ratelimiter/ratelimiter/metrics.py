"""Prometheus metrics. Every series carries `node_id`, so a query can always say which node
is slow, failing or down (a histogram without it cannot point at a node, which is how the
latency invariant of the system this one replaces could never fire).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ratelimiter import __version__

# Fine steps around the 1-5 ms a check should take, coarse ones for outages and timeouts.
LATENCY_BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

# The `_created` series double the exposition for no query anyone writes here.
disable_created_metrics()

RESULTS = ("allowed", "blocked", "error")
OPERATIONS = ("check", "admin", "heartbeat", "health")


@dataclass
class PeerView:
    """The registry as this node last read it: node id -> (up, last seen ms)."""

    peers: dict[str, tuple[bool, int | None]] = field(default_factory=dict)


class _PeerCollector(Collector):
    # Built at scrape time from the last snapshot, so forgotten nodes disappear without
    # a window where every series is missing (as Gauge.clear() then set would give).
    def __init__(self, node_id: str, view: PeerView) -> None:
        self.node_id = node_id
        self.view = view

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "ratelimiter_peer_up",
            "Registry state of each node as seen by this node (1 Up, 0 Down)",
            labels=["node_id", "peer"],
        )
        seen = GaugeMetricFamily(
            "ratelimiter_peer_last_seen_timestamp_seconds",
            "Last heartbeat of each node, Redis time",
            labels=["node_id", "peer"],
        )
        for peer, (is_up, last_seen_ms) in sorted(self.view.peers.items()):
            up.add_metric([self.node_id, peer], 1.0 if is_up else 0.0)
            if last_seen_ms is not None:
                seen.add_metric([self.node_id, peer], last_seen_ms / 1000)
        yield up
        yield seen


ADMIN_CHANGES = ("reset_counter", "put_limit", "delete_limit", "put_default", "delete_default")


class Metrics:
    """One node's metrics in a registry of their own (tests run several nodes per process)."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["node_id"]
        checks = Counter(
            "ratelimiter_checks",
            "Checks answered, by result",
            [*labels, "result"],
            registry=self.registry,
        )
        # Children bound once: .labels() on every check would cost a dict lookup and a lock.
        self.checks = {r: checks.labels(node_id, r) for r in RESULTS}
        self.check_seconds = Histogram(
            "ratelimiter_check_duration_seconds",
            "Time to answer a check, Redis round trip included (errors too)",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(node_id)
        errors = Counter(
            "ratelimiter_redis_errors",
            "Redis calls that failed (connection, timeout, server error), by operation",
            [*labels, "operation"],
            registry=self.registry,
        )
        self.redis_errors = {op: errors.labels(node_id, op) for op in OPERATIONS}
        changes = Counter(
            "ratelimiter_admin_changes",
            "Changes made through the admin API (counter resets, limit updates), by operation: "
            "what an operator did to this limiter, counted where it happened",
            [*labels, "operation"],
            registry=self.registry,
        )
        self.admin_changes = {op: changes.labels(node_id, op) for op in ADMIN_CHANGES}
        self.active_keys = Gauge(
            "ratelimiter_active_keys",
            "Keys with a live sliding-window log (all nodes; read at the last heartbeat)",
            labels,
            registry=self.registry,
        ).labels(node_id)
        self.blocked_keys = Gauge(
            "ratelimiter_blocked_keys",
            "Keys whose last request was refused and that are still refusing",
            labels,
            registry=self.registry,
        ).labels(node_id)
        self.node_up = Gauge(
            "ratelimiter_node_up",
            "1 while this node serves and its registration is current, 0 when its "
            "heartbeats are failing",
            labels,
            registry=self.registry,
        ).labels(node_id)
        self.redis_up = Gauge(
            "ratelimiter_redis_up",
            "1 when the last Redis call from this node succeeded, 0 when it failed",
            labels,
            registry=self.registry,
        ).labels(node_id)
        self.last_heartbeat = Gauge(
            "ratelimiter_last_heartbeat_timestamp_seconds",
            "When this node last registered itself successfully (Redis time)",
            labels,
            registry=self.registry,
        ).labels(node_id)
        Info(
            "ratelimiter_build",
            "Version of the service",
            labels,
            registry=self.registry,
        ).labels(node_id).info({"version": __version__})
        self.peers = PeerView()
        self.registry.register(_PeerCollector(node_id, self.peers))
