"""Redis, Prometheus and toxiproxy all down for 30 s at once (their supervisord programs
stopped), under a running operator: the Subject goes Unknown (never Healthy on missing data),
one incident opens for the outage once the grace period has passed, nothing is resolved while
the data is missing, and everything recovers by itself once the programs are back.

The three are stopped together, not one after another: one 30 s outage costs CI 30 s, and what
the operator must do is the same for each (a failed observation is "don't know").
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from ratelimiter.localstack import LocalStack
from tests.fixtures.aiops_api import api_namespace
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import LoopEnv
from tests.fixtures.ratelimiter_subject import condition, repair, wait_for
from tests.fixtures.subject_loop import running_operator

pytestmark = [pytest.mark.reliability, pytest.mark.cluster]

OUTAGE_SECONDS = 30
DEPENDENCIES = ("toxiproxy", "prometheus", "redis")


@pytest.fixture
def deps_env(
    aiops_api: ClusterHandle, rl_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopEnv]:
    repair(rl_stack)
    audit_dir = tmp_path_factory.mktemp("deps-audit")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOPS_AUDIT_DIR", str(audit_dir))
        mp.setenv("AIOPS_VERIFY_TIMEOUT", "20")
        mp.delenv("ANTHROPIC_API_KEY", raising=False)
        for ns in api_namespace(aiops_api, "reldeps"):
            mp.setenv("AIOPS_OPERATOR_NAMESPACE", ns.namespace)
            custom = k8s.CustomObjectsApi(aiops_api.api_client())
            with running_operator(ns, mp):
                yield LoopEnv(ns, rl_stack, custom, audit_dir)
                ns.kubectl("delete", "incidents,subjects", "--all", "--timeout=60s")
    repair(rl_stack)


def test_dependencies_down_for_30s_unknown_then_recovered_by_itself(deps_env: LoopEnv) -> None:
    env = deps_env
    subject = env.subject("rl", "execute", cooldown="0s", observationGracePeriod="10s")

    def status() -> dict[str, object]:
        return dict(env.get("subjects", subject).get("status") or {})

    def resolved() -> list[str]:
        return [
            i["metadata"]["name"]
            for i in env.incidents(subject)
            if (i.get("status") or {}).get("phase") == "Resolved"
        ]

    started = time.monotonic()
    for program in DEPENDENCIES:
        env.stack.stop_program(program)
    try:
        wait_for("Subject rl Unknown", lambda: status().get("health") == "Unknown", 20)
        # Until the programs are back: never Healthy, nothing resolved on missing data.
        while time.monotonic() - started < OUTAGE_SECONDS:
            assert status().get("health") == "Unknown", status()
            assert resolved() == [], "an incident was resolved while the data was missing"
            time.sleep(1)
        failed = [
            i for i in env.incidents(subject) if i["spec"]["invariant"] == "observation_failed"
        ]
        assert len(failed) == 1, [i["metadata"]["name"] for i in failed]
        outage_incident = failed[0]["metadata"]["name"]
    finally:
        env.stack.up()  # every program started again (toxiproxy first: repair resets it)
        repair(env.stack)

    # Recovered by itself: no restart of the operator, no hand on the Subject.
    wait_for("Subject rl Healthy again", lambda: status().get("health") == "Healthy", 90)
    obj = env.get("subjects", subject)
    assert condition(obj, "ObservationFailing").get("status") == "False", obj["status"]
    # The outage's incident is closed or cleared, and it was the only one (no duplicate).
    wait_for(
        "the outage's incident cleared",
        lambda: (
            env.phase(outage_incident) in ("Resolved", "Escalated")
            or condition(env.get("incidents", outage_incident), "Breached").get("status") == "False"
        ),
        60,
    )
    invariants = [i["spec"]["invariant"] for i in env.incidents(subject)]
    assert invariants.count("observation_failed") == 1, invariants

    def programs() -> dict[str, str]:
        return {n: p["statename"] for n, p in env.stack.status().items() if n != "loadgen"}

    # supervisord calls a restarted program RUNNING only after its startsecs, which a loaded
    # machine stretches: poll, then the final state is still every program RUNNING.
    wait_for("every program RUNNING", lambda: set(programs().values()) == {"RUNNING"}, 60)
    assert set(programs().values()) == {"RUNNING"}, programs()
