"""What differs between subjects in the demo: which faults it offers and where they aim, how
load is made, what Prometheus is asked, and how a run starts from a clean state."""

from __future__ import annotations

import asyncio
import contextlib
import threading
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

    def subject_patch(self, fault: str) -> dict[str, Any]:
        """What the Subject's spec needs for `fault`'s story (merged into it at the start of
        a run; None removes a field an earlier run set)."""

    def queries(self) -> list[Query]: ...

    def rates(self) -> list[tuple[str, str]]:
        """(query label, shown name) of the workload panel's sparklines, first one first."""

    def extras(self, store: Store) -> list[Extra]: ...

    def prepare(self, subject: dict[str, Any], fault: str) -> list[str]:
        """Clean state for a run of `fault` (counters reset, load stopped); says what it
        did."""

    def start_load(self, subject: dict[str, Any]) -> str: ...

    def stop_load(self, subject: dict[str, Any]) -> str: ...


def _supervisor(subject: dict[str, Any]) -> Any:
    workload = (subject.get("spec") or {}).get("workload") or {}
    url = (workload.get("supervisor") or {}).get("url")
    if workload.get("kind") != "supervisor" or not url:
        return None
    return xmlrpc.client.ServerProxy(url, allow_none=True)


def _admin(subject: dict[str, Any]) -> list[str]:
    return list(((subject.get("spec") or {}).get("config") or {}).get("adminUrls") or [])


class Trickle(threading.Thread):
    """Checks on the demo key, 20 a second, round robin over the nodes: the key faults are
    about a key in use (a limit ignored shows only when more requests are let through than
    it allows: 5 a minute for ghost_limit, over a default window of one second)."""

    def __init__(self, nodes: list[str], key: str, per_second: float = 20.0) -> None:
        super().__init__(name="demo-key-load", daemon=True)
        self.nodes, self.key, self.every = nodes, key, 1.0 / per_second
        self.stopped = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=1.0) as http:
            i = 0
            while self.nodes and not self.stopped.wait(self.every):
                with contextlib.suppress(httpx.HTTPError):  # a node down is the story
                    http.post(f"{self.nodes[i % len(self.nodes)]}/check", json={"key": self.key})
                i += 1

    def halt(self) -> None:
        self.stopped.set()
        self.join(timeout=3)


def _members(subject: dict[str, Any]) -> list[dict[str, Any]]:
    return list((subject.get("status") or {}).get("members") or [])


class RateLimiterStory:
    subject_type = "ratelimiter"
    default_fault = "kill_node"
    load_text = (
        "the load generator (a supervisord program) sends 50 checks/s over 100 keys "
        f"to the three nodes, and the demo 20 checks/s on key {DEMO_KEY!r}"
    )

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
        # The demo Subject's latency invariant asks for 200 ms (a busy laptop reaches 50 ms
        # on its own): the delay faults add 300 ms, so the demo's fault is the one it sees,
        # and not so much that observing the nodes times out.
        if fault == "redis_latency":
            return {"latency_ms": 300}
        if fault == "redis_jitter":
            return {"latency_ms": 300, "jitter_ms": 100}
        if fault == "fill_redis_disk":
            return {"capacity_bytes": 64 * 1024 * 1024}  # a 64 MiB volume, filled to 90%
        return {}

    def subject_patch(self, fault: str) -> dict[str, Any]:
        # A Redis round trip of 300 ms makes the admin API's answers slower than the
        # observer's 0.8 s: the latency stories give it 2.5 s, so the screen shows high
        # latency rather than a failing observation. Every other story keeps 0.8 s, which a
        # paused node needs (a longer wait for it fails the whole observation).
        slow = fault in ("redis_latency", "redis_jitter", "redis_bandwidth")
        return {"config": {"requestTimeoutSeconds": 2.5 if slow else None}}

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

    def prepare(self, subject: dict[str, Any], fault: str) -> list[str]:
        from ratelimiter_subject.api import RateLimiterApi

        done = [self.stop_load(subject)]
        bases = _admin(subject)

        async def reset() -> list[str]:
            async with httpx.AsyncClient() as http:
                api = RateLimiterApi(bases, http, 5.0)
                said = [
                    f"counter of key {DEMO_KEY!r} reset "
                    f"({await api.reset(DEMO_KEY)} entries dropped)"
                ]
                if fault == "bypass_limit":
                    # Admissions written past the limit stay visible only while the window
                    # holds them: a limit of 5 per 10 minutes keeps them for the story.
                    await api.put_limit(DEMO_KEY, 5, 600_000)
                    said.append(f"key {DEMO_KEY!r} limited to 5 per 10 minutes")
                elif await api.delete_limit(DEMO_KEY):
                    said.append(f"per-key limit of {DEMO_KEY!r} removed")
                return said

        try:
            done += asyncio.run(reset())
        except Exception as err:  # a node down from an earlier run: said, not fatal
            done.append(f"key {DEMO_KEY!r} not reset: {err}")
        return done

    def start_load(self, subject: dict[str, Any]) -> str:
        rpc = _supervisor(subject)
        if rpc is None:
            return "no supervisord workload: no load generator to start"
        state = rpc.supervisor.getProcessInfo("loadgen")["statename"]
        if state not in ("RUNNING", "STARTING"):
            rpc.supervisor.startProcess("loadgen", True)
        self.trickle = Trickle([str(u) for u in _admin(subject)], DEMO_KEY)
        self.trickle.start()
        return f"load generator started, and 20 checks/s on key {DEMO_KEY!r}"

    def stop_load(self, subject: dict[str, Any]) -> str:
        trickle: Trickle | None = getattr(self, "trickle", None)
        if trickle is not None:
            trickle.halt()
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

    def subject_patch(self, fault: str) -> dict[str, Any]:
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

    def prepare(self, subject: dict[str, Any], fault: str) -> list[str]:
        return []

    def start_load(self, subject: dict[str, Any]) -> str:
        return self.load_text

    def stop_load(self, subject: dict[str, Any]) -> str:
        return "no load generator"
