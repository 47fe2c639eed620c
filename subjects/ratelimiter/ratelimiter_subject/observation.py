"""One observation: the registry and each node's /health, the p99 check latency per node from
Prometheus, and the counters the API reports held against the logs in Redis.

What fails the observation (the core shows Unknown, never "all clear"): Prometheus failing,
no node known at all, or the API or Redis failing while the nodes say Redis is fine (then the
failure is ours to explain, e.g. a wrong redisUrl). What does not: Redis being down for every
node that answers. That is what the subject looks like then (redis_disconnected), and the
counters are reported as not judged rather than guessed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from aiops.subjects.contract import Member, MemberState, Observation, PluginError
from aiops.subjects.metrics import MetricsError, Prometheus, Sample
from ratelimiter_subject import limits
from ratelimiter_subject.api import ApiError, CounterView, Health, NodeView, RateLimiterApi, probe
from ratelimiter_subject.config import RateLimiterConfig, redact
from ratelimiter_subject.redis_truth import LogCounts, LogQuery, RedisTruth

# Metric names in Observation.metrics.
NODE_UP = "node_up"  # per node: 1 serving, 0 not
REDIS_OK = "redis_ok"  # per node that answered: 1 reaches Redis, 0 reports it unreachable
LATENCY_MASKED = "latency_masked"  # per node: seconds since it last reported Redis down
REDIS_PING = "redis_ping_seconds"  # per node that reached Redis: its live PING, from /health
P99_RECENT_MAX = "check_p99_recent_max_seconds"  # per node: highest p99, last two windows
P99 = "check_p99_seconds"  # per node_id
DRIFT = "counter_drift"  # per key: API count minus the admissions in Redis
OVER = "over_limit"  # per key: admissions in the window minus the limit in force
GHOST = "ghost_admitted"  # per key: admissions minus a limit on record the script skips

LATENCY_CAP_SECONDS = 1e6  # histogram_quantile answers +Inf past the top bucket
MAX_KEY_FACTS = 20
MAX_SCAN_ONLY = 20  # keys with a log the active index misses, read one by one


@dataclass(frozen=True)
class KeyLimit:
    """What the plugin last saw of one key's limits, and since when (Redis µs)."""

    enforced: limits.Spec
    since_us: int
    recorded_raw: str | None
    recorded_since_us: int


@dataclass
class Memory:
    """Kept by one plugin instance between observations; rebuilt empty when the Subject's spec
    changes or the operator restarts (then the first observation trusts the logs as found).

    - registry: node id -> advertised address, so nodes stay probed while the registry is
      unreadable (Redis down), and a dead node stays listed.
    - limits: per key, the limit seen in force and since when. Admissions made before a limit
      came into force are not held against it: lowering a limit is not the limiter leaking.
    - redis_down_at: when each node last reported Redis unreachable. Its checks failed
      slowly meanwhile, and the latency window goes on holding them after Redis is back:
      high_latency waits for that window to pass instead of reporting the outage twice.
    - p99_seen: each node's p99 over the last two latency windows. When every node was slow
      in them, they recover a scrape apart; the last ones slow are the tail of that shared
      episode, not a new slowness of their own.
    """

    registry: dict[str, str] = field(default_factory=dict)
    limits: dict[str, KeyLimit] = field(default_factory=dict)
    redis_down_at: dict[str, float] = field(default_factory=dict)  # node -> loop time
    p99_seen: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeReads:
    registry: list[NodeView] | None
    registry_problem: str
    health: dict[str, Health]  # node -> its /health
    addresses: dict[str, str]  # node -> base URL probed


@dataclass(frozen=True)
class Reads:
    nodes: NodeReads
    p99: dict[str, float] | None  # node -> p99 seconds
    latency_masked: dict[str, float]  # node -> seconds since it last reported Redis down
    p99_recent_max: dict[str, float]  # node -> highest p99 over the last two latency windows
    counters: list[CounterView] | None
    counts: dict[str, LogCounts]
    recorded: dict[str, tuple[str, limits.Spec | None]]  # key -> raw value the script skips
    shared_raw: str | None
    counters_problem: str


async def _settle(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Wait for every task; when we are cancelled (the core's timeout), cancel them first:
    nothing is left running behind an observation."""
    if not tasks:
        return
    try:
        await asyncio.wait(tasks)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
            elif not t.cancelled():
                t.exception()  # retrieved: a failure the caller never asks about is not logged


async def _p99(prometheus: Prometheus, query: str) -> list[Sample]:
    try:
        return await prometheus.query(query)
    except MetricsError as err:
        raise PluginError(
            f"cannot read the check latency from Prometheus: {redact(str(err))}"
        ) from err


def per_node(samples: list[Sample]) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in samples:
        node = labels.get("node_id")
        if node:
            out[node] = min(value, LATENCY_CAP_SECONDS) if math.isinf(value) else value
    return out


def window_seconds(window: str) -> float:
    """A PromQL range of the config's form (`30s`, `5m`) in seconds."""
    return float(window[:-1]) * (60 if window.endswith("m") else 1)


def latency_query(cfg: RateLimiterConfig) -> str:
    """p99 of the time to answer a check, per node, over the latency window. The service
    labels every series with node_id (the original histogram had no node label, so its
    latency invariant could never point at a node)."""
    return (
        "histogram_quantile(0.99, sum by (node_id, le) ("
        f'rate(ratelimiter_check_duration_seconds_bucket{{job="{cfg.prometheus_job}"}}'
        f"[{cfg.latency_window}])))"
    )


class Observer:
    def __init__(
        self,
        cfg: RateLimiterConfig,
        api: RateLimiterApi,
        http: httpx.AsyncClient,
        prometheus: Prometheus | None,
        truth: RedisTruth | None,
    ) -> None:
        self.cfg = cfg
        self.api = api
        self.http = http
        self.prometheus = prometheus
        self.truth = truth
        self.memory = Memory()

    async def nodes(self) -> NodeReads:
        """The registry, and every known node's /health, probed concurrently."""
        cfg = self.cfg
        known = {**self.memory.registry, **cfg.node_bases()}
        probes = {n: asyncio.ensure_future(self._probe(u)) for n, u in known.items()}
        registry: list[NodeView] | None = None
        registry_problem = ""
        try:
            registry = await self.api.nodes()
        except ApiError as err:
            registry_problem = str(err)
        finally:
            await _settle(list(probes.values()))
        if registry is None:
            addresses = known or await self._discover()
        else:
            # The registry is the truth about who exists; forgotten nodes drop out.
            self.memory.registry = {n.node_id: n.address.rstrip("/") for n in registry if n.address}
            addresses = {**self.memory.registry, **cfg.node_bases()}
        health = {n: t.result() for n, t in probes.items() if n in addresses}
        missing = {n: u for n, u in addresses.items() if n not in health or u != known.get(n)}
        if missing:
            extra = await asyncio.gather(*(self._probe(u) for u in missing.values()))
            health.update(zip(missing, extra, strict=True))
        if not addresses:
            raise PluginError(
                f"no rate limiter node is known: the registry could not be read "
                f"({registry_problem}) and spec.config.nodes is empty"
            )
        return NodeReads(registry, registry_problem, health, addresses)

    async def _discover(self) -> dict[str, str]:
        """With no registry and no node known yet (Redis down at the first look), the admin
        URLs are asked who they are: each node's /health names it."""
        found = await asyncio.gather(*(self._probe(b) for b in self.cfg.admin_bases()))
        return {
            h.node_id: b for b, h in zip(self.cfg.admin_bases(), found, strict=True) if h.node_id
        }

    async def members(self) -> list[Member]:
        """The nodes as they are now (for preconditions)."""
        return _members(await self.nodes())

    async def read(self) -> Reads:
        p99_task = (
            asyncio.ensure_future(_p99(self.prometheus, latency_query(self.cfg)))
            if self.prometheus is not None
            else None
        )
        counters_task = asyncio.ensure_future(self._counters()) if self.truth else None
        others = [t for t in (p99_task, counters_task) if t is not None]
        try:
            nodes = await self.nodes()
        finally:
            await _settle(others)
        redis_fine = any(h.redis_ok for h in nodes.health.values())
        if nodes.registry is None and redis_fine:
            # Nodes reach Redis, so the API should answer: its failing is a problem to show.
            raise PluginError(f"cannot read the node registry: {nodes.registry_problem}")

        p99 = per_node(p99_task.result()) if p99_task is not None else None  # or raises
        masked, recent = self._latency_memory(nodes, p99)

        counters: list[CounterView] | None = None
        counts: dict[str, LogCounts] = {}
        recorded: dict[str, tuple[str, limits.Spec | None]] = {}
        shared_raw: str | None = None
        counters_problem = "" if self.truth else "no redisUrl in the config"
        if counters_task is not None:
            try:
                counters, counts, recorded, shared_raw = counters_task.result()
            except PluginError as err:
                if redis_fine:
                    raise
                counters_problem = f"Redis is unreachable for every node that answered ({err})"
        return Reads(
            nodes=nodes,
            p99=p99,
            latency_masked=masked,
            p99_recent_max=recent,
            counters=counters,
            counts=counts,
            recorded=recorded,
            shared_raw=shared_raw,
            counters_problem=counters_problem,
        )

    def _latency_memory(
        self, nodes: NodeReads, p99: dict[str, float] | None
    ) -> tuple[dict[str, float], dict[str, float]]:
        """(nodes whose latency is not judged: seconds since they reported Redis down;
        each node's highest p99 over the last two latency windows: a rate() window holds
        samples for one window after they were scraped, so a p99 trails by up to that)."""
        now = asyncio.get_running_loop().time()
        window = window_seconds(self.cfg.latency_window)
        memory = self.memory
        for name, h in nodes.health.items():
            if h.redis_ok is False:
                memory.redis_down_at[name] = now
        memory.redis_down_at = {
            n: at for n, at in memory.redis_down_at.items() if now - at < 2 * window
        }
        masked = {n: round(now - at, 1) for n, at in memory.redis_down_at.items()}
        for name, value in (p99 or {}).items():
            memory.p99_seen.setdefault(name, []).append((now, value))
        memory.p99_seen = {
            n: kept
            for n, seen in memory.p99_seen.items()
            if (kept := [(t, v) for t, v in seen if now - t <= 2 * window])
        }
        recent = {n: max(v for _, v in seen) for n, seen in memory.p99_seen.items()}
        return masked, recent

    async def _probe(self, base: str) -> Health:
        return await probe(self.http, base, self.cfg.request_timeout_seconds)

    async def _counters(
        self,
    ) -> tuple[
        list[CounterView],
        dict[str, LogCounts],
        dict[str, tuple[str, limits.Spec | None]],
        str | None,
    ]:
        """The API's counters, the same keys counted in Redis, and their limits on record."""
        assert self.truth is not None
        truth = self.truth
        listed, logged = await asyncio.gather(
            self.api.counters(self.cfg.max_keys), truth.window_keys(self.cfg.max_keys)
        )
        views = {c.key: c for c in listed}
        # A log the active index does not know is invisible in the API's list: read it alone.
        unlisted = [k for k in logged if k not in views][:MAX_SCAN_ONLY]
        for view in await asyncio.gather(*(self.api.counter(k) for k in unlisted)):
            views[view.key] = view
        keys = sorted(views)
        raw, shared_raw = await truth.limits(keys)
        recorded: dict[str, tuple[str, limits.Spec | None]] = {}
        for key in keys:
            value = raw.get(key)
            if value is None:
                value = shared_raw  # no per-key limit: the shared default is the record
            if value is not None and limits.enforced(value) is None:
                recorded[key] = (value, limits.recorded(value))
        seen = {k: self._advance(views[k], recorded.get(k, (None, None))[0]) for k in keys}
        counts = await truth.count(
            [_query(views[k], seen[k], recorded.get(k, ("", None))[1]) for k in keys]
        )
        # Keys not seen this time are forgotten: the memory stays as small as one look.
        self.memory.limits = seen
        return [views[k] for k in keys], counts, recorded, shared_raw

    def _advance(self, view: CounterView, raw: str | None) -> KeyLimit:
        """This key's limits as now seen, and since when each has been in force."""
        spec = limits.Spec(view.limit, view.window_ms)
        prev = self.memory.limits.get(view.key)
        if prev is None:
            return KeyLimit(spec, 0, raw, 0)  # first sight: the log is judged as found
        # Changed since the last look: only what is admitted from now on is judged by it.
        return KeyLimit(
            spec,
            prev.since_us if prev.enforced == spec else view.now_us,
            raw,
            prev.recorded_since_us if prev.recorded_raw == raw else view.now_us,
        )


def _query(view: CounterView, seen: KeyLimit, rec_spec: limits.Spec | None) -> LogQuery:
    return LogQuery(
        key=view.key,
        now_us=view.now_us,
        window_us=view.window_ms * 1000,
        oldest_us=view.oldest_us,
        since_us=seen.since_us,
        recorded_window_us=rec_spec.window_ms * 1000 if rec_spec else None,
        recorded_since_us=seen.recorded_since_us,
    )


# -- building the Observation ---------------------------------------------------------------


def _member(name: str, address: str, h: Health | None, rec: NodeView | None) -> Member:
    registry = ""
    if rec is not None:
        registry = f"registry: {rec.state}" + (f" ({rec.down_reason})" if rec.down_reason else "")
    last_seen = (
        datetime.fromtimestamp(rec.last_seen_ms / 1000, UTC)
        if rec is not None and rec.last_seen_ms is not None
        else None
    )
    parts = [registry] if registry else []
    if h is None:
        # No address to probe: the registry is all there is to go by.
        state = (
            MemberState.DOWN
            if rec is not None and rec.state == "Down"
            else (MemberState.UP if rec is not None and rec.state == "Up" else MemberState.UNKNOWN)
        )
        parts.append("no address to probe")
    elif not h.reachable:
        state = MemberState.DOWN
        parts.append(h.problem)
    elif h.node_id is not None and h.node_id != name:
        state = MemberState.DOWN
        parts.append(f"{h.url} answers as node {h.node_id!r}, not as {name!r}")
    elif h.redis_ok is None:
        # It answers, but not as the service does: neither Up nor provably Down.
        state = MemberState.UNKNOWN
        parts.append(h.problem)
    else:
        # Serving. A registry entry that says Down catches up at the node's next beat.
        state = MemberState.UP
        if h.problem:
            parts.append(h.problem)
    return Member(
        name=name,
        state=state,
        role="node",
        address=address,
        last_seen=last_seen,
        message="; ".join(p for p in parts if p)[:500],
    )


def _key_fact(
    view: CounterView,
    c: LogCounts,
    record: tuple[str, limits.Spec | None] | None,
) -> dict[str, Any]:
    fact: dict[str, Any] = {
        "key": view.key,
        "api_count": view.count,
        "limit": view.limit,
        "window_ms": view.window_ms,
        "source": view.source,
        "admitted": c.admitted,
        "admitted_since_limit": c.admitted_since,
        "future_entries": c.future,
        "newest_ahead_s": round((c.newest_us - view.now_us) / 1e6, 3)
        if c.newest_us is not None and c.newest_us > view.now_us
        else 0.0,
        "conclusive": c.oldest_present,
    }
    if record is not None:
        fact["recorded_raw"] = record[0][:200]
        fact["recorded_limit"] = (
            {"limit": record[1].limit, "window_ms": record[1].window_ms} if record[1] else None
        )
        fact["admitted_in_recorded_window"] = c.admitted_recorded
    return fact


def _members(nodes: NodeReads) -> list[Member]:
    records = {r.node_id: r for r in nodes.registry or []}
    return [
        _member(name, nodes.addresses[name], nodes.health.get(name), records.get(name))
        for name in sorted(nodes.addresses)
    ]


def build(reads: Reads, now: datetime) -> Observation:
    members = _members(reads.nodes)
    metrics: dict[str, dict[str, float]] = {NODE_UP: {}, REDIS_OK: {}, REDIS_PING: {}}
    for m in members:
        metrics[NODE_UP][m.name] = 1.0 if m.state is MemberState.UP else 0.0
        h = reads.nodes.health.get(m.name)
        if m.state is MemberState.UP and h is not None and h.redis_ok is not None:
            metrics[REDIS_OK][m.name] = 1.0 if h.redis_ok else 0.0
            if h.redis_ping_s is not None:
                metrics[REDIS_PING][m.name] = h.redis_ping_s
    facts: dict[str, Any] = {
        "registry": "ok"
        if reads.nodes.registry is not None
        else f"unavailable: {reads.nodes.registry_problem}",
        "redis_errors": {
            n: h.problem for n, h in sorted(reads.nodes.health.items()) if h.redis_ok is False
        },
    }
    if reads.p99 is None:
        facts["prometheus"] = "not configured: high_latency is not judged"
    else:
        facts["prometheus"] = "ok"
        metrics[LATENCY_MASKED] = dict(reads.latency_masked)
        metrics[P99] = dict(reads.p99)
        metrics[P99_RECENT_MAX] = dict(reads.p99_recent_max)
    if reads.counters is None:
        facts["counters"] = f"not judged: {reads.counters_problem}"
    else:
        facts["counters"] = "ok"
        facts["keys_examined"] = len(reads.counters)
        if reads.shared_raw is not None:
            facts["shared_default_raw"] = reads.shared_raw[:200]
        metrics[DRIFT], metrics[OVER], metrics[GHOST] = {}, {}, {}
        notable: list[dict[str, Any]] = []
        for view in reads.counters:
            c = reads.counts.get(view.key)
            if c is None:
                continue
            record = reads.recorded.get(view.key)
            if c.oldest_present:
                # Otherwise entries the API counted left the log between the two reads
                # (a window slid): this round cannot tell drift from that race.
                metrics[DRIFT][view.key] = float(view.count - c.admitted)
            metrics[OVER][view.key] = float(c.admitted_since - view.limit)
            if record is not None and record[1] is not None:
                metrics[GHOST][view.key] = float(c.admitted_recorded - record[1].limit)
            if (
                (c.oldest_present and view.count != c.admitted)
                or c.admitted_since > view.limit
                or record is not None
            ):
                notable.append(_key_fact(view, c, record))
        facts["keys"] = notable[:MAX_KEY_FACTS]
    return Observation(observed_at=now, members=members, metrics=metrics, facts=facts)
