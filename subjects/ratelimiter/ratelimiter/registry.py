"""Node registry: who serves this limiter, and who has stopped.

Each node writes, once a beat, a heartbeat key with a TTL and its entry in a persistent hash
(address, started, last seen: Redis time). A node is Up while its heartbeat key lives and
Down after: killed nodes expire within the TTL, cleanly stopped ones say so at once. Entries
stay in the hash, so a dead node remains visible as Down with its last-seen time until someone
decides it is gone for good (DELETE /admin/nodes/{id}); vanishing would hide the failure.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from ratelimiter.keys import KeySpace
from ratelimiter.scripts import DEPART, HEARTBEAT, Script

_HEARTBEAT = Script(HEARTBEAT)
_DEPART = Script(DEPART)


class NodeState(enum.StrEnum):
    UP = "Up"
    DOWN = "Down"


@dataclass(frozen=True, slots=True)
class NodeRecord:
    node_id: str
    address: str
    state: NodeState
    last_seen_ms: int | None
    started_ms: int | None
    stopped_ms: int | None  # set when the node shut down cleanly
    now_ms: int

    @property
    def down_reason(self) -> str | None:
        if self.state is NodeState.UP:
            return None
        if self.stopped_ms is not None:
            return "stopped"
        return "heartbeat expired"


@dataclass(frozen=True, slots=True)
class BeatResult:
    now_ms: int
    active_keys: int
    blocked_keys: int


class Registry:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self.redis = redis
        self.keys = keys

    async def beat(self, node_id: str, address: str, started_ms: int, ttl_ms: int) -> BeatResult:
        now_ms, active, blocked = await _HEARTBEAT(
            self.redis,
            (self.keys.nodes, self.keys.alive(node_id), self.keys.active, self.keys.blocked),
            (node_id, address, started_ms, ttl_ms),
        )
        return BeatResult(now_ms=now_ms, active_keys=active, blocked_keys=blocked)

    async def depart(self, node_id: str, address: str, started_ms: int) -> None:
        await _DEPART(
            self.redis,
            (self.keys.nodes, self.keys.alive(node_id)),
            (node_id, address, started_ms),
        )

    async def nodes(self) -> list[NodeRecord]:
        """Every node ever registered (until forgotten), sorted by id."""
        # decode_responses=True: str, whatever redis-py's annotations allow for.
        entries = cast(dict[str, str], await self.redis.hgetall(self.keys.nodes))
        ids = sorted(entries)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.time()
            for node_id in ids:
                pipe.exists(self.keys.alive(node_id))
            seconds_micros, *alive = await pipe.execute()
        now_ms = int(seconds_micros[0]) * 1000 + int(seconds_micros[1]) // 1000
        records = []
        for node_id, is_alive in zip(ids, alive, strict=True):
            info = _parse_entry(entries[node_id])
            records.append(
                NodeRecord(
                    node_id=node_id,
                    address=str(info.get("address", "")),
                    state=NodeState.UP if is_alive else NodeState.DOWN,
                    last_seen_ms=_int_or_none(info.get("last_seen_ms")),
                    started_ms=_int_or_none(info.get("started_ms")),
                    stopped_ms=_int_or_none(info.get("stopped_ms")),
                    now_ms=now_ms,
                )
            )
        return records

    async def forget(self, node_id: str) -> bool:
        return bool(await self.redis.hdel(self.keys.nodes, node_id))

    async def is_alive(self, node_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.alive(node_id)))


def _parse_entry(raw: str) -> dict[str, object]:
    # A hand-edited or foreign entry must not break the listing: show what can be read.
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _int_or_none(value: object) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    return None
