"""One node's runtime: its Redis client, limiter, registry entry, metrics and heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.requests import Request

from ratelimiter.channel import ScriptChannel
from ratelimiter.config import Settings
from ratelimiter.errors import REDIS_ERRORS
from ratelimiter.keys import KeySpace
from ratelimiter.limiter import LimitSpec, RateLimiter
from ratelimiter.metrics import Metrics
from ratelimiter.registry import NodeState, Registry

log = logging.getLogger("ratelimiter")


def connect(settings: Settings) -> Redis:
    """redis-py, for everything but checks (admin API, heartbeats, health)."""
    timeout = settings.redis_timeout_ms / 1000
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        # Waiting for a pooled connection counts against the same budget as a slow Redis.
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        health_check_interval=0,
        # One immediate retry, on connection errors only: it hides the stale pooled
        # connections a Redis restart leaves behind. Timeouts are not retried: a write may
        # have happened, and a retry would double the wait.
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    return Redis(connection_pool=pool)


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = connect(settings)
        self.keys = KeySpace(settings.key_prefix)
        self.channel = ScriptChannel(settings.redis_url, settings.redis_timeout_ms / 1000)
        self.limiter = RateLimiter(
            self.redis,
            self.keys,
            LimitSpec(settings.default_limit, settings.default_window_ms),
            self.channel,
        )
        self.registry = Registry(self.redis, self.keys)
        self.metrics = Metrics(settings.node_id)
        self.started_ms = int(time.time() * 1000)
        self.redis_ok = False
        self.last_beat_ok: float | None = None  # monotonic time of the last good heartbeat
        self._beat_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # A beat in flight finishes within the Redis timeout (twice: beat, then listing).
        self._stop_grace_s = 2 * settings.redis_timeout_ms / 1000 + 0.5
        self.metrics.node_up.set(0)
        self.metrics.redis_up.set(0)

    @property
    def node_id(self) -> str:
        return self.settings.node_id

    def redis_succeeded(self) -> None:
        if not self.redis_ok:
            if self.last_beat_ok is not None:
                log.info("Redis reachable again")
            self.redis_ok = True
            self.metrics.redis_up.set(1)

    def redis_failed(self, operation: str, exc: BaseException) -> None:
        self.metrics.redis_errors[operation].inc()
        if self.redis_ok:
            log.warning("Redis failing (%s): %s", operation, exc or type(exc).__name__)
            self.redis_ok = False
            self.metrics.redis_up.set(0)

    @property
    def registered(self) -> bool:
        """Our registration is current: the last good heartbeat is younger than the TTL."""
        if self.last_beat_ok is None:
            return False
        return time.monotonic() - self.last_beat_ok < self.settings.node_ttl_s

    async def beat_once(self) -> None:
        try:
            beat = await self.registry.beat(
                self.node_id,
                self.settings.advertise_url,
                self.started_ms,
                int(self.settings.node_ttl_s * 1000),
            )
            records = await self.registry.nodes()
        except REDIS_ERRORS as exc:
            self.redis_failed("heartbeat", exc)
            self.metrics.node_up.set(1 if self.registered else 0)
            return
        self.redis_succeeded()
        self.last_beat_ok = time.monotonic()
        self.metrics.node_up.set(1)
        self.metrics.last_heartbeat.set(beat.now_ms / 1000)
        self.metrics.active_keys.set(beat.active_keys)
        self.metrics.blocked_keys.set(beat.blocked_keys)
        self.metrics.peers.peers = {
            r.node_id: (r.state is NodeState.UP, r.last_seen_ms) for r in records
        }

    async def _beat_forever(self) -> None:
        # Stopped by an event, not only by cancel(): a cancellation that lands inside a
        # Redis call can be absorbed by the client library, and the loop would go on.
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                await self.beat_once()
            except Exception:  # a bug must not silently stop the heartbeat
                log.exception("heartbeat failed")
            pause = max(0.0, self.settings.heartbeat_interval_s - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    async def start(self) -> None:
        await self.beat_once()
        if self.redis_ok:
            log.info("node %s registered at %s", self.node_id, self.settings.advertise_url)
        else:
            log.warning("node %s started without Redis; retrying every beat", self.node_id)
        self._beat_task = asyncio.create_task(self._beat_forever())

    async def stop(self) -> None:
        self._stopping.set()
        if self._beat_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._beat_task), self._stop_grace_s)
            except TimeoutError:
                self._beat_task.cancel()
                await asyncio.gather(self._beat_task, return_exceptions=True)
        try:
            # Bounded: a node asked to stop must stop even when Redis is gone.
            async with asyncio.timeout(self.settings.redis_timeout_ms / 1000 + 0.5):
                await self.registry.depart(
                    self.node_id, self.settings.advertise_url, self.started_ms
                )
        except REDIS_ERRORS as exc:  # asyncio's TimeoutError included
            log.warning("could not mark node %s stopped: %s", self.node_id, exc)
        await self.channel.aclose()
        await self.redis.aclose()


def service_of(request: Request) -> Service:
    """The node's Service, which create_app keeps in the app's state."""
    service: Service = request.app.state.service
    return service
