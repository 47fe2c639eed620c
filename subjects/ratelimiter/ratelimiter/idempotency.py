"""Idempotency keys for the admin API's changes: a change sent twice with the same
`Idempotency-Key` header happens once; the second answer is the first one, replayed.

An operator that crashed after sending a reset cannot know whether it landed. With a key it
sends it again and the limiter, not the caller, makes sure it counts once. Keys live in Redis
(shared by every node) for a day.
"""

from __future__ import annotations

import re

from redis.asyncio import Redis
from starlette.requests import Request

from ratelimiter.errors import ApiError

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
TTL_SECONDS = 86_400
_SHAPE = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.:]{0,127}$")


def key_of(request: Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _SHAPE.match(raw):
        raise ApiError(
            400,
            "bad_idempotency_key",
            f"{HEADER} must be 1-128 characters of letters, digits and -_.:",
        )
    return raw


async def recall(redis: Redis, prefix: str, key: str) -> str | None:
    raw = await redis.get(f"{prefix}:idem:{key}")
    return None if raw is None else str(raw)


async def remember(redis: Redis, prefix: str, key: str, answer: str) -> None:
    await redis.set(f"{prefix}:idem:{key}", answer, ex=TTL_SECONDS, nx=True)
