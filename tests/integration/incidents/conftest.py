"""The incident loop on the running rate limiter: the session's local stack (real Redis,
toxiproxy, three nodes, Prometheus under supervisord), the real API server, and the operator
in-process, with its audit log in a directory of the module's own."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import yaml
from kubernetes import client as k8s

from ratelimiter.localstack import LocalStack
from tests.fixtures.aiops_api import ApiNamespace, api_namespace
from tests.fixtures.cluster import ClusterHandle
from tests.integration.ratelimiter_subject.conftest import repair, subject_manifest, wait_for
from tests.integration.subjects.conftest import running_operator

GROUP, VERSION = "aiops.dev", "v1alpha1"


@dataclass
class LoopEnv:
    ns: ApiNamespace
    stack: LocalStack
    custom: k8s.CustomObjectsApi
    audit_dir: Path

    def apply(self, *manifests: dict[str, Any]) -> None:
        proc = self.ns.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
        assert proc.returncode == 0, proc.stderr

    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = cast(
            dict[str, Any],
            self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.ns.namespace, plural, name
            ),
        )
        return obj

    def incidents(self, subject: str) -> list[dict[str, Any]]:
        listed = cast(
            dict[str, Any],
            self.custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.ns.namespace,
                "incidents",
                field_selector=f"spec.subject={subject}",
            ),
        )
        items: list[dict[str, Any]] = listed["items"]
        return items

    def phase(self, name: str) -> str | None:
        return (self.get("incidents", name).get("status") or {}).get("phase")

    def wait_phase(self, name: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
        wait_for(f"{name} in {phases}", lambda: self.phase(name) in phases, timeout)
        return self.get("incidents", name)

    def subject(self, name: str, autonomy: str, **spec: Any) -> str:
        self.apply(subject_manifest(name, self.stack, autonomy=autonomy, **spec))
        wait_for(
            f"Subject {name} Healthy",
            lambda: (self.get("subjects", name).get("status") or {}).get("health") == "Healthy",
            60,
        )
        return name

    def delete_subject(self, name: str) -> None:
        self.ns.kubectl("delete", "subject", name, "--wait=true")


class Drift:
    """Counter drift, caused for real: entries dated an hour ahead of Redis's clock in a
    key's log, as a Redis whose clock stepped back leaves them."""

    def __init__(self, stack: LocalStack, key: str | None = None) -> None:
        self.key = key or f"drift-{uuid.uuid4().hex[:6]}"
        self.redis = redis.Redis.from_url(stack.urls.redis, decode_responses=True)
        self.log = f"rl:w:{self.key}"
        self.members = [f"test-drift-{i}" for i in range(12)]

    def cause(self) -> None:
        seconds, micros = self.redis.time()
        ahead = int(seconds) * 1_000_000 + int(micros) + 3_600_000_000
        self.redis.zadd(self.log, {m: ahead + i for i, m in enumerate(self.members)})

    def remaining(self) -> int:
        return int(self.redis.zcard(self.log))

    def undo(self) -> None:
        self.redis.zrem(self.log, *self.members)
        self.redis.close()


@pytest.fixture(scope="module")
def loop_env(
    aiops_api: ClusterHandle, rl_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopEnv]:
    repair(rl_stack)
    audit_dir = tmp_path_factory.mktemp("audit")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOPS_AUDIT_DIR", str(audit_dir))
        mp.setenv("AIOPS_VERIFY_TIMEOUT", "20")
        mp.setenv("AIOPS_APPROVAL_TIMEOUT", "120")
        mp.delenv("ANTHROPIC_API_KEY", raising=False)  # the runbook investigates here
        for ns in api_namespace(aiops_api, "incloop"):
            env = LoopEnv(ns, rl_stack, k8s.CustomObjectsApi(aiops_api.api_client()), audit_dir)
            mp.setenv("AIOPS_OPERATOR_NAMESPACE", ns.namespace)  # where the switch lives
            with running_operator(ns, mp):
                yield env
    repair(rl_stack)


def operator_with_model(
    aiops_api: ClusterHandle,
    rl_stack: LocalStack,
    audit_dir: Path,
    prefix: str,
    base_url: str,
    api_key: str,
    **env: str,
) -> Iterator[LoopEnv]:
    """An operator of its own in a fresh namespace, investigating with Claude as reached at
    `base_url` (the scripted server), its audit log in `audit_dir`; `env` adds settings."""
    repair(rl_stack)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOPS_AUDIT_DIR", str(audit_dir))
        mp.setenv("ANTHROPIC_API_KEY", api_key)
        mp.setenv("ANTHROPIC_BASE_URL", base_url)
        for key, value in env.items():
            mp.setenv(key, value)
        for ns in api_namespace(aiops_api, prefix):
            with running_operator(ns, mp):
                yield LoopEnv(ns, rl_stack, k8s.CustomObjectsApi(aiops_api.api_client()), audit_dir)
    repair(rl_stack)


def operator_free_env(
    aiops_api: ClusterHandle, rl_stack: LocalStack, audit_dir: Path, prefix: str
) -> Iterator[LoopEnv]:
    """A fresh namespace with no operator in this process: the tests run their own, as a
    real process (`OperatorProcess`) that they can kill and start again."""
    repair(rl_stack)
    for ns in api_namespace(aiops_api, prefix):
        yield LoopEnv(ns, rl_stack, k8s.CustomObjectsApi(aiops_api.api_client()), audit_dir)
    repair(rl_stack)


def awaiting(env: LoopEnv, name: str) -> dict[str, Any]:
    """The incident, once it waits for an Approval (it must not have ended instead)."""
    inc = env.wait_phase(name, "AwaitingApproval", "Escalated", "Resolved", timeout=60)
    assert inc["status"]["phase"] == "AwaitingApproval", inc["status"]
    return inc


def one_incident(env: LoopEnv, subject: str, invariant: str, timeout: float = 30) -> str:
    found = wait_for(
        f"an incident {invariant} of {subject}",
        lambda: [i for i in env.incidents(subject) if i["spec"].get("invariant") == invariant],
        timeout,
    )
    assert len(found) == 1, [i["metadata"]["name"] for i in found]
    return str(found[0]["metadata"]["name"])


def incident_of(env: LoopEnv, subject: str, key: str, timeout: float = 30) -> str:
    """The one counter_drift Incident of `subject` for `key`."""
    found = wait_for(
        f"an incident counter_drift/{key} of {subject}",
        lambda: [
            i
            for i in env.incidents(subject)
            if i["spec"].get("invariant") == "counter_drift" and i["spec"].get("entity") == key
        ],
        timeout,
    )
    assert len(found) == 1, [i["metadata"]["name"] for i in found]
    return str(found[0]["metadata"]["name"])


def settle(seconds: float) -> None:
    time.sleep(seconds)


class OperatorProcess:
    """`aiops operator run -n NS` as a real process, so it can really be SIGKILLed (at a
    crash point, `AIOPS_CRASHPOINTS`) and started again, as after a crash."""

    def __init__(
        self, env: LoopEnv, workdir: Path, *, cwd: Path | None = None, **environ: str
    ) -> None:
        self.env = env
        self.workdir = workdir
        self.cwd = cwd  # the process's working directory (default: the test's)
        self.environ = environ  # added last: may set ANTHROPIC_API_KEY, HOME, ...
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, crashpoint: str = "") -> None:
        environ = {
            **self.env.ns.cluster.env,
            "AIOPS_AUDIT_DIR": str(self.env.audit_dir),
            "AIOPS_VERIFY_TIMEOUT": "30",
            "AIOPS_CRASHPOINTS": crashpoint,
            "AIOPS_CRASHPOINTS_DIR": str(self.workdir),
        }
        environ.pop("ANTHROPIC_API_KEY", None)  # the runbook investigates, unless given a key
        environ.update(self.environ)
        log = (self.workdir / "operator.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiops.cli.main",
                "operator",
                "run",
                "-n",
                self.env.ns.namespace,
            ],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
        )

    def wait_killed(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
