"""Correctness under concurrency: many clients across three real nodes sharing one Redis.

Each answer carries the Redis time of its decision (`decided_at_us`), one clock for all
nodes, so the test can hold the answers to the definition of a sliding-window limit exactly:

- safety: no window of `window_ms` holds more than `limit` allowed requests;
- no over-blocking: a refused request had `limit` allowed ones in the window before it.
"""

from __future__ import annotations

import asyncio
import bisect
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.ratelimiter import NodeFactory, NodeProcess, RedisProcess

NODE_DEFAULT = (4, 150)  # limit, window_ms of the nodes' own default


@dataclass(frozen=True)
class Answer:
    status: int
    at_us: int
    limit: int
    window_ms: int
    source: str


@pytest.fixture(scope="module")
def trio(rl_redis: RedisProcess, rl_module_nodes: NodeFactory) -> Iterator[list[NodeProcess]]:
    prefix = "c" + uuid.uuid4().hex[:8]
    limit, window = NODE_DEFAULT
    nodes = [
        rl_module_nodes.start(
            rl_redis.url, prefix, f"cc-{i}", default_limit=limit, default_window_ms=window
        )
        for i in range(1, 4)
    ]
    yield nodes


async def _drive(
    nodes: list[NodeProcess], key: str, schedule: list[list[tuple[int, float]]]
) -> list[Answer]:
    """Each inner list is one client: (node index, pause before the request in seconds)."""
    limits = httpx.Limits(max_connections=len(schedule) + 3)
    async with httpx.AsyncClient(limits=limits, timeout=10) as http:

        async def client(plan: list[tuple[int, float]]) -> list[Answer]:
            got = []
            for node, pause in plan:
                if pause:
                    await asyncio.sleep(pause)
                reply = await http.post(f"{nodes[node].url}/check", json={"key": key})
                body = reply.json()
                got.append(
                    Answer(
                        reply.status_code,
                        body.get("decided_at_us", -1),
                        body.get("limit", -1),
                        body.get("window_ms", -1),
                        body.get("source", ""),
                    )
                )
            return got

        results = await asyncio.gather(*(client(plan) for plan in schedule))
    return [a for answers in results for a in answers]


def assert_sliding_window(answers: list[Answer], limit: int, window_ms: int) -> None:
    assert {a.status for a in answers} <= {200, 429}, answers
    window_us = window_ms * 1000
    allowed = sorted(a.at_us for a in answers if a.status == 200)
    # Safety: any limit+1 consecutive allowed requests span at least a whole window.
    for i in range(len(allowed) - limit):
        assert allowed[i + limit] - allowed[i] >= window_us, (
            f"{limit + 1} requests allowed within {allowed[i + limit] - allowed[i]} us "
            f"(window {window_us} us)"
        )
    # No over-blocking: at a refusal, `limit` allowed requests were in (t - window, t].
    for t in (a.at_us for a in answers if a.status == 429):
        inside = bisect.bisect_right(allowed, t) - bisect.bisect_right(allowed, t - window_us)
        assert inside >= limit, f"refused at {t} with only {inside} allowed in the window"


clients = st.lists(
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from([0.0, 0.0, 0.001, 0.005, 0.02, 0.05])),
        min_size=1,
        max_size=12,
    ),
    min_size=2,
    max_size=16,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    override=st.one_of(st.none(), st.tuples(st.integers(1, 15), st.integers(50, 400))),
    schedule=clients,
)
def test_no_window_ever_allows_more_than_the_limit(
    trio: list[NodeProcess],
    override: tuple[int, int] | None,
    schedule: list[list[tuple[int, float]]],
) -> None:
    key = "prop-" + uuid.uuid4().hex
    if override is not None:
        limit, window = override
        put = httpx.put(
            f"{trio[0].url}/admin/limits/{quote(key, safe='')}",
            json={"limit": limit, "window_ms": window},
        )
        assert put.status_code == 200
        source = "override"
    else:
        (limit, window), source = NODE_DEFAULT, "node-default"
    answers = asyncio.run(_drive(trio, key, schedule))
    # The per-key limit is the one enforced, on every node.
    assert {(a.limit, a.window_ms, a.source) for a in answers} == {(limit, window, source)}
    assert_sliding_window(answers, limit, window)
    # The counter the admin API reports agrees with the answers that were given.
    counter = httpx.get(f"{trio[1].url}/admin/counters/{quote(key, safe='')}").json()
    allowed = [a.at_us for a in answers if a.status == 200]
    expected = sum(1 for t in allowed if t > counter["now_us"] - window * 1000)
    assert counter["count"] == expected


def test_a_stampede_on_one_key_from_three_nodes(trio: list[NodeProcess]) -> None:
    """30 clients, 450 requests as fast as they go, one key, limit 25 per 300 ms."""
    key = "stampede-" + uuid.uuid4().hex
    httpx.put(
        f"{trio[0].url}/admin/limits/{quote(key, safe='')}", json={"limit": 25, "window_ms": 300}
    ).raise_for_status()
    schedule = [[(c % 3, 0.0)] * 15 for c in range(30)]
    answers = asyncio.run(_drive(trio, key, schedule))
    assert_sliding_window(answers, 25, 300)
    assert sum(a.status == 200 for a in answers) >= 25
    assert sum(a.status == 429 for a in answers) > 0
