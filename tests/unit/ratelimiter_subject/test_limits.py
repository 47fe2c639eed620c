"""The plugin reads the limits hash exactly as the service's check script does (held against the
real script in a real redis-server), and tells what a skipped value was meant to say."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from ratelimiter.keys import KeySpace
from ratelimiter.limiter import LimitSource, LimitSpec, RateLimiter
from ratelimiter_subject import limits
from tests.fixtures.ratelimiter import RedisProcess

VALUES = [
    "5:60000",
    "0005:10",
    "5:0",
    "5 : 60000",
    " 5:60000",
    "5/60000",
    "5:60s",
    "\uff15:1000",
    '{"limit": 5, "window_ms": 60000}',
    "",
    "five",
    "5:60000:1",
    "-5:100",
]


@pytest.mark.parametrize("raw", VALUES)
async def test_enforced_is_what_the_check_script_applies(
    rl_redis: RedisProcess, rl_prefix: str, raw: str
) -> None:
    redis = Redis.from_url(rl_redis.url, decode_responses=True)
    keys = KeySpace(rl_prefix)
    limiter = RateLimiter(redis, keys, LimitSpec(100, 1000))
    try:
        await redis.hset(keys.limits, "k", raw)
        (state,) = await limiter.inspect(["k"])  # the script's own reading, in Redis
    finally:
        await redis.aclose()
    spec = limits.enforced(raw)
    if state.source is LimitSource.OVERRIDE:
        assert spec == limits.Spec(state.limit, state.window_ms)
    else:
        assert spec is None


@pytest.mark.parametrize(
    ("raw", "meant"),
    [
        ("5 : 60000", limits.Spec(5, 60000)),
        ("5/60000", limits.Spec(5, 60000)),
        ("5 per 60000 ms", limits.Spec(5, 60000)),
        ('{"limit": 5, "window_ms": 60000}', limits.Spec(5, 60000)),
        ('{"limit": 5, "window": 1000, "written_by": "a tool"}', limits.Spec(5, 1000)),
        ('{"limit": true, "window_ms": 1000}', None),
        ('{"limit": 0, "window_ms": 1000}', None),  # the service would refuse it too
        ("5:0", None),
        ("five", None),
        ("[5, 60000]", None),
    ],
)
def test_recorded_reads_what_a_person_or_a_tool_meant(raw: str, meant: limits.Spec | None) -> None:
    assert limits.recorded(raw) == meant
