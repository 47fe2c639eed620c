"""The model endpoint down for 30 s under a running operator (a real process, investigating
with Claude as the scripted server plays it): the server is stopped, its port kept, so every
request is refused, as when the endpoint is unreachable.

The agent's retry policy (docs/agent.md, "Retries": 4 attempts, backoff from 1 s doubling,
±25 %) gives up after about 7 s, well inside the outage: the incident opened meanwhile is
escalated with the reason naming the model unreachable, after exactly 4 attempts, and no
action runs, nothing is Resolved. The Subject's health is not the model's business: it is
observed all along (its `lastObservationTime` moves during the outage). Once the server is back
on the same address, with no restart of the operator, the next incident is investigated by the
model, its action runs, and it is Resolved: the system recovered by itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client as k8s

from tests.fixtures.aiops_api import api_namespace
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import LoopEnv, OperatorProcess
from tests.fixtures.polling import wait_for
from tests.fixtures.scripted_anthropic import (
    FAKE_KEY,
    ScriptedAnthropic,
    reply,
    serving,
    tool_use,
)
from tests.integration.incidents.hostile_model import propose
from tests.integration.plugins.test_minimal_plugin import MEMBERS, minimal_plugin
from tests.integration.plugins.test_minimal_plugin import subject as minimal_subject

pytestmark = [pytest.mark.reliability, pytest.mark.cluster]

__all__ = ["minimal_plugin"]  # the fixture that installs the plugin where it is missing

OUTAGE_S = 30
ATTEMPTS = 4  # RetryPolicy's default, as docs/agent.md says
ACTION_KINDS = ('"kind":"action.started"', '"kind":"action.finished"')


@pytest.fixture
def own_server() -> Iterator[ScriptedAnthropic]:
    """A scripted server of this test's own: the session's is shared, and this one is stopped."""
    with serving() as server:
        yield server


class Env:
    def __init__(self, loop: LoopEnv, directory: Path) -> None:
        self.loop, self.directory = loop, directory

    def set_member(self, name: str, up: bool) -> None:
        (self.directory / f"{name}.json").write_text(json.dumps({"up": up, "queue": 0}))

    def member_up(self, name: str) -> bool:
        return bool(json.loads((self.directory / f"{name}.json").read_text())["up"])

    def subject_status(self) -> dict[str, Any]:
        return dict(self.loop.get("subjects", "files").get("status") or {})

    def incident_for(self, member: str) -> str:
        found = wait_for(
            f"an incident member_down/{member}",
            lambda: [
                i["metadata"]["name"]
                for i in self.loop.incidents("files")
                if i["spec"].get("entity") == member
            ],
            30,
        )
        assert len(found) == 1, found
        return str(found[0])

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.loop.get("incidents", name).get("status") or {})

    def resolved(self) -> list[str]:
        return [
            i["metadata"]["name"]
            for i in self.loop.incidents("files")
            if (i.get("status") or {}).get("phase") == "Resolved"
        ]

    def audit(self, name: str) -> str:
        path = self.loop.audit_dir / self.loop.ns.namespace / f"{name}.jsonl"
        return path.read_text() if path.exists() else ""


def test_model_down_for_30s_escalates_with_the_reason_and_recovers_by_itself(
    aiops_api: ClusterHandle, own_server: ScriptedAnthropic, minimal_plugin: str, tmp_path: Path
) -> None:
    port = int(own_server.base_url.rsplit(":", 1)[1])
    directory = tmp_path / "members"
    directory.mkdir()
    custom = k8s.CustomObjectsApi(aiops_api.api_client())
    for ns in api_namespace(aiops_api, "relmodel"):
        env = Env(LoopEnv(ns, cast(Any, None), custom, tmp_path / "audit"), directory)
        for member in MEMBERS:
            env.set_member(member, True)
        manifest = minimal_subject("files", directory, agent={"backend": "anthropic"})
        proc = ns.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
        assert proc.returncode == 0, proc.stderr
        op = OperatorProcess(
            env.loop,
            tmp_path,
            AIOPS_OPERATOR_NAMESPACE=ns.namespace,
            ANTHROPIC_API_KEY=FAKE_KEY,
            ANTHROPIC_BASE_URL=own_server.base_url,
        )
        op.start()
        try:
            outage(env, own_server, port, op)
        finally:
            op.stop()
            ns.kubectl("delete", "incidents,subjects", "--all", "--wait=false")


def outage(env: Env, server: ScriptedAnthropic, port: int, op: OperatorProcess) -> None:
    wait_for("Subject files Healthy", lambda: env.subject_status().get("health") == "Healthy", 90)

    server.stop()  # connection refused from now on, at the address the operator was given
    down_at = time.monotonic()
    env.set_member("beta", False)
    beta = env.incident_for("beta")

    def during_outage() -> None:
        assert env.resolved() == [], "an incident was resolved while the model was down"
        assert not env.status(beta).get("executedActions"), env.status(beta)
        assert not env.member_up("beta"), "an action ran while the model was down"

    def escalated() -> bool:
        during_outage()
        return env.status(beta).get("phase") == "Escalated"

    wait_for("the incident escalated", escalated, OUTAGE_S - 5)
    reason = env.status(beta)["escalationReason"]
    assert "Anthropic API unreachable" in reason and f"after {ATTEMPTS} attempts" in reason, reason
    seen = env.subject_status().get("lastObservationTime")
    assert seen, env.subject_status()
    # The Subject is still observed while the model is down (the model is not one of its
    # data sources: it stays Degraded, on what it sees, never Unknown for the model).
    while time.monotonic() - down_at < OUTAGE_S:
        during_outage()
        assert env.subject_status().get("health") == "Degraded", env.subject_status()
        time.sleep(1)
    assert (env.subject_status().get("lastObservationTime") or "") > seen, "observing stopped"
    log = env.audit(beta)
    assert log.count('"kind":"model.request"') == ATTEMPTS, log
    assert log.count('"kind":"model.error"') == ATTEMPTS, log
    assert not any(kind in log for kind in ACTION_KINDS), log
    assert op.proc is not None and op.proc.poll() is None, "the operator exited"

    # The model is back, at the same address; a person handled the escalated member.
    server.script(
        [
            reply(propose("start_member", {"member": "gamma"}, "gamma is down")),
            reply(tool_use("resolve", {"summary": "gamma was down; started it"})),
        ]
    )
    server.start(port)
    env.set_member("beta", True)
    env.set_member("gamma", False)
    gamma = env.incident_for("gamma")
    wait_for(
        "the new incident ended",
        lambda: env.status(gamma).get("phase") in ("Resolved", "Escalated"),
        60,
    )
    st = env.status(gamma)
    assert st["phase"] == "Resolved", st.get("escalationReason")
    assert [(a["action"], a["result"]) for a in st["executedActions"]] == [
        ("start_member", "Succeeded")
    ], st["executedActions"]
    assert env.member_up("gamma")
    assert len(server.requests) == 2, [r.path for r in server.requests]
    # The escalated incident stayed escalated: nothing resolved it on missing data later.
    assert env.status(beta)["phase"] == "Escalated", env.status(beta)
    wait_for("Subject files Healthy", lambda: env.subject_status().get("health") == "Healthy", 30)
