"""The Subject's spec.config as the core validates it: what is refused, and that the message
names the field and what is wrong with it."""

from __future__ import annotations

from typing import Any

import pytest

from aiops.subjects import registry
from ratelimiter_subject.config import RateLimiterConfig, redact
from ratelimiter_subject.plugin import RateLimiterPlugin

NODE = "http://127.0.0.1:8080"


def rejected(config: dict[str, Any]) -> str:
    with pytest.raises(registry.InvalidConfig) as err:
        registry.validate_config(RateLimiterPlugin, config)
    return str(err.value)


def test_the_entry_point_finds_the_plugin() -> None:
    assert registry.load("ratelimiter") is RateLimiterPlugin


def test_a_minimal_config_takes_the_defaults() -> None:
    cfg = registry.validate_config(RateLimiterPlugin, {"adminUrls": [NODE]})
    assert isinstance(cfg, RateLimiterConfig)
    assert (cfg.key_prefix, cfg.prometheus_job, cfg.redis_url) == ("rl", "ratelimiter", None)


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({}, "adminUrls: Field required"),
        ({"adminUrls": []}, "adminUrls: List should have at least 1 item"),
        ({"adminUrls": ["node-1:8080"]}, "adminUrls.0: URL scheme should be 'http' or 'https'"),
        ({"adminUrls": ["not a url"]}, "adminUrls.0: Input should be a valid URL"),
        ({"adminUrls": [NODE, NODE + "/"]}, "adminUrls lists the same URL twice"),
        (
            {"adminUrls": [NODE], "redisUrl": "http://127.0.0.1:6379"},
            "redisUrl: URL scheme should be 'redis' or 'rediss'",
        ),
        ({"adminUrls": [NODE], "latencyWindow": "5 minutes"}, "latencyWindow: String should match"),
        # Both go into PromQL: a quote would end the selector early.
        (
            {"adminUrls": [NODE], "prometheusJob": 'x"} or vector(1) #'},
            "prometheusJob: String should match",
        ),
        ({"adminUrls": [NODE], "keyPrefix": "rl*"}, "keyPrefix: String should match"),
        ({"adminUrls": [NODE], "nodes": {"bad id!": NODE}}, "nodes.bad id!.[key]"),
        (
            {"adminUrls": [NODE], "requestTimeoutSeconds": 0},
            "requestTimeoutSeconds: Input should be greater than 0",
        ),
        (
            {"adminUrls": [NODE], "maxKeys": 5000},
            "maxKeys: Input should be less than or equal to 1000",
        ),
        ({"adminUrls": [NODE], "adminURL": NODE}, "adminURL: Extra inputs are not permitted"),
    ],
)
def test_bad_configs_are_refused_naming_the_field(config: dict[str, Any], says: str) -> None:
    message = rejected(config)
    assert message.startswith("spec.config rejected by ratelimiter: ")
    assert says in message, message


def test_a_redis_password_is_never_shown() -> None:
    url = "redis://user:s3cret@redis.example:6379/0"
    cfg = RateLimiterConfig.model_validate({"adminUrls": [NODE], "redisUrl": url})
    assert cfg.redis_shown() == "redis://***@redis.example:6379/0"
    assert redact(f"cannot reach {url}: refused") == (
        "cannot reach redis://***@redis.example:6379/0: refused"
    )
    assert redact("http://127.0.0.1:8080/health") == "http://127.0.0.1:8080/health"
