"""Coalesces concurrent script calls into Redis pipelines.

Under load most of a check's cost is the client's per-command work (pool checkout, packing, a
socket write and read, an await chain), not Redis's. When many checks are in flight at once,
sending them as one pipeline pays that cost once per batch. Each script still runs atomically
on its own inside Redis, so batching changes throughput, never a decision.

Latency: a call that finds a free flusher is sent on the next loop iteration (no timer, no
waiting for company); calls arriving while every flusher is busy wait for the next free one,
which is about one Redis round trip, and then go out together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from ratelimiter.scripts import Script

_Call = tuple[Script, Sequence[str], Sequence[str | int], asyncio.Future[Any]]


class ScriptBatcher:
    def __init__(self, redis: Redis, max_batch: int = 128, max_inflight: int = 4) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self._queue: list[_Call] = []
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def call(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """Queue one script call; returns an awaitable of its reply (or its exception)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((script, keys, args, future))
        if self._inflight < self.max_inflight:
            self._start_flusher()
        return future

    def _start_flusher(self) -> None:
        self._inflight += 1
        task = asyncio.get_running_loop().create_task(self._flush())
        # Keep a reference: the event loop holds tasks weakly.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                await self._send(batch)
        finally:
            self._inflight -= 1

    async def _send(self, batch: list[_Call]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for script, keys, args, _ in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection failed: every call in the batch fails
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (script, keys, args, future), reply in zip(batch, replies, strict=True):
            if future.done():  # the caller was cancelled
                continue
            if isinstance(reply, NoScriptError):
                # Redis restarted and lost its script cache: run (and re-cache) by source.
                try:
                    reply = await script(self.redis, keys, args)
                except Exception as exc:
                    future.set_exception(exc)
                    continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
