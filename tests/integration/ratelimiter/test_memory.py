"""Keys expire: traffic over ever new keys leaves Redis's key count and memory flat."""

from __future__ import annotations

import asyncio
import time

import httpx
import redis

from ratelimiter.loadgen import LoadConfig, run_load
from tests.fixtures.ratelimiter import NodeFactory, RedisProcess

ROUNDS = 6
WINDOW_MS = 200


def test_redis_memory_stays_flat_over_a_run_of_ever_new_keys(
    rl_own_redis: RedisProcess, rl_prefix: str, rl_nodes: NodeFactory
) -> None:
    own, prefix = rl_own_redis, rl_prefix
    nodes = [
        rl_nodes.start(
            own.url,
            prefix,
            f"m{i}",
            default_limit=5,
            default_window_ms=WINDOW_MS,
            heartbeat_interval_s=0.5,
        )
        for i in range(3)
    ]
    r = redis.Redis(port=own.port, decode_responses=True)
    # Every node registered (seen Up by the others), then its first housekeeping done.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = httpx.get(f"{nodes[0].url}/admin/nodes", timeout=5).json()
        if sum(n["state"] == "Up" for n in seen) == len(nodes):
            break
        time.sleep(0.1)
    time.sleep(1.0)
    base_keys = r.dbsize()
    base_memory = r.info("memory")["used_memory"]
    after: list[tuple[int, int]] = []
    total = 0
    for round_no in range(ROUNDS):
        config = LoadConfig(
            urls=[n.url for n in nodes],
            rps=500,
            concurrency=32,
            keys=100_000,  # practically every request a new key
            key_prefix=f"r{round_no}",
            duration_s=1.5,
            report_every_s=10,
        )
        report = asyncio.run(run_load(config))
        assert report.errors == {}, report
        total += report.sent
        # The windows end and a heartbeat trims the index: wait for the keys to go (a fixed
        # sleep would race a loaded machine), then take the round's numbers.
        time.sleep(3 * WINDOW_MS / 1000)
        deadline = time.monotonic() + 10
        while r.dbsize() > base_keys + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        after.append((r.dbsize(), r.info("memory")["used_memory"]))
    assert total > ROUNDS * 500  # the run wrote thousands of distinct keys
    # Every round's keys are gone again: only the registry, limits and heartbeats remain.
    assert all(keys <= base_keys + 2 for keys, _ in after), (base_keys, after)
    assert r.zcard(f"{prefix}:active") == 0
    # Memory after the last round is where it was after the first (allocator noise aside),
    # not six rounds' worth of logs higher.
    first, last = after[0][1], after[-1][1]
    assert last - first < 512 * 1024, after
    assert last - base_memory < 2 * 1024 * 1024, (base_memory, after)
