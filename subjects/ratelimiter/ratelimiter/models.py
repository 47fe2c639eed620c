"""Pydantic models at the HTTP boundary: what a client may send, and what the admin API says.

Every request body and query is validated here, so bad input becomes a 4xx naming the field
before it can reach Redis (and so before it can touch a counter).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ratelimiter.config import MAX_KEY_BYTES, Limit, WindowMs
from ratelimiter.limiter import LimitSource
from ratelimiter.registry import NodeState

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_key(key: str) -> str:
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise ValueError(f"key is {size} bytes; at most {MAX_KEY_BYTES} bytes (UTF-8) allowed")
    # Control characters would let a key forge lines in logs and break path-style admin URLs.
    if _CONTROL.search(key):
        raise ValueError("key must not contain control characters")
    return key


# min_length counts characters, but one character is at least one byte: the lower bound holds.
RateKey = Annotated[str, Field(min_length=1, strict=True), AfterValidator(_check_key)]

_STRICT = ConfigDict(extra="forbid", strict=True)


class CheckRequest(BaseModel):
    model_config = _STRICT

    key: RateKey


class LimitBody(BaseModel):
    """A limit: at most `limit` requests in any `window_ms` milliseconds."""

    model_config = _STRICT

    limit: Limit
    window_ms: WindowMs


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=100, ge=1, le=1000)


class ScanQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: int = Field(default=0, ge=0)
    count: int = Field(default=100, ge=1, le=1000)


# Responses -----------------------------------------------------------------------------


class ErrorBody(BaseModel):
    error: str
    message: str
    details: list[str] = []


class EffectiveLimit(BaseModel):
    key: str | None
    limit: int
    window_ms: int
    source: LimitSource


class NodeView(BaseModel):
    node_id: str
    address: str
    state: NodeState
    down_reason: str | None
    last_seen_ms: int | None
    last_seen_age_s: float | None
    started_ms: int | None
    stopped_ms: int | None


class CounterView(BaseModel):
    key: str
    # Counted exactly as a check counts; `redis_key` + `window_ms` let anyone recount it
    # straight from Redis: ZCOUNT redis_key (now_us - window_ms*1000) +inf.
    count: int
    limit: int
    window_ms: int
    remaining: int
    source: LimitSource
    oldest_us: int | None
    now_us: int
    redis_key: str


class BlockedView(BaseModel):
    key: str
    until_ms: int
    retry_after_ms: int


class OverridesPage(BaseModel):
    default: EffectiveLimit
    overrides: list[EffectiveLimit]
    next_cursor: int


class ResetResult(BaseModel):
    key: str
    dropped: int
