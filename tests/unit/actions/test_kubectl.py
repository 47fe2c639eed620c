"""The core `kubectl` action's runner: the command line it builds, the environment kubectl
gets, and that a refused command runs neither as a dry run nor for real. kubectl here is a
stand-in script that records how it was called (the real one, against the real API server, is
in tests/integration/agent/test_kubectl_mutation.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from aiops.actions.kubectl import SPEC as KUBECTL
from aiops.actions.kubectl.command import dry_run_kubectl, run_kubectl
from aiops.policy.gate import validate_params

FAKE_KEY = "sk-ant-api03-FAKEFAKEFAKEFAKEFAKEFAKE-kubectl-env"


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubectl that appends {argv, env} to calls.jsonl, and fails a dry run when told to."""
    record = tmp_path / "calls.jsonl"
    script = tmp_path / "kubectl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv[1:], 'env': dict(os.environ)}) + '\\n')\n"
        f"fail = os.path.exists({str(tmp_path / 'refuse')!r}) and '--dry-run=server' in sys.argv\n"
        "print('configmaps/x annotated (server dry run)' if not fail else 'Error: nope')\n"
        "sys.exit(1 if fail else 0)\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    monkeypatch.setenv("AIOPS_REDIS_PASSWORD", "hunter2")
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    return record


def binary(record: Path) -> str:
    """The recording kubectl beside `record`: the operator's AIOPS_KUBECTL, as passed in."""
    return str(record.parent / "kubectl")


def recorded(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


async def test_the_dry_run_flag_comes_right_after_the_verb(calls: Path) -> None:
    result = await dry_run_kubectl(
        ["annotate", "cm", "x", "a=b", "--overwrite"], "shop", kubectl=binary(calls)
    )
    assert result.ok, result.message
    [call] = recorded(calls)
    assert call["argv"] == [
        "--namespace=shop",
        "annotate",
        "--dry-run=server",
        "configmaps.v1./x",
        "a=b",
        "--overwrite=true",
    ]


async def test_kubectl_gets_only_the_environment_it_needs(calls: Path) -> None:
    assert (await run_kubectl(["delete", "pod", "web-0"], "shop", kubectl=binary(calls))).ok
    dry, real = recorded(calls)
    assert real["argv"] == ["--namespace=shop", "delete", "pods.v1./web-0"]
    for call in (dry, real):
        env = call["env"]
        assert FAKE_KEY not in json.dumps(env) and "hunter2" not in json.dumps(env)
        assert env["KUBECONFIG"] == "/nonexistent/kubeconfig"  # how it finds the API server
        assert env["KUBERC"] == "off"  # no preferences file adds flags or aliases
        assert set(env) <= {
            "PATH",
            "HOME",
            "KUBECONFIG",
            "KUBERNETES_SERVICE_HOST",
            "KUBERNETES_SERVICE_PORT",
            "LANG",
            "TMPDIR",
            "KUBECACHEDIR",
            "KUBERC",
        }


async def test_a_refused_dry_run_means_the_command_never_runs(calls: Path) -> None:
    (calls.parent / "refuse").touch()
    result = await run_kubectl(["delete", "pod", "web-0"], "shop", kubectl=binary(calls))
    assert not result.ok and "server-side dry run refused it: Error: nope" in result.message
    assert [c["argv"][2] for c in recorded(calls)] == ["--dry-run=server"]


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        # The reviewer's exploit: a value flag left last took the appended dry-run flag.
        (["annotate", "configmap", "x", "a=b", "--field-manager"], "--field-manager is not"),
        (["annotate", "configmap", "x", "a=b", "--resource-version"], "needs a value"),
        (["annotate", "configmap", "x", "a=b", "--template"], "--template is not allowed"),
        (["annotate", "configmap", "x", "a=b", "--dry-run=none"], "--dry-run is not allowed"),
        (
            ["annotate", "configmap", "x", "a=b", "--profile=cpu", "--profile-output=/tmp/p"],
            "--profile-output is not allowed",
        ),
        (["create", "token", "default"], "kubectl create is never allowed"),
        (["patch", "incident/i-1", "--subresource=status", "-p", "{}"], "aiops.dev API"),
    ],
)
async def test_a_refused_command_runs_neither_way(calls: Path, argv: list[str], why: str) -> None:
    dry = await dry_run_kubectl(argv, "shop", kubectl=binary(calls))
    assert not dry.ok and dry.message.startswith("refused, nothing ran: ") and why in dry.message
    real = await run_kubectl(argv, "shop", kubectl=binary(calls))
    assert not real.ok and why in real.message
    assert recorded(calls) == []
    # And the gate refuses it before either is asked, with the same words.
    with pytest.raises(ValueError, match="invalid parameters for kubectl") as err:
        validate_params(KUBECTL, {"argv": argv})
    assert why in str(err.value)
