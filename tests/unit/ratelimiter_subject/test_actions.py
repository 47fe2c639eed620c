"""Preconditions checked against live state, and the actions themselves, on real rate limiter
nodes (uvicorn processes) over a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import Observation
from ratelimiter_subject.config import RateLimiterConfig
from ratelimiter_subject.plugin import RateLimiterPlugin
from tests.fixtures.ratelimiter import NodeFactory, NodeProcess, RedisProcess

# The plugin's HTTP and Redis clients live on one loop from the fixture's start to its end.
pytestmark = pytest.mark.asyncio(loop_scope="session")

NOTHING = Observation()  # preconditions read live state, never the observation passed in


@pytest.fixture
async def two_nodes(
    rl_redis: RedisProcess, rl_prefix: str, rl_nodes: NodeFactory
) -> AsyncIterator[tuple[RateLimiterPlugin, NodeProcess, NodeProcess]]:
    a = rl_nodes.start(rl_redis.url, rl_prefix, "node-a")
    b = rl_nodes.start(rl_redis.url, rl_prefix, "node-b")
    cfg = RateLimiterConfig.model_validate(
        {
            "adminUrls": [a.url, b.url],
            "redisUrl": rl_redis.url,
            "keyPrefix": rl_prefix,
        }
    )
    ctx = PluginContext("test/rl", None, None)
    plugin = RateLimiterPlugin(cfg, ctx)
    try:
        yield plugin, a, b
    finally:
        await plugin.close()
        await ctx.aclose()


async def reasons(plugin: RateLimiterPlugin, action: str, **params: object) -> list[str]:
    spec = plugin.action(action).params.model_validate(params)
    return await plugin.preconditions(action, spec, NOTHING)


async def check(node: NodeProcess, key: str) -> None:
    async with httpx.AsyncClient() as http:
        (await http.post(f"{node.url}/check", json={"key": key})).raise_for_status()


async def test_a_key_must_exist_before_it_is_reset_or_relimited(
    two_nodes: tuple[RateLimiterPlugin, NodeProcess, NodeProcess],
) -> None:
    plugin, a, _ = two_nodes
    (why,) = await reasons(plugin, "reset_counter", key="typo")
    assert "key 'typo' has nothing counted" in why
    (why,) = await reasons(plugin, "update_limit", key="typo", limit=5, window_ms=1000)
    assert "no key 'typo'" in why and "mistyped" in why

    await check(a, "busy")
    assert await reasons(plugin, "reset_counter", key="busy") == []
    assert await reasons(plugin, "update_limit", key="busy", limit=5, window_ms=1000) == []


async def test_update_limit_is_undone_to_exactly_the_limit_it_replaced(
    two_nodes: tuple[RateLimiterPlugin, NodeProcess, NodeProcess],
) -> None:
    plugin, a, b = two_nodes
    async with httpx.AsyncClient(timeout=5) as http:
        (
            await http.put(f"{a.url}/admin/limits/vip", json={"limit": 7, "window_ms": 900})
        ).raise_for_status()
        spec = plugin.action("update_limit").params.model_validate(
            {"key": "vip", "limit": 3, "window_ms": 500}
        )
        done = await plugin.execute("update_limit", spec, "inc-1/a1")
        assert done.ok and done.detail["previous"] == {"limit": 7, "window_ms": 900}
        shown = (await http.get(f"{b.url}/admin/limits/vip")).json()
        assert (shown["limit"], shown["window_ms"]) == (3, 500)
        # A retry with the same idempotency key does not act again.
        again = await plugin.execute("update_limit", spec, "inc-1/a1")
        assert again.detail.get("replayed") is True

        undone = await plugin.undo("update_limit", spec, "inc-1/a1")
        assert undone.ok
        shown = (await http.get(f"{b.url}/admin/limits/vip")).json()
        assert (shown["limit"], shown["window_ms"], shown["source"]) == (7, 900, "override")

        # A key with no per-key limit before: undo removes the one the action set.
        await check(a, "plain")
        spec = plugin.action("update_limit").params.model_validate(
            {"key": "plain", "limit": 2, "window_ms": 1000}
        )
        assert (await plugin.execute("update_limit", spec, "inc-2/a1")).ok
        assert (await plugin.undo("update_limit", spec, "inc-2/a1")).ok
        assert (await http.get(f"{b.url}/admin/limits/plain")).json()["source"] != "override"
        with pytest.raises(Exception, match="no record of the limit"):
            await plugin.undo("update_limit", spec, "never-ran")


async def test_reset_counter_forgets_the_window(
    two_nodes: tuple[RateLimiterPlugin, NodeProcess, NodeProcess],
) -> None:
    plugin, a, b = two_nodes
    for _ in range(3):
        await check(a, "noisy")
    spec = plugin.action("reset_counter").params.model_validate({"key": "noisy"})
    done = await plugin.execute("reset_counter", spec, "inc-3/a1")
    assert done.ok and done.detail["dropped"] == 3
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{b.url}/admin/counters/noisy")).json()["count"] == 0


async def test_no_node_is_restarted_while_another_is_down_nor_without_a_workload(
    two_nodes: tuple[RateLimiterPlugin, NodeProcess, NodeProcess],
) -> None:
    plugin, _, b = two_nodes
    why = await reasons(plugin, "restart_node", node="node-a")
    assert why == ["the Subject has no workload (spec.workload): nothing can restart a node"]
    why = await reasons(plugin, "restart_node", node="node-z")
    assert any(
        "node-z is not a node of this rate limiter (known: node-a, node-b)" in w for w in why
    )

    b.stop()  # a clean stop: the registry says Down (stopped) at once
    why = await reasons(plugin, "restart_node", node="node-a")
    assert any(
        "node node-b is down" in w and "no node is restarted while another node is down" in w
        for w in why
    ), why
    # The down node itself may be restarted: that is the remedy.
    why = await reasons(plugin, "restart_node", node="node-b")
    assert not any("is down" in w for w in why), why


async def test_an_unknown_action_is_refused(
    two_nodes: tuple[RateLimiterPlugin, NodeProcess, NodeProcess],
) -> None:
    plugin, _, _ = two_nodes
    spec = plugin.action("reset_counter").params.model_validate({"key": "k"})
    (why,) = await plugin.preconditions("drop_table", spec, NOTHING)
    assert "no action 'drop_table'" in why
