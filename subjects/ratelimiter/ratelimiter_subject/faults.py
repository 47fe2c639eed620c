"""Faults for Chaos resources, each the real thing: a node's process stopped, Redis stopped, a
latency toxic in toxiproxy, and three ways Redis's data goes wrong in the field.

`revert` is the exact inverse of `inject`, and safe to repeat: what a fault writes into Redis
is namespaced (log members `aiops-chaos-<fault>-<n>`, a limit value that carries the value it
replaced), so revert removes exactly that and nothing the service wrote, even after an
operator restart lost every memory of the injection.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import Field
from redis.exceptions import RedisError

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import ActionResult, FaultSpec, FaultTarget, PluginError
from ratelimiter_subject.actions import Params
from ratelimiter_subject.api import RateLimiterApi, describe, snippet
from ratelimiter_subject.config import RateLimiterConfig
from ratelimiter_subject.observation import Observer
from ratelimiter_subject.redis_truth import RedisTruth, as_text

KILL_NODE = "kill_node"
REDIS_OUTAGE = "redis_outage"
REDIS_LATENCY = "redis_latency"
COUNTER_DRIFT = "counter_drift"
BYPASS_LIMIT = "bypass_limit"
GHOST_LIMIT = "ghost_limit"

LATENCY_TOXIC = "aiops-chaos-latency"
GHOST_MARK = "aiops-chaos-ghost_limit"


class NoParams(Params):
    """The fault takes its target only."""


class LatencyParams(Params):
    latency_ms: int = Field(default=100, ge=1, le=60_000, description="Added to every reply.")
    jitter_ms: int = Field(default=0, ge=0, le=60_000)


class DriftParams(Params):
    entries: int = Field(default=20, ge=1, le=10_000, description="Entries written.")
    ahead_seconds: int = Field(
        default=3600, ge=1, le=86_400, description="How far past Redis's clock they are dated."
    )


class BypassParams(Params):
    over: int = Field(
        default=5, ge=1, le=10_000,
        description="Admissions written beyond the key's limit in force.",
    )


class GhostParams(Params):
    limit: int = Field(default=5, ge=1, le=1_000_000_000)
    window_ms: int = Field(default=60_000, ge=1, le=86_400_000)


FAULTS: tuple[FaultSpec, ...] = (
    FaultSpec(
        name=KILL_NODE,
        description="Stop the target node's process through the workload (pods: the "
        "controller brings it back; supervisord: it stays down until revert).",
        params=NoParams,
    ),
    FaultSpec(
        name=REDIS_OUTAGE,
        description="Stop Redis through the workload (the config's redisMember); revert "
        "starts it. Its data is whatever Redis keeps across a restart (nothing, locally).",
        params=NoParams,
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

    async def inject(self, fault: str, params: Params, target: str) -> ActionResult:
        if fault == KILL_NODE:
            return await self._node(target, stop=True)
        if fault == REDIS_OUTAGE:
            return await self._redis(stop=True)
        if fault == REDIS_LATENCY and isinstance(params, LatencyParams):
            return await self._add_latency(params)
        if fault == COUNTER_DRIFT and isinstance(params, DriftParams):
            return await self._drift(target, params)
        if fault == BYPASS_LIMIT and isinstance(params, BypassParams):
            return await self._bypass(target, params)
        if fault == GHOST_LIMIT and isinstance(params, GhostParams):
            return await self._ghost(target, params)
        raise PluginError(f"ratelimiter has no fault {fault!r} taking {type(params).__name__}")

    async def revert(self, fault: str, params: Params, target: str) -> ActionResult:
        if fault == KILL_NODE:
            return await self._node(target, stop=False)
        if fault == REDIS_OUTAGE:
            return await self._redis(stop=False)
        if fault == REDIS_LATENCY:
            return await self._remove_latency()
        if fault in (COUNTER_DRIFT, BYPASS_LIMIT):
            return await self._unwrite(fault, target)
        if fault == GHOST_LIMIT:
            return await self._unghost(target)
        raise PluginError(f"ratelimiter has no fault {fault!r}")

    # -- through the workload --------------------------------------------------------------

    async def _node(self, node: str, stop: bool) -> ActionResult:
        workload = self.ctx.workload
        if workload is None:
            raise PluginError("the Subject has no workload (spec.workload): cannot stop a node")
        known = (await self.observer.nodes()).addresses
        if node not in known:
            raise PluginError(f"{node} is not a node of this rate limiter (known: "
                              f"{', '.join(sorted(known)) or 'none'})")
        return await (workload.stop(node) if stop else workload.start(node))

    async def _redis(self, stop: bool) -> ActionResult:
        workload = self.ctx.workload
        if workload is None:
            raise PluginError("the Subject has no workload (spec.workload): cannot stop Redis")
        member = self.cfg.redis_member
        return await (workload.stop(member) if stop else workload.start(member))

    # -- toxiproxy -------------------------------------------------------------------------

    async def _toxiproxy(self, method: str, path: str, body: dict[str, Any] | None = None,
                         ) -> httpx.Response:
        if self.cfg.toxiproxy_url is None:
            raise PluginError("no toxiproxyUrl in the config: cannot add latency")
        url = str(self.cfg.toxiproxy_url).rstrip("/") + path
        try:
            return await self.ctx.http.request(
                method, url, json=body, timeout=self.cfg.request_timeout_seconds + 4
            )
        except httpx.HTTPError as err:
            raise PluginError(f"{method} {url}: toxiproxy unreachable ({describe(err)})") from err

    async def _add_latency(self, p: LatencyParams) -> ActionResult:
        path = f"/proxies/{self.cfg.toxiproxy_proxy}/toxics"
        resp = await self._toxiproxy("POST", path, {
            "name": LATENCY_TOXIC, "type": "latency", "stream": "downstream", "toxicity": 1.0,
            "attributes": {"latency": p.latency_ms, "jitter": p.jitter_ms},
        })
        if resp.status_code == 409:  # already there: make it the latency asked for
            resp = await self._toxiproxy("POST", f"{path}/{LATENCY_TOXIC}", {
                "attributes": {"latency": p.latency_ms, "jitter": p.jitter_ms},
            })
        if resp.status_code >= 300:
            raise PluginError(f"toxiproxy refused the latency toxic: HTTP {resp.status_code} "
                              f"{snippet(resp.text)}")
        return ActionResult(ok=True, message=f"every Redis reply to the nodes now takes "
                            f"{p.latency_ms} ms more (toxic {LATENCY_TOXIC})")

    async def _remove_latency(self) -> ActionResult:
        path = f"/proxies/{self.cfg.toxiproxy_proxy}/toxics/{LATENCY_TOXIC}"
        resp = await self._toxiproxy("DELETE", path)
        if resp.status_code == 404:
            return ActionResult(ok=True, message=f"toxic {LATENCY_TOXIC} was already gone")
        if resp.status_code >= 300:
            raise PluginError(f"toxiproxy refused to remove {LATENCY_TOXIC}: HTTP "
                              f"{resp.status_code} {snippet(resp.text)}")
        return ActionResult(ok=True, message=f"toxic {LATENCY_TOXIC} removed")

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

    async def _drift(self, key: str, p: DriftParams) -> ActionResult:
        now = await self._redis_data().now_us()
        ahead = now + p.ahead_seconds * 1_000_000
        added = await self._write(COUNTER_DRIFT, key, [ahead + i for i in range(p.entries)])
        return ActionResult(ok=True, message=f"wrote {added} entries dated {p.ahead_seconds} s "
                            f"ahead into the log of key {key!r}")

    async def _bypass(self, key: str, p: BypassParams) -> ActionResult:
        now = await self._redis_data().now_us()
        limit = await self.api.limit(key)
        count = limit.limit + p.over
        # Dated just before now, one microsecond apart: all inside the window, none ahead.
        added = await self._write(BYPASS_LIMIT, key, [now - i for i in range(count)])
        return ActionResult(ok=True, message=f"wrote {added} admissions into the log of key "
                            f"{key!r} around the check script (its limit is {limit.limit} per "
                            f"{limit.window_ms} ms)")

    async def _unwrite(self, fault: str, key: str) -> ActionResult:
        truth = self._redis_data()
        log = truth.keys.window(key)
        try:
            ours = [m async for m, _ in truth.redis.zscan_iter(
                log, match=f"aiops-chaos-{fault}-*", count=500)]
            removed = int(await truth.redis.zrem(log, *ours)) if ours else 0
        except (RedisError, OSError) as err:
            raise truth.error(f"the log of {key!r} (reverting {fault})", err) from err
        return ActionResult(ok=True, message=f"removed {removed} entries {fault} had written "
                            f"into the log of key {key!r}")

    async def _ghost(self, key: str, p: GhostParams) -> ActionResult:
        truth = self._redis_data()
        field_ = truth.keys.limits
        try:
            raw = await truth.redis.hget(field_, key)
            previous = None if raw is None else as_text(raw)
            doc = _ours(previous)
            if doc is not None:
                previous = doc.get("previous")  # injected twice: keep the original value
            value = json.dumps({
                "limit": p.limit, "window_ms": p.window_ms, "written_by": GHOST_MARK,
                "previous": previous,
            })
            await truth.redis.hset(field_, key, value)
        except (RedisError, OSError) as err:
            raise truth.error(f"the limits (writing {GHOST_LIMIT})", err) from err
        return ActionResult(ok=True, message=f"stored the limit of key {key!r} as JSON "
                            f"({p.limit} per {p.window_ms} ms), which the check script skips")

    async def _unghost(self, key: str) -> ActionResult:
        truth = self._redis_data()
        field_ = truth.keys.limits
        try:
            raw = await truth.redis.hget(field_, key)
            doc = _ours(None if raw is None else as_text(raw))
            if doc is None:
                return ActionResult(ok=True, message=f"the limit of key {key!r} is not the one "
                                    f"{GHOST_LIMIT} wrote: left as it is")
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
