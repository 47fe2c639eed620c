"""An async client of the rate limiter's HTTP API over the context's shared httpx client, and
the shapes of its answers (the wire is the contract; these models read only what we use).

Every failure becomes one `ApiError` whose message names the URL, the request and what was
wrong: unreachable, an HTTP error with the start of its body, too big a body (more than
MAX_BODY: read no further), not JSON (a body that is not UTF-8 included), or JSON of the wrong
shape. Reads go to the admin URLs in order until one answers; writes stop at the first
answer, and move on only when the request surely never left (refused, connect timeout).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from aiops.subjects.contract import PluginError
from ratelimiter_subject.config import redact


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class NodeView(Wire):
    node_id: str
    address: str = ""
    state: str
    down_reason: str | None = None
    last_seen_ms: int | None = None
    last_seen_age_s: float | None = None


class CounterView(Wire):
    key: str
    count: int
    limit: int
    window_ms: int
    source: str
    oldest_us: int | None = None
    now_us: int
    redis_key: str


class LimitView(Wire):
    key: str | None = None
    limit: int
    window_ms: int
    source: str


MAX_BODY = 4 << 20
"""Bytes of one answer read at most: the largest real one (1,000 counters) is about 0.3 MB."""

_M = TypeVar("_M", bound=BaseModel)
_NODES = TypeAdapter(list[NodeView])
_COUNTERS = TypeAdapter(list[CounterView])


def snippet(text: str, most: int = 120) -> str:
    """A body's first characters, whitespace folded, quoted (an HTML page, an error string)."""
    words = " ".join(text.split())
    return repr(words if len(words) <= most else words[:most] + "…")


def describe(err: httpx.HTTPError) -> str:
    """An httpx error as `Type: message` (some carry no message; the type still tells)."""
    return ": ".join(p for p in (type(err).__name__, str(err).strip()) if p)


def key_path(key: str) -> str:
    # The service takes keys percent-encoded in the path, "/" included.
    return quote(key, safe="")


class ApiError(PluginError):
    """The rate limiter API could not answer; the message says where and why."""


class _TooBig(Exception):
    pass


async def _read(resp: httpx.Response, limit: int) -> bytes:
    """The body, or _TooBig as soon as it passes `limit` bytes (the rest is never read)."""
    buf = bytearray()
    async for chunk in resp.aiter_bytes():
        buf += chunk
        if len(buf) > limit:
            raise _TooBig(f"more than {limit} bytes")
    return bytes(buf)


@dataclass(frozen=True)
class Health:
    """One node's /health: reachable or not, and whether it reaches Redis."""

    url: str
    reachable: bool
    redis_ok: bool | None  # None: the answer did not say
    node_id: str | None
    problem: str  # empty when healthy
    redis_ping_s: float | None = None  # the node's live PING to Redis, when it reached it


class RateLimiterApi:
    def __init__(self, bases: Sequence[str], http: httpx.AsyncClient, timeout: float) -> None:
        self.bases = [b.rstrip("/") for b in bases]
        self.http = http
        self.timeout = timeout

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        allow_404: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        writing = method != "GET"
        problems: list[str] = []
        for base in self.bases:
            shown = redact(base) + path
            try:
                async with self.http.stream(
                    method, base + path, json=body, timeout=self.timeout, headers=headers
                ) as resp:
                    raw = await _read(resp, MAX_BODY)
            except httpx.HTTPError as err:
                problems.append(f"{method} {shown}: unreachable ({describe(err)})")
                if writing and not isinstance(err, httpx.ConnectError | httpx.ConnectTimeout):
                    break  # it may have been applied: never repeat a write elsewhere
                continue
            except _TooBig as err:
                problems.append(f"{method} {shown}: answered with too big a body ({err})")
                if writing:
                    break
                continue
            if allow_404 and resp.status_code == 404:
                return None
            text = raw.decode("utf-8", "replace")
            if resp.status_code >= 400:
                problems.append(f"{method} {shown}: HTTP {resp.status_code} {snippet(text)}")
                if writing or resp.status_code < 500:
                    break
                continue
            try:
                return json.loads(raw)
            except ValueError:  # also a body that is not UTF-8
                kind = resp.headers.get("content-type", "no content-type")
                problems.append(f"{method} {shown}: not JSON ({kind}): {snippet(text)}")
                continue
        raise ApiError("rate limiter API failed: " + "; ".join(problems))

    async def _get(self, path: str, adapter: TypeAdapter[Any]) -> Any:
        raw = await self._call("GET", path)
        try:
            return adapter.validate_python(raw)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(map(str, first["loc"])) or "(body)"
            raise ApiError(
                f"GET {path} on the rate limiter API answered an unexpected shape: "
                f"{where}: {first['msg']}"
            ) from err

    # -- reads -----------------------------------------------------------------------------

    async def nodes(self) -> list[NodeView]:
        result: list[NodeView] = await self._get("/admin/nodes", _NODES)
        return result

    async def counters(self, limit: int) -> list[CounterView]:
        result: list[CounterView] = await self._get(f"/admin/counters?limit={limit}", _COUNTERS)
        return result

    async def counter(self, key: str) -> CounterView:
        result: CounterView = await self._get(
            f"/admin/counters/{key_path(key)}", TypeAdapter(CounterView)
        )
        return result

    async def limit(self, key: str) -> LimitView:
        result: LimitView = await self._get(
            f"/admin/limits/{key_path(key)}", TypeAdapter(LimitView)
        )
        return result

    # -- writes ----------------------------------------------------------------------------

    async def reset(self, key: str, idempotency_key: str | None = None) -> int:
        """The limiter remembers `idempotency_key`: sent again, the reset happens once."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        raw = await self._call("DELETE", f"/admin/counters/{key_path(key)}", headers=headers)
        return int(raw.get("dropped", 0)) if isinstance(raw, dict) else 0

    async def put_limit(self, key: str, limit: int, window_ms: int) -> None:
        await self._call(
            "PUT", f"/admin/limits/{key_path(key)}", {"limit": limit, "window_ms": window_ms}
        )

    async def delete_limit(self, key: str) -> bool:
        """Drop a per-key limit; False when there was none."""
        return (
            await self._call("DELETE", f"/admin/limits/{key_path(key)}", allow_404=True) is not None
        )


async def probe(http: httpx.AsyncClient, base: str, wait_s: float) -> Health:
    """GET {base}/health: 200 when the node serves and PINGs Redis now, 503 with the Redis
    error when it serves but cannot reach Redis; anything else is described as it came."""
    url = base.rstrip("/") + "/health"
    shown = redact(url)
    try:
        resp = await http.get(url, timeout=wait_s)
    except httpx.HTTPError as err:
        return Health(shown, False, None, None, f"GET {shown}: {describe(err)}")
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Health(
            shown,
            True,
            None,
            None,
            f"GET {shown}: HTTP {resp.status_code}, not the service's JSON: {snippet(resp.text)}",
        )
    node_id = body.get("node_id") if isinstance(body.get("node_id"), str) else None
    raw_redis = body.get("redis")
    redis: dict[str, Any] = raw_redis if isinstance(raw_redis, dict) else {}
    if resp.status_code == 200 and redis.get("ok") is True:
        ping = redis.get("latency_ms")
        ping_s = float(ping) / 1000 if isinstance(ping, int | float) else None
        return Health(shown, True, True, node_id, "", ping_s)
    if redis.get("ok") is False:
        error = str(redis.get("error") or "no detail")[:300]
        return Health(shown, True, False, node_id, f"reports Redis unreachable: {error}")
    return Health(
        shown, True, None, node_id, f"GET {shown}: HTTP {resp.status_code} {snippet(resp.text)}"
    )
