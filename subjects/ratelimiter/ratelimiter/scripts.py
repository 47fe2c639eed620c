"""The Lua scripts. Each runs atomically inside Redis, which is what makes the limit exact
across any number of nodes: no node ever reads a count and writes it back in two steps.

Time is Redis's own clock (TIME), never the node's: three nodes with skewed clocks still
share one timeline, and the decision time a check reports is comparable across nodes.
Times are microseconds since the epoch (exact in a Lua double up to 2^53, about year 2255).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

# Shared prologue: the effective (limit, window) for ARGV[1], from the override, else the
# shared default in Redis, else the node's default passed in ARGV[2..3].
# Source: 0 = node default, 1 = per-key override, 2 = shared default.
_EFFECTIVE_LIMIT = """
local function effective(limits_key, key, limit, window)
  local specs = redis.call('HMGET', limits_key, key, '')
  for i = 1, 2 do
    local spec = specs[i]
    if spec then
      local l, w = string.match(spec, '^(%d+):(%d+)$')
      -- A hand-edited value that is not a valid limit is skipped, not obeyed.
      if l and tonumber(l) >= 1 and tonumber(w) >= 1 then return tonumber(l), tonumber(w), i end
    end
  end
  return limit, window, 0
end
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

# KEYS: 1 window log, 2 limits hash, 3 active index, 4 blocked index
# ARGV: 1 key, 2 node default limit, 3 node default window ms, 4 unique request id
# Returns {allowed 0|1, count, limit, window_ms, free_at_us, now_us, source}
#   allowed: free_at_us is when the oldest counted request leaves the window
#   refused: free_at_us is when enough have left for this request to be allowed
CHECK = (
    _EFFECTIVE_LIMIT
    + """
local limit, window, source = effective(KEYS[2], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
local now = now_us()
local window_us = window * 1000
-- An entry counts while its time is in (now - window, now].
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window_us)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  -- +1 ms: PEXPIRE counts from Redis's millisecond clock, which may trail `now` by up to
  -- 999 us; expiring early would forget an entry that still counts.
  redis.call('PEXPIRE', KEYS[1], window + 1)
  redis.call('ZADD', KEYS[3], math.floor(now / 1000) + window + 1, ARGV[1])
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, count + 1, limit, window, tonumber(oldest[2]) + window_us, now, source}
end
-- Refused. The request fits once count - limit + 1 entries have left: the oldest of the
-- entries still needed is at rank count - limit (0-based, oldest first).
local rank = count - limit
local entry = redis.call('ZRANGE', KEYS[1], rank, rank, 'WITHSCORES')
local free_at = tonumber(entry[2]) + window_us
redis.call('ZADD', KEYS[4], math.floor(free_at / 1000) + 1, ARGV[1])
return {0, count, limit, window, free_at, now, source}
"""
)

# Read-only view of several keys, counted exactly the way CHECK counts (so an outside reader
# doing ZCOUNT (now - window, +inf] on the log gets the same number: drift is detectable).
# KEYS: 1 limits hash, 2.. window logs; ARGV: 1 node default limit, 2 node default window ms,
# 3.. the keys. Returns now_us, then per key {count, limit, window_ms, source, oldest_us|-1}.
INSPECT = (
    _EFFECTIVE_LIMIT
    + """
local now = now_us()
local out = {now}
for i = 2, #KEYS do
  local limit, window, source =
    effective(KEYS[1], ARGV[i + 1], tonumber(ARGV[1]), tonumber(ARGV[2]))
  local horizon = now - window * 1000
  local count = redis.call('ZCOUNT', KEYS[i], '(' .. string.format('%.0f', horizon), '+inf')
  local oldest = -1
  if count > 0 then
    local e = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. string.format('%.0f', horizon), '+inf',
                         'WITHSCORES', 'LIMIT', 0, 1)
    oldest = tonumber(e[2])
  end
  out[#out + 1] = {count, limit, window, source, oldest}
end
return out
"""
)

# KEYS: 1 window log, 2 active index, 3 blocked index, 4 limits hash
# ARGV: 1 key, 2 node default limit, 3 node default window ms. Returns the count it dropped.
RESET = (
    _EFFECTIVE_LIMIT
    + """
local limit, window = effective(KEYS[4], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
local horizon = now_us() - window * 1000
local count = redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.0f', horizon), '+inf')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return count
"""
)

# Heartbeat and housekeeping in one round trip.
# KEYS: 1 node registry hash, 2 alive key, 3 active index, 4 blocked index
# ARGV: 1 node id, 2 address, 3 started_ms, 4 ttl ms
# Returns {now_ms, active keys, blocked keys}.
HEARTBEAT = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[2], now_ms, 'PX', ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({
  address = ARGV[2], started_ms = tonumber(ARGV[3]), last_seen_ms = now_ms}))
-- The indexes are trimmed here, once a beat per node, rather than on every check.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now_ms)
return {now_ms, redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4])}
"""

# A clean shutdown: the node says so at once instead of waiting out its TTL.
# KEYS: 1 node registry hash, 2 alive key; ARGV: 1 node id, 2 address, 3 started_ms
DEPART = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({
  address = ARGV[2], started_ms = tonumber(ARGV[3]), last_seen_ms = now_ms,
  stopped_ms = now_ms}))
return now_ms
"""


class Script:
    """A Lua script called by SHA, loaded on demand (after a Redis restart the cache is
    empty; EVAL both runs and re-caches it, so the next call is an EVALSHA again)."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: Redis, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)
