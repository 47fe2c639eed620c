"""Sharding (AIOPS_SHARD): two `aiops operator run --shard i/2` processes in one namespace, each
with its own audit directory and metrics port. Every Subject is observed by exactly one of them
(its metrics list only its own), and a Chaos on a Subject of each half is injected, opens an
Incident that is resolved, both by the Subject's owner alone (the audit logs say who did it)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from aiops.shard import shard_of
from tests.fixtures import polling
from tests.fixtures.aiops_api import ApiNamespace, api_namespace
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import LoopEnv, OperatorProcess
from tests.fixtures.subject_loop import closed_port
from tests.integration.plugins.test_minimal_plugin import minimal_plugin  # noqa: F401 - fixture

PER_SHARD = 2
GROUP_VERSION = "aiops.dev/v1alpha1"


def names_by_shard(namespace: str) -> list[list[str]]:
    """PER_SHARD Subject names owned by each of 2 shards (the hash decides which)."""
    out: list[list[str]] = [[], []]
    i = 0
    while min(len(o) for o in out) < PER_SHARD:
        name = f"s{i}"
        owned = out[shard_of(namespace, name, 2)]
        if len(owned) < PER_SHARD:
            owned.append(name)
        i += 1
    return out


def subject(name: str, directory: Path) -> dict[str, Any]:
    directory.mkdir()
    (directory / "m.json").write_text('{"up": true}')
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Subject",
        "metadata": {"name": name},
        "spec": {
            "type": "minimal",
            "config": {"directory": str(directory), "members": ["m"]},
            "interval": "1s",
            "autonomy": "execute",
            "cooldown": "0s",
        },
    }


def observed(port: int) -> set[str]:
    """The Subjects a process has observed, as its metrics say (`namespace/name`)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.TransportError:  # not serving yet: the process is still starting
        return set()
    prefix = 'aiops_observation_duration_seconds_count{subject="'
    return {
        line[len(prefix) :].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith(prefix)
    }


class Shards:
    def __init__(self, ns: ApiNamespace, tmp: Path) -> None:
        self.ns, self.tmp = ns, tmp
        self.custom = k8s.CustomObjectsApi(
            k8s_config.new_client_from_config(config_file=str(ns.cluster.kubeconfig))
        )
        self.names = names_by_shard(ns.namespace)
        self.audit = [tmp / "audit-0", tmp / "audit-1"]
        self.ports = [closed_port(), closed_port()]
        self.logs = [tmp / "operator-0.log", tmp / "operator-1.log"]

    def status(self, plural: str, name: str) -> dict[str, Any]:
        obj = cast(
            dict[str, Any],
            self.custom.get_namespaced_custom_object(
                "aiops.dev", "v1alpha1", self.ns.namespace, plural, name
            ),
        )
        return dict(obj.get("status") or {})

    def audited(self, shard: int, name: str) -> bool:
        return any(self.audit[shard].rglob(f"{name}*.jsonl"))


@pytest.fixture
def shards(
    minimal_plugin: str,  # noqa: F811 - the fixture imported above
    aiops_api: ClusterHandle,
    tmp_path: Path,
) -> Iterator[Shards]:
    for ns in api_namespace(aiops_api, "shard"):
        env = Shards(ns, tmp_path)
        loop = LoopEnv(ns, cast(Any, None), env.custom, env.audit[0])
        procs = [
            OperatorProcess(
                loop,
                tmp_path,
                args=("--shard", f"{i}/2"),
                log=f"operator-{i}.log",
                AIOPS_AUDIT_DIR=str(env.audit[i]),
                AIOPS_METRICS_PORT=str(env.ports[i]),
                AIOPS_OPERATOR_NAMESPACE=ns.namespace,
            )
            for i in (0, 1)
        ]
        for proc in procs:
            proc.start()
        try:
            yield env
            # While the operators run: what carries their finalizers goes first.
            ns.kubectl("delete", "chaos,incidents,subjects", "--all", "--timeout=60s")
        finally:
            with ThreadPoolExecutor() as pool:  # both at once: each may take seconds
                list(pool.map(OperatorProcess.stop, procs))
            for i, proc in enumerate(procs):
                print(f"--- operator {i}/2 ---\n{proc.log.read_text()[-3000:]}")


def test_each_subject_is_observed_and_its_incidents_handled_by_its_shard_alone(
    shards: Shards,
) -> None:
    manifests = [subject(name, shards.tmp / name) for names in shards.names for name in names]
    proc = shards.ns.kubectl("apply", "-f", "-", input=_yaml(manifests))
    assert proc.returncode == 0, proc.stderr
    every = {f"{shards.ns.namespace}/{n}" for names in shards.names for n in names}

    # Each process observes its half, and only that (its metrics name every Subject it did).
    def both_observed() -> bool:
        seen = [observed(port) for port in shards.ports]
        return seen[0] | seen[1] == every

    polling.wait_for("every Subject observed", both_observed, 150, every=1)
    for i in (0, 1):
        assert observed(shards.ports[i]) == {
            f"{shards.ns.namespace}/{n}" for n in shards.names[i]
        }, f"shard {i}/2"

    # A Chaos on one Subject of each half: injected, its Incident resolved, by the owner.
    chaos = {i: f"stop-{shards.names[i][0]}" for i in (0, 1)}
    proc = shards.ns.kubectl(
        "apply",
        "-f",
        "-",
        input=_yaml(
            [
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "Chaos",
                    "metadata": {"name": chaos[i]},
                    "spec": {
                        "subject": shards.names[i][0],
                        "fault": "stop_member",
                        "target": {"member": "m"},
                        "duration": "10m",  # longer than any fix: the fix heals it
                    },
                }
                for i in (0, 1)
            ]
        ),
    )
    assert proc.returncode == 0, proc.stderr
    for i in (0, 1):
        name = chaos_incident(shards, chaos[i])

        def finished(name: str = name) -> dict[str, Any] | None:
            st = shards.status("incidents", name)
            return st if st.get("phase") in ("Resolved", "Escalated") else None

        st = polling.wait_for(f"{name} finished", finished, 60)
        assert st["phase"] == "Resolved", st.get("escalationReason")
        assert shards.audited(i, name), f"shard {i}/2 has no audit log of {name}"
        assert not shards.audited(1 - i, name), f"shard {1 - i}/2 handled {name} too"
        # The other process ran no handler of this Chaos or Incident (kopf names each).
        other = shards.logs[1 - i].read_text()
        assert chaos[i] not in other and name not in other, f"shard {1 - i}/2 touched them"
        [action] = st["executedActions"]
        assert action["action"] == "start_member"


def chaos_incident(shards: Shards, chaos: str) -> str:
    def incidents() -> list[str] | None:
        return shards.status("chaos", chaos).get("incidents")

    (name,) = polling.wait_for(f"an Incident of {chaos}", incidents, 60)
    return str(name)


def _yaml(manifests: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(manifests)
