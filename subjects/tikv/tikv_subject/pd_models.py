"""PD's HTTP responses as pydantic models, following PD's documented shapes (server/api and
pkg/response in tikv/pd). Unknown fields are ignored (PD adds fields between versions); the
fields we act on are required, so a store without an id or state is an error, not a guess.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# PD renders byte sizes with docker/go-units (`"49.98GiB"`, `"0B"`); go-units parses them back
# with binary multipliers whether or not the `i` is there. Older PDs omit zero fields.
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtpe])?i?b?\s*$", re.IGNORECASE)
_MULT = {
    None: 1,
    "k": 1 << 10,
    "m": 1 << 20,
    "g": 1 << 30,
    "t": 1 << 40,
    "p": 1 << 50,
    "e": 1 << 60,
}


def parse_byte_size(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a byte size, not a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a byte size cannot be negative")
        return int(value)
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            unit = m.group(2).lower() if m.group(2) else None
            return int(float(m.group(1)) * _MULT[unit])
    raise ValueError(f"not a byte size like '49.98GiB': {str(value)[:40]!r}")


ByteSize = Annotated[int, BeforeValidator(parse_byte_size)]


def _none_as_empty(value: Any) -> Any:
    # Go renders a nil slice as null.
    return [] if value is None else value


def _none_as_empty_map(value: Any) -> Any:
    return {} if value is None else value


class PdModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class StoreLabel(PdModel):
    key: str
    value: str


class MetaStore(PdModel):
    """metapb.Store plus PD's `state_name`: the store's state (Up, Offline, Tombstone), an Up
    one renamed Disconnected or Down by its heartbeat's age (pkg/response/store.go).
    `state` and `node_state` are the protobuf enums' numbers, left out when 0 (Up;
    Preparing), and `node_state` is missing altogether before PD 5.0."""

    id: int = Field(gt=0)
    address: str = Field(min_length=1)
    status_address: str = ""
    version: str = ""
    state_name: str = Field(min_length=1)
    state: int = 0  # metapb.StoreState: 0 Up, 1 Offline, 2 Tombstone
    node_state: int | None = None  # metapb.NodeState: 0 Preparing, 1 Serving, 2 Removing, 3 Removed
    labels: Annotated[list[StoreLabel], BeforeValidator(_none_as_empty)] = []


class StoreStatus(PdModel):
    capacity: ByteSize | None = None
    available: ByteSize | None = None
    leader_count: int = 0
    leader_weight: float = 1.0
    region_count: int = 0
    start_ts: datetime | None = None
    last_heartbeat_ts: datetime | None = None
    uptime: str | None = None


class StoreInfo(PdModel):
    store: MetaStore
    status: StoreStatus


class StoresInfo(PdModel):
    """GET /pd/api/v1/stores."""

    count: int
    stores: Annotated[list[StoreInfo], BeforeValidator(_none_as_empty)] = []


class Peer(PdModel):
    """metapb.Peer as PD renders it (MetaPeer: plus role_name and is_learner). A region
    without a leader has a leader with no store_id, hence the default 0."""

    id: int = 0
    store_id: int = 0
    role_name: str = "Voter"
    is_learner: bool = False


class DownPeer(PdModel):
    peer: Peer
    down_seconds: int = 0


class RegionInfo(PdModel):
    """GET /pd/api/v1/region/id/{id}, and each region of a check list."""

    id: int = Field(gt=0)
    peers: Annotated[list[Peer], BeforeValidator(_none_as_empty)] = []
    leader: Peer | None = None
    down_peers: Annotated[list[DownPeer], BeforeValidator(_none_as_empty)] = []
    pending_peers: Annotated[list[Peer], BeforeValidator(_none_as_empty)] = []

    @property
    def leader_store(self) -> int:
        return self.leader.store_id if self.leader else 0

    def store_ids(self) -> set[int]:
        return {p.store_id for p in self.peers}

    def unhealthy_store_ids(self) -> set[int]:
        return {d.peer.store_id for d in self.down_peers} | {p.store_id for p in self.pending_peers}


class RegionsInfo(PdModel):
    """GET /pd/api/v1/regions/check/{miss-peer,down-peer,pending-peer}."""

    count: int
    regions: Annotated[list[RegionInfo], BeforeValidator(_none_as_empty)] = []


class EvictLeaderConfig(PdModel):
    """GET /pd/api/v1/scheduler-config/evict-leader-scheduler/list: the stores under eviction
    (keys of store-id-ranges, as strings in JSON)."""

    store_id_ranges: Annotated[dict[int, Any], BeforeValidator(_none_as_empty_map)] = Field(
        alias="store-id-ranges"
    )
