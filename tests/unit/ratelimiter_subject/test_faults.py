"""The rate limiter's faults as the plugin declares them: each has a params model that refuses
bad values with the field and the bound, each network fault makes the toxic its name says, and
faults that cannot run where the Subject is say why before anything is touched. Injected for
real in tests/integration/ratelimiter_subject/test_chaos_faults.py."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aiops.subjects import registry
from aiops.subjects.context import PluginContext
from aiops.subjects.contract import FaultTarget, PluginError
from aiops.subjects.workload import SupervisorWorkload
from ratelimiter_subject import faults
from ratelimiter_subject.plugin import RateLimiterPlugin

NODE = "http://127.0.0.1:8080"


def test_every_fault_is_declared_with_its_target_kind() -> None:
    targets = {f.name: f.target for f in RateLimiterPlugin.faults}
    assert targets == {
        "kill_node": FaultTarget.MEMBER,
        "pause_node": FaultTarget.MEMBER,
        "partition_node": FaultTarget.MEMBER,
        "redis_outage": FaultTarget.SUBJECT,
        "fill_redis_disk": FaultTarget.SUBJECT,
        "redis_latency": FaultTarget.SUBJECT,
        "redis_jitter": FaultTarget.SUBJECT,
        "redis_bandwidth": FaultTarget.SUBJECT,
        "redis_timeout": FaultTarget.SUBJECT,
        "redis_cut": FaultTarget.SUBJECT,
        "counter_drift": FaultTarget.KEY,
        "bypass_limit": FaultTarget.KEY,
        "ghost_limit": FaultTarget.KEY,
    }


@pytest.mark.parametrize(
    ("fault", "params", "toxic"),
    [
        (
            "redis_latency",
            {"latency_ms": 80},
            {"type": "latency", "stream": "downstream", "attributes": {"latency": 80, "jitter": 0}},
        ),
        (
            "redis_jitter",
            {},
            {
                "type": "latency",
                "stream": "downstream",
                "attributes": {"latency": 100, "jitter": 50},
            },
        ),
        (
            "redis_bandwidth",
            {"kilobytes_per_second": 4},
            {"type": "bandwidth", "stream": "downstream", "attributes": {"rate": 4}},
        ),
        (
            "redis_timeout",
            {},
            {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}},
        ),
        (
            "redis_cut",
            {},
            {"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 0}},
        ),
    ],
)
def test_each_network_fault_makes_its_own_named_toxic(
    fault: str, params: dict[str, Any], toxic: dict[str, Any]
) -> None:
    spec = RateLimiterPlugin.fault(fault).params.model_validate(params)
    made = faults._toxic(fault, spec).model_dump()
    assert made == {"name": f"aiops-chaos-{fault}", **toxic}


@pytest.mark.parametrize(
    ("fault", "params", "says"),
    [
        (
            "redis_latency",
            {"latency_ms": 0},
            "latency_ms\n  Input should be greater than or equal to 1",
        ),
        (
            "redis_latency",
            {"latency_ms": 50, "jitter_ms": 60},
            "jitter_ms (60) must not exceed latency_ms (50)",
        ),
        (
            "redis_jitter",
            {"jitter_ms": 0},
            "jitter_ms\n  Input should be greater than or equal to 1",
        ),
        (
            "redis_bandwidth",
            {"kilobytes_per_second": 0},
            "kilobytes_per_second\n  Input should be greater than or equal to 1",
        ),
        (
            "redis_timeout",
            {"timeout_ms": -1},
            "timeout_ms\n  Input should be greater than or equal to 0",
        ),
        (
            "redis_timeout",
            {"timeout_ms": 600_001},
            "timeout_ms\n  Input should be less than or equal to 600000",
        ),
        ("redis_cut", {"timeout_ms": 5}, "timeout_ms\n  Extra inputs are not permitted"),
        (
            "fill_redis_disk",
            {"percent": 100},
            "percent\n  Input should be less than or equal to 99",
        ),
        ("partition_node", {"direction": "up"}, "Input should be 'both', 'ingress' or 'egress'"),
        ("pause_node", {"seconds": 3}, "seconds\n  Extra inputs are not permitted"),
    ],
)
def test_bad_params_are_refused_with_the_field_and_the_bound(
    fault: str, params: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValidationError) as err:
        RateLimiterPlugin.fault(fault).params.model_validate(params)
    assert says in str(err.value)


@pytest.mark.parametrize("path", ["redis", "/var/../etc", "/data/$(id)", "/a b", "/"])
def test_redis_data_dir_must_be_a_plain_absolute_path(path: str) -> None:
    with pytest.raises(registry.InvalidConfig, match="redisDataDir: String should match"):
        registry.validate_config(RateLimiterPlugin, {"adminUrls": [NODE], "redisDataDir": path})


async def plugin_with(config: dict[str, Any]) -> RateLimiterPlugin:
    cfg = registry.validate_config(RateLimiterPlugin, {"adminUrls": [NODE], **config})
    # supervisord is never reached by these faults: they are refused before.
    ctx = PluginContext("t/rl", None, SupervisorWorkload("http://127.0.0.1:9/RPC2"))
    return RateLimiterPlugin(cfg, ctx)


async def test_faults_missing_their_config_say_which_field() -> None:
    p = await plugin_with({})
    fill = p.fault("fill_redis_disk").params()
    with pytest.raises(PluginError, match="no redisDataDir in the config"):
        await p.inject("fill_redis_disk", fill, "")
    with pytest.raises(PluginError, match="no toxiproxyUrl in the config"):
        await p.inject("redis_cut", p.fault("redis_cut").params(), "")
    with pytest.raises(PluginError, match="no toxiproxyUrl in the config"):
        await p.revert("redis_cut", p.fault("redis_cut").params(), "")
    await p.close()
    await p.ctx.aclose()


async def test_partition_under_supervisord_is_refused_and_its_revert_is_a_no_op() -> None:
    p = await plugin_with({})
    spec = p.fault("partition_node").params()
    assert p.ctx.workload is not None
    with pytest.raises(PluginError, match="a partition is a NetworkPolicy between pods"):
        await p.ctx.workload.partition("rl-node-1", "x", "both")
    healed = await p.revert("partition_node", spec, "rl-node-1")
    assert healed.ok and "no partition to heal" in healed.message
    await p.close()
    await p.ctx.aclose()
