"""The Chaos loop on the running rate limiter: the session's local stack (Redis, toxiproxy,
three nodes, Prometheus under supervisord), the real API server, and the whole operator
(`aiops.handlers`) in-process, in a namespace of the module's own.

Faults are driven only through Chaos objects; what they did is read from the real things:
supervisord's program states, Redis, toxiproxy, and the Subject's status as the subject loop
wrote it. Tests that break the stack repair it before they end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client as k8s

from ratelimiter.localstack import LocalStack
from tests.fixtures import polling
from tests.fixtures.aiops_api import ApiNamespace, api_namespace
from tests.fixtures.cluster import ClusterHandle
from tests.integration.ratelimiter_subject.conftest import repair, subject_manifest
from tests.integration.subjects.conftest import running_operator

GROUP, VERSION = "aiops.dev", "v1alpha1"
SUBJECT = "rl"
# Settings of the operators these tests run: a low maximum to test against, and a short watch
# for the Subject's recovery after the revert (a test waits for it).
OPERATOR_ENV = {
    "AIOPS_CHAOS_MAX_DURATION": "10m",
    "AIOPS_CHAOS_SETTLE_TIMEOUT": "40s",
    "AIOPS_VERIFY_TIMEOUT": "20",
}


def wait_for(what: str, probe: Any, timeout: float = 60) -> Any:
    return polling.wait_for(what, probe, timeout, every=0.25)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def chaos_manifest(
    name: str,
    fault: str,
    target: dict[str, Any] | None = None,
    duration: str = "10s",
    params: dict[str, Any] | None = None,
    subject: str = SUBJECT,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"subject": subject, "fault": fault, "duration": duration}
    if target is not None:
        spec["target"] = target
    if params is not None:
        spec["params"] = params
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Chaos",
        "metadata": {"name": name},
        "spec": spec,
    }


@dataclass
class ChaosEnv:
    ns: ApiNamespace
    stack: LocalStack
    custom: k8s.CustomObjectsApi
    audit_dir: Path

    def apply(self, *manifests: dict[str, Any]) -> None:
        proc = self.ns.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
        assert proc.returncode == 0, proc.stderr

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj = cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.ns.namespace, plural, name
                ),
            )
        except k8s.ApiException as err:
            if err.status == 404:
                return None
            raise
        return obj

    def chaos(self, name: str) -> dict[str, Any]:
        obj = self.get("chaos", name)
        assert obj is not None, f"Chaos {name} is gone"
        return obj

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.chaos(name).get("status") or {})

    def wait_phase(self, name: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
        wait_for(
            f"Chaos {name} in {phases}", lambda: self.status(name).get("phase") in phases, timeout
        )
        return self.status(name)

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        for c in self.status(name).get("conditions", []):
            if c["type"] == type_:
                return dict(c)
        return {}

    def settled(self, name: str, timeout: float = 90) -> dict[str, Any]:
        """The Chaos once it knows whether the Subject recovered."""
        wait_for(
            f"Chaos {name} to know the Subject's recovery",
            lambda: self.condition(name, "SubjectRecovered").get("status") in ("True", "False"),
            timeout,
        )
        return self.status(name)

    def events(self, name: str) -> list[str]:
        proc = self.ns.kubectl(
            "get", "events", f"--field-selector=involvedObject.name={name}", "-o", "json"
        )
        items = json.loads(proc.stdout or "{}").get("items", [])
        items.sort(key=lambda e: (e.get("lastTimestamp") or "", e["metadata"]["name"]))
        return [e["reason"] for e in items]

    def program(self, name: str) -> str:
        return str(self.stack.status()[name]["statename"])

    def member(self, name: str, subject: str = SUBJECT) -> str:
        members = (self.get("subjects", subject) or {}).get("status", {}).get("members", [])
        return next((m["state"] for m in members if m["name"] == name), "")

    def healthy(self, subject: str = SUBJECT) -> bool:
        return ((self.get("subjects", subject) or {}).get("status") or {}).get(
            "health"
        ) == "Healthy"

    def delete(self, name: str) -> None:
        self.ns.kubectl("delete", "chaos", name, "--wait=false", check=True)

    def gone(self, name: str) -> bool:
        return self.get("chaos", name) is None


def operator_env(ns: ApiNamespace, audit_dir: Path) -> dict[str, str]:
    return {
        **OPERATOR_ENV,
        "AIOPS_AUDIT_DIR": str(audit_dir),
        "AIOPS_OPERATOR_NAMESPACE": ns.namespace,
    }


def clean_up(ns: ApiNamespace) -> None:
    """While the operator still runs: every Chaos goes first (none may stay injected), then
    what carries kopf's finalizer, so that the namespace can go once the operator is gone."""
    ns.kubectl("delete", "chaos", "--all", "--timeout=60s")
    ns.kubectl("delete", "incidents,subjects", "--all", "--timeout=60s")


def operator_on_stack(
    aiops_api: ClusterHandle,
    rl_stack: LocalStack,
    audit_dir: Path,
    prefix: str,
    autonomy: str,
    **subject: Any,
) -> Iterator[ChaosEnv]:
    """A namespace, Subject `rl` on the stack with `autonomy`, and the operator in-process."""
    repair(rl_stack)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ANTHROPIC_API_KEY", raising=False)  # the runbook investigates here
        for ns in api_namespace(aiops_api, prefix):
            for key, value in operator_env(ns, audit_dir).items():
                mp.setenv(key, value)
            env = ChaosEnv(ns, rl_stack, k8s.CustomObjectsApi(aiops_api.api_client()), audit_dir)
            env.apply(subject_manifest(SUBJECT, rl_stack, autonomy=autonomy, **subject))
            with running_operator(ns, mp):
                wait_for("Subject rl Healthy", env.healthy, timeout=60)
                yield env
                clean_up(ns)
    repair(rl_stack)


@pytest.fixture(scope="module")
def chaos_env(
    aiops_api: ClusterHandle, rl_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosEnv]:
    """Subject `rl` under autonomy observe: the operator opens incidents and never acts, so
    what heals the subject is the revert."""
    yield from operator_on_stack(
        aiops_api, rl_stack, tmp_path_factory.mktemp("chaos-audit"), "chaos", "observe"
    )


@pytest.fixture(scope="module")
def fixing_env(
    aiops_api: ClusterHandle, rl_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosEnv]:
    """Subject `rl` under autonomy execute: the runbook fixes what it can."""
    yield from operator_on_stack(
        aiops_api,
        rl_stack,
        tmp_path_factory.mktemp("fix-audit"),
        "chaosfix",
        "execute",
        cooldown="0s",
    )
