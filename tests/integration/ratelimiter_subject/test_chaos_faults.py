"""The plugin's chaos faults on the real stack: each does what it says to the real thing, and
`revert` puts back exactly what was there (twice in a row, too: a Chaos finalizer may repeat
it). The subject loop catching these faults is shown in test_faults_detected.py and measured
by hack/bench/ttd.py, which injects through these same functions."""

from __future__ import annotations

import os
import socket
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import MemberState, PluginError
from aiops.subjects.faults.diskfill import FILL_FILE, MIB
from aiops.subjects.workload import SupervisorWorkload
from ratelimiter.localstack import LocalStack
from ratelimiter.localstack.toxiproxy import Toxiproxy
from ratelimiter_subject.config import RateLimiterConfig
from ratelimiter_subject.plugin import RateLimiterPlugin
from tests.fixtures.ratelimiter_subject import repair, stack_healthy, wait_for

# The plugin's clients live on one loop from the fixture's start to its end.
pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def plugin(rl_stack: LocalStack) -> AsyncIterator[RateLimiterPlugin]:
    urls = rl_stack.urls
    cfg = RateLimiterConfig.model_validate(
        {
            "adminUrls": list(urls.nodes.values()),
            "redisUrl": urls.redis,
            "toxiproxyUrl": urls.toxiproxy,
            "redisDataDir": str(rl_stack.directory / "redis"),
        }
    )
    # A stack just up answers /health before supervisord calls its programs RUNNING (after
    # startsecs): the snapshots compare program states, so start from settled ones.
    wait_for(
        "every program RUNNING",
        lambda: all(
            i["statename"] == "RUNNING" for n, i in rl_stack.status().items() if n != "loadgen"
        ),
    )
    workload = SupervisorWorkload(f"{urls.supervisor}/RPC2")
    ctx = PluginContext("test/rl", None, workload)
    p = RateLimiterPlugin(cfg, ctx)
    try:
        yield p
    finally:
        for node in urls.nodes:  # a test that failed mid-pause leaves no node frozen
            await workload.resume(node)
        (rl_stack.directory / "redis" / FILL_FILE).unlink(missing_ok=True)
        await p.close()
        await ctx.aclose()
        repair(rl_stack)


async def call(method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.request(method, url, json=body)


def proc_state(pid: int) -> str:
    """The kernel's state letter of a process (T: stopped by a signal)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def proxy_ping(stack: LocalStack, timeout: float = 1.5) -> tuple[str, float]:
    """PING through toxiproxy, the nodes' path to Redis, on a connection of its own:
    (PONG | timeout | reset | closed, seconds)."""
    port = int(stack.urls.redis_proxy.rsplit(":", 1)[1].split("/")[0])
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
        outcome = "PONG" if reply.startswith(b"+PONG") else "closed"
    except TimeoutError:
        outcome = "timeout"
    except ConnectionResetError:
        outcome = "reset"
    return outcome, time.monotonic() - started


def node_health(stack: LocalStack, node: str, timeout: float = 5) -> httpx.Response:
    return httpx.get(f"{stack.urls.nodes[node]}/health", timeout=timeout)


async def observed(p: RateLimiterPlugin, node: str) -> MemberState:
    """The member's state as the plugin's own observation (the subject loop's) sees it."""
    member = (await p.observe()).member(node)
    assert member is not None, f"{node} not observed"
    return member.state


def snapshot(stack: LocalStack, key: str) -> dict[str, Any]:
    """Everything a fault may touch: programs, toxics, the key's log and its limit."""
    r = redis.Redis.from_url(stack.urls.redis, decode_responses=True)
    programs = stack.status()
    state: dict[str, Any] = {
        "programs": {n: i["statename"] for n, i in programs.items()},
        "paused": [n for n, i in programs.items() if i["pid"] and proc_state(i["pid"]) == "T"],
        "toxics": Toxiproxy(stack.urls.toxiproxy).state()["toxics"],
        "redis_dir": sorted(os.listdir(stack.directory / "redis")),
    }
    try:
        state["log"] = r.zrange(f"rl:w:{key}", 0, -1, withscores=True)
        state["limit"] = r.hget("rl:limits", key)
    except redis.ConnectionError:
        state["log"] = state["limit"] = "Redis unreachable"
    finally:
        r.close()
    return state


async def inject_and_revert(
    p: RateLimiterPlugin,
    stack: LocalStack,
    fault: str,
    target: str,
    key: str,
    params: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state before, state while injected); asserts revert restores `before`, twice."""
    spec = p.fault(fault).params.model_validate(params or {})
    before = snapshot(stack, key)
    result = await p.inject(fault, spec, target)
    assert result.ok, result
    during = snapshot(stack, key)
    for _ in range(2):
        assert (await p.revert(fault, spec, target)).ok
        wait_for("every node healthy", lambda: stack_healthy(stack), timeout=30)
        after = snapshot(stack, key)
        assert after == before
    return before, during


async def test_kill_node_stops_the_program_and_revert_starts_it(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    _, during = await inject_and_revert(plugin, rl_stack, "kill_node", "rl-node-3", "x")
    assert during["programs"]["rl-node-3"] == "STOPPED"
    assert during["programs"]["rl-node-1"] == during["programs"]["redis"] == "RUNNING"


async def test_kill_node_refuses_a_node_that_does_not_exist(plugin: RateLimiterPlugin) -> None:
    spec = plugin.fault("kill_node").params.model_validate({})
    with pytest.raises(Exception, match="rl-node-9 is not a node of this rate limiter"):
        await plugin.inject("kill_node", spec, "rl-node-9")


async def test_redis_outage_stops_redis_and_revert_starts_it(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    _, during = await inject_and_revert(plugin, rl_stack, "redis_outage", "", "x")
    assert during["programs"]["redis"] == "STOPPED"
    assert during["log"] == "Redis unreachable"


async def test_redis_latency_adds_a_toxic_and_revert_removes_it(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    _, during = await inject_and_revert(
        plugin, rl_stack, "redis_latency", "", "x", {"latency_ms": 80}
    )
    (toxic,) = during["toxics"]
    assert toxic["type"] == "latency" and toxic["attributes"]["latency"] == 80


async def test_counter_drift_writes_entries_ahead_and_revert_removes_only_them(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    key = f"chaos-drift-{uuid.uuid4().hex[:6]}"
    node = rl_stack.urls.nodes["rl-node-1"]
    # A long window keeps the real admissions in the log for the whole test.
    limit = {"limit": 100, "window_ms": 600_000}
    (await call("PUT", f"{node}/admin/limits/{key}", limit)).raise_for_status()
    for _ in range(3):  # real admissions, which revert must leave alone
        (await call("POST", f"{node}/check", {"key": key})).raise_for_status()
    try:
        before, during = await inject_and_revert(
            plugin, rl_stack, "counter_drift", key, key, {"entries": 7, "ahead_seconds": 60}
        )
        added = [e for e in during["log"] if e not in before["log"]]
        assert len(added) == 7 and len(before["log"]) == 3
        counter = (await call("GET", f"{node}/admin/counters/{key}")).json()
        assert counter["count"] == 3  # reverted: the API counts the real admissions again
    finally:
        await call("DELETE", f"{node}/admin/limits/{key}")


async def test_bypass_limit_writes_past_the_limit_and_revert_removes_them(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    key = f"chaos-bypass-{uuid.uuid4().hex[:6]}"
    node = rl_stack.urls.nodes["rl-node-1"]
    limit = {"limit": 4, "window_ms": 600_000}
    (await call("PUT", f"{node}/admin/limits/{key}", limit)).raise_for_status()
    try:
        _, during = await inject_and_revert(plugin, rl_stack, "bypass_limit", key, key, {"over": 3})
        assert len(during["log"]) == 7  # the limit, and three past it
    finally:
        await call("DELETE", f"{node}/admin/limits/{key}")


@pytest.mark.parametrize("existing", [None, "9:30000"])
async def test_ghost_limit_stores_json_and_revert_restores_what_was_there(
    plugin: RateLimiterPlugin, rl_stack: LocalStack, existing: str | None
) -> None:
    key = f"chaos-ghost-{uuid.uuid4().hex[:6]}"
    r = redis.Redis.from_url(rl_stack.urls.redis, decode_responses=True)
    if existing is not None:
        r.hset("rl:limits", key, existing)
    try:
        spec = plugin.fault("ghost_limit").params.model_validate({"limit": 3})
        before = snapshot(rl_stack, key)
        await plugin.inject("ghost_limit", spec, key)
        await plugin.inject("ghost_limit", spec, key)  # twice: the original is still kept
        stored = r.hget("rl:limits", key)
        assert stored is not None and '"limit": 3' in stored
        # Not enforced: the API (which reads limits as the check script does) shows no
        # per-key limit, and checks run on the default.
        node = rl_stack.urls.nodes["rl-node-2"]
        shown = (await call("GET", f"{node}/admin/limits/{key}")).json()
        assert shown["source"] != "override"
        await plugin.revert("ghost_limit", spec, key)
        await plugin.revert("ghost_limit", spec, key)
        assert snapshot(rl_stack, key) == before
    finally:
        r.hdel("rl:limits", key)
        r.close()


# -- members ------------------------------------------------------------------------------------


async def test_kill_node_is_observed_down_and_up_again_after_revert(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    spec = plugin.fault("kill_node").params()
    done = await plugin.inject("kill_node", spec, "rl-node-2")
    assert not done.detail  # under supervisord it holds until the revert: not instant
    with pytest.raises(httpx.ConnectError):
        node_health(rl_stack, "rl-node-2")
    assert await observed(plugin, "rl-node-2") is MemberState.DOWN
    assert await observed(plugin, "rl-node-1") is MemberState.UP
    await plugin.revert("kill_node", spec, "rl-node-2")
    wait_for("every node healthy", lambda: stack_healthy(rl_stack), timeout=30)
    assert await observed(plugin, "rl-node-2") is MemberState.UP


async def test_pause_node_freezes_the_process_and_revert_thaws_it(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    pid = rl_stack.pid("rl-node-2")
    assert pid is not None
    _, during = await inject_and_revert(plugin, rl_stack, "pause_node", "rl-node-2", "x")
    # Frozen, not stopped: supervisord still has it RUNNING (same pid), the kernel has it
    # stopped, so it keeps its port and requests to it hang.
    assert during["paused"] == ["rl-node-2"]
    assert during["programs"]["rl-node-2"] == "RUNNING" and rl_stack.pid("rl-node-2") == pid
    assert proc_state(pid) != "T"


async def test_a_paused_node_times_out_and_is_observed_down(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    spec = plugin.fault("pause_node").params()
    await plugin.inject("pause_node", spec, "rl-node-3")
    try:
        with pytest.raises(httpx.ReadTimeout):  # accepted by the kernel, never answered
            node_health(rl_stack, "rl-node-3", timeout=1.0)
        assert node_health(rl_stack, "rl-node-1").status_code == 200
        assert await observed(plugin, "rl-node-3") is MemberState.DOWN
    finally:
        resumed = await plugin.revert("pause_node", spec, "rl-node-3")
    assert "resumed by SIGCONT" in resumed.message
    wait_for("rl-node-3 answering", lambda: node_health(rl_stack, "rl-node-3").status_code == 200)
    assert await observed(plugin, "rl-node-3") is MemberState.UP
    again = await plugin.revert("pause_node", spec, "rl-node-3")
    assert again.ok and "was not paused" in again.message


async def test_a_paused_node_is_thawed_before_it_is_stopped(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    """supervisord's SIGTERM to a frozen process would wait its 10 s stopwaitsecs and end in
    SIGKILL; a kill (or a restart_node action) on a paused node stops it as usual."""
    no = plugin.fault("pause_node").params()
    log = rl_stack.directory / "logs" / "rl-node-1.log"
    await plugin.inject("pause_node", no, "rl-node-1")
    try:
        seen = log.stat().st_size
        started = time.monotonic()
        await plugin.inject("kill_node", no, "rl-node-1")
        took = time.monotonic() - started
        assert rl_stack.status()["rl-node-1"]["statename"] == "STOPPED"
        assert took < 8, f"stopping a paused node took {took:.1f} s"
        with log.open() as f:  # it ran its shutdown (a SIGKILL leaves no such line)
            f.seek(seen)
            assert "Shutting down" in f.read()
    finally:
        await plugin.revert("kill_node", no, "rl-node-1")
    assert "was not paused" in (await plugin.revert("pause_node", no, "rl-node-1")).message
    wait_for("every node healthy", lambda: stack_healthy(rl_stack), timeout=30)


async def test_pause_of_a_stopped_node_is_refused(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    no = plugin.fault("kill_node").params()
    await plugin.inject("kill_node", no, "rl-node-3")
    try:
        with pytest.raises(
            PluginError, match="program rl-node-3 is STOPPED: only a running program can be paused"
        ):
            await plugin.inject("pause_node", no, "rl-node-3")
    finally:
        await plugin.revert("kill_node", no, "rl-node-3")


async def test_partition_is_refused_under_supervisord_and_nothing_changes(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    spec = plugin.fault("partition_node").params()
    before = snapshot(rl_stack, "x")
    with pytest.raises(PluginError, match="needs a pods workload"):
        await plugin.inject("partition_node", spec, "rl-node-1")
    assert snapshot(rl_stack, "x") == before
    assert (
        "no partition to heal" in (await plugin.revert("partition_node", spec, "rl-node-1")).message
    )


# -- the path to Redis (toxiproxy) --------------------------------------------------------------


async def test_redis_latency_is_measured_on_the_nodes_path_and_gone_after_revert(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    spec = plugin.fault("redis_latency").params.model_validate({"latency_ms": 300})
    await plugin.inject("redis_latency", spec, "")
    try:
        outcome, took = proxy_ping(rl_stack)
        assert outcome == "PONG" and took >= 0.3
        # The node's own readiness probe times its PING to Redis.
        health = node_health(rl_stack, "rl-node-1").json()
        assert health["redis"]["latency_ms"] >= 300
    finally:
        await plugin.revert("redis_latency", spec, "")
    assert Toxiproxy(rl_stack.urls.toxiproxy).state()["toxics"] == []
    after = [proxy_ping(rl_stack)[1] for _ in range(5)]
    assert statistics.median(after) < 0.3, after


async def test_redis_jitter_spreads_the_delays_and_revert_removes_its_toxic(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    params = {"latency_ms": 200, "jitter_ms": 150}
    _, during = await inject_and_revert(plugin, rl_stack, "redis_jitter", "", "x", params)
    (toxic,) = during["toxics"]
    assert toxic["name"] == "aiops-chaos-redis_jitter"
    spec = plugin.fault("redis_jitter").params.model_validate(params)
    await plugin.inject("redis_jitter", spec, "")
    try:
        took = [proxy_ping(rl_stack)[1] for _ in range(12)]
    finally:
        await plugin.revert("redis_jitter", spec, "")
    # Each delay is drawn from 50..350 ms: the spread shows, none is below the floor.
    assert max(took) - min(took) >= 0.1 and min(took) >= 0.045, took


async def test_redis_bandwidth_throttles_a_large_reply_and_revert_lifts_it(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    key = f"aiops-test-bw-{uuid.uuid4().hex[:6]}"
    direct = redis.Redis.from_url(rl_stack.urls.redis)
    through = redis.Redis.from_url(rl_stack.urls.redis_proxy, socket_timeout=20)
    direct.set(key, b"x" * 100_000)
    spec = plugin.fault("redis_bandwidth").params.model_validate({"kilobytes_per_second": 50})
    try:
        _, during = await inject_and_revert(
            plugin, rl_stack, "redis_bandwidth", "", "x", {"kilobytes_per_second": 50}
        )
        assert during["toxics"][0]["attributes"] == {"rate": 50}
        await plugin.inject("redis_bandwidth", spec, "")
        try:
            started = time.monotonic()
            assert len(through.get(key) or b"") == 100_000
            throttled = time.monotonic() - started
        finally:
            await plugin.revert("redis_bandwidth", spec, "")
        started = time.monotonic()
        through.get(key)
        free = time.monotonic() - started
    finally:
        direct.delete(key)
        direct.close()
        through.close()
    # 100 kB at 50 kB/s takes 2 s; without the toxic a fraction of that.
    assert throttled >= 1.6 and free < 1.0, (throttled, free)


async def test_redis_timeout_lets_nothing_through_and_revert_restores_the_path(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    spec = plugin.fault("redis_timeout").params()
    await plugin.inject("redis_timeout", spec, "")
    try:
        assert proxy_ping(rl_stack, timeout=1.0)[0] == "timeout"
        health = node_health(rl_stack, "rl-node-2")
        assert health.status_code == 503 and health.json()["redis"]["ok"] is False
    finally:
        await plugin.revert("redis_timeout", spec, "")
    assert proxy_ping(rl_stack)[0] == "PONG"
    wait_for("every node healthy", lambda: stack_healthy(rl_stack), timeout=30)
    assert Toxiproxy(rl_stack.urls.toxiproxy).state()["toxics"] == []


async def test_redis_cut_fails_every_connection_at_once_and_revert_heals_it(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    _, during = await inject_and_revert(plugin, rl_stack, "redis_cut", "", "x")
    assert [t["type"] for t in during["toxics"]] == ["reset_peer"]
    spec = plugin.fault("redis_cut").params()
    await plugin.inject("redis_cut", spec, "")
    try:
        outcome, took = proxy_ping(rl_stack)
        assert outcome in ("reset", "closed") and took < 1.0, (outcome, took)
        health = node_health(rl_stack, "rl-node-3")
        assert health.status_code == 503 and health.json()["redis"]["ok"] is False
    finally:
        removed = await plugin.revert("redis_cut", spec, "")
    assert removed.message == "toxic aiops-chaos-redis_cut removed"
    assert proxy_ping(rl_stack)[0] == "PONG"
    wait_for("every node healthy", lambda: stack_healthy(rl_stack), timeout=30)
    again = await plugin.revert("redis_cut", spec, "")
    assert again.message == "toxic aiops-chaos-redis_cut was already gone"


async def test_a_revert_removes_its_own_toxic_only(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    proxy = Toxiproxy(rl_stack.urls.toxiproxy)
    proxy.add_latency(1, name="someone-elses")
    try:
        spec = plugin.fault("redis_cut").params()
        await plugin.inject("redis_cut", spec, "")
        await plugin.revert("redis_cut", spec, "")
        assert [t["name"] for t in proxy.state()["toxics"]] == ["someone-elses"]
    finally:
        proxy.remove_toxic("someone-elses")


# -- disk ---------------------------------------------------------------------------------------


async def test_fill_redis_disk_writes_one_file_to_the_percentage_and_revert_removes_it(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    # A volume of 8 MiB: at most 4 MiB written, whatever the disk under it.
    params = {"percent": 50, "capacity_bytes": 8 * MIB, "max_bytes": 8 * MIB}
    fill = rl_stack.directory / "redis" / FILL_FILE
    spec = plugin.fault("fill_redis_disk").params.model_validate(params)
    before = snapshot(rl_stack, "x")
    done = await plugin.inject("fill_redis_disk", spec, "")
    st = fill.stat()
    assert "50% full" in done.message
    assert 3 * MIB < st.st_size <= 4 * MIB and st.st_blocks * 512 >= st.st_size  # allocated
    assert snapshot(rl_stack, "x")["redis_dir"] == sorted([*before["redis_dir"], FILL_FILE])
    for message in (f"removed {fill}", f"no {fill}: nothing to remove"):
        assert (await plugin.revert("fill_redis_disk", spec, "")).message == message
    assert snapshot(rl_stack, "x") == before


async def test_fill_redis_disk_refuses_more_than_max_bytes_and_writes_nothing(
    plugin: RateLimiterPlugin, rl_stack: LocalStack
) -> None:
    spec = plugin.fault("fill_redis_disk").params.model_validate({"percent": 99, "max_bytes": MIB})
    before = snapshot(rl_stack, "x")
    with pytest.raises(PluginError, match=r"to 99% needs .* more than max_bytes \(1.0 MiB\)"):
        await plugin.inject("fill_redis_disk", spec, "")
    assert snapshot(rl_stack, "x") == before
