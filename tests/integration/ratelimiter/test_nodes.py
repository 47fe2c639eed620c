"""The node registry with real node processes: a killed node shows Down (with its last-seen
time) within its TTL instead of vanishing; a stopped one shows Down at once."""

from __future__ import annotations

import time

import httpx

from tests.fixtures.ratelimiter import NodeFactory, RedisProcess

TTL_S = 3.0
BEAT_S = 0.5


def nodes_seen_by(url: str) -> dict[str, dict[str, object]]:
    reply = httpx.get(f"{url}/admin/nodes", timeout=5)
    reply.raise_for_status()
    return {n["node_id"]: n for n in reply.json()}


def wait_state(url: str, node_id: str, state: str, timeout: float) -> float:
    """Seconds until `node_id` shows `state` as seen from `url`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if nodes_seen_by(url).get(node_id, {}).get("state") == state:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{node_id} not {state} after {timeout} s: {nodes_seen_by(url)}")


def wait_metrics(url: str, line: str, timeout: float) -> str:
    """The node's metrics page, once it has `line` (metrics follow the registry at the next
    heartbeat)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics", timeout=5).text
        if line in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"no {line!r} in {url}/metrics after {timeout} s:\n{text}")


def test_a_killed_node_shows_down_within_its_ttl_with_last_seen(
    rl_redis: RedisProcess, rl_prefix: str, rl_nodes: NodeFactory
) -> None:
    survivor, victim = (
        rl_nodes.start(rl_redis.url, rl_prefix, name, node_ttl_s=TTL_S, heartbeat_interval_s=BEAT_S)
        for name in ("keeper", "victim")
    )
    wait_state(survivor.url, "victim", "Up", 5)
    victim.kill()
    killed_at_ms = time.time() * 1000
    took = wait_state(survivor.url, "victim", "Down", TTL_S + 4)
    # Down once the TTL runs out, at the survivor's next heartbeat; the slack beyond that is
    # this test's polling and a loaded 2-core machine, not the registry.
    assert took <= TTL_S + 2 * BEAT_S + 1.0, took
    record = nodes_seen_by(survivor.url)["victim"]
    assert record["down_reason"] == "heartbeat expired"
    assert record["address"] == victim.url
    # Last seen is the last heartbeat before the kill (Redis time, same host clock here).
    assert killed_at_ms - 1000 * (BEAT_S + 0.5) <= record["last_seen_ms"] <= killed_at_ms + 50  # type: ignore[operator]
    # The survivor's metrics say so too, per peer.
    metrics = wait_metrics(
        survivor.url, 'ratelimiter_peer_up{node_id="keeper",peer="victim"} 0.0', timeout=5
    )
    assert 'ratelimiter_peer_up{node_id="keeper",peer="keeper"} 1.0' in metrics
    # It comes back Up when it restarts under the same id.
    victim.start()
    wait_state(survivor.url, "victim", "Up", 5)


def test_a_stopped_node_shows_down_at_once_and_can_be_forgotten(
    rl_redis: RedisProcess, rl_prefix: str, rl_nodes: NodeFactory
) -> None:
    # A TTL too long to matter: only the clean stop can make it Down in time.
    survivor, leaver = (
        rl_nodes.start(rl_redis.url, rl_prefix, name, node_ttl_s=30.0, heartbeat_interval_s=BEAT_S)
        for name in ("keeper", "leaver")
    )
    wait_state(survivor.url, "leaver", "Up", 5)
    refused = httpx.delete(f"{survivor.url}/admin/nodes/leaver")
    assert refused.status_code == 409
    leaver.stop()
    assert wait_state(survivor.url, "leaver", "Down", 2) < 1.0
    record = nodes_seen_by(survivor.url)["leaver"]
    assert record["down_reason"] == "stopped"
    assert record["stopped_ms"] is not None
    assert httpx.delete(f"{survivor.url}/admin/nodes/leaver").status_code == 200
    assert "leaver" not in nodes_seen_by(survivor.url)


def test_nodes_keep_answering_health_honestly_through_a_redis_restart(
    rl_own_redis: RedisProcess, rl_prefix: str, rl_nodes: NodeFactory
) -> None:
    own = rl_own_redis
    node = rl_nodes.start(own.url, rl_prefix, "n", redis_timeout_ms=300)
    assert httpx.post(f"{node.url}/check", json={"key": "k"}).status_code == 200
    own.stop()
    health = httpx.get(f"{node.url}/health")
    assert health.status_code == 503 and health.json()["redis"]["ok"] is False
    check = httpx.post(f"{node.url}/check", json={"key": "k"})
    assert check.status_code == 503
    assert check.json()["error"] == "redis_unavailable"
    assert 'ratelimiter_redis_up{node_id="n"} 0.0' in httpx.get(f"{node.url}/metrics").text
    own.start()
    # The first call after the restart works: stale connections are retried and the lost
    # script cache is reloaded, without a 503 in between.
    assert httpx.post(f"{node.url}/check", json={"key": "k"}).status_code == 200
    assert httpx.get(f"{node.url}/health").status_code == 200
    assert 'ratelimiter_redis_up{node_id="n"} 1.0' in httpx.get(f"{node.url}/metrics").text
