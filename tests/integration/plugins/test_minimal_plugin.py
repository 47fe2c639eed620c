"""The minimal plugin (examples/plugins/minimal) the way its author ships it: installed with
`pip install -e examples/plugins/minimal`, found by the operator through its entry point, its
own tests passing against the installed package, and the whole loop on the real API server:
a Chaos stops a member → the subject loop opens an Incident → the runbook starts the member
under the policy gate → Resolved → the Chaos credits the operator, and its revert finds
nothing left to undo."""

from __future__ import annotations

import importlib
import json
import site
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.subjects import registry
from tests.fixtures import polling
from tests.fixtures.aiops_api import REPO, ApiNamespace, api_namespace
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.subject_loop import running_operator

PLUGIN = REPO / "examples" / "plugins" / "minimal"
MEMBERS = ("alpha", "beta", "gamma")
GROUP_VERSION = "aiops.dev/v1alpha1"


def installed() -> str | None:
    return next(
        (ep.value for ep in entry_points(group="aiops.subjects") if ep.name == "minimal"), None
    )


@pytest.fixture(scope="session")
def minimal_plugin() -> str:
    """The plugin in this environment, installed as a plugin author's README says when it is
    not there yet (a fresh .venv): the suite's first run installs it, later runs find it."""
    if installed() is None:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-e", str(PLUGIN)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, f"pip install -e {PLUGIN} failed:\n{proc.stderr}"
        # A new interpreter reads the editable install's .pth at start; this one does it now.
        site.addsitedir(sysconfig.get_path("purelib"))
        importlib.invalidate_caches()
    target = installed()
    assert target == "minimal_subject.plugin:MinimalPlugin", target
    return target


def test_the_plugins_own_tests_pass_against_the_installed_package(minimal_plugin: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PLUGIN / "tests")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=PLUGIN,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    assert registry.load("minimal").__module__ == "minimal_subject.plugin"


def subject(name: str, directory: Path, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Subject",
        "metadata": {"name": name},
        "spec": {
            "type": "minimal",
            "config": {"directory": str(directory), "members": list(MEMBERS)},
            "interval": "1s",
            "autonomy": "execute",
            "cooldown": "0s",
            **spec,
        },
    }


class Env:
    def __init__(self, ns: ApiNamespace, directory: Path) -> None:
        self.ns, self.directory = ns, directory

    def apply(self, manifest: dict[str, Any]) -> None:
        proc = self.ns.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
        assert proc.returncode == 0, proc.stderr

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.ns.get(kind, name) or {}

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self.get(kind, name).get("status") or {})

    def wait_status(
        self, kind: str, name: str, done: Callable[[dict[str, Any]], Any], timeout: float = 60
    ) -> dict[str, Any]:
        """The object's status once `done` says so; a timeout shows the last status seen."""
        last: dict[str, Any] = {}

        def probe() -> Any:
            nonlocal last
            last = self.status(kind, name)
            return done(last)

        try:
            polling.wait_for(f"{kind} {name}", probe, timeout)
        except AssertionError as err:
            raise AssertionError(f"{err}; its status: {last}") from None
        return last

    def member_file(self, name: str) -> dict[str, Any]:
        return dict(json.loads((self.directory / f"{name}.json").read_text()))


@pytest.fixture
def env(minimal_plugin: str, aiops_api: ClusterHandle, tmp_path: Path) -> Iterator[Env]:
    """A directory of three members, all up; a namespace; the whole operator in-process,
    investigating with the runbook (no model key)."""
    directory = tmp_path / "members"
    directory.mkdir()
    for name in MEMBERS:
        (directory / f"{name}.json").write_text('{"up": true, "queue": 0}')
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ANTHROPIC_API_KEY", raising=False)
        mp.setenv("AIOPS_AUDIT_DIR", str(tmp_path / "audit"))
        mp.setenv("AIOPS_VERIFY_TIMEOUT", "20")
        mp.setenv("AIOPS_CHAOS_SETTLE_TIMEOUT", "30s")
        for ns in api_namespace(aiops_api, "minimal"):
            mp.setenv("AIOPS_OPERATOR_NAMESPACE", ns.namespace)  # where the switch lives
            with running_operator(ns, mp):
                yield Env(ns, directory)
                # While the operator runs: what carries its finalizer goes first.
                ns.kubectl("delete", "chaos,incidents,subjects", "--all", "--timeout=60s")


def test_a_stopped_member_is_started_by_the_runbook_and_the_incident_resolves(env: Env) -> None:
    env.apply(subject("files", env.directory))
    st = env.wait_status("subject", "files", lambda st: st.get("health") == "Healthy")
    assert [(m["name"], m["state"]) for m in st["members"]] == [(n, "Up") for n in MEMBERS]

    target = {"member": "beta"}
    spec = {"subject": "files", "fault": "stop_member", "target": target, "duration": "20s"}
    env.apply(
        {"apiVersion": GROUP_VERSION, "kind": "Chaos", "metadata": {"name": "stop"}, "spec": spec}
    )
    chaos = env.wait_status("chaos", "stop", lambda st: st.get("incidents"))
    (name,) = chaos["incidents"]
    st = env.wait_status("incident", name, lambda st: st.get("phase") in ("Resolved", "Escalated"))
    assert st["phase"] == "Resolved", st.get("escalationReason")
    incident = env.get("incident", name)["spec"]
    assert (incident["invariant"], incident["entity"]) == ("member_down", "beta")
    [action] = st["executedActions"]
    assert (action["action"], action["result"]) == ("start_member", "Succeeded")
    assert env.member_file("beta") == {"up": True, "queue": 0, "stopped_by": ""}

    # At the end of its duration the Chaos reverts, then says who brought the subject back.
    chaos = env.wait_status("chaos", "stop", lambda st: st.get("phase") == "Recovered", 90)
    assert chaos["recoveredBy"] == "operator" and chaos["incident"] == name, chaos
    # Its revert found the member started, no longer stopped by it, and left it alone.
    assert "has no stop_member mark" in chaos["targets"][0]["message"], chaos["targets"]


def test_a_bad_config_is_refused_by_the_plugin_with_the_field_named(env: Env) -> None:
    env.apply(subject("relative", Path("members")))
    st = env.wait_status("subject", "relative", lambda st: st.get("conditions"))
    [ready] = [c for c in st["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidConfig"), ready
    assert "directory" in ready["message"] and "minimal" in ready["message"], ready
