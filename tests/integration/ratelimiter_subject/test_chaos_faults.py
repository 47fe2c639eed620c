"""The plugin's chaos faults on the real stack: each does what it says to the real thing, and
`revert` puts back exactly what was there (twice in a row, too: a Chaos finalizer may repeat
it). The subject loop catching these faults is shown in test_faults_detected.py and measured
by hack/bench/ttd.py, which injects through these same functions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis

from aiops.subjects.context import PluginContext
from aiops.subjects.workload import SupervisorWorkload
from ratelimiter.localstack import LocalStack
from ratelimiter.localstack.toxiproxy import Toxiproxy
from ratelimiter_subject.config import RateLimiterConfig
from ratelimiter_subject.plugin import RateLimiterPlugin
from tests.integration.ratelimiter_subject.conftest import repair, stack_healthy, wait_for

# The plugin's clients live on one loop from the fixture's start to its end.
pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def plugin(rl_stack: LocalStack) -> AsyncIterator[RateLimiterPlugin]:
    urls = rl_stack.urls
    cfg = RateLimiterConfig.model_validate({
        "adminUrls": list(urls.nodes.values()),
        "redisUrl": urls.redis,
        "toxiproxyUrl": urls.toxiproxy,
    })
    ctx = PluginContext("test/rl", None, SupervisorWorkload(f"{urls.supervisor}/RPC2"))
    p = RateLimiterPlugin(cfg, ctx)
    try:
        yield p
    finally:
        await p.close()
        await ctx.aclose()
        repair(rl_stack)


async def call(method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.request(method, url, json=body)


def snapshot(stack: LocalStack, key: str) -> dict[str, Any]:
    """Everything a fault may touch: programs, toxics, the key's log and its limit."""
    r = redis.Redis.from_url(stack.urls.redis, decode_responses=True)
    state: dict[str, Any] = {
        "programs": {n: i["statename"] for n, i in stack.status().items()},
        "toxics": Toxiproxy(stack.urls.toxiproxy).state()["toxics"],
    }
    try:
        state["log"] = r.zrange(f"rl:w:{key}", 0, -1, withscores=True)
        state["limit"] = r.hget("rl:limits", key)
    except redis.ConnectionError:
        state["log"] = state["limit"] = "Redis unreachable"
    finally:
        r.close()
    return state


async def inject_and_revert(
    p: RateLimiterPlugin, stack: LocalStack, fault: str, target: str, key: str,
    params: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state before, state while injected); asserts revert restores `before`, twice."""
    spec = p.fault(fault).params.model_validate(params or {})
    before = snapshot(stack, key)
    result = await p.inject(fault, spec, target)
    assert result.ok, result
    during = snapshot(stack, key)
    for _ in range(2):
        assert (await p.revert(fault, spec, target)).ok
        wait_for("every node healthy", lambda: stack_healthy(stack), timeout=30)
        after = snapshot(stack, key)
        assert after == before
    return before, during


async def test_kill_node_stops_the_program_and_revert_starts_it(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    _, during = await inject_and_revert(plugin, rl_stack, "kill_node", "rl-node-3", "x")
    assert during["programs"]["rl-node-3"] == "STOPPED"
    assert during["programs"]["rl-node-1"] == during["programs"]["redis"] == "RUNNING"


async def test_kill_node_refuses_a_node_that_does_not_exist(plugin: RateLimiterPlugin) -> None:
    spec = plugin.fault("kill_node").params.model_validate({})
    with pytest.raises(Exception, match="rl-node-9 is not a node of this rate limiter"):
        await plugin.inject("kill_node", spec, "rl-node-9")


async def test_redis_outage_stops_redis_and_revert_starts_it(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    _, during = await inject_and_revert(plugin, rl_stack, "redis_outage", "", "x")
    assert during["programs"]["redis"] == "STOPPED"
    assert during["log"] == "Redis unreachable"


async def test_redis_latency_adds_a_toxic_and_revert_removes_it(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    _, during = await inject_and_revert(
        plugin, rl_stack, "redis_latency", "", "x", {"latency_ms": 80})
    (toxic,) = during["toxics"]
    assert toxic["type"] == "latency" and toxic["attributes"]["latency"] == 80


async def test_counter_drift_writes_entries_ahead_and_revert_removes_only_them(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    key = f"chaos-drift-{uuid.uuid4().hex[:6]}"
    node = rl_stack.urls.nodes["rl-node-1"]
    # A long window keeps the real admissions in the log for the whole test.
    limit = {"limit": 100, "window_ms": 600_000}
    (await call("PUT", f"{node}/admin/limits/{key}", limit)).raise_for_status()
    for _ in range(3):  # real admissions, which revert must leave alone
        (await call("POST", f"{node}/check", {"key": key})).raise_for_status()
    try:
        before, during = await inject_and_revert(
            plugin, rl_stack, "counter_drift", key, key, {"entries": 7, "ahead_seconds": 60})
        added = [e for e in during["log"] if e not in before["log"]]
        assert len(added) == 7 and len(before["log"]) == 3
        counter = (await call("GET", f"{node}/admin/counters/{key}")).json()
        assert counter["count"] == 3  # reverted: the API counts the real admissions again
    finally:
        await call("DELETE", f"{node}/admin/limits/{key}")


async def test_bypass_limit_writes_past_the_limit_and_revert_removes_them(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    key = f"chaos-bypass-{uuid.uuid4().hex[:6]}"
    node = rl_stack.urls.nodes["rl-node-1"]
    limit = {"limit": 4, "window_ms": 600_000}
    (await call("PUT", f"{node}/admin/limits/{key}", limit)).raise_for_status()
    try:
        _, during = await inject_and_revert(plugin, rl_stack, "bypass_limit", key, key,
                                            {"over": 3})
        assert len(during["log"]) == 7  # the limit, and three past it
    finally:
        await call("DELETE", f"{node}/admin/limits/{key}")


@pytest.mark.parametrize("existing", [None, "9:30000"])
async def test_ghost_limit_stores_json_and_revert_restores_what_was_there(
    plugin: RateLimiterPlugin, rl_stack: LocalStack, existing: str | None
) -> None:
    key = f"chaos-ghost-{uuid.uuid4().hex[:6]}"
    r = redis.Redis.from_url(rl_stack.urls.redis, decode_responses=True)
    if existing is not None:
        r.hset("rl:limits", key, existing)
    try:
        spec = plugin.fault("ghost_limit").params.model_validate({"limit": 3})
        before = snapshot(rl_stack, key)
        await plugin.inject("ghost_limit", spec, key)
        await plugin.inject("ghost_limit", spec, key)  # twice: the original is still kept
        stored = r.hget("rl:limits", key)
        assert stored is not None and '"limit": 3' in stored
        # Not enforced: the API (which reads limits as the check script does) shows no
        # per-key limit, and checks run on the default.
        node = rl_stack.urls.nodes["rl-node-2"]
        shown = (await call("GET", f"{node}/admin/limits/{key}")).json()
        assert shown["source"] != "override"
        await plugin.revert("ghost_limit", spec, key)
        await plugin.revert("ghost_limit", spec, key)
        assert snapshot(rl_stack, key) == before
    finally:
        r.hdel("rl:limits", key)
        r.close()
