"""The core `kubectl` action against a real API server and the real kubectl: a server-side dry
run changes nothing, whatever argument vector the model wrote (the reviewer's exploit left
`--field-manager` last, and the appended `--dry-run=server` became its value, so the
"dry run" annotated the live ConfigMap); a refused command writes no file; every allowed verb
really dry-runs on the server; and an approved change touches its one object only."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aiops.actions.kubectl.command import dry_run_kubectl, run_kubectl
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.cluster

TARGET, BYSTANDER, WEB = "target", "bystander", "web"
_WATCHED = "configmaps,deployments,pods,services"


@dataclass
class World:
    cluster: ClusterHandle
    ns: str
    other: str

    @property
    def kubectl(self) -> str:
        return str(self.cluster.kubectl_bin)

    def state(self) -> dict[str, Any]:
        """What a change would show in both namespaces: each object's labels, annotations,
        data or spec, and for ConfigMaps (which no controller writes) the resourceVersion."""
        seen: dict[str, Any] = {}
        for ns in (self.ns, self.other):
            proc = self.cluster.kubectl("-n", ns, "get", _WATCHED, "-o", "json")
            assert proc.returncode == 0, proc.stderr
            for obj in json.loads(proc.stdout)["items"]:
                meta = obj["metadata"]
                if obj["kind"] == "Pod":
                    obj["spec"].pop("nodeName", None)  # the scheduler's, whenever it binds
                seen[f"{ns}/{obj['kind']}/{meta['name']}"] = {
                    "labels": meta.get("labels"),
                    "annotations": meta.get("annotations"),
                    "body": obj.get("data") if obj["kind"] == "ConfigMap" else obj.get("spec"),
                    "version": meta["resourceVersion"]
                    if obj["kind"] == "ConfigMap"
                    else meta.get("generation"),
                }
        return seen


@pytest.fixture(scope="module")
def world(cluster: ClusterHandle) -> Iterator[World]:
    suffix = uuid.uuid4().hex[:8]
    w = World(cluster, f"kubectl-mut-{suffix}", f"kubectl-other-{suffix}")
    k = cluster.kubectl
    for ns in (w.ns, w.other):
        k("create", "namespace", ns, check=True)
    try:
        for ns in (w.ns, w.other):
            for cm in (TARGET, BYSTANDER):
                k("-n", ns, "create", "configmap", cm, "--from-literal=mode=normal", check=True)
        # No replicas: no pods of its own appear while a test compares states.
        k(
            "-n",
            w.ns,
            "create",
            "deployment",
            WEB,
            "--image=example.invalid/web:1",
            "--replicas=0",
            check=True,
        )

        def revision() -> str:
            return k(
                "-n",
                w.ns,
                "get",
                "deployment",
                WEB,
                "-o",
                "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
            ).stdout

        # The controller must have seen the first template before the second: on a cluster
        # just started, a change made before it looks is its first and only revision.
        wait_for("the Deployment's first revision", lambda: revision() == "1", timeout=120)
        # A second revision, so that `rollout undo` has one to go back to.
        k("-n", w.ns, "set", "image", f"deployment/{WEB}", "web=example.invalid/web:1b", check=True)
        wait_for("the Deployment's second revision", lambda: revision() == "2", timeout=60)
        # A pod needs the namespace's default ServiceAccount, made a moment after it.
        wait_for(
            "the default ServiceAccount",
            lambda: k("-n", w.ns, "get", "serviceaccount", "default").returncode == 0,
            timeout=30,
        )
        k(
            "-n",
            w.ns,
            "run",
            "web-0",
            "--image=example.invalid/web:1",
            "--restart=Never",
            check=True,
        )
        yield w
    finally:
        for ns in (w.ns, w.other):
            k("delete", "namespace", ns, "--wait=false")


@pytest.fixture
def kubectl_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The operator's environment for the action: this cluster's kubeconfig (its kubectl is
    passed in, as the operator passes AIOPS_KUBECTL of its settings)."""
    monkeypatch.setenv("KUBECONFIG", str(world.cluster.kubeconfig))
    return world


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def hostile(world: World) -> list[list[str]]:
    """Argument vectors a model (or an injected instruction) may try, each meant to make the
    "dry run" change something or reach further than the Subject's namespace."""
    cm, patch = ["configmap", TARGET], '{"data":{"mode":"pwned"}}'
    return [
        ["annotate", *cm, "pwned=1", "--field-manager"],  # the reviewer's exploit
        ["annotate", "--overwrite", *cm, "pwned=1", "--field-manager"],
        ["label", *cm, "pwned=1", "--field-manager"],
        ["patch", *cm, "-p", patch, "--field-manager"],
        ["patch", *cm, "-p", patch, "--type"],
        ["set", "image", f"deployment/{WEB}", "web=pwned:1", "--field-manager"],
        # No --dry-run in kubectl for these: the flag left last made them run for real.
        ["rollout", "restart", f"deployment/{WEB}", "--field-manager"],
        ["rollout", "pause", f"deployment/{WEB}", "--field-manager"],
        ["rollout", "restart", f"deployment/{WEB}"],
        ["scale", f"deployment/{WEB}", "--replicas=3", "--resource-version"],
        ["annotate", *cm, "pwned=1", "--resource-version"],
        ["annotate", *cm, "pwned=1", "--template"],
        ["annotate", *cm, "pwned=1", "-o"],
        ["annotate", *cm, "pwned=1", "--dry-run=none"],
        ["annotate", *cm, "pwned=1", "--dry-run", "none"],
        ["annotate", *cm, "pwned=1", "--", "--dry-run=server"],
        ["delete", *cm, "--grace-period"],
        ["delete", *cm, "--dry-run=client", "--now"],
        ["annotate", *cm, "pwned=1", "-n", world.other],
        ["annotate", *cm, "pwned=1", f"--namespace={world.other}"],
        ["annotate", "configmap", BYSTANDER, "pwned=1", "--all", "--field-manager"],
        ["annotate", "namespace", world.ns, "pwned=1", "--field-manager"],
        [
            "annotate",
            *cm,
            "pwned=1",
            "--kubeconfig",
            str(world.cluster.kubeconfig),
            "--field-manager",
        ],
        ["create", "token", "default", "--field-manager"],
        ["create", "rolebinding", "pwn", "--clusterrole=admin", "--user=mallory"],
        ["patch", "serviceaccount", "default", "-p", '{"metadata":{"labels":{"a":"b"}}}'],
    ]


async def test_no_hostile_argv_changes_anything_during_a_dry_run(kubectl_env: World) -> None:
    world = kubectl_env
    before = world.state()
    for argv in hostile(world):
        result = await dry_run_kubectl(argv, world.ns, kubectl=world.kubectl)
        after = world.state()
        assert after == before, f"the dry run of {argv} changed something: {result.message}"
        assert not result.ok, (argv, result.message)
        assert result.message.startswith("refused, nothing ran: "), (argv, result.message)


async def test_no_argv_makes_kubectl_read_or_write_the_operators_files(
    kubectl_env: World, tmp_path: Path
) -> None:
    """kubectl's own flags write a CPU profile, a log or a discovery cache where they are told
    (the audit log, say) and read a patch from a file: refused, so nothing is written."""
    world = kubectl_env
    (tmp_path / "patch.json").write_text('{"data":{"mode":"pwned"}}')
    cm = ["configmap", TARGET]
    before = world.state()
    for argv in (
        ["annotate", *cm, "a=b", "--profile=cpu", f"--profile-output={tmp_path / 'profile'}"],
        ["annotate", *cm, "a=b", "--profile", "heap", "--profile-output", str(tmp_path / "heap")],
        ["annotate", *cm, "a=b", f"--log-file={tmp_path / 'log'}", "--logtostderr=false"],
        ["annotate", *cm, "a=b", f"--cache-dir={tmp_path / 'cache'}"],
        ["patch", *cm, f"--patch-file={tmp_path / 'patch.json'}"],
    ):
        for run in (dry_run_kubectl, run_kubectl):
            result = await run(argv, world.ns, kubectl=world.kubectl)
            assert not result.ok and "is not allowed" in result.message, (argv, result.message)
    assert files_in(tmp_path) == ["patch.json"]  # no profile, no log, no cache
    assert world.state() == before


async def test_every_allowed_verb_dry_runs_on_the_server_and_changes_nothing(
    kubectl_env: World,
) -> None:
    world = kubectl_env
    cm, deploy = ["configmap", TARGET], f"deployments.apps/{WEB}"
    allowed = [
        ["annotate", *cm, "checked=1", "--overwrite"],
        ["label", *cm, "checked=1", "--overwrite=false"],
        ["patch", *cm, "-p", '{"data":{"mode":"safe"}}', "--type=merge"],
        ["delete", *cm, "--wait=false"],
        ["annotate", "pod/web-0", "checked=1"],
        ["delete", "pod", "web-0", "--grace-period=30"],
        ["scale", deploy, "--replicas=2"],
        ["rollout", "undo", deploy],
        [
            "patch",
            deploy,
            "-p",
            '{"spec":{"template":{"metadata":{"annotations":'
            '{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}',
        ],  # a restart
        ["patch", deploy, "--type=merge", "-p", '{"spec":{"paused":true}}'],  # a pause
        ["set", "image", deploy, "web=example.invalid/web:2"],
        ["set", "resources", deploy, "-c", "web", "--limits=cpu=200m,memory=128Mi"],
        ["patch", deploy, "-p", '{"spec":{"minReadySeconds":5}}'],
    ]
    before = world.state()
    for argv in allowed:
        result = await dry_run_kubectl(argv, world.ns, kubectl=world.kubectl)
        assert result.ok, (argv, result.message)
        assert world.state() == before, f"the dry run of {argv} changed something"


async def test_an_allowed_change_touches_its_one_object(kubectl_env: World) -> None:
    world = kubectl_env
    before = world.state()
    result = await run_kubectl(
        ["annotate", "cm", TARGET, "aiops.dev/drained=true"], world.ns, kubectl=world.kubectl
    )
    assert result.ok, result.message
    after = world.state()
    changed = {key for key in after if after[key] != before[key]}
    assert changed == {f"{world.ns}/ConfigMap/{TARGET}"}
    assert after[f"{world.ns}/ConfigMap/{TARGET}"]["annotations"] == {"aiops.dev/drained": "true"}
    # The server's own dry run still refuses what the live object would refuse.
    gone = await run_kubectl(["delete", "configmap", "never-was"], world.ns, kubectl=world.kubectl)
    assert not gone.ok and "server-side dry run refused it" in gone.message
    assert "never-was" in gone.message and "not found" in gone.message
