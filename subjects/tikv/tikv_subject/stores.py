"""Store names, states and addresses: how a PD store becomes a member, and how a Prometheus
series finds its store."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from aiops.subjects.contract import MemberState
from tikv_subject.pd_models import MetaStore

# PD's state names. Disconnected: no heartbeat for 20 s; Down: none for max-store-down-time
# (30 min by default). Both mean the store is not serving, so both are Down to us.
DOWN_STATES = frozenset({"Down", "Disconnected"})
UP_STATES = frozenset({"Up", "Offline"})  # Offline: being decommissioned, still serving
GONE_STATES = frozenset({"Tombstone"})  # removed on purpose: not a member any more


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
    if state_name in DOWN_STATES:
        return MemberState.DOWN
    if state_name in UP_STATES:
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
