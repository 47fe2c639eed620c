"""What a plugin remembers of the actions it ran, process-wide: successful results by
(subject, idempotency key), so a retried call answers from memory instead of acting twice.
Bounded: past `limit` entries the oldest go first. Lost when the operator restarts — a subject
that can remember keys itself (the rate limiter's Idempotency-Key) is the durable answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from aiops.subjects.contract import ActionResult

V = TypeVar("V")
Key = tuple[str, str]


class BoundedMemo(Generic[V]):
    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._items: dict[Key, V] = {}

    def get(self, key: Key) -> V | None:
        return self._items.get(key)

    def remember(self, key: Key, value: V) -> None:
        self._items[key] = value
        while len(self._items) > self.limit:  # oldest first: dicts keep insertion order
            del self._items[next(iter(self._items))]

    def pop(self, key: Key) -> None:
        self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __getitem__(self, key: Key) -> V:
        return self._items[key]


def replayed(result: ActionResult) -> ActionResult:
    """A remembered result, marked as answered from memory."""
    return result.model_copy(update={"detail": {**result.detail, "replayed": True}})


async def once(
    memo: BoundedMemo[ActionResult], key: Key, run: Callable[[], Awaitable[ActionResult]]
) -> ActionResult:
    """`run()`, unless a success is remembered under `key`: then that, marked replayed. A
    success is remembered; a failure is not, so a retry acts again."""
    done = memo.get(key)
    if done is not None:
        return replayed(done)
    result = await run()
    if result.ok:
        memo.remember(key, result)
    return result
