"""The operator is SIGKILLed while TiKV actions hold an evict-leader scheduler: during
`evict_leader`'s wait for the leaders to move, and during `restart_store`'s drain before the
pod goes, each under autonomy execute and propose (both actions wait for a person's Approval
under either; under observe nothing runs). The operator is a real process (`aiops operator
run`) against the real API server and PD stand-ins on real sockets; after a fresh operator
takes over, PD holds no scheduler of ours, and the one a person added on purpose (store-3)
was never touched, though the runbook sees it as a leftover."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
from kubernetes import client as k8s

from aiops.api import GROUP, VERSION
from ratelimiter.localstack import LocalStack
from tests.fixtures.aiops_api import api_namespace
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import LoopEnv, OperatorProcess, aiops, awaiting, one_incident
from tests.fixtures.pd_standin import PdStandIn, healthy
from tests.fixtures.polling import wait_for
from tests.fixtures.tikv_doubles import StubPrometheus
from tests.fixtures.tikv_plugin import STATUS

PERSONS = 3  # the store a person evicts leaders from on purpose (pd-ctl), before anything


@pytest.fixture
def kill_env(
    aiops_api: ClusterHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopEnv]:
    # No rate limiter here: LoopEnv's stack is only read by its rate limiter helpers.
    for ns in api_namespace(aiops_api, "tikvkill"):
        custom = k8s.CustomObjectsApi(aiops_api.api_client())
        yield LoopEnv(ns, cast(LocalStack, None), custom, tmp_path_factory.mktemp("audit"))


@pytest.fixture(scope="module")
def prom() -> Iterator[dict[str, StubPrometheus]]:
    """Prometheus where store-1 is slow (the evict_leader Subjects) and where none is."""
    stubs = {"slow": StubPrometheus(), "fast": StubPrometheus()}
    for kind, stub in stubs.items():
        slow = 2.0 if kind == "slow" else 0.004
        stub.series = {
            "latency": [({"instance": STATUS[s]}, slow if s == 1 else 0.004) for s in (1, 2, 3)],
            "up": [({"instance": STATUS[s]}, 1.0) for s in (1, 2, 3)],
        }
    yield stubs
    for stub in stubs.values():
        stub.close()


def subject(env: LoopEnv, name: str, pd: PdStandIn, prom: StubPrometheus, autonomy: str) -> str:
    now = {"for": "0s"}
    env.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Subject",
            "metadata": {"name": name},
            "spec": {
                "type": "tikv",
                "config": {
                    "pdUrls": pd.urls,
                    "pollIntervalSeconds": 0.2,
                    "waitTimeoutSeconds": 120,  # the drain is held until the operator is killed
                    "restartTimeoutSeconds": 5,
                    "requestTimeoutSeconds": 3,
                },
                "prometheus": {"url": prom.url},
                "workload": {"kind": "pods", "selector": {"matchLabels": {"app": "tikv"}}},
                "interval": "1s",
                "autonomy": autonomy,
                "cooldown": "0s",
                "invariants": [
                    {"name": "store_down", **now},
                    {"name": "high_latency", **now},
                    {"name": "evict_leader_leftover", **now},
                    {"name": "leader_imbalance", "enabled": False},
                ],
            },
        }
    )
    return name


def approve(env: LoopEnv, name: str) -> None:
    done = aiops(env, "approve", name, "-n", env.ns.namespace, "--as", "bob")
    assert done.returncode == 0, done.stdout + done.stderr


def posts(pd: PdStandIn) -> int:
    return len(pd.asked("POST", "/schedulers"))


@dataclass
class Case:
    action: str  # what runs when the operator is killed
    autonomy: str
    store: int  # the store it evicts leaders from
    pd: PdStandIn = field(default_factory=lambda: healthy(PdStandIn()))
    name: str = ""  # the Subject
    incident: str = ""
    sent: int = 0  # POSTs PD had when the operator was killed

    def evicting(self) -> bool:
        return self.store in self.pd.evicted

    def cleared(self) -> bool:
        return self.store not in self.pd.evicted


CASES = [
    ("evict_leader", "execute", 1),
    ("evict_leader", "propose", 1),
    ("restart_store", "execute", 2),
    ("restart_store", "propose", 2),
]


def test_sigkill_while_actions_hold_schedulers_leaves_none_of_ours(
    kill_env: LoopEnv, prom: dict[str, StubPrometheus], tmp_path: Path
) -> None:
    """One operator, four Subjects (each its own PD): each case's action holds its scheduler
    (drain held) when the operator is SIGKILLed once; a fresh operator finishes them all."""
    cases = [Case(*c) for c in CASES]
    op = OperatorProcess(kill_env, tmp_path, AIOPS_VERIFY_TIMEOUT="6")
    try:
        for c in cases:
            c.pd.evict(PERSONS)  # a person's, added on purpose with pd-ctl
            c.pd.drains = False  # leaders do not move while this operator lives
            if c.action == "restart_store":
                c.pd.set_heartbeat_age(c.store, 25)  # PD: Disconnected
        op.start()
        for c in cases:
            stub = prom["slow" if c.action == "evict_leader" else "fast"]
            c.name = subject(
                kill_env, f"{c.action.replace('_', '-')}-{c.autonomy}", c.pd, stub, c.autonomy
            )
        for c in cases:
            invariant = "high_latency" if c.action == "evict_leader" else "store_down"
            c.incident = one_incident(kill_env, c.name, invariant, 120)
            awaiting(kill_env, c.incident)
            # restart_store drains an Up store's leaders first: the store is back before
            # the Approval, so its step evicts before it deletes the pod.
            c.pd.set_heartbeat_age(c.store, None)
        with ThreadPoolExecutor(len(cases)) as pool:  # four people approve at once
            list(pool.map(lambda c: approve(kill_env, c.incident), cases))
        for c in cases:
            wait_for(
                f"{c.name}: an evict-leader scheduler on store-{c.store}",
                c.evicting,
                120,
            )
        assert op.proc is not None
        os.kill(op.proc.pid, signal.SIGKILL)
        assert op.wait_killed(timeout=10) == -signal.SIGKILL
        for c in cases:
            c.sent = posts(c.pd)
            c.pd.drains = True
        op.start()  # a fresh operator, as after a crash
        for c in cases:
            inc = kill_env.wait_phase(c.incident, "Resolved", "Escalated", timeout=120)
            (ran,) = inc["status"]["executedActions"]
            assert ran["action"] == c.action, inc["status"]
            assert "did not add" not in ran.get("message", ""), ran
            wait_for(f"{c.name}: no scheduler of ours", c.cleared, 60)
            assert sorted(c.pd.evicted) == [PERSONS], c.name  # the person's, never touched
            # evict_leader was sent again under its key: its own scheduler was recognised,
            # not added a second time.
            assert posts(c.pd) == c.sent, c.name
    finally:
        op.stop()
        for c in cases:
            c.pd.close()
    for c in cases:
        assert sorted(c.pd.evicted) == [PERSONS], c.name
