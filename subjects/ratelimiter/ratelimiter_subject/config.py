"""The rate limiter plugin's configuration: the Subject's `spec.config`, camelCase on the wire.

Invariant thresholds and holds are not here: they belong to the invariants and are tuned per
Subject through `spec.invariants`. This says where things are and how long to wait for them.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AnyHttpUrl, Field, RedisDsn, StringConstraints, model_validator

from aiops.subjects.config import LabelValue, PluginConfig
from aiops.subjects.faults.diskfill import DataDir

# A node id as the service allows it (RL_NODE_ID), and a member name as the API allows it.
NodeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
Member = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", max_length=63)
]
# A range inside PromQL: anything else is refused rather than escaped.
RangeWindow = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(s|m)$", max_length=32)]
KeyPrefix = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


_USERINFO = re.compile(r"(//)[^/@\s]+@")


def redact(text: str) -> str:
    """`text` with the user:password of every URL in it masked (a Redis URL may carry one)."""
    return _USERINFO.sub(r"\1***@", text)


class RateLimiterConfig(PluginConfig):
    admin_urls: list[AnyHttpUrl] = Field(
        min_length=1,
        max_length=16,
        description="Where the admin API answers (the registry, counters, limits): a Service "
        "URL in a cluster, or several nodes' URLs; tried in order until one answers.",
    )
    nodes: dict[NodeId, AnyHttpUrl] = Field(
        default_factory=dict,
        max_length=64,
        description="Node id to base URL, for nodes to probe even when the registry cannot "
        "be read. Every node in the registry is probed at its advertised address anyway.",
    )
    redis_url: RedisDsn | None = Field(
        default=None,
        description="The limiter's Redis, read (never written) to hold the counters the API "
        "reports against the log itself. Without it counter_drift, over_limit and "
        "ghost_allowing are not judged.",
    )
    key_prefix: KeyPrefix = Field(
        default="rl", description="The service's RL_KEY_PREFIX: every Redis key starts with it."
    )
    prometheus_job: LabelValue = Field(
        default="ratelimiter", description="The Prometheus job that scrapes the nodes."
    )
    latency_window: RangeWindow = Field(
        default="30s",
        description="The rate() window of the latency query; at least twice the scrape "
        "interval. Shorter detects and clears sooner.",
    )
    request_timeout_seconds: float = Field(
        default=0.8,
        gt=0,
        le=30,
        description="Timeout of one request to a node or to Redis. Keep it under the "
        "Subject's interval, or a hung node turns the whole observation Unknown instead of "
        "showing that node Down.",
    )
    max_keys: int = Field(
        default=200,
        ge=1,
        le=1000,
        description="Most keys whose counters one observation holds against Redis.",
    )
    restart_timeout_seconds: float = Field(
        default=60.0, gt=0, le=900, description="How long restart_node waits for the node."
    )
    redis_member: Member = Field(
        default="redis",
        description="The workload member that runs Redis, for the redis_outage fault.",
    )
    toxiproxy_url: AnyHttpUrl | None = Field(
        default=None,
        description="toxiproxy's REST API in front of Redis, for the redis_latency fault.",
    )
    toxiproxy_proxy: LabelValue = Field(
        default="redis", description="The toxiproxy proxy the nodes reach Redis through."
    )
    redis_data_dir: DataDir | None = Field(
        default=None,
        description="Redis's data directory, for the fill_redis_disk fault: a local path "
        "(supervisor workloads) or a path inside the Redis pod (pods workloads).",
    )

    @model_validator(mode="after")
    def _distinct_admin_urls(self) -> RateLimiterConfig:
        urls = [str(u).rstrip("/") for u in self.admin_urls]
        if len(set(urls)) != len(urls):
            raise ValueError("adminUrls lists the same URL twice")
        return self

    def admin_bases(self) -> list[str]:
        return [str(u).rstrip("/") for u in self.admin_urls]

    def node_bases(self) -> dict[str, str]:
        return {name: str(u).rstrip("/") for name, u in self.nodes.items()}

    def redis_shown(self) -> str:
        return redact(str(self.redis_url)) if self.redis_url is not None else "(none)"
