"""observe() on real nodes over a real redis-server: dead nodes stay listed as Down, counters
are held against the logs exactly, and a lowered limit is not mistaken for a leak."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from redis.asyncio import Redis

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import MemberState, Observation
from ratelimiter_subject.config import RateLimiterConfig
from ratelimiter_subject.invariants import INVARIANTS
from ratelimiter_subject.observation import DRIFT, OVER, REDIS_OK
from ratelimiter_subject.plugin import RateLimiterPlugin
from tests.fixtures.ratelimiter import NodeFactory, NodeProcess, RedisProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Setup:
    plugin: RateLimiterPlugin
    nodes: list[NodeProcess]
    redis: Redis
    prefix: str

    async def observe(self) -> tuple[Observation, list[tuple[str, str]]]:
        obs = await self.plugin.observe()
        found = self.plugin.evaluate(obs, {i.name: i for i in INVARIANTS})
        return obs, [(v.invariant, v.entity) for v in found]

    async def admin(self, method: str, path: str, body: object = None) -> httpx.Response:
        async with httpx.AsyncClient(timeout=5) as http:
            resp = await http.request(method, self.nodes[0].url + path, json=body)
        resp.raise_for_status()
        return resp

    async def check(self, key: str, times: int = 1) -> None:
        for _ in range(times):
            await self.admin("POST", "/check", {"key": key})


@pytest.fixture
async def setup(
    rl_redis: RedisProcess, rl_prefix: str, rl_nodes: NodeFactory
) -> AsyncIterator[Setup]:
    nodes = [rl_nodes.start(rl_redis.url, rl_prefix, f"n{i}") for i in (1, 2)]
    cfg = RateLimiterConfig.model_validate(
        {
            "adminUrls": [n.url for n in nodes],
            "redisUrl": rl_redis.url,
            "keyPrefix": rl_prefix,
        }
    )
    ctx = PluginContext("test/rl", None, None)
    plugin = RateLimiterPlugin(cfg, ctx)
    redis = Redis.from_url(rl_redis.url, decode_responses=True)
    try:
        yield Setup(plugin, nodes, redis, rl_prefix)
    finally:
        await redis.aclose()
        await plugin.close()
        await ctx.aclose()


async def test_a_stopped_node_stays_listed_as_down(setup: Setup) -> None:
    obs, found = await setup.observe()
    assert [(m.name, m.state) for m in obs.members] == [
        ("n1", MemberState.UP),
        ("n2", MemberState.UP),
    ]
    assert found == []

    setup.nodes[1].stop()
    obs, found = await setup.observe()
    down = obs.member("n2")
    assert down is not None and down.state is MemberState.DOWN
    assert "registry: Down (stopped)" in down.message and down.last_seen is not None
    assert found == [("node_down", "n2")]
    assert obs.metrics[REDIS_OK] == {"n1": 1.0}  # only a node that answers says anything


async def test_counts_agree_with_the_log_until_someone_writes_into_it(setup: Setup) -> None:
    await setup.admin("PUT", "/admin/limits/k", {"limit": 50, "window_ms": 60_000})
    await setup.check("k", 4)
    obs, found = await setup.observe()
    assert obs.metrics[DRIFT]["k"] == 0.0 and found == []

    seconds, micros = await setup.redis.time()
    ahead = (int(seconds) + 600) * 1_000_000 + int(micros)
    await setup.redis.zadd(f"{setup.prefix}:w:k", {"from-the-future": ahead})
    obs, found = await setup.observe()
    assert obs.metrics[DRIFT]["k"] == 1.0
    assert found == [("counter_drift", "k")]


async def test_a_lowered_limit_is_not_a_leak_but_admissions_after_it_are(setup: Setup) -> None:
    await setup.admin("PUT", "/admin/limits/v", {"limit": 10, "window_ms": 60_000})
    await setup.check("v", 6)
    assert (await setup.observe())[1] == []

    # Six admitted under 10 per minute; now 3 per minute. Those six were within their limit.
    await setup.admin("PUT", "/admin/limits/v", {"limit": 3, "window_ms": 60_000})
    obs, found = await setup.observe()
    assert found == [] and obs.metrics[OVER]["v"] <= 0

    # Four more written around the script after the change: over the limit in force.
    seconds, micros = await setup.redis.time()
    now = int(seconds) * 1_000_000 + int(micros)
    await setup.redis.zadd(f"{setup.prefix}:w:v", {f"around-{i}": now + i for i in range(4)})
    obs, found = await setup.observe()
    assert found == [("over_limit", "v")] and obs.metrics[OVER]["v"] == 1.0


async def test_a_limit_the_script_skips_lets_the_key_through_and_shows(setup: Setup) -> None:
    await setup.check("g")
    assert (await setup.observe())[1] == []
    await setup.redis.hset(f"{setup.prefix}:limits", "g", "2 / 60000")
    await setup.observe()
    await setup.check("g", 4)  # all allowed: the node runs g on its default (100 per second)
    obs, found = await setup.observe()
    assert found == [("ghost_allowing", "g")]
    (fact,) = [f for f in obs.facts["keys"] if f["key"] == "g"]
    assert fact["recorded_limit"] == {"limit": 2, "window_ms": 60000}
    assert fact["source"] == "node-default"
