"""Two operator replicas, one active: `aiops operator run --peering NAME` twice against the real
API server, in one namespace, sharing one audit directory (as two pods share the chart's
volume). One incident gets one agent session and one set of actions; SIGKILLed while the model
is thinking (the scripted server holds its second answer), the active replica is replaced by
the other, which resumes the same session from its checkpoint and finishes the incident within
the takeover bound, no action repeated (counted by the rate limiter itself)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client as k8s

from aiops.loops.peering import LIFETIME
from ratelimiter.localstack import LocalStack
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import (
    Drift,
    LoopEnv,
    OperatorProcess,
    aiops,
    one_incident,
    operator_free_env,
    resets,
)
from tests.fixtures.polling import wait_for
from tests.fixtures.scripted_anthropic import ScriptedAnthropic, hold, reply, tool_use

PEERING = "aiops-ha"
FAKE_KEY = "sk-ant-api03-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE-ha"
TAKEOVER_BOUND = 30.0  # seconds, from the SIGKILL to the other replica working the incident


@pytest.fixture(scope="module")
def ha_env(
    aiops_api: ClusterHandle, rl_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopEnv]:
    yield from operator_free_env(aiops_api, rl_stack, tmp_path_factory.mktemp("ha-audit"), "ha")


def peers(env: LoopEnv) -> dict[str, dict[str, Any]]:
    """The replicas' keep-alives in the namespace's KopfPeering (identity → entry)."""
    try:
        obj = cast(
            dict[str, Any],
            env.custom.get_namespaced_custom_object(
                "kopf.dev", "v1", env.ns.namespace, "kopfpeerings", PEERING
            ),
        )
    except k8s.ApiException as err:
        if err.status == 404:
            return {}
        raise
    return dict(obj.get("status") or {})


def records(env: LoopEnv, name: str) -> list[dict[str, Any]]:
    path = env.audit_dir / env.ns.namespace / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def kinds(env: LoopEnv, name: str, kind: str) -> list[dict[str, Any]]:
    return [r["data"] for r in records(env, name) if r["kind"] == kind]


def test_one_replica_works_and_the_other_takes_over_a_killed_one_mid_investigation(
    ha_env: LoopEnv, scripted_anthropic: ScriptedAnthropic, tmp_path: Path
) -> None:
    env, server = ha_env, scripted_anthropic
    drift = Drift(env.stack)
    held = hold()
    server.script(
        [
            reply(tool_use("observe_subject")),
            held,  # the second turn: the model is "thinking" when the active replica dies
            reply(
                tool_use(
                    "propose_action",
                    {
                        "action": "reset_counter",
                        "params": {"key": drift.key},
                        "rationale": "entries dated ahead of Redis's clock",
                    },
                )
            ),
            reply(tool_use("resolve", {"summary": f"{drift.key} drifted; reset"})),
        ]
    )
    replicas = [
        OperatorProcess(
            env,
            tmp_path,
            args=("--peering", PEERING),
            log=f"replica-{i}.log",
            ANTHROPIC_API_KEY=FAKE_KEY,
            ANTHROPIC_BASE_URL=server.base_url,
            AIOPS_OPERATOR_NAMESPACE=env.ns.namespace,
        )
        for i in range(2)
    ]
    for replica in replicas:
        replica.start()
    try:
        # A start imports the agent (seconds; a minute on a loaded machine).
        live = wait_for("both replicas in the peering", lambda: len(peers(env)) == 2, 150)
        assert live
        entries = peers(env)
        first = max(entries, key=lambda identity: entries[identity]["priority"])
        (active,) = [r for r in replicas if r.proc and first.endswith(f"-{r.proc.pid}")]
        (standby,) = [r for r in replicas if r is not active]
        assert {e["lifetime"] for e in entries.values()} == {LIFETIME}

        subject = env.subject("rl-ha", "execute", cooldown="0s")
        before = resets(env.stack)
        drift.cause()
        name = one_incident(env, subject, "counter_drift", timeout=60)
        server.wait_for_requests(2, timeout=60)  # turn 1 answered, turn 2 held
        # One agent session: had both replicas worked the incident, a second session would
        # have sent its own first request by now.
        time.sleep(3)
        assert len(server.requests) == 2
        assert len(kinds(env, name, "model.request")) == 2
        assert env.phase(name) == "Investigating"

        assert active.proc is not None
        killed = time.monotonic()
        active.proc.kill()
        active.proc.wait(timeout=10)
        server.wait_for_requests(3, timeout=TAKEOVER_BOUND + 15)
        takeover = server.requests[2].at - killed
        print(f"takeover: {takeover:.1f} s from SIGKILL to the other replica's model request")
        assert takeover < TAKEOVER_BOUND, takeover

        inc = env.wait_phase(name, "Resolved", "Escalated", timeout=90)
        st = inc["status"]
        assert st["phase"] == "Resolved", st.get("escalationReason")
        # The same session, resumed from its checkpoint: the repeated turn 2 carries turn 1.
        turn2, again = server.requests[1].body["messages"], server.requests[2].body["messages"]
        assert len(again) == len(turn2) > 1
        assert len(kinds(env, name, "agent.resumed")) == 1
        # One set of actions: one reset, recorded once, made once on the subject's side.
        assert [(a["action"], a["result"]) for a in st["executedActions"]] == [
            ("reset_counter", "Succeeded")
        ]
        assert len(kinds(env, name, "action.started")) == 1
        assert drift.remaining() == 0
        assert resets(env.stack) - before == 1
        # Two processes wrote one log: its chain is whole and ends where status says.
        verified = aiops(env, "audit", "verify", f"{env.ns.namespace}/{name}")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        # The dead replica's keep-alive is cleaned up by the survivor.
        wait_for("the dead replica gone from the peering", lambda: first not in peers(env), 30)
        assert standby.proc is not None and standby.proc.poll() is None
        assert "Resuming operations" in standby.log.read_text()
    finally:
        held.release()
        drift.undo()
        for replica in replicas:
            replica.stop()
        if os.environ.get("AIOPS_TEST_SHOW_LOGS"):
            for replica in replicas:
                print(replica.log.read_text()[-4000:])
