"""A flood: 200 Incidents created at once through the API, across three Subjects of the
minimal plugin (examples/plugins/minimal: member files in a directory of the test's own), each
investigated by Claude as the scripted server plays it, every answer taking its time.

The operator is a real process (`aiops operator run`), so its memory is its own: measured
with psutil once it has handled one incident (the agent imported, a session run) and again
after the flood. Then: every Incident reached a terminal phase (none lost, none opened twice),
each was investigated exactly once, the model never saw more sessions at once than
AIOPS_MAX_CONCURRENT_SESSIONS, memory stayed bounded, and the Subjects were observed all along.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import psutil
import pytest
import yaml
from kubernetes import client as k8s

from aiops.vocabulary import TERMINAL
from tests.fixtures.aiops_api import ApiNamespace, api_namespace
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import GROUP, VERSION, LoopEnv, OperatorProcess
from tests.fixtures.polling import wait_for
from tests.fixtures.scripted_anthropic import FAKE_KEY, ScriptedAnthropic, reply, tool_use
from tests.integration.plugins.test_minimal_plugin import MEMBERS, minimal_plugin
from tests.integration.plugins.test_minimal_plugin import subject as minimal_subject

pytestmark = [pytest.mark.reliability, pytest.mark.cluster]

__all__ = ["minimal_plugin"]  # the fixture that installs the plugin where it is missing

FLOOD = 200
SUBJECTS = ("flood-a", "flood-b", "flood-c")
SESSIONS = 10  # AIOPS_MAX_CONCURRENT_SESSIONS
ANSWER_S = 0.5  # each model answer takes this long: without the bound, sessions pile up
RSS_GROWTH = 150 * 2**20  # generous: 81 MiB measured (204 MiB with a TLS context per client)


def subject(name: str, directory: Path) -> dict[str, Any]:
    for member in MEMBERS:  # every member up: the flood is of incidents, not of faults
        (directory / f"{member}.json").write_text(json.dumps({"up": True}))
    return minimal_subject(name, directory, interval="2s", agent={"backend": "anthropic"})


def incident(n: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        "metadata": {"name": f"flood-{n:03d}"},
        "spec": {
            "subject": SUBJECTS[n % len(SUBJECTS)],
            "invariant": "member_down",
            "entity": MEMBERS[n % len(MEMBERS)],
            "summary": f"reported by hand, one of a flood ({n})",
        },
    }


def apply(ns: ApiNamespace, *manifests: dict[str, Any]) -> None:
    proc = ns.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
    assert proc.returncode == 0, proc.stderr


def incidents(custom: k8s.CustomObjectsApi, ns: str) -> list[dict[str, Any]]:
    listed = cast(
        dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, ns, "incidents")
    )
    return list(listed["items"])


def phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


def last_observed(custom: k8s.CustomObjectsApi, ns: str, name: str) -> str:
    obj = cast(
        dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, ns, "subjects", name)
    )
    return str((obj.get("status") or {}).get("lastObservationTime") or "")


def asked_about(server: ScriptedAnthropic) -> Counter[str]:
    """How many model requests each incident's session made: the agent names the incident
    in its first message."""
    seen: Counter[str] = Counter()
    for req in server.requests:
        first = req.body["messages"][0]["content"] if isinstance(req.body, dict) else ""
        text = first if isinstance(first, str) else "".join(b.get("text", "") for b in first)
        seen.update(
            n for n in (f"flood-{i:03d}" for i in range(FLOOD)) if f'"incident": "{n}"' in text
        )
    return seen


def test_a_flood_of_incidents_is_handled_with_bounded_sessions_and_memory(
    aiops_api: ClusterHandle,
    scripted_anthropic: ScriptedAnthropic,
    minimal_plugin: str,
    tmp_path: Path,
) -> None:
    resolve = tool_use("resolve", {"summary": "every member is up: nothing to do"})
    scripted_anthropic.script([reply(resolve, delay=ANSWER_S) for _ in range(FLOOD + 1)])
    custom = k8s.CustomObjectsApi(aiops_api.api_client())
    for ns in api_namespace(aiops_api, "flood"):
        loop = LoopEnv(ns, cast(Any, None), custom, tmp_path / "audit")  # no rate limiter here
        op = OperatorProcess(
            loop,
            tmp_path,
            AIOPS_OPERATOR_NAMESPACE=ns.namespace,
            AIOPS_MAX_CONCURRENT_SESSIONS=str(SESSIONS),
            ANTHROPIC_API_KEY=FAKE_KEY,
            ANTHROPIC_BASE_URL=scripted_anthropic.base_url,
        )
        for s in SUBJECTS:
            (tmp_path / s).mkdir()
        apply(ns, *(subject(s, tmp_path / s) for s in SUBJECTS))
        op.start()
        try:
            flood(Flood(ns.namespace, custom), ns, op, scripted_anthropic, loop.audit_dir)
        finally:
            op.stop()
            ns.kubectl("delete", "subject", "--all", "--wait=false")


class Flood:
    def __init__(self, namespace: str, custom: k8s.CustomObjectsApi) -> None:
        self.ns, self.custom = namespace, custom

    def incidents(self) -> list[dict[str, Any]]:
        return incidents(self.custom, self.ns)

    def phase(self, name: str) -> str | None:
        return phase(
            cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.ns, "incidents", name
                ),
            )
        )

    def create_at_once(self, manifests: list[dict[str, Any]]) -> None:
        """Each a POST of its own, 20 at a time: a flood, not a queue."""

        def create(body: dict[str, Any]) -> None:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, "incidents", body)

        with ThreadPoolExecutor(20) as pool:
            list(pool.map(create, manifests))

    def observed(self) -> dict[str, str]:
        return {s: last_observed(self.custom, self.ns, s) for s in SUBJECTS}

    def terminal(self) -> int:
        return sum(phase(i) in TERMINAL for i in self.incidents())


def flood(
    f: Flood, ns: ApiNamespace, op: OperatorProcess, server: ScriptedAnthropic, audit: Path
) -> None:
    wait_for("every Subject observed", lambda: all(f.observed().values()), 120)
    # One incident first: the agent imported and a session run before memory is read.
    apply(ns, incident(0) | {"metadata": {"name": "flood-warm"}})
    wait_for("the first incident handled", lambda: f.phase("flood-warm") in TERMINAL, 120)
    assert op.proc is not None
    proc = psutil.Process(op.proc.pid)
    rss_before = proc.memory_info().rss
    observed_before = f.observed()

    began = time.monotonic()
    f.create_at_once([incident(n) for n in range(FLOOD)])
    wait_for(f"all {FLOOD} in a terminal phase", lambda: f.terminal() == FLOOD + 1, 240, every=2)
    took = time.monotonic() - began
    rss_after = proc.memory_info().rss
    assert op.proc.poll() is None, "the operator exited"

    every = f.incidents()
    # None lost, none opened besides them (every member is up: nothing to detect).
    assert sorted(i["metadata"]["name"] for i in every) == sorted(
        ["flood-warm", *(f"flood-{n:03d}" for n in range(FLOOD))]
    )
    phases = Counter(phase(i) for i in every)
    assert phases == {"Resolved": FLOOD + 1}, phases
    # Each investigated exactly once: one request to the model, one result recorded.
    sessions = asked_about(server)
    assert [n for n, k in sessions.items() if k != 1] == [], sessions
    assert len(sessions) == FLOOD, len(sessions)
    for i in every:
        log = (audit / f.ns / f"{i['metadata']['name']}.jsonl").read_text()
        assert log.count('"kind":"agent.result"') == 1, i["metadata"]["name"]
    # The bound held, and was reached: sessions did pile up against it.
    assert server.most_in_flight == SESSIONS, server.most_in_flight
    assert took >= FLOOD / SESSIONS * ANSWER_S, took  # so they took at least this long
    growth = rss_after - rss_before
    print(
        f"flood: {FLOOD} incidents in {took:.1f} s; RSS {rss_before / 2**20:.0f} -> "
        f"{rss_after / 2**20:.0f} MiB; most sessions at once {server.most_in_flight}"
    )
    assert growth < RSS_GROWTH, f"RSS grew {growth / 2**20:.0f} MiB"
    # The Subjects were observed all along, and still are.
    wait_for(
        "every Subject observed since the flood began",
        lambda: all(f.observed()[s] > observed_before[s] for s in SUBJECTS),
        30,
    )
