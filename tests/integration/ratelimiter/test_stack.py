"""The local stack as a user (or the operator) meets it: supervisord running Redis, toxiproxy,
three nodes and Prometheus; faults injected the way chaos will inject them.

The stack is shared by the session: a test that breaks something repairs it before it ends.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from ratelimiter.localstack import PORT_SPAN, LocalStack, StackError
from ratelimiter.localstack.cli import main as stack_cli
from ratelimiter.localstack.toxiproxy import Toxiproxy
from tests.fixtures.polling import wait_for

NODES = ("rl-node-1", "rl-node-2", "rl-node-3")


def eventually(what: str, probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def promql(stack: LocalStack, query: str) -> dict[str, float]:
    """node_id -> value of an instant query."""
    reply = httpx.get(f"{stack.urls.prometheus}/api/v1/query", params={"query": query}, timeout=5)
    reply.raise_for_status()
    return {
        r["metric"].get("node_id", ""): float(r["value"][1]) for r in reply.json()["data"]["result"]
    }


def node_state(stack: LocalStack, via: str, node_id: str) -> str | None:
    nodes = httpx.get(f"{stack.urls.nodes[via]}/admin/nodes", timeout=5).json()
    return next((n["state"] for n in nodes if n["node_id"] == node_id), None)


@pytest.fixture
def healthy(rl_stack: LocalStack) -> Iterator[LocalStack]:
    """The stack, checked healthy before the test and put back to health after it."""
    yield rl_stack
    Toxiproxy(rl_stack.urls.toxiproxy).reset()
    rl_stack.up()
    for url in rl_stack.urls.nodes.values():
        eventually(f"{url} healthy", functools.partial(_healthy, url))


def _healthy(url: str) -> bool:
    return httpx.get(f"{url}/health").status_code == 200


def test_everything_runs_and_prometheus_scrapes_each_node_by_id(healthy: LocalStack) -> None:
    expected = {
        "redis": "RUNNING",
        "toxiproxy": "RUNNING",
        "prometheus": "RUNNING",
        "rl-node-1": "RUNNING",
        "rl-node-2": "RUNNING",
        "rl-node-3": "RUNNING",
        "loadgen": "STOPPED",
    }

    def states() -> dict[str, str]:
        return {name: info["statename"] for name, info in healthy.status().items()}

    # up() returns once the services answer; supervisord calls a program RUNNING only
    # after its startsecs, which a loaded machine stretches: poll for the final state.
    try:
        wait_for("every program RUNNING", lambda: states() == expected, 60)
    except AssertionError:
        assert states() == expected  # the same check, for pytest's diff
    for url in healthy.urls.nodes.values():
        for _ in range(5):
            httpx.post(f"{url}/check", json={"key": "scrape-me"})
    nodes = httpx.get(f"{healthy.urls.nodes['rl-node-1']}/admin/nodes").json()
    assert {n["node_id"]: n["state"] for n in nodes} == dict.fromkeys(NODES, "Up")
    eventually(
        "every node scraped",
        lambda: promql(healthy, 'up{job="ratelimiter"}') == dict.fromkeys(NODES, 1.0),
    )
    # The latency histogram is recorded and labelled per node.
    counts = eventually(
        "histogram in Prometheus",
        lambda: (
            c
            if len(c := promql(healthy, "ratelimiter_check_duration_seconds_count >= 5")) == 3
            else None
        ),
    )
    assert set(counts) == set(NODES)


def test_up_again_is_idempotent_and_a_second_stack_cannot_take_its_ports(
    healthy: LocalStack, tmp_path: Path
) -> None:
    before = {n: i["pid"] for n, i in healthy.status().items()}
    started = time.monotonic()
    healthy.up()
    assert time.monotonic() - started < 5
    assert {n: i["pid"] for n, i in healthy.status().items()} == before
    overlapping = LocalStack(tmp_path / "other", healthy.spec.base_port + 3)
    with pytest.raises(StackError, match=r"port \d+ \(.+\) is busy"):
        overlapping.up()


def test_redis_stopped_shows_in_health_metrics_and_prometheus(healthy: LocalStack) -> None:
    node = healthy.urls.nodes["rl-node-1"]
    healthy.stop_program("redis")
    health = httpx.get(f"{node}/health")
    assert health.status_code == 503
    assert health.json()["redis"]["ok"] is False
    check = httpx.post(f"{node}/check", json={"key": "k"})
    assert check.status_code == 503 and check.json()["error"] == "redis_unavailable"
    for url in healthy.urls.nodes.values():
        httpx.get(f"{url}/health")  # every node learns of it now, not at its next beat
    eventually(
        "redis_up == 0 on every node in Prometheus",
        lambda: promql(healthy, "ratelimiter_redis_up == 0") == dict.fromkeys(NODES, 0.0),
    )
    eventually(
        "the failed health checks counted in Prometheus",
        lambda: (
            promql(healthy, 'ratelimiter_redis_errors_total{operation="health"} >= 1').keys()
            == set(NODES)
        ),
    )
    healthy.start_program("redis")
    eventually(
        "recovery", lambda: httpx.post(f"{node}/check", json={"key": "k"}).status_code == 200
    )
    eventually(
        "redis_up == 1 again",
        lambda: promql(healthy, "ratelimiter_redis_up == 1") == dict.fromkeys(NODES, 1.0),
    )


def test_latency_injected_by_toxiproxy_shows_in_the_check_histogram(healthy: LocalStack) -> None:
    node = healthy.urls.nodes["rl-node-2"]
    proxy = Toxiproxy(healthy.urls.toxiproxy)
    proxy.add_latency(120)
    slow = [httpx.post(f"{node}/check", json={"key": "slow"}) for _ in range(5)]
    assert all(r.status_code == 200 for r in slow)
    assert min(r.elapsed.total_seconds() for r in slow) >= 0.12
    metrics = httpx.get(f"{node}/metrics").text
    fast_bucket = _bucket(metrics, "rl-node-2", "0.1")
    total = _bucket(metrics, "rl-node-2", "+Inf")
    assert total - fast_bucket >= 5  # all five slow checks landed above 100 ms
    # A partition (proxy disabled) is a Redis outage as the nodes see it.
    proxy.remove_toxic()
    proxy.set_enabled(False)
    assert httpx.post(f"{node}/check", json={"key": "k"}).status_code == 503
    assert httpx.get(f"{node}/health").status_code == 503
    proxy.set_enabled(True)
    eventually("proxy back", lambda: httpx.get(f"{node}/health").status_code == 200)


def _bucket(metrics: str, node_id: str, le: str) -> float:
    prefix = f'ratelimiter_check_duration_seconds_bucket{{le="{le}",node_id="{node_id}"}} '
    line = next(x for x in metrics.splitlines() if x.startswith(prefix))
    return float(line.removeprefix(prefix))


def test_a_killed_node_is_down_within_its_ttl_and_a_restart_over_rpc_brings_it_back(
    healthy: LocalStack,
) -> None:
    pid = healthy.pid("rl-node-3")
    assert pid is not None
    psutil.Process(pid).kill()
    killed = time.monotonic()
    eventually("Down", lambda: node_state(healthy, "rl-node-1", "rl-node-3") == "Down", 10)
    # Within the TTL, plus a heartbeat and the slack of a loaded machine.
    assert time.monotonic() - killed <= healthy.spec.node_ttl_s + 3
    # supervisord does not restart it (autorestart off): remediation is someone's decision.
    assert healthy.status()["rl-node-3"]["statename"] == "EXITED"
    eventually("Prometheus target down", lambda: promql(healthy, "up == 0") == {"rl-node-3": 0.0})
    healthy.rpc().supervisor.startProcess("rl-node-3", True)
    eventually("Up again", lambda: node_state(healthy, "rl-node-1", "rl-node-3") == "Up", 10)


def test_the_load_generator_runs_under_supervisord(healthy: LocalStack) -> None:
    healthy.start_program("loadgen")
    try:
        eventually(
            "loadgen traffic",
            lambda: promql(healthy, "sum(ratelimiter_checks_total)").get("", 0) > 50,
        )
        assert healthy.status()["loadgen"]["statename"] == "RUNNING"
    finally:
        healthy.stop_program("loadgen")


def test_two_stacks_side_by_side_and_down_leaves_no_process(
    rl_stack: LocalStack, tmp_path: Path
) -> None:
    base = rl_stack.spec.base_port + PORT_SPAN
    second = LocalStack(tmp_path / "second", base, nodes=1)
    try:
        urls = second.up()
    except StackError as exc:
        if "is busy" in str(exc):
            pytest.skip(f"neighbouring ports in use by something else: {exc}")
        raise
    try:
        pids = [second.supervisord_pid(), *(i["pid"] for i in second.status().values() if i["pid"])]
        assert len(pids) == 5  # supervisord, redis, toxiproxy, one node, prometheus
        assert httpx.post(f"{urls.nodes['rl-node-1']}/check", json={"key": "k"}).status_code == 200
        # The first stack's nodes never see the second's: separate Redis.
        first_nodes = httpx.get(f"{rl_stack.urls.nodes['rl-node-1']}/admin/nodes").json()
        assert len(first_nodes) == 3
    finally:
        stopped = second.down()
    assert sorted(p for p in pids if p) == stopped
    assert not [p for p in stopped if psutil.pid_exists(p) and _not_zombie(p)]
    assert not second.running()
    with pytest.raises(OSError):  # nobody listens on its XML-RPC port any more
        second.rpc(1.0).supervisor.getState()


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_command_line_says_what_is_wrong_in_one_line(
    rl_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = str(rl_stack.spec.base_port)
    assert stack_cli(["up", "--dir", str(tmp_path / "x"), "--base-port", base]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ratelimiter-stack: port ") and "is busy" in err
    assert len(err.splitlines()) == 1
    assert stack_cli(["down", "--dir", str(tmp_path / "never")]) == 0
    assert stack_cli(["status", "--dir", str(rl_stack.directory)]) == 0
    status = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert status["running"] is True and status["programs"]["rl-node-1"] == "RUNNING"
