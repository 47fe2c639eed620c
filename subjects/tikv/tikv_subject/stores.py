"""Store names, states and addresses: how a PD store becomes a member, and how a Prometheus
series finds its store."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from aiops.subjects.contract import MemberState
from tikv_subject.pd_models import MetaStore, StoreInfo

# PD's state names (pkg/response/store.go). An Up store is renamed by its heartbeat's age:
# Disconnected after 20 s without one, Down after max-store-down-time (30 min by default); both
# mean it is not serving, so both are Down to us. PD never renames an Offline store, however
# long it has been silent: that age is judged here.
DOWN_STATES = frozenset({"Down", "Disconnected"})
REMOVING_STATES = frozenset({"Offline"})  # being removed: PD moves its regions away
GONE_STATES = frozenset({"Tombstone"})  # removed: not a member any more
DISCONNECTED_AFTER = timedelta(seconds=20)  # PD's storeDisconnectDuration
# metapb.NodeState, where PD sends it (5.0+): it says Removing/Removed even where a state name
# would be read otherwise.
NODE_REMOVING, NODE_REMOVED = 2, 3
STATE_TOMBSTONE = 2  # metapb.StoreState


@dataclass(frozen=True)
class Condition:
    """How this plugin reads one store of PD's list."""

    state: MemberState
    removing: bool  # Offline / Removing: PD is moving its regions away; a person's decision
    removed: bool  # Tombstone / Removed: not a member
    message: str  # why it is not simply Up; empty when it is

    @property
    def serving(self) -> bool:
        """Up, heartbeating, and not being removed: may take leaders, may be touched."""
        return self.state is MemberState.UP and not self.removing


def condition(info: StoreInfo, pd_now: datetime) -> Condition:
    """The store's condition as PD defines it, `pd_now` being PD's clock (heartbeat ages are
    PD's, not ours)."""
    s, st = info.store, info.status
    if s.state_name in GONE_STATES or s.node_state == NODE_REMOVED or s.state == STATE_TOMBSTONE:
        return Condition(MemberState.DOWN, False, True, "removed (Tombstone)")
    if s.state_name in DOWN_STATES:
        return Condition(MemberState.DOWN, False, False, f"PD reports {s.state_name}")
    if s.state_name in REMOVING_STATES or s.node_state == NODE_REMOVING:
        seen = st.last_heartbeat_ts
        if seen is None or pd_now - seen > DISCONNECTED_AFTER:
            since = f"since {seen.isoformat()}" if seen else "ever"
            return Condition(
                MemberState.DOWN,
                True,
                False,
                f"PD reports {s.state_name} (being removed) and has had no heartbeat {since}: "
                "PD cannot move its regions away from a dead store",
            )
        return Condition(
            MemberState.DEGRADED,
            True,
            False,
            f"PD reports {s.state_name}: being removed, PD is moving its regions away",
        )
    if s.state_name == "Up":
        return Condition(MemberState.UP, False, False, "")
    return Condition(
        MemberState.UNKNOWN, False, False, f"PD reports an unknown state {s.state_name!r}"
    )


def store_name(store_id: int) -> str:
    return f"store-{store_id}"


def parse_store_id(value: Any) -> Any:
    """Accept 3, "3" and "store-3" (what a runbook's `{entity}` becomes)."""
    if isinstance(value, str):
        text = value.strip()
        text = text.removeprefix("store-")
        if text.isdigit():
            return int(text)
        raise ValueError(f"not a store: {value[:40]!r} (expected store-<id> or an id)")
    return value


StoreId = Annotated[int, BeforeValidator(parse_store_id), Field(gt=0)]


def member_state(state_name: str) -> MemberState:
    """By the state name alone (no heartbeat age): Offline is Degraded, not Up."""
    if state_name in DOWN_STATES:
        return MemberState.DOWN
    if state_name in REMOVING_STATES:
        return MemberState.DEGRADED
    if state_name == "Up":
        return MemberState.UP
    return MemberState.UNKNOWN


def _split(address: str) -> tuple[str, str]:
    host, _, port = address.rpartition(":")
    if not host:  # no port at all
        return address.strip("[]"), ""
    return host.strip("[]"), port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def status_endpoint(store: MetaStore, status_port: int) -> str:
    """host:port of the store's status server (where /metrics is). TiKV reports it as
    status_address, unless it listens on 0.0.0.0 without an advertised address: then the
    host of its gRPC address with the status port."""
    host, port = _split(store.status_address)
    if host and host not in ("0.0.0.0", "::") and port:
        return store.status_address
    grpc_host, _ = _split(store.address)
    return f"{grpc_host}:{port or status_port}"


def series_keys(store: MetaStore, status_port: int) -> list[str]:
    """Label values that identify this store in Prometheus, most specific first: its status
    endpoint, then its host, then (for DNS names) the host's first label, e.g. the pod."""
    endpoint = status_endpoint(store, status_port)
    host, port = _split(endpoint)
    keys = [endpoint, host]
    if not _is_ip(host):
        first = host.split(".", 1)[0]
        keys += [f"{first}:{port}", first]
    return list(dict.fromkeys(keys))


def series_index(stores: list[MetaStore], status_port: int) -> dict[str, int]:
    """Label value → store id, keeping only values that name exactly one store (two stores
    on one host share the host, but not the endpoint)."""
    seen: dict[str, set[int]] = {}
    for s in stores:
        for key in series_keys(s, status_port):
            seen.setdefault(key, set()).add(s.id)
    return {key: next(iter(ids)) for key, ids in seen.items() if len(ids) == 1}
