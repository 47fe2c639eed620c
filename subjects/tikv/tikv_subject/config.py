"""The TiKV plugin's configuration: the Subject's `spec.config`, camelCase on the wire.

Invariant thresholds are not here: they belong to the invariants and are tuned per Subject
through `spec.invariants`. This holds where things are and how long to wait for them.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AnyHttpUrl, Field, StringConstraints, field_validator

from aiops.subjects.config import LabelValue, PluginConfig
from aiops.subjects.faults.diskfill import DATA_DIR_PATTERN
from aiops.subjects.faults.netem import DEVICE_PATTERN

GRPC_PORT = 20160
STATUS_PORT = 20180

# A Prometheus label name and a range, both inside PromQL: anything else is refused rather
# than escaped.
LabelName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=64)]
RangeWindow = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(s|m|h)$", max_length=8)]


class TikvConfig(PluginConfig):
    pd_urls: list[AnyHttpUrl] = Field(
        min_length=1,
        max_length=8,
        description="PD's client URLs (e.g. http://pd:2379), tried in order; any PD member "
        "answers for the cluster.",
    )
    status_port: int = Field(
        default=STATUS_PORT,
        ge=1,
        le=65535,
        description="TiKV's status port, where it serves /metrics (20180 by default). Metrics "
        "are selected on this port; the gRPC port (20160) serves no metrics.",
    )
    prometheus_job: LabelValue = Field(
        default="tikv", description="The Prometheus job that scrapes TiKV's status port."
    )
    store_label: LabelName = Field(
        default="instance",
        description="The Prometheus label that tells stores apart: its value is matched to a "
        "store's status address (host:port), its host, or the host's first DNS label.",
    )
    latency_window: RangeWindow = Field(
        default="1m", description="The rate() window of the latency query."
    )
    leader_imbalance_min_leaders: int = Field(
        default=20,
        ge=0,
        description="Below this many leaders in all, leader_imbalance stays quiet: a handful "
        "of regions cannot be spread evenly.",
    )
    request_timeout_seconds: float = Field(
        default=3.0, gt=0, le=60, description="Timeout of one request to PD."
    )
    wait_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=900,
        description="How long evict_leader waits for leaders to drain, and transfer_leader "
        "for the leader to move.",
    )
    restart_timeout_seconds: float = Field(
        default=180.0,
        gt=0,
        le=1800,
        description="How long restart_store waits for the restarted store to be Up again.",
    )
    poll_interval_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How often PD is polled while waiting."
    )
    workload_members: dict[str, str] = Field(
        default_factory=dict,
        max_length=256,
        description='Store ("store-1" or "1") to workload member (pod or supervisord '
        "program), for stores whose member is not named by memberPattern.",
    )
    member_pattern: str = Field(
        default=r"^(?P<member>[^.:]+)",
        max_length=256,
        description="Regex over a store's address whose group 'member' names its workload "
        "member; the default takes the first DNS label (tikv-0 of "
        "tikv-0.tikv-peer.ns.svc:20160), which is the pod of a StatefulSet.",
    )

    data_dir: str = Field(
        default="/var/lib/tikv",
        max_length=512,
        description="A store's data directory, for the fill_store_disk fault: a path inside "
        "the store's pod (tidb-operator's default is /var/lib/tikv), or for supervisor "
        "workloads a local path, where {member} stands for the store's member name.",
    )
    store_container: (
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
        | None
    ) = Field(
        default=None,
        description="The container of a store's pod that faults run commands in (disk fill, "
        "latency); unset: the pod's only container.",
    )
    network_device: Annotated[str, StringConstraints(pattern=DEVICE_PATTERN)] = Field(
        default="eth0",
        description="The store pod's network device the store_latency fault delays.",
    )

    @field_validator("data_dir")
    @classmethod
    def _plain_absolute_path(cls, path: str) -> str:
        if not re.match(DATA_DIR_PATTERN, path.replace("{member}", "member")):
            raise ValueError(
                "an absolute path of plain names (letters, digits, _ . + @ -; no '..'), "
                "optionally with {member}"
            )
        return path

    def data_dir_of(self, member: str) -> str | None:
        """The member's data directory; None when the member's name would not make a plain
        path of it (a name is never trusted to be one)."""
        path = self.data_dir.replace("{member}", member)
        return path if re.match(DATA_DIR_PATTERN, path) else None

    @field_validator("status_port")
    @classmethod
    def _not_the_grpc_port(cls, port: int) -> int:
        # The defect we must not repeat: TiKV metrics queried on the gRPC port.
        if port == GRPC_PORT:
            raise ValueError(
                f"{GRPC_PORT} is TiKV's gRPC port, which serves no metrics; the status port "
                f"(default {STATUS_PORT}) serves /metrics"
            )
        return port

    @field_validator("member_pattern")
    @classmethod
    def _compiles_with_member_group(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise ValueError(f"not a regular expression: {err}") from err
        if "member" not in compiled.groupindex:
            raise ValueError("needs a named group 'member', e.g. ^(?P<member>[^.:]+)")
        return pattern
