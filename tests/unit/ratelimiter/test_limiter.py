"""The limiter core against a real redis-server: exact sliding-window semantics, limits,
resets, expiry, and what an outside reader of Redis sees."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from ratelimiter.channel import ScriptChannel
from ratelimiter.keys import KeySpace
from ratelimiter.limiter import LimitSource, LimitSpec, RateLimiter
from tests.fixtures.ratelimiter import RedisProcess


@contextlib.asynccontextmanager
async def limiter(
    redis: RedisProcess, prefix: str, limit: int = 3, window_ms: int = 1000, piped: bool = False
) -> AsyncIterator[RateLimiter]:
    """The limiter as tools use it (redis-py), or as the service does (`piped`: checks go
    down a pipelined ScriptChannel)."""
    client = Redis.from_url(redis.url, decode_responses=True)
    channel = ScriptChannel(redis.url, timeout=2.0) if piped else None
    try:
        yield RateLimiter(client, KeySpace(prefix), LimitSpec(limit, window_ms), channel)
    finally:
        if channel is not None:
            await channel.aclose()
        await client.aclose()


async def test_allows_up_to_the_limit_then_refuses_until_the_oldest_leaves(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with limiter(rl_redis, rl_prefix, limit=3, window_ms=300) as rl:
        first = await rl.check("k")
        assert (first.allowed, first.count, first.remaining) == (True, 1, 2)
        assert first.source is LimitSource.NODE_DEFAULT
        await rl.check("k")
        third = await rl.check("k")
        assert (third.allowed, third.remaining) == (True, 0)
        refused = await rl.check("k")
        assert not refused.allowed
        assert refused.count == 3
        # Free exactly when the first request leaves the window (Redis time, microseconds).
        assert refused.free_at_us == first.now_us + 300_000
        assert 0 < refused.retry_after_ms <= 300
        await asyncio.sleep(refused.retry_after_ms / 1000 + 0.01)
        again = await rl.check("k")
        assert again.allowed
        # Other keys are unaffected.
        assert (await rl.check("other")).allowed


async def test_a_refused_request_is_not_counted(rl_redis: RedisProcess, rl_prefix: str) -> None:
    async with limiter(rl_redis, rl_prefix, limit=2, window_ms=10_000) as rl:
        for _ in range(2):
            await rl.check("k")
        for _ in range(5):
            assert not (await rl.check("k")).allowed
        (state,) = await rl.inspect(["k"])
        assert state.count == 2


async def test_override_beats_shared_default_beats_node_default(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with limiter(rl_redis, rl_prefix, limit=1, window_ms=10_000) as rl:
        await rl.put_shared_default(LimitSpec(2, 10_000))
        await rl.put_override("vip", LimitSpec(4, 10_000))
        vip = [await rl.check("vip") for _ in range(5)]
        plain = [await rl.check("plain") for _ in range(3)]
        assert [d.allowed for d in vip] == [True, True, True, True, False]
        assert {d.source for d in vip} == {LimitSource.OVERRIDE}
        assert [d.allowed for d in plain] == [True, True, False]
        assert {d.source for d in plain} == {LimitSource.DEFAULT}
        assert await rl.delete_shared_default()
        assert (await rl.inspect(["plain"]))[0].source is LimitSource.NODE_DEFAULT
        assert await rl.delete_override("vip")
        assert not await rl.delete_override("vip")


async def test_raising_a_limit_applies_at_once_lowering_refuses_at_once(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with limiter(rl_redis, rl_prefix, limit=2, window_ms=10_000) as rl:
        await rl.check("k")
        await rl.check("k")
        assert not (await rl.check("k")).allowed
        await rl.put_override("k", LimitSpec(3, 10_000))
        assert (await rl.check("k")).allowed
        await rl.put_override("k", LimitSpec(1, 10_000))
        refused = await rl.check("k")
        assert not refused.allowed
        assert refused.count == 3  # nothing was forgotten when the limit went down


async def test_counter_matches_a_raw_recount_in_redis(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    """What the API reports is what anyone counting the log in Redis gets: drift between
    the two is therefore a real fault, detectable from outside."""
    async with limiter(rl_redis, rl_prefix, limit=50, window_ms=5_000) as rl:
        for _ in range(7):
            await rl.check("k")
        (state,) = await rl.inspect(["k"])
        seconds, micros = await rl.redis.time()
        now_us = int(seconds) * 1_000_000 + int(micros)
        raw = await rl.redis.zcount(state.redis_key, f"({now_us - state.window_ms * 1000}", "+inf")
        assert state.count == raw == 7
        assert state.redis_key == f"{rl_prefix}:w:k"
        # A tampered log shows as a difference at once.
        await rl.redis.zadd(state.redis_key, {"forged": now_us})
        (after,) = await rl.inspect(["k"])
        assert after.count == 8


async def test_reset_forgets_the_window_and_reports_what_it_dropped(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with limiter(rl_redis, rl_prefix, limit=2, window_ms=10_000) as rl:
        for _ in range(3):
            await rl.check("k")
        assert [b.key for b in await rl.blocked(10)] == ["k"]
        assert await rl.reset("k") == 2
        assert (await rl.check("k")).allowed
        assert await rl.blocked(10) == []
        assert await rl.reset("never-used") == 0


async def test_logs_expire_one_window_after_the_last_request(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with limiter(rl_redis, rl_prefix, limit=5, window_ms=200) as rl:
        await rl.check("k")
        key = rl.keys.window("k")
        ttl = await rl.redis.pttl(key)
        assert 0 < ttl <= 201
        assert await rl.active_keys(10) == ["k"]
        await asyncio.sleep(0.3)
        assert not await rl.redis.exists(key)
        assert await rl.active_keys(10) == []


async def test_survives_a_script_cache_flush(rl_redis: RedisProcess, rl_prefix: str) -> None:
    """A restarted Redis has no scripts: the first call after must load it, not fail."""
    for piped in (False, True):
        async with limiter(rl_redis, rl_prefix, limit=5, piped=piped) as rl:
            await rl.check("k")
            await rl.redis.script_flush()
            assert (await rl.check("k")).allowed


async def test_pipelined_checks_decide_exactly_like_single_ones(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with limiter(rl_redis, rl_prefix, limit=10, window_ms=10_000, piped=True) as rl:
        decisions = await asyncio.gather(*(rl.check("k") for _ in range(40)))
        assert sum(d.allowed for d in decisions) == 10
        # Redis ran them one after another: allowed counts are 1..10 exactly once each.
        assert sorted(d.count for d in decisions if d.allowed) == list(range(1, 11))


async def test_a_hand_edited_limit_that_is_not_valid_is_ignored(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with limiter(rl_redis, rl_prefix, limit=2, window_ms=10_000) as rl:
        for bad in ("0:1000", "5:0", "lots", "-1:100"):
            await rl.redis.hset(rl.keys.limits, "k", bad)
            decision = await rl.check("k")
            assert decision.source is LimitSource.NODE_DEFAULT, bad
            assert decision.limit == 2
            assert await rl.get_override("k") is None
