"""Read-only access to the limiter's Redis: what the sliding-window logs and the limits hash
really hold, to hold the admin API's answers against.

Only reads are sent (TIME, SCAN, HMGET, ZCOUNT, ZRANGE); the plugin never writes here except
through the service's API, or in a chaos fault (faults.py), which says so.
Key names come from the service's own layout (`ratelimiter.keys`), the one place they are
defined.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from aiops.subjects.contract import PluginError
from ratelimiter.keys import DEFAULT_FIELD, KeySpace
from ratelimiter_subject.config import redact

SCAN_BATCH = 500
MAX_SCAN_CALLS = 20  # a bound on one observation's SCAN work, whatever the keyspace holds


class RedisReadError(PluginError):
    """Redis could not be read; the message names it (credentials masked) and why."""


@dataclass(frozen=True)
class LogQuery:
    """What to count in one key's log, at the API's instant `now_us`."""

    key: str
    now_us: int
    window_us: int
    oldest_us: int | None  # the oldest entry the API counted, to tell a race from drift
    since_us: int  # admissions before this are not judged against the limit (see memory)
    recorded_window_us: int | None  # the window of a limit on record that is not enforced
    recorded_since_us: int


@dataclass(frozen=True)
class LogCounts:
    admitted: int  # entries dated in (now - window, now]: requests the script admitted
    oldest_present: bool  # the API's oldest counted entry is still in the log
    future: int  # entries dated after now: no check can have written them
    newest_us: int | None
    admitted_since: int  # as `admitted`, from `since` on
    admitted_recorded: int  # in the recorded limit's window (and since it was recorded)


class RedisTruth:
    def __init__(self, url: str, prefix: str, timeout: float) -> None:
        self.shown = redact(url)
        self.keys = KeySpace(prefix)
        self.redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=0,
            retry_on_timeout=False,
        )

    def error(self, what: str, err: BaseException) -> RedisReadError:
        """An error naming Redis (credentials masked), what was read, and why."""
        text = redact(str(err).strip()) or type(err).__name__
        # redis-py quotes the address it dialled; any password is not in it, the URL is ours.
        return RedisReadError(f"cannot read {what} from Redis at {self.shown}: {text}")

    async def close(self) -> None:
        await self.redis.aclose()

    async def now_us(self) -> int:
        try:
            seconds, micros = await self.redis.time()
        except (RedisError, OSError) as err:
            raise self.error("the time", err) from err
        return int(seconds) * 1_000_000 + int(micros)

    async def window_keys(self, most: int) -> list[str]:
        """Keys that have a sliding-window log, however the active index sees them."""
        prefix = self.keys.window("")
        found: list[str] = []
        cursor = 0
        try:
            for _ in range(MAX_SCAN_CALLS):
                cursor, batch = await self.redis.scan(
                    cursor=cursor, match=f"{_glob_escape(prefix)}*", count=SCAN_BATCH
                )
                found.extend(as_text(k)[len(prefix) :] for k in batch)
                if cursor == 0 or len(found) >= most:
                    break
        except (RedisError, OSError) as err:
            raise self.error("the window logs", err) from err
        return sorted(set(found))[:most]

    async def limits(self, keys: list[str]) -> tuple[dict[str, str], str | None]:
        """Raw values of the limits hash for `keys` (present ones only), and the shared
        default's raw value."""
        if not keys:
            try:
                shared = await self.redis.hget(self.keys.limits, DEFAULT_FIELD)
            except (RedisError, OSError) as err:
                raise self.error("the limits", err) from err
            return {}, None if shared is None else as_text(shared)
        try:
            raw = await self.redis.hmget(self.keys.limits, [*keys, DEFAULT_FIELD])
        except (RedisError, OSError) as err:
            raise self.error("the limits", err) from err
        *values, shared = raw
        found = {k: as_text(v) for k, v in zip(keys, values, strict=True) if v is not None}
        return found, None if shared is None else as_text(shared)

    async def count(self, queries: list[LogQuery]) -> dict[str, LogCounts]:
        if not queries:
            return {}
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for q in queries:
                    log = self.keys.window(q.key)
                    start = q.now_us - q.window_us
                    pipe.zcount(log, f"({start}", q.now_us)
                    if q.oldest_us is None:
                        pipe.exists(log)  # placeholder: keeps six answers per key
                    else:
                        pipe.zcount(log, q.oldest_us, q.oldest_us)
                    pipe.zcount(log, f"({q.now_us}", "+inf")
                    pipe.zrange(log, -1, -1, withscores=True)
                    pipe.zcount(log, f"({max(start, q.since_us)}", q.now_us)
                    if q.recorded_window_us is None:
                        pipe.exists(log)
                    else:
                        rec_start = max(q.now_us - q.recorded_window_us, q.recorded_since_us)
                        pipe.zcount(log, f"({rec_start}", q.now_us)
                answers = await pipe.execute()
        except (RedisError, OSError) as err:
            raise self.error("the window logs", err) from err
        out: dict[str, LogCounts] = {}
        for i, q in enumerate(queries):
            admitted, oldest, future, newest, since, recorded = answers[i * 6 : i * 6 + 6]
            out[q.key] = LogCounts(
                admitted=int(admitted),
                oldest_present=q.oldest_us is None or int(oldest) > 0,
                future=int(future),
                newest_us=int(newest[0][1]) if newest else None,
                admitted_since=int(since),
                admitted_recorded=int(recorded) if q.recorded_window_us is not None else 0,
            )
        return out


def as_text(value: bytes | str) -> str:
    # The client decodes responses; the stubs cannot know that.
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    # SCAN MATCH is a glob: the prefix is matched literally.
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
