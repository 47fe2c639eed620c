"""The HTTP API in-process (ASGI) against a real Redis: answers, headers, the admin API, and
every kind of bad input getting a clear JSON error with no counter touched."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from ratelimiter.app import create_app
from ratelimiter.config import Settings
from tests.fixtures.ratelimiter import RedisProcess, free_port


@contextlib.asynccontextmanager
async def api(redis_url: str, prefix: str, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings.model_validate(
            {"node_id": "api-test", "redis_url": redis_url, "key_prefix": prefix, **settings}
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rl") as client:
            yield client


async def count(client: httpx.AsyncClient, key: str) -> int:
    reply = await client.get(f"/admin/counters/{quote(key, safe='')}")
    assert reply.status_code == 200, reply.text
    return int(reply.json()["count"])


async def test_check_answers_with_rate_limit_headers(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with api(rl_redis.url, rl_prefix, default_limit=2, default_window_ms=60_000) as client:
        ok = await client.post("/check", json={"key": "user:1"})
        assert ok.status_code == 200
        assert ok.headers["x-ratelimit-limit"] == "2"
        assert ok.headers["x-ratelimit-remaining"] == "1"
        assert ok.headers["x-ratelimit-reset"] == "60"
        assert "retry-after" not in ok.headers
        body = ok.json()
        assert body["allowed"] is True
        assert body["node_id"] == "api-test"
        await client.post("/check", json={"key": "user:1"})
        refused = await client.post("/check", json={"key": "user:1"})
        assert refused.status_code == 429
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert 59 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["retry_after_ms"] > 59_000


@pytest.mark.parametrize(
    ("body", "status", "error", "says"),
    [
        (b'{"key": ', 400, "malformed_json", "not valid JSON"),
        (b"not json at all", 400, "malformed_json", "not valid JSON"),
        (b"", 400, "malformed_json", "empty"),
        (b"[1, 2]", 400, "invalid_request", "Input should be an object"),
        (b"{}", 400, "invalid_request", "key: Field required"),
        (b'{"key": ""}', 400, "invalid_request", "at least 1 character"),
        (b'{"key": 42}', 400, "invalid_request", "key: Input should be a valid string"),
        (b'{"key": null}', 400, "invalid_request", "key: Input should be a valid string"),
        (b'{"key": "a\\u0000b"}', 400, "invalid_request", "control characters"),
        (b'{"key": "k", "limit": 5}', 400, "invalid_request", "limit: Extra inputs"),
        (json.dumps({"key": "x" * 257}).encode(), 400, "invalid_request", "at most 256 bytes"),
        # 100 three-byte characters: 100 characters but 300 bytes.
        (
            json.dumps({"key": "€" * 100}, ensure_ascii=False).encode(),
            400,
            "invalid_request",
            "300 bytes",
        ),
        (json.dumps({"key": "x" * 10_240}).encode(), 413, "body_too_large", "at most 4096"),
    ],
)
async def test_bad_check_bodies_get_a_clear_error_and_count_nothing(
    rl_redis: RedisProcess, rl_prefix: str, body: bytes, status: int, error: str, says: str
) -> None:
    async with api(rl_redis.url, rl_prefix) as client:
        await client.post("/check", json={"key": "k"})
        reply = await client.post(
            "/check", content=body, headers={"content-type": "application/json"}
        )
        assert reply.status_code == status, reply.text
        assert reply.headers["content-type"] == "application/json"
        assert reply.json()["error"] == error
        assert says in reply.json()["message"] + " ".join(reply.json()["details"])
        assert "Traceback" not in reply.text
        assert await count(client, "k") == 1
        listed = (await client.get("/admin/counters")).json()
        assert [c["key"] for c in listed] == ["k"]


async def test_a_body_larger_than_declared_limit_is_refused_before_reading(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with api(rl_redis.url, rl_prefix) as client:

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):  # 100 kB streamed without a Content-Length
                yield b" " * 1024

        reply = await client.post("/check", content=chunks())
        assert reply.status_code == 413
        assert reply.json()["error"] == "body_too_large"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"limit": -1, "window_ms": 1000}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 0, "window_ms": 1000}, "greater than or equal to 1"),
        ({"limit": 10**12, "window_ms": 1000}, "less than or equal to 1000000000"),
        ({"limit": 10, "window_ms": 0}, "window_ms: Input should be greater than or equal to 1"),
        ({"limit": 10, "window_ms": 10**10}, "less than or equal to 86400000"),
        ({"limit": "10", "window_ms": 1000}, "limit: Input should be a valid integer"),
        ({"limit": 1.5, "window_ms": 1000}, "limit: Input should be a valid integer"),
        ({"limit": 10}, "window_ms: Field required"),
    ],
)
async def test_bad_limits_are_refused_and_the_old_limit_stays(
    rl_redis: RedisProcess, rl_prefix: str, body: dict[str, object], says: str
) -> None:
    async with api(rl_redis.url, rl_prefix) as client:
        assert (await client.put("/admin/limits/k", json={"limit": 7, "window_ms": 500})).is_success
        reply = await client.put("/admin/limits/k", json=body)
        assert reply.status_code == 400
        assert says in reply.json()["message"]
        kept = (await client.get("/admin/limits/k")).json()
        assert (kept["limit"], kept["window_ms"], kept["source"]) == (7, 500, "override")
        bad_default = await client.put("/admin/default-limit", json=body)
        assert bad_default.status_code == 400


async def test_admin_limits_round_trip(rl_redis: RedisProcess, rl_prefix: str) -> None:
    async with api(rl_redis.url, rl_prefix, default_limit=5, default_window_ms=1000) as client:
        key = "tenant/a b?c"  # slashes, spaces and query characters survive percent-encoding
        path = f"/admin/limits/{quote(key, safe='')}"
        assert (await client.get(path)).json()["source"] == "node-default"
        put = await client.put(path, json={"limit": 1, "window_ms": 60_000})
        assert put.json() == {"key": key, "limit": 1, "window_ms": 60_000, "source": "override"}
        page = (await client.get("/admin/limits")).json()
        assert page["default"] == {
            "key": None,
            "limit": 5,
            "window_ms": 1000,
            "source": "node-default",
        }
        assert [o["key"] for o in page["overrides"]] == [key]
        # The override is enforced, not just stored.
        assert (await client.post("/check", json={"key": key})).status_code == 200
        assert (await client.post("/check", json={"key": key})).status_code == 429
        assert (await client.delete(path)).status_code == 200
        assert (await client.delete(path)).status_code == 404
        shared = await client.put("/admin/default-limit", json={"limit": 9, "window_ms": 2000})
        assert shared.json()["source"] == "default"
        assert (await client.get("/admin/limits/other")).json()["limit"] == 9
        assert (await client.delete("/admin/default-limit")).json()["source"] == "node-default"


async def test_admin_counters_blocked_and_reset(rl_redis: RedisProcess, rl_prefix: str) -> None:
    async with api(rl_redis.url, rl_prefix, default_limit=1, default_window_ms=60_000) as client:
        for _ in range(3):
            await client.post("/check", json={"key": "hot"})
        await client.post("/check", json={"key": "cold"})
        counters = {c["key"]: c for c in (await client.get("/admin/counters")).json()}
        assert counters["hot"]["count"] == 1 and counters["hot"]["remaining"] == 0
        blocked = (await client.get("/admin/blocked")).json()
        assert [b["key"] for b in blocked] == ["hot"]
        assert blocked[0]["retry_after_ms"] > 50_000
        reset = await client.delete("/admin/counters/hot")
        assert reset.json() == {"key": "hot", "dropped": 1}
        assert (await client.post("/check", json={"key": "hot"})).status_code == 200
        assert (await client.get("/admin/blocked")).json() == []


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/check", 405, "method_not_allowed"),
        ("GET", "/admin/counters?limit=0", 400, "invalid_request"),
        ("GET", "/admin/counters?limit=abc", 400, "invalid_request"),
        ("GET", "/admin/counters?bogus=1", 400, "invalid_request"),
        ("GET", "/admin/limits?cursor=-1", 400, "invalid_request"),
        ("GET", "/admin/counters/" + "k" * 300, 400, "invalid_request"),
        ("DELETE", "/admin/nodes/ghost", 404, "not_found"),
        ("DELETE", "/admin/nodes/api-test", 409, "node_up"),
    ],
)
async def test_bad_admin_requests(
    rl_redis: RedisProcess, rl_prefix: str, method: str, path: str, status: int, error: str
) -> None:
    async with api(rl_redis.url, rl_prefix) as client:
        reply = await client.request(method, path)
        assert reply.status_code == status, reply.text
        assert reply.json()["error"] == error


async def test_redis_unreachable_is_a_503_everywhere_and_shows_in_metrics(
    rl_prefix: str,
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with api(dead, rl_prefix, redis_timeout_ms=200) as client:
        check = await client.post("/check", json={"key": "k"})
        assert check.status_code == 503
        assert check.json()["error"] == "redis_unavailable"
        assert "connecting to 127.0.0.1" in check.json()["message"]
        assert check.headers["retry-after"] == "1"
        admin = await client.get("/admin/counters/k")
        assert admin.status_code == 503 and admin.json()["error"] == "redis_unavailable"
        assert (await client.get("/admin/nodes")).status_code == 503
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["redis"]["ok"] is False
        assert health.json()["registered"] is False
        assert (await client.get("/live")).status_code == 200
        # Bad input is still refused as bad input, without touching Redis.
        assert (await client.post("/check", content=b"{")).status_code == 400
        metrics = (await client.get("/metrics")).text
        assert 'ratelimiter_redis_up{node_id="api-test"} 0.0' in metrics
        assert 'ratelimiter_node_up{node_id="api-test"} 0.0' in metrics
        assert 'ratelimiter_checks_total{node_id="api-test",result="error"} 1.0' in metrics
        assert 'ratelimiter_redis_errors_total{node_id="api-test",operation="check"} 1.0' in metrics
        assert 'ratelimiter_check_duration_seconds_count{node_id="api-test"} 1.0' in metrics


async def test_metrics_carry_node_id_and_record_latency(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with api(rl_redis.url, rl_prefix, default_limit=2) as client:
        for _ in range(3):
            await client.post("/check", json={"key": "k"})
        text = (await client.get("/metrics")).text
        samples = [
            line for line in text.splitlines() if line.startswith("ratelimiter_") and "{" in line
        ]
        assert samples and all('node_id="api-test"' in line for line in samples)
        assert 'ratelimiter_checks_total{node_id="api-test",result="allowed"} 2.0' in text
        assert 'ratelimiter_checks_total{node_id="api-test",result="blocked"} 1.0' in text
        assert 'ratelimiter_check_duration_seconds_count{node_id="api-test"} 3.0' in text
        assert 'ratelimiter_redis_up{node_id="api-test"} 1.0' in text
        assert 'ratelimiter_peer_up{node_id="api-test",peer="api-test"} 1.0' in text


async def test_a_reset_sent_twice_with_one_idempotency_key_happens_once(
    rl_redis: RedisProcess, rl_prefix: str
) -> None:
    async with api(rl_redis.url, rl_prefix, default_limit=5, default_window_ms=60_000) as client:
        for _ in range(2):
            await client.post("/check", json={"key": "k"})
        first = await client.delete("/admin/counters/k", headers={"Idempotency-Key": "inc-a1"})
        assert first.json() == {"key": "k", "dropped": 2}
        assert "idempotent-replayed" not in first.headers
        await client.post("/check", json={"key": "k"})  # counted after the reset
        again = await client.delete("/admin/counters/k", headers={"Idempotency-Key": "inc-a1"})
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == {"key": "k", "dropped": 2}  # the first answer, replayed
        assert await count(client, "k") == 1  # the replay forgot nothing
        metrics = (await client.get("/metrics")).text
        assert (
            'ratelimiter_admin_changes_total{node_id="api-test",operation="reset_counter"} 1.0'
            in metrics
        )
        bad = await client.delete("/admin/counters/k", headers={"Idempotency-Key": "a b"})
        assert bad.status_code == 400 and bad.json()["error"] == "bad_idempotency_key"
