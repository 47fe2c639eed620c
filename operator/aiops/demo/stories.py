"""What differs between subjects in the demo: which faults it offers and where they aim, how
load is made, what Prometheus is asked, and how a run starts from a clean state."""

from __future__ import annotations

import asyncio
import xmlrpc.client
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from aiops.demo.sources import Query, Store
from aiops.subjects.contract import FaultSpec, FaultTarget

DEMO_KEY = "user-42"
"""The rate-limit key the key faults write into: no load generator key, so the story is its."""


@dataclass(frozen=True)
class Extra:
    """A line under the members: a shared dependency (Redis) and what is known of it."""

    name: str
    ok: bool | None
    text: str


class Story(Protocol):
    subject_type: str
    default_fault: str
    load_text: str

    @property
    def faults(self) -> dict[str, FaultSpec]: ...

    def target(self, fault: FaultSpec, subject: dict[str, Any]) -> dict[str, Any] | None:
        """The Chaos' spec.target for `fault` (None for a fault on the subject as a whole)."""

    def params(self, fault: str) -> dict[str, Any]:
        """The demo's parameters for `fault` (--param adds to and overrides them)."""

    def queries(self) -> list[Query]: ...

    def rates(self) -> list[tuple[str, str]]:
        """(query label, shown name) of the workload panel's sparklines, first one first."""

    def extras(self, store: Store) -> list[Extra]: ...

    def prepare(self, subject: dict[str, Any]) -> list[str]:
        """Clean state for a run (counters reset, load stopped); says what it did."""

    def start_load(self, subject: dict[str, Any]) -> str: ...

    def stop_load(self, subject: dict[str, Any]) -> str: ...


def _supervisor(subject: dict[str, Any]) -> Any:
    workload = (subject.get("spec") or {}).get("workload") or {}
    url = (workload.get("supervisor") or {}).get("url")
    if workload.get("kind") != "supervisor" or not url:
        return None
    return xmlrpc.client.ServerProxy(url, allow_none=True)


def _members(subject: dict[str, Any]) -> list[dict[str, Any]]:
    return list((subject.get("status") or {}).get("members") or [])


class RateLimiterStory:
    subject_type = "ratelimiter"
    default_fault = "kill_node"
    load_text = ("the load generator (a supervisord program) sends 50 checks/s over 100 keys "
                 "to the three nodes")

    @property
    def faults(self) -> dict[str, FaultSpec]:
        from ratelimiter_subject.faults import FAULTS

        return {f.name: f for f in FAULTS}

    def target(self, fault: FaultSpec, subject: dict[str, Any]) -> dict[str, Any] | None:
        if fault.target is FaultTarget.MEMBER:
            names = [m["name"] for m in _members(subject)]
            return {"member": "rl-node-2" if "rl-node-2" in names or not names else names[-1]}
        if fault.target is FaultTarget.KEY:
            return {"member": DEMO_KEY}
        return None

    def params(self, fault: str) -> dict[str, Any]:
        # The demo Subject's latency invariant asks for 250 ms (a busy laptop reaches 50 ms
        # on its own): the delay faults add 500 ms, so the demo's fault is the one it sees.
        if fault == "redis_latency":
            return {"latency_ms": 500}
        if fault == "redis_jitter":
            return {"latency_ms": 500, "jitter_ms": 200}
        return {}

    def queries(self) -> list[Query]:
        return [
            Query("allowed", 'sum(rate(ratelimiter_checks_total{result="allowed"}[5s]))'),
            Query("blocked", 'sum(rate(ratelimiter_checks_total{result="blocked"}[5s]))'),
            Query("errors", 'sum(rate(ratelimiter_checks_total{result="error"}[5s]))'),
            Query("redis_up", "sum(ratelimiter_redis_up)", series=False),
            Query("redis_of", "count(ratelimiter_redis_up)", series=False),
        ]

    def rates(self) -> list[tuple[str, str]]:
        return [("allowed", "allowed"), ("blocked", "blocked"), ("errors", "errors")]

    def extras(self, store: Store) -> list[Extra]:
        with store.lock:
            up, of = store.gauges.get("redis_up"), store.gauges.get("redis_of")
        if up is None or not of:
            return [Extra("redis", None, "no node reports it")]
        return [Extra("redis", up >= of, f"reached by {up:.0f}/{of:.0f} nodes")]

    def prepare(self, subject: dict[str, Any]) -> list[str]:
        from ratelimiter_subject.api import RateLimiterApi

        done = [self.stop_load(subject)]
        bases = ((subject.get("spec") or {}).get("config") or {}).get("adminUrls") or []

        async def reset() -> int:
            async with httpx.AsyncClient() as http:
                return await RateLimiterApi(bases, http, 5.0).reset(DEMO_KEY)

        try:
            dropped = asyncio.run(reset())
            done.append(f"counter of key {DEMO_KEY!r} reset ({dropped} entries dropped)")
        except Exception as err:  # a node down from an earlier run: said, not fatal
            done.append(f"counter of key {DEMO_KEY!r} not reset: {err}")
        return done

    def start_load(self, subject: dict[str, Any]) -> str:
        rpc = _supervisor(subject)
        if rpc is None:
            return "no supervisord workload: no load generator to start"
        state = rpc.supervisor.getProcessInfo("loadgen")["statename"]
        if state not in ("RUNNING", "STARTING"):
            rpc.supervisor.startProcess("loadgen", True)
        return "load generator started"

    def stop_load(self, subject: dict[str, Any]) -> str:
        rpc = _supervisor(subject)
        if rpc is None:
            return "no load generator"
        try:
            state = rpc.supervisor.getProcessInfo("loadgen")["statename"]
            if state in ("RUNNING", "STARTING"):
                rpc.supervisor.stopProcess("loadgen", True)
                return "load generator stopped"
        except (OSError, xmlrpc.client.Error) as err:
            return f"load generator not stopped: {err}"
        return "load generator idle"


class TikvStory:
    """The kind path: TiKV's stores are pods, a kill is a pod deleted; load is whatever the
    cluster runs (the demo starts none)."""

    subject_type = "tikv"
    default_fault = "kill_store"
    load_text = "TiKV serves whatever load its cluster runs; the demo adds none"

    @property
    def faults(self) -> dict[str, FaultSpec]:
        from tikv_subject.faults import FAULTS

        return {f.name: f for f in FAULTS}

    def target(self, fault: FaultSpec, subject: dict[str, Any]) -> dict[str, Any] | None:
        if fault.target is FaultTarget.SUBJECT:
            return None
        stores = [m["name"] for m in _members(subject) if m.get("role") == "tikv"]
        return {"member": stores[-1] if stores else "store-1"}

    def params(self, fault: str) -> dict[str, Any]:
        return {}

    def queries(self) -> list[Query]:
        return [
            Query("requests", "sum(rate(tikv_grpc_msg_duration_seconds_count[30s]))"),
            Query("errors", "sum(rate(tikv_grpc_msg_fail_total[30s]))"),
        ]

    def rates(self) -> list[tuple[str, str]]:
        return [("requests", "gRPC/s"), ("errors", "failed/s")]

    def extras(self, store: Store) -> list[Extra]:
        return []

    def prepare(self, subject: dict[str, Any]) -> list[str]:
        return []

    def start_load(self, subject: dict[str, Any]) -> str:
        return self.load_text

    def stop_load(self, subject: dict[str, Any]) -> str:
        return "no load generator"
