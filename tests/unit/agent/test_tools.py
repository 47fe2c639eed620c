"""IncidentTools: the agent's read-only toolbox, on a test subject, a real Prometheus, a real
kubectl, and an HTTP server on 127.0.0.1 that records every request reaching it (the scripted
server answers 404 to anything but /v1/messages, which is all a recorder needs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiops.agent.base import ToolError
from tests.fixtures.scripted_anthropic import FAKE_KEY, ScriptedAnthropic
from tests.unit.agent.support import harness, write_kubeconfig


@pytest.fixture
def recorder(scripted_anthropic: ScriptedAnthropic) -> ScriptedAnthropic:
    return scripted_anthropic


async def test_kubectl_reads_run_in_the_subjects_namespace(
    recorder: ScriptedAnthropic, kubectl: Path, tmp_path: Path
) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", recorder.base_url)
    h = harness(kube_url=recorder.base_url, kubectl=kubectl, kubeconfig=config)
    result = await h.tools.kubectl(["get", "pods", "-o", "wide"])
    assert result["argv"] == ["get", "--namespace=shop", "pods", "-o", "wide"]
    # No API server here, so the read fails, cleanly, after really asking (reads only).
    assert result["exit_code"] != 0
    assert "could not find the requested resource" in result["stderr"]
    methods = {r.method for r in recorder.requests}
    assert recorder.requests and methods == {"GET"}


async def test_kubectl_mutations_never_run(
    recorder: ScriptedAnthropic, kubectl: Path, tmp_path: Path
) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", recorder.base_url)
    h = harness(kube_url=recorder.base_url, kubectl=kubectl, kubeconfig=config)
    for argv in (
        ["delete", "pods", "--all"],
        ["scale", "sts/web", "--replicas=0"],
        ["get", "pods", "-A"],
        ["get", "secrets"],
    ):
        with pytest.raises(ToolError):
            await h.tools.kubectl(argv)
    with pytest.raises(ToolError, match='propose_action, action "kubectl"'):
        await h.tools.kubectl(["delete", "pod", "web-0"])
    with pytest.raises(ToolError, match="never one string"):
        await h.tools.kubectl("delete pods --all")  # type: ignore[arg-type]
    assert recorder.requests == []  # kubectl was never started


async def test_without_kubectl_the_tool_says_so() -> None:
    with pytest.raises(ToolError, match="kubectl is not available"):
        await harness().tools.kubectl(["get", "pods"])


async def test_k8s_get_stays_in_the_namespace_and_never_reads_secrets(
    recorder: ScriptedAnthropic,
) -> None:
    h = harness(kube_url=recorder.base_url)
    with pytest.raises(ToolError, match="Secrets are never read"):
        await h.tools.k8s_get("secrets")
    with pytest.raises(ToolError, match="kind 'nodes' cannot be read"):
        await h.tools.k8s_get("nodes")
    with pytest.raises(ToolError, match="not a valid object name"):
        await h.tools.k8s_get("pods", "../../namespaces/kube-system/secrets/x")
    assert recorder.requests == []
    with pytest.raises(ToolError, match="not found in namespace shop"):
        await h.tools.k8s_get("po")
    with pytest.raises(ToolError, match="not found in namespace shop"):
        await h.tools.pod_logs("web-0")
    paths = [r.path for r in recorder.requests]
    assert paths == ["/api/v1/namespaces/shop/pods", "/api/v1/namespaces/shop/pods/web-0"]


async def test_an_unreachable_api_server_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="Kubernetes API unreachable"):
        await harness().tools.k8s_events()


async def test_observe_reports_violations_redacts_and_truncates() -> None:
    h = harness(budget=1500)
    h.plugin.facts |= {
        "dsn": "redis://app:hunter2@redis:6379/0",
        "note": f"key in use: {FAKE_KEY}",
        "password": "plain-text",
        "log": "x" * 5000,
    }
    result = await h.tools.observe()
    # The violations stay structured (the runbook agent branches on them) even when the rest
    # is cut to the budget.
    assert result["violations"][0]["invariant"] == "members_up"
    assert result["violations"][0]["entity"] == "node-2"
    assert result["truncated"] is True
    assert len(json.dumps(result)) <= 1500
    text = json.dumps(result)
    assert "hunter2" not in text and FAKE_KEY not in text and "plain-text" not in text


async def test_list_actions_shows_the_plugins_and_kubectl() -> None:
    actions = {a["name"]: a for a in (await harness().tools.list_actions())["actions"]}
    assert set(actions) == {"restart_member", "wipe_member_data", "kubectl"}
    assert actions["kubectl"]["risk"] == "high"
    assert actions["restart_member"]["params"]["properties"] == {"member": {"type": "string"}}
    assert actions["restart_member"]["params"]["additionalProperties"] is False


async def test_check_action_is_the_gates_preview() -> None:
    h = harness()
    decision = await h.tools.check_action("wipe_member_data", {"member": "node-2"})
    assert decision["decision"] == "refused"
    assert h.preview.calls == [("wipe_member_data", {"member": "node-2"})]

    async def broken(action: str, params: dict[str, object]) -> dict[str, object]:
        raise RuntimeError("gate down")

    h.tools.preview = broken
    with pytest.raises(ToolError, match="could not be asked: gate down"):
        await h.tools.check_action("restart_member", {"member": "node-2"})


async def test_promql_against_a_real_prometheus(prometheus_url: str) -> None:
    tools = harness(prometheus_url).tools
    instant = await tools.promql("vector(42)")
    assert instant["result"] == [{"metric": {}, "value": 42.0}]
    with pytest.raises(ToolError, match="failed the query"):
        await tools.promql("sum(")
    with pytest.raises(ToolError, match="at most 600 points"):
        await tools.promql_range("up", minutes=60, step_seconds=1)
    with pytest.raises(ToolError, match="minutes must be 1 to 1440"):
        await tools.promql_range("up", minutes=0, step_seconds=60)


async def test_promql_without_prometheus_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="no Prometheus"):
        await harness().tools.promql("up")


async def test_promql_range_against_a_real_prometheus(prometheus_url: str) -> None:
    ranged = await harness(prometheus_url).tools.promql_range("vector(1)", 5, 60)
    assert ranged["series"] == 1 and len(ranged["result"][0]["values"]) >= 5
