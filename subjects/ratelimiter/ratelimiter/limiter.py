"""The rate limiter core: a sliding-window log per key, decided by one Lua script in Redis.

Why a log and not a counter: a log is exact (no request is ever allowed while `limit` others
sit in the last `window`), and with Redis sorted sets each check costs O(log n) for n entries
in the window. The sliding-window *counter* is cheaper in memory but approximate: it assumes
the previous window's traffic was uniform, and bursts at a window edge get through.
Memory is bounded by what the log may hold: at most `limit` entries per key, each dropped
one window after it was written (and the whole key with it).
"""

from __future__ import annotations

import enum
import itertools
import secrets
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from ratelimiter.channel import ScriptChannel
from ratelimiter.keys import DEFAULT_FIELD, KeySpace
from ratelimiter.scripts import CHECK, INSPECT, RESET, Script

_CHECK = Script(CHECK)
_INSPECT = Script(INSPECT)
_RESET = Script(RESET)

# One INSPECT call reads at most this many keys: keeps Redis's single thread responsive.
INSPECT_BATCH = 100


class LimitSource(enum.StrEnum):
    """Where the effective limit of a key came from."""

    NODE_DEFAULT = "node-default"  # the node's RL_DEFAULT_* settings
    OVERRIDE = "override"  # a per-key limit stored in Redis
    DEFAULT = "default"  # the shared default stored in Redis (wins over node settings)


_SOURCES = (LimitSource.NODE_DEFAULT, LimitSource.OVERRIDE, LimitSource.DEFAULT)


@dataclass(frozen=True, slots=True)
class LimitSpec:
    limit: int
    window_ms: int

    def encode(self) -> str:
        return f"{self.limit}:{self.window_ms}"

    @classmethod
    def decode(cls, raw: str) -> LimitSpec | None:
        """The stored form, or None when it is not ours (hand-edited Redis)."""
        limit, sep, window = raw.partition(":")
        if not sep or not limit.isdigit() or not window.isdigit():
            return None
        if int(limit) < 1 or int(window) < 1:  # what the check script would skip too
            return None
        return cls(int(limit), int(window))


@dataclass(frozen=True, slots=True)
class Decision:
    """One check's answer. Times are Redis server time in microseconds."""

    allowed: bool
    key: str
    count: int  # requests counted in the window after this decision
    limit: int
    window_ms: int
    free_at_us: int
    now_us: int
    source: LimitSource

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def reset_ms(self) -> int:
        """Until the oldest counted request leaves the window (allowed), or until this
        request would be allowed (refused)."""
        return max(0, -(-(self.free_at_us - self.now_us) // 1000))

    @property
    def retry_after_ms(self) -> int:
        return 0 if self.allowed else self.reset_ms


@dataclass(frozen=True, slots=True)
class CounterState:
    """What Redis holds for one key right now, counted exactly as a check would count."""

    key: str
    count: int
    limit: int
    window_ms: int
    source: LimitSource
    oldest_us: int | None
    now_us: int
    redis_key: str

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)


@dataclass(frozen=True, slots=True)
class BlockedKey:
    key: str
    until_ms: int
    now_ms: int

    @property
    def retry_after_ms(self) -> int:
        return max(0, self.until_ms - self.now_ms)


class RateLimiter:
    """Checks and inspects keys. Safe to share between tasks; holds no per-key state."""

    def __init__(
        self,
        redis: Redis,
        keys: KeySpace,
        default: LimitSpec,
        channel: ScriptChannel | None = None,
    ) -> None:
        self.redis = redis
        # Checks go down the pipelined channel when there is one (the service); without
        # one (tools, tests) through redis-py like everything else.
        self._channel = channel
        self.keys = keys
        self.default = default
        # Request ids must be unique across nodes and restarts, or a ZADD would update an
        # existing entry instead of adding one and under-count. A random boot nonce plus a
        # counter is unique and short (short members keep the log small).
        self._nonce = secrets.token_hex(6)
        self._seq = itertools.count()

    async def check(self, key: str) -> Decision:
        keys = (self.keys.window(key), self.keys.limits, self.keys.active, self.keys.blocked)
        args = (
            key,
            self.default.limit,
            self.default.window_ms,
            f"{self._nonce}{next(self._seq):x}",
        )
        if self._channel is not None:
            raw = await self._channel.call(_CHECK, keys, args)
        else:
            raw = await _CHECK(self.redis, keys, args)
        allowed, count, limit, window, free_at, now, source = raw
        return Decision(
            allowed=allowed == 1,
            key=key,
            count=count,
            limit=limit,
            window_ms=window,
            free_at_us=free_at,
            now_us=now,
            source=_SOURCES[source],
        )

    async def inspect(self, keys: list[str]) -> list[CounterState]:
        """Counters for `keys` (also those with no traffic: count 0)."""
        states: list[CounterState] = []
        for start in range(0, len(keys), INSPECT_BATCH):
            batch = keys[start : start + INSPECT_BATCH]
            raw = await _INSPECT(
                self.redis,
                (self.keys.limits, *(self.keys.window(k) for k in batch)),
                (self.default.limit, self.default.window_ms, *batch),
            )
            now = raw[0]
            for key, (count, limit, window, source, oldest) in zip(batch, raw[1:], strict=True):
                states.append(
                    CounterState(
                        key=key,
                        count=count,
                        limit=limit,
                        window_ms=window,
                        source=_SOURCES[source],
                        oldest_us=None if oldest < 0 else oldest,
                        now_us=now,
                        redis_key=self.keys.window(key),
                    )
                )
        return states

    async def active_keys(self, limit: int) -> list[str]:
        """Keys whose log has not expired, most recently touched last, at most `limit`."""
        now_ms = await self.redis_time_ms()
        keys = await self.redis.zrangebyscore(self.keys.active, now_ms, "+inf", start=0, num=limit)
        return [str(k) for k in keys]

    async def reset(self, key: str) -> int:
        """Forget a key's log; returns how many requests it was counting."""
        return int(
            await _RESET(
                self.redis,
                (self.keys.window(key), self.keys.active, self.keys.blocked, self.keys.limits),
                (key, self.default.limit, self.default.window_ms),
            )
        )

    async def blocked(self, limit: int) -> list[BlockedKey]:
        """Keys refused recently whose refusal still holds, soonest to free first."""
        now_ms = await self.redis_time_ms()
        rows = await self.redis.zrangebyscore(
            self.keys.blocked, now_ms, "+inf", start=0, num=limit, withscores=True
        )
        pairs = cast(list[tuple[str, float]], rows)
        return [BlockedKey(key=k, until_ms=int(score), now_ms=now_ms) for k, score in pairs]

    # Limits -----------------------------------------------------------------------------

    async def get_override(self, key: str) -> LimitSpec | None:
        raw = await self.redis.hget(self.keys.limits, key)
        return None if raw is None else LimitSpec.decode(str(raw))

    async def put_override(self, key: str, spec: LimitSpec) -> None:
        await self.redis.hset(self.keys.limits, key, spec.encode())

    async def delete_override(self, key: str) -> bool:
        return bool(await self.redis.hdel(self.keys.limits, key))

    async def overrides(self, cursor: int, count: int) -> tuple[int, dict[str, LimitSpec]]:
        """One HSCAN page of per-key overrides: (next cursor, 0 when done; overrides)."""
        next_cursor, page = cast(
            tuple[int, dict[str, str]],
            await self.redis.hscan(self.keys.limits, cursor=cursor, count=count),
        )
        found = {}
        for key, raw in page.items():
            spec = LimitSpec.decode(raw)
            if key != DEFAULT_FIELD and spec is not None:
                found[key] = spec
        return int(next_cursor), found

    async def shared_default(self) -> LimitSpec | None:
        return await self.get_override(DEFAULT_FIELD)

    async def put_shared_default(self, spec: LimitSpec) -> None:
        await self.put_override(DEFAULT_FIELD, spec)

    async def delete_shared_default(self) -> bool:
        return await self.delete_override(DEFAULT_FIELD)

    async def redis_time_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000
