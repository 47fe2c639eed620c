"""Faults for Chaos resources, each the real thing: a node's process stopped or paused, a node
cut off from its peers (pods), Redis stopped, its data directory filled, the nodes' path to
Redis slowed, jittered, throttled, stalled or cut by toxics in toxiproxy, and three ways
Redis's data goes wrong in the field.

`revert` is the exact inverse of `inject`, and safe to repeat: what a fault makes is named for
it (a toxic `aiops-chaos-<fault>`, a file `aiops-chaos-fill`, a NetworkPolicy
`aiops-chaos-<fault>-<node>`, log members `aiops-chaos-<fault>-<n>`, a limit value that
carries the value it replaced), so revert removes exactly that and nothing the service or a
person made, even after an operator restart lost every memory of the injection.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import ActionResult, FaultSpec, FaultTarget, PluginError
from aiops.subjects.dispatch import Dispatch, Handler
from aiops.subjects.faults import netpolicy
from aiops.subjects.faults.delay import DelayParams
from aiops.subjects.faults.diskfill import FillParams
from aiops.subjects.faults.toxics import Toxic, ToxiproxyApi, toxic_name
from aiops.subjects.workload import Workload
from ratelimiter_subject.actions import Params
from ratelimiter_subject.api import RateLimiterApi
from ratelimiter_subject.config import RateLimiterConfig
from ratelimiter_subject.observation import Observer
from ratelimiter_subject.redis_truth import RedisTruth, as_text

KILL_NODE = "kill_node"
PAUSE_NODE = "pause_node"
PARTITION_NODE = "partition_node"
REDIS_OUTAGE = "redis_outage"
FILL_REDIS_DISK = "fill_redis_disk"
REDIS_LATENCY = "redis_latency"
REDIS_JITTER = "redis_jitter"
REDIS_BANDWIDTH = "redis_bandwidth"
REDIS_TIMEOUT = "redis_timeout"
REDIS_CUT = "redis_cut"
COUNTER_DRIFT = "counter_drift"
BYPASS_LIMIT = "bypass_limit"
GHOST_LIMIT = "ghost_limit"

GHOST_MARK = "aiops-chaos-ghost_limit"
TOXIC_FAULTS = (REDIS_LATENCY, REDIS_JITTER, REDIS_BANDWIDTH, REDIS_TIMEOUT, REDIS_CUT)


OnMember = Callable[[Workload, str, Any], Awaitable[ActionResult]]
"""A fault's step through the workload: (workload, member, params)."""


class NoParams(Params):
    """The fault takes its target only."""


class LatencyParams(DelayParams):
    """Every reply from Redis to the nodes is delayed by latency_ms (± jitter_ms)."""


class JitterParams(DelayParams):
    latency_ms: int = Field(default=100, ge=1, le=60_000, description="The mean delay, in ms.")
    jitter_ms: int = Field(
        default=50, ge=1, le=60_000, description="Each delay is latency_ms ± up to this, in ms."
    )


class BandwidthParams(Params):
    kilobytes_per_second: int = Field(
        default=16,
        ge=1,
        le=10_000_000,
        description="What Redis's replies to the nodes may carry, in KB/s (toxiproxy's rate).",
    )


class TimeoutParams(Params):
    timeout_ms: int = Field(
        default=0,
        ge=0,
        le=600_000,
        description="No data passes either way; each connection is closed after this many "
        "ms (0: held open, silent, until the revert).",
    )


class PartitionParams(Params):
    direction: netpolicy.Direction = Field(
        default="both", description="Traffic cut: both, ingress (to the node) or egress."
    )


class DriftParams(Params):
    entries: int = Field(default=20, ge=1, le=10_000, description="Entries written.")
    ahead_seconds: int = Field(
        default=3600, ge=1, le=86_400, description="How far past Redis's clock they are dated."
    )


class BypassParams(Params):
    over: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="Admissions written beyond the key's limit in force.",
    )


class GhostParams(Params):
    limit: int = Field(default=5, ge=1, le=1_000_000_000)
    window_ms: int = Field(default=60_000, ge=1, le=86_400_000)


FAULTS: tuple[FaultSpec, ...] = (
    FaultSpec(
        name=KILL_NODE,
        description="Stop the target node's process through the workload (pods: the pod is "
        "deleted and its controller makes another, an instant fault; supervisord: it stays "
        "down until revert starts it).",
        params=NoParams,
    ),
    FaultSpec(
        name=PAUSE_NODE,
        description="Freeze the target node's process with SIGSTOP: it keeps "
        "its port, so requests to it hang instead of being refused; revert sends SIGCONT. "
        "Pods: only a pod with spec.shareProcessNamespace (the chart's), its container's "
        "processes stopped from inside it.",
        params=NoParams,
    ),
    FaultSpec(
        name=PARTITION_NODE,
        description="Cut the target node's pod off from every other pod by a NetworkPolicy "
        "(pods workloads only); revert deletes the policy.",
        params=PartitionParams,
    ),
    FaultSpec(
        name=REDIS_OUTAGE,
        description="Stop Redis through the workload (the config's redisMember); revert "
        "starts it (pods: the pod is deleted, an instant fault). Its data is whatever Redis "
        "keeps across a restart (nothing, locally).",
        params=NoParams,
        target=FaultTarget.SUBJECT,
    ),
    FaultSpec(
        name=FILL_REDIS_DISK,
        description="Fill Redis's data directory (the config's redisDataDir) to a percentage "
        "with one file, aiops-chaos-fill; revert removes it.",
        params=FillParams,
        target=FaultTarget.SUBJECT,
    ),
    FaultSpec(
        name=REDIS_LATENCY,
        description="Delay every reply from Redis to the nodes by a latency toxic in "
        "toxiproxy (the config's toxiproxyUrl); revert removes the toxic.",
        params=LatencyParams,
        target=FaultTarget.SUBJECT,
    ),
    FaultSpec(
        name=REDIS_JITTER,
        description="Delay each reply from Redis to the nodes by a different amount, "
        "latency_ms ± jitter_ms (a latency toxic with jitter); revert removes the toxic.",
        params=JitterParams,
        target=FaultTarget.SUBJECT,
    ),
    FaultSpec(
        name=REDIS_BANDWIDTH,
        description="Throttle what Redis sends the nodes to a rate (a bandwidth toxic); "
        "revert removes the toxic.",
        params=BandwidthParams,
        target=FaultTarget.SUBJECT,
    ),
    FaultSpec(
        name=REDIS_TIMEOUT,
        description="Let nothing through between the nodes and Redis, connections staying "
        "open (or closed after timeout_ms): every Redis call of the nodes times out (a "
        "timeout toxic); revert removes the toxic.",
        params=TimeoutParams,
        target=FaultTarget.SUBJECT,
    ),
    FaultSpec(
        name=REDIS_CUT,
        description="Cut the nodes off Redis: every connection is reset as soon as it "
        "carries a command, so each Redis call fails at once (a reset_peer toxic); revert "
        "removes the toxic.",
        params=NoParams,
        target=FaultTarget.SUBJECT,
    ),
    FaultSpec(
        name=COUNTER_DRIFT,
        description="Write entries dated ahead of Redis's clock into the target key's log, "
        "as a Redis whose clock stepped back (a failover to a replica running behind) leaves "
        "them: the key is counted, and refused, for requests nobody made.",
        params=DriftParams,
        target=FaultTarget.KEY,
    ),
    FaultSpec(
        name=BYPASS_LIMIT,
        description="Write admissions dated now into the target key's log, past its limit in "
        "force, as a writer that skips the check script (an old client, a merged log) does.",
        params=BypassParams,
        target=FaultTarget.KEY,
    ),
    FaultSpec(
        name=GHOST_LIMIT,
        description="Store the target key's per-key limit as JSON, a form the check script "
        "skips: the limit is on record but the key runs on the default (the original "
        "system's per-key limits that were stored and never enforced).",
        params=GhostParams,
        target=FaultTarget.KEY,
    ),
)


class Faults:
    def __init__(
        self,
        cfg: RateLimiterConfig,
        ctx: PluginContext,
        api: RateLimiterApi,
        observer: Observer,
        truth: RedisTruth | None,
    ) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.api = api
        self.observer = observer
        self.truth = truth
        self.inject, self.revert = self._tables()

    def _tables(self) -> tuple[Dispatch, Dispatch]:
        """inject and revert, side by side. A node is checked against the registry before a
        fault is injected into it, never before it is reverted: reverting must work whatever
        the registry says now (Redis may be the thing that is down)."""
        node, redis = partial(self._on_node, known=True), self._on_redis
        inject = Dispatch(
            "ratelimiter",
            "fault",
            FAULTS,
            {
                KILL_NODE: node("stop a node", lambda w, n, _: w.kill(n)),
                PAUSE_NODE: node("pause a node", lambda w, n, _: w.pause(n)),
                PARTITION_NODE: node(
                    "cut a node off",
                    lambda w, n, p: w.partition(
                        n, netpolicy.policy_name(PARTITION_NODE, n), p.direction
                    ),
                ),
                # kill: under supervisord it holds until revert; a pod comes back by itself.
                REDIS_OUTAGE: redis("stop Redis", lambda w, m, _: w.kill(m)),
                FILL_REDIS_DISK: redis(
                    "fill Redis's disk", lambda w, m, p: w.fill_disk(m, self._redis_dir(), p)
                ),
                **{fault: partial(self._add_toxic, fault) for fault in TOXIC_FAULTS},
                COUNTER_DRIFT: self._drift,
                BYPASS_LIMIT: self._bypass,
                GHOST_LIMIT: self._ghost,
            },
        )
        node = partial(self._on_node, known=False)
        revert = Dispatch(
            "ratelimiter",
            "fault",
            FAULTS,
            {
                KILL_NODE: node("start a node", lambda w, n, _: w.start(n)),
                PAUSE_NODE: node("resume a node", lambda w, n, _: w.resume(n)),
                PARTITION_NODE: node(
                    "heal a node",
                    lambda w, n, _: w.heal(n, netpolicy.policy_name(PARTITION_NODE, n)),
                ),
                REDIS_OUTAGE: redis("start Redis", lambda w, m, _: w.start(m)),
                FILL_REDIS_DISK: redis(
                    "empty Redis's disk", lambda w, m, _: w.unfill_disk(m, self._redis_dir())
                ),
                **{fault: partial(self._remove_toxic, fault) for fault in TOXIC_FAULTS},
                COUNTER_DRIFT: partial(self._unwrite, COUNTER_DRIFT),
                BYPASS_LIMIT: partial(self._unwrite, BYPASS_LIMIT),
                GHOST_LIMIT: self._unghost,
            },
        )
        return inject, revert

    # -- through the workload --------------------------------------------------------------

    def _workload(self, to: str) -> Workload:
        if self.ctx.workload is None:
            raise PluginError(f"the Subject has no workload (spec.workload): cannot {to}")
        return self.ctx.workload

    def _on_node(self, to: str, step: OnMember, *, known: bool) -> Handler:
        """A fault's step on the target node through the workload; `known`: the node must be
        one the registry lists."""

        async def run(params: Any, node: str) -> ActionResult:
            workload = self._workload(to)
            return await step(workload, await self._known_node(node) if known else node, params)

        return run

    def _on_redis(self, to: str, step: OnMember) -> Handler:
        """A fault's step on the workload member that runs Redis (the config's redisMember)."""

        async def run(params: Any, _target: str) -> ActionResult:
            return await step(self._workload(to), self.cfg.redis_member, params)

        return run

    async def _known_node(self, node: str) -> str:
        known = (await self.observer.nodes()).addresses
        if node not in known:
            raise PluginError(
                f"{node} is not a node of this rate limiter (known: "
                f"{', '.join(sorted(known)) or 'none'})"
            )
        return node

    def _redis_dir(self) -> str:
        if self.cfg.redis_data_dir is None:
            raise PluginError("no redisDataDir in the config: cannot fill Redis's disk")
        return self.cfg.redis_data_dir

    # -- toxiproxy -------------------------------------------------------------------------

    def _toxiproxy(self) -> ToxiproxyApi:
        if self.cfg.toxiproxy_url is None:
            raise PluginError("no toxiproxyUrl in the config: cannot act on the path to Redis")
        return ToxiproxyApi(
            self.ctx.http,
            str(self.cfg.toxiproxy_url),
            self.cfg.toxiproxy_proxy,
            self.cfg.request_timeout_seconds + 4,
        )

    async def _add_toxic(self, fault: str, params: BaseModel, _target: str) -> ActionResult:
        toxic = _toxic(fault, params)
        done = await self._toxiproxy().add(toxic)
        return ActionResult(ok=True, message=f"{done}: {_TOXIC_SAYS[toxic.type]}")

    async def _remove_toxic(self, fault: str, _params: BaseModel, _target: str) -> ActionResult:
        return ActionResult(ok=True, message=await self._toxiproxy().remove(toxic_name(fault)))

    # -- Redis data ------------------------------------------------------------------------

    def _redis_data(self) -> RedisTruth:
        if self.truth is None:
            raise PluginError("no redisUrl in the config: cannot write a fault into Redis")
        return self.truth

    async def _write(self, fault: str, key: str, scores: list[int]) -> int:
        truth = self._redis_data()
        members = {f"aiops-chaos-{fault}-{i}": score for i, score in enumerate(scores)}
        try:
            return int(await truth.redis.zadd(truth.keys.window(key), members) or 0)
        except (RedisError, OSError) as err:
            raise truth.error(f"the log of {key!r} (writing {fault})", err) from err

    async def _drift(self, p: DriftParams, key: str) -> ActionResult:
        now = await self._redis_data().now_us()
        ahead = now + p.ahead_seconds * 1_000_000
        added = await self._write(COUNTER_DRIFT, key, [ahead + i for i in range(p.entries)])
        return ActionResult(
            ok=True,
            message=f"wrote {added} entries dated {p.ahead_seconds} s "
            f"ahead into the log of key {key!r}",
        )

    async def _bypass(self, p: BypassParams, key: str) -> ActionResult:
        now = await self._redis_data().now_us()
        limit = await self.api.limit(key)
        count = limit.limit + p.over
        # Dated just before now, one microsecond apart: all inside the window, none ahead.
        added = await self._write(BYPASS_LIMIT, key, [now - i for i in range(count)])
        return ActionResult(
            ok=True,
            message=f"wrote {added} admissions into the log of key "
            f"{key!r} around the check script (its limit is {limit.limit} per "
            f"{limit.window_ms} ms)",
        )

    async def _unwrite(self, fault: str, _params: BaseModel, key: str) -> ActionResult:
        truth = self._redis_data()
        log = truth.keys.window(key)
        try:
            ours = [
                m
                async for m, _ in truth.redis.zscan_iter(
                    log, match=f"aiops-chaos-{fault}-*", count=500
                )
            ]
            removed = int(await truth.redis.zrem(log, *ours)) if ours else 0
        except (RedisError, OSError) as err:
            raise truth.error(f"the log of {key!r} (reverting {fault})", err) from err
        return ActionResult(
            ok=True,
            message=f"removed {removed} entries {fault} had written into the log of key {key!r}",
        )

    async def _ghost(self, p: GhostParams, key: str) -> ActionResult:
        truth = self._redis_data()
        field_ = truth.keys.limits
        try:
            raw = await truth.redis.hget(field_, key)
            previous = None if raw is None else as_text(raw)
            doc = _ours(previous)
            if doc is not None:
                previous = doc.get("previous")  # injected twice: keep the original value
            value = json.dumps(
                {
                    "limit": p.limit,
                    "window_ms": p.window_ms,
                    "written_by": GHOST_MARK,
                    "previous": previous,
                }
            )
            await truth.redis.hset(field_, key, value)
        except (RedisError, OSError) as err:
            raise truth.error(f"the limits (writing {GHOST_LIMIT})", err) from err
        return ActionResult(
            ok=True,
            message=f"stored the limit of key {key!r} as JSON "
            f"({p.limit} per {p.window_ms} ms), which the check script skips",
        )

    async def _unghost(self, _params: BaseModel, key: str) -> ActionResult:
        truth = self._redis_data()
        field_ = truth.keys.limits
        try:
            raw = await truth.redis.hget(field_, key)
            doc = _ours(None if raw is None else as_text(raw))
            if doc is None:
                return ActionResult(
                    ok=True,
                    message=f"the limit of key {key!r} is not the one "
                    f"{GHOST_LIMIT} wrote: left as it is",
                )
            previous = doc.get("previous")
            if isinstance(previous, str):
                await truth.redis.hset(field_, key, previous)
                message = f"the limit of key {key!r} is {previous!r} again"
            else:
                await truth.redis.hdel(field_, key)
                message = f"key {key!r} has no per-key limit again"
        except (RedisError, OSError) as err:
            raise truth.error(f"the limits (reverting {GHOST_LIMIT})", err) from err
        return ActionResult(ok=True, message=message)


def _ours(value: str | None) -> dict[str, Any] | None:
    """The ghost_limit fault's own value, decoded; None for anything else."""
    try:
        doc = json.loads(value) if value else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("written_by") == GHOST_MARK else None


_TOXIC_SAYS = {
    "latency": "Redis's replies to the nodes are delayed",
    "bandwidth": "Redis's replies to the nodes are throttled",
    "timeout": "nothing passes between the nodes and Redis; their calls time out",
    "reset_peer": "every connection from the nodes to Redis is reset as it carries a command",
}


def _toxic(fault: str, params: BaseModel) -> Toxic:
    """The toxic a network fault adds, named for the fault."""
    name = toxic_name(fault)
    if isinstance(params, DelayParams):  # redis_latency, redis_jitter
        return Toxic(
            name=name,
            type="latency",
            stream="downstream",
            attributes={"latency": params.latency_ms, "jitter": params.jitter_ms},
        )
    if isinstance(params, BandwidthParams):
        return Toxic(
            name=name,
            type="bandwidth",
            stream="downstream",
            attributes={"rate": params.kilobytes_per_second},
        )
    if isinstance(params, TimeoutParams):
        return Toxic(
            name=name, type="timeout", stream="upstream", attributes={"timeout": params.timeout_ms}
        )
    if fault == REDIS_CUT:
        # Upstream: the reset comes as soon as a node sends anything, a new connection too.
        return Toxic(name=name, type="reset_peer", stream="upstream", attributes={"timeout": 0})
    raise PluginError(f"fault {fault!r} does not take {type(params).__name__}")
